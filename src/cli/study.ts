/**
 * `merglot study run STUDY.yaml -o OUT_DIR` and `merglot study status OUT_DIR`: parse flags, call the
 * study library, print the plan / progress / summary.
 */
import type { Command } from "commander";
import { loadStudy } from "../study/schema.js";
import { runStudy } from "../study/run.js";
import { studyStatus } from "../study/status.js";
import { runStepJob } from "../study/step-job.js";
import { warnIfKernelsMissing } from "./merge.js";
import { fmtS, positiveInt, printSummary, progressView } from "./study-view.js";

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
        if (!o.dryRun) warnIfKernelsMissing();
        const summary = await runStudy(s, {
          outDir: o.output,
          jobs: o.jobs,
          dryRun: o.dryRun,
          only: o.only,
          force: o.force,
          onEvent: o.json || o.dryRun ? undefined : progressView(),
        });
        // the report is rebuilt from results.json after every run (cheap, deterministic)
        // loaded here, not at start: `study step` (one Slurm job per step) should not load the report's charts
        const { writeReport } = await import("../report/index.js");
        const report = summary.results && !o.dryRun ? await writeReport({ input: o.output }) : [];
        if (o.json) {
          const { results, ...rest } = summary;
          process.stdout.write(
            JSON.stringify(
              { ...rest, results: results ? `${o.output}/results.json` : null, report },
              null,
              2,
            ) + "\n",
          );
        } else {
          printSummary(summary);
          for (const p of report) process.stdout.write(`report: ${p}\n`);
        }
      },
    );
  // What a Slurm job runs on a compute node: one planned step, from the spec file the study run wrote.
  study
    .command("step", { hidden: true })
    .description("run one study step from its spec file (what the slurm executor's jobs run)")
    .argument("<spec>", "step spec (OUT_DIR/slurm/specs/KEY.json)")
    .action(async (spec: string) => {
      await runStepJob(spec, (line) => process.stdout.write(`${line}\n`));
    });
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
      const other = Object.entries(st.otherVersions);
      if (other.length > 0)
        process.stdout.write(
          `note: ${other.reduce((a, [, n]) => a + n, 0)} finished steps come from other merglot versions than ` +
            `this one (${st.version}): ${other.map(([v, n]) => `${v} ×${n}`).join(", ")}` +
            `${st.otherVersions.unrecorded ? " (unrecorded: records older than the version field)" : ""}; ` +
            `study run reuses them as they are — remove a step's folder steps/<key> to compute it again\n`,
        );
      for (const s of st.steps)
        process.stdout.write(
          `  ${s.status.padEnd(11)} ${s.id}${s.wallS !== null ? `  ${fmtS(s.wallS)}` : ""}` +
            `${s.merglot !== null && s.merglot !== st.version ? `  [merglot ${s.merglot}: steps/${s.key}]` : ""}` +
            `${s.error ? `  (${s.error})` : ""}\n`,
        );
    });
}
