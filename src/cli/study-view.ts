/**
 * What a person sees of a study run: one line per step (the current step's progress rewriting one line on a
 * terminal), then the per-language table of every task and the update ablation's ratios. Shared by
 * `merglot study run` and `merglot demo`.
 */
import { MerglotError } from "../errors.js";
import { normaliseResults, studyFileSchema } from "../report/results.js";
import { mainTable } from "../report/tables.js";
import type { RunSummary, StudyEvent } from "../study/run.js";
import { printOut } from "./terminal.js";

export function positiveInt(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new MerglotError("cli.flag", `--${flag}: expected a positive integer, got "${v}"`);
    return n;
  };
}

export function fmtS(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return "-";
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${Math.round(s - 60 * m)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

/** One line per event on stderr; on a terminal the current step's own progress rewrites one line. */
export function progressView(): (e: StudyEvent) => void {
  const tty = process.stderr.isTTY;
  let total = 0;
  let done = 0;
  let eta: number | null = null;
  return (e) => {
    switch (e.type) {
      case "plan":
        total = e.total;
        done = e.cached;
        process.stderr.write(`study: ${e.total} steps, ${e.cached} cached, ${e.toRun} to run\n`);
        break;
      case "start":
        if (!tty) process.stderr.write(`[${done}/${total}] start ${e.step}\n`);
        break;
      case "progress":
        if (tty)
          process.stderr.write(
            `\r\x1b[K[${done}/${total}] ${e.step} ${e.done}/${e.total} ${e.what}${eta !== null ? ` | ETA ${fmtS(eta)}` : ""}`,
          );
        break;
      case "finish":
        done = e.done;
        eta = e.etaS;
        process.stderr.write(
          `${tty ? "\r\x1b[K" : ""}[${done}/${total}] done ${e.step} in ${fmtS(e.wallS)}${eta !== null ? ` | ETA ${fmtS(eta)}` : ""}\n`,
        );
        break;
      case "cached":
        break;
      case "note":
        process.stderr.write(`${tty ? "\r\x1b[K" : ""}${e.message}\n`);
        break;
    }
  };
}

export function printSummary(s: RunSummary): void {
  if (s.dryRun) {
    const run = s.plan.filter((p) => p.state === "run");
    printOut(`plan: ${s.plan.length} steps, ${s.plan.length - run.length} cached, ${run.length} to run\n`);
    for (const p of s.plan) printOut(`  ${p.state === "run" ? "run   " : "cached"}  ${p.id}\n`);
    return;
  }
  printOut(
    `study finished in ${fmtS(s.wallS)}: ${s.ran.length} steps run, ${s.cached.length} cached → ${s.outDir}/results.json\n`,
  );
  const r = s.results;
  if (!r) return;
  // Table 1 of the report: base, both baselines and the best setting of each method, per task and language
  const table = mainTable(normaliseResults(studyFileSchema.parse(r)));
  let offset = 0;
  for (const g of table.groups) {
    const rows = table.rows.filter((row) =>
      row.cells.slice(offset, offset + g.columns.length).some((c) => c.value !== null),
    );
    const width = Math.max(8, ...rows.map((row) => row.label.length)) + 2;
    printOut(`\n${g.label}\n${"variant".padEnd(width)}${g.columns.map((c) => c.padStart(7)).join("")}\n`);
    for (const row of rows) {
      const cells = row.cells.slice(offset, offset + g.columns.length);
      printOut(
        row.label.padEnd(width) +
          cells.map((c) => (c.value === null ? "-" : c.value.toFixed(3)).padStart(7)).join("") +
          "\n",
      );
    }
    offset += g.columns.length;
  }
  const variants = new Set(r.results.map((x) => `${x.task}/${x.variant}`)).size;
  printOut(
    `(best setting of each method shown; all ${variants} evaluated variants are in results.json and the report)\n`,
  );
  if (r.update && r.update.speedup !== null)
    printOut(
      `\nupdate ablation (${r.update.lang}): retrain + re-merge is ${r.update.speedup.toFixed(2)}× faster and ` +
        `${r.update.costRatio!.toFixed(2)}× cheaper than retraining the combined adapter (mean over merges)\n`,
    );
}
