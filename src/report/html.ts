/**
 * The report as one self-contained HTML page: inline CSS, figures as inline SVG, no script, no external request.
 * Every table cell carries its exact value in `data-value`, so a test (or a reader's tooling) can check the page
 * against results.json without parsing rounded text.
 */
import type { Block, ReportDocument } from "./document.js";
import type { Cell, Table } from "./tables.js";

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** How a cell's number is shown: counts as they are, every score, time and price to three decimals. */
export function formatNumber(c: Cell): string {
  return c.count ? String(c.value) : c.value!.toFixed(3);
}

const CSS = `
:root { --fg:#1d1d27; --muted:#5d6070; --line:#e3e4ea; --head:#f6f7fa; --best:#0b5cad; --accent:#0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK JP", sans-serif; color: var(--fg); background: #fff; }
header { padding: 28px 40px 18px; border-bottom: 1px solid var(--line); background: linear-gradient(#fbfbfd, #fff); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: var(--muted); }
nav { display: flex; flex-wrap: wrap; gap: 2px 18px; padding: 10px 40px; border-bottom: 1px solid var(--line); font-size: 13px; position: sticky; top: 0; background: rgba(255,255,255,.95); }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
main { padding: 8px 40px 48px; max-width: 1280px; }
section { margin-top: 28px; }
h2 { font-size: 17px; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 14px; margin: 18px 0 6px; }
p.text { margin: 4px 0; }
.caption { color: var(--muted); font-size: 12.5px; margin: 0 0 8px; max-width: 900px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; margin-bottom: 8px; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: var(--head); font-weight: 600; }
th.group { text-align: center; border-left: 2px solid #fff; }
td.label, th.label { text-align: left; position: sticky; left: 0; background: #fff; font-weight: 500; }
th.label { background: var(--head); }
td.sep, th.sep { border-left: 2px solid var(--line); }
td.best { font-weight: 700; color: var(--best); }
td.empty { color: #b5b7c2; }
sup.sig { color: #b3261e; font-weight: 700; margin-left: 1px; }
tr:hover td { background: #fafbff; }
figure { margin: 14px 0 22px; }
figure svg { max-width: 100%; height: auto; }
footer { color: var(--muted); font-size: 12px; padding: 16px 40px; border-top: 1px solid var(--line); }
`;

function cellHtml(c: Cell, sep: boolean): string {
  const cls = [c.best ? "best" : "", c.value === null ? "empty" : "", sep ? "sep" : ""]
    .filter(Boolean)
    .join(" ");
  const attr = cls ? ` class="${cls}"` : "";
  if (c.value === null) return `<td${attr}>–</td>`;
  const sig = c.significant
    ? `<sup class="sig" title="significantly different from the combined baseline">†</sup>`
    : "";
  return `<td${attr} data-value="${c.value}">${formatNumber(c)}${sig}</td>`;
}

export function tableHtml(t: Table): string {
  const groupRow = t.groups.some((g) => g.label)
    ? `<tr><th class="label"></th>${t.groups
        .map((g) => `<th class="group sep" colspan="${g.columns.length}">${escapeHtml(g.label)}</th>`)
        .join("")}</tr>`
    : "";
  const colRow = `<tr><th class="label"></th>${t.groups
    .flatMap((g) => g.columns.map((c, i) => `<th${i === 0 ? ` class="sep"` : ""}>${escapeHtml(c)}</th>`))
    .join("")}</tr>`;
  const starts = new Set<number>();
  let k = 0;
  for (const g of t.groups) {
    starts.add(k);
    k += g.columns.length;
  }
  const body = t.rows
    .map(
      (r) =>
        `<tr data-variant="${escapeHtml(r.variant)}"><td class="label">${escapeHtml(r.label)}</td>${r.cells
          .map((c, i) => cellHtml(c, starts.has(i)))
          .join("")}</tr>`,
    )
    .join("\n");
  return `<h3>${escapeHtml(t.title)}</h3>
<p class="caption">${escapeHtml(t.caption)}</p>
<div class="scroll"><table id="${escapeHtml(t.id)}"><thead>${groupRow}${colRow}</thead><tbody>
${body}
</tbody></table></div>`;
}

function blockHtml(b: Block, svgs: Map<string, string>): string {
  if (b.kind === "text") return `<p class="text">${escapeHtml(b.text)}</p>`;
  if (b.kind === "table") return tableHtml(b.table);
  return `<figure id="${escapeHtml(b.id)}" aria-label="${escapeHtml(b.title)}">${svgs.get(b.id) ?? ""}</figure>`;
}

/** The whole page; `svgs` maps each figure id to its rendered SVG. */
export function renderHtml(doc: ReportDocument, svgs: Map<string, string>, footer: string): string {
  const nav = doc.sections.map((s) => `<a href="#${escapeHtml(s.id)}">${escapeHtml(s.title)}</a>`).join("");
  const body = doc.sections
    .map(
      (s) =>
        `<section id="${escapeHtml(s.id)}"><h2>${escapeHtml(s.title)}</h2>\n${s.blocks.map((b) => blockHtml(b, svgs)).join("\n")}</section>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(doc.title)}</title><style>${CSS}</style></head>
<body><header><h1>${escapeHtml(doc.title)}</h1><p>${escapeHtml(doc.subtitle)}</p></header>
<nav>${nav}</nav>
<main>
${body}
</main>
<footer>${escapeHtml(footer)}</footer>
</body></html>
`;
}
