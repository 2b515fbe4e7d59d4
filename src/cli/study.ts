/**
 * `merglot study run STUDY.yaml -o OUT_DIR` and `merglot study status OUT_DIR`: parse flags, call the
 * study library, print the plan / progress / summary.
 */
import type { Command } from "commander";
import { MerglotError } from "../errors.js";
import { loadStudy } from "../study/schema.js";
import { runStudy, type RunSummary, type StudyEvent } from "../study/run.js";
import { studyStatus } from "../study/status.js";

function positiveInt(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new MerglotError("cli.flag", `--${flag}: expected a positive integer, got "${v}"`);
    return n;
  };
}

function fmtS(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return "-";
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${Math.round(s - 60 * m)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

/** One line per event on stderr; on a terminal the current step's own progress rewrites one line. */
function progressView(): (e: StudyEvent) => void {
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
    }
  };
}

function printSummary(s: RunSummary): void {
  if (s.dryRun) {
    const run = s.plan.filter((p) => p.state === "run");
    process.stdout.write(
      `plan: ${s.plan.length} steps, ${s.plan.length - run.length} cached, ${run.length} to run\n`,
    );
    for (const p of s.plan) process.stdout.write(`  ${p.state === "run" ? "run   " : "cached"}  ${p.id}\n`);
    return;
  }
  process.stdout.write(
    `study finished in ${fmtS(s.wallS)}: ${s.ran.length} steps run, ${s.cached.length} cached → ${s.outDir}/results.json\n`,
  );
  const r = s.results;
  if (!r) return;
  for (const task of r.tasks) {
    const rows = r.results.filter((x) => x.task === task);
    if (rows.length === 0) continue;
    const metric = Object.keys(rows[0]!.metrics)[0]!;
    const variants = [
      ...new Set(rows.map((x) => `${x.model === r.study.models[0]!.name ? "" : x.model + ":"}${x.variant}`)),
    ];
    const width = Math.max(8, ...variants.map((v) => v.length)) + 2;
    process.stdout.write(
      `\n${task} (${metric})\n${"variant".padEnd(width)}${r.languages.map((l) => l.padStart(7)).join("")}\n`,
    );
    for (const v of variants) {
      const cells = r.languages.map((l) => {
        const row = rows.find(
          (x) =>
            `${x.model === r.study.models[0]!.name ? "" : x.model + ":"}${x.variant}` === v && x.lang === l,
        );
        return (row ? row.metrics[metric]!.toFixed(3) : "-").padStart(7);
      });
      process.stdout.write(v.padEnd(width) + cells.join("") + "\n");
    }
  }
  if (r.update && r.update.speedup !== null)
    process.stdout.write(
      `\nupdate ablation (${r.update.lang}): retrain + re-merge is ${r.update.speedup.toFixed(2)}× faster and ` +
        `${r.update.costRatio!.toFixed(2)}× cheaper than retraining the combined adapter (mean over merges)\n`,
    );
}

export function registerStudy(program: Command): void {
  const study = program
    .command("study")
    .description("run the whole study: train, merge, evaluate, analyse (cached)");
  study
    .command("run")
    .description("run a study.yaml into OUT_DIR; unchanged steps are reused from the step cache")
    .argument("<study>", "study YAML file")
    .requiredOption("-o, --output <dir>", "study folder (step cache, study.lock.json, results.json)")
    .option("--jobs <n>", "steps run in parallel (child processes)", positiveInt("jobs"), 1)
    .option("--dry-run", "print the plan: what would run, what is cached")
    .option("--only <glob>", "run only the steps whose id matches (and what they read), e.g. 'train/**'")
    .option("--json", "print a JSON summary on stdout")
    .option("--force", "use OUT_DIR even if it holds another study or other files")
    .action(
      async (
        file: string,
        o: { output: string; jobs: number; dryRun?: boolean; only?: string; json?: boolean; force?: boolean },
      ) => {
        const s = loadStudy(file);
        const summary = await runStudy(s, {
          outDir: o.output,
          jobs: o.jobs,
          dryRun: o.dryRun,
          only: o.only,
          force: o.force,
          onEvent: o.json || o.dryRun ? undefined : progressView(),
        });
        if (o.json) {
          const { results, ...rest } = summary;
          process.stdout.write(
            JSON.stringify({ ...rest, results: results ? `${o.output}/results.json` : null }, null, 2) + "\n",
          );
        } else printSummary(summary);
      },
    );
  study
    .command("status")
    .description("steps done / running / to do of a study folder, with recorded times")
    .argument("<dir>", "study folder")
    .option("--json", "print JSON")
    .action((dir: string, o: { json?: boolean }) => {
      const st = studyStatus(dir);
      if (o.json) {
        process.stdout.write(JSON.stringify(st, null, 2) + "\n");
        return;
      }
      const c = st.counts;
      process.stdout.write(
        `study "${st.study}" in ${dir}${st.runningPid !== null ? ` (running, pid ${st.runningPid})` : ""}: ` +
          `${c.done} done, ${c.running} running, ${c.interrupted} interrupted, ${c.failed} failed, ${c["to do"]} to do; ` +
          `recorded ${fmtS(st.wallS)} wall, ${fmtS(st.deviceS)} device\n`,
      );
      for (const s of st.steps)
        process.stdout.write(
          `  ${s.status.padEnd(11)} ${s.id}${s.wallS !== null ? `  ${fmtS(s.wallS)}` : ""}${s.error ? `  (${s.error})` : ""}\n`,
        );
    });
}
