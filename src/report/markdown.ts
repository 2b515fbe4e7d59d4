/** The report as Markdown: the same sections and tables as the HTML page; figures are listed by title only. */
import type { ReportDocument } from "./document.js";
import { formatNumber } from "./html.js";
import type { Table } from "./tables.js";

/** Make text safe inside a Markdown table cell or paragraph. */
function mdEscape(s: string): string {
  return s.replace(/[\\`*_|<>[\]]/g, (c) => `\\${c}`);
}

export function tableMarkdown(t: Table): string {
  const cols = t.groups.flatMap((g) =>
    g.columns.map((c) => (t.groups.length > 1 || g.label ? `${g.label.split(" ")[0]} ${c}`.trim() : c)),
  );
  const head = `| | ${cols.map(mdEscape).join(" | ")} |`;
  const rule = `|---|${cols.map(() => "---:").join("|")}|`;
  const rows = t.rows.map(
    (r) =>
      `| ${mdEscape(r.label)} | ${r.cells
        .map((c) =>
          c.value === null
            ? "–"
            : `${c.best ? "**" : ""}${formatNumber(c)}${c.best ? "**" : ""}${c.significant ? " †" : ""}`,
        )
        .join(" | ")} |`,
  );
  return [`### ${mdEscape(t.title)}`, "", mdEscape(t.caption), "", head, rule, ...rows, ""].join("\n");
}

export function renderMarkdown(doc: ReportDocument, footer: string): string {
  const out = [`# ${mdEscape(doc.title)}`, "", mdEscape(doc.subtitle), ""];
  for (const s of doc.sections) {
    out.push(`## ${mdEscape(s.title)}`, "");
    for (const b of s.blocks) {
      if (b.kind === "text") out.push(`- ${mdEscape(b.text)}`);
      else if (b.kind === "table") out.push("", tableMarkdown(b.table));
      else out.push(`*Figure: ${mdEscape(b.title)} (see report.html)*`, "");
    }
    out.push("");
  }
  out.push(mdEscape(footer), "");
  return out.join("\n");
}
