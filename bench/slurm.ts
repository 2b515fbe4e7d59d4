/**
 * bench/slurm: what running a study's steps as Slurm jobs costs over running them in process. The tiny test
 * study (24 steps: 3 prepare, 4 train, 2 merge, 15 evaluate) runs twice from the same files: local
 * executor, then `executor: { kind: slurm }`. Per step it prints, from `scontrol show job` (whole seconds)
 * and the step records: time waiting for its dependencies and a free CPU (eligible → start), the job's run
 * time (start → end) against the step's own wall time inside the job (the difference is the job's start:
 * Slurm launching the batch script, Node and merglot loading), and the study's wall time both ways.
 * Needs a running Slurm (SLURM_CONF set), e.g. the single-node one:
 *   eval "$(scripts/slurm-local/start.sh)"; node dist/bench/slurm.js; scripts/slurm-local/stop.sh
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeStudyFixture } from "../test/study/fixture.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
if (!process.env.SLURM_CONF && spawnSync("squeue", ["-h"]).status !== 0) {
  process.stderr.write('no Slurm reachable: start one with eval "$(scripts/slurm-local/start.sh)"\n');
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), "merglot-bench-slurm-"));
try {
  const fx = makeStudyFixture(join(dir, "fx"));
  const slurmStudy = join(fx.dir, "slurm.yaml");
  writeFileSync(slurmStudy, readFileSync(fx.studyPath, "utf8") + "executor: { kind: slurm, cpus: 1 }\n");
  const run = (study: string, out: string) => {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [CLI, "study", "run", study, "-o", out, "--json"], {
      encoding: "utf8",
      env: { ...process.env, MERGLOT_SLURM_POLL_S: process.env.MERGLOT_SLURM_POLL_S ?? "1" },
    });
    if (r.status !== 0) throw new Error(`study run failed: ${r.stderr}`);
    return (performance.now() - t0) / 1000;
  };
  const load0 = loadavg()[0]!;
  const localS = run(fx.studyPath, join(dir, "local"));
  const slurmS = run(slurmStudy, join(dir, "slurm"));

  const records = (out: string) =>
    new Map(
      readdirSync(join(out, "steps"))
        .filter((k) => !k.startsWith("."))
        .map((k) => {
          const r = JSON.parse(readFileSync(join(out, "steps", k, "step.json"), "utf8")) as {
            kind: string;
            wallS: number;
          };
          return [k, r] as const;
        }),
    );
  const local = records(join(dir, "local"));
  const slurm = records(join(dir, "slurm"));
  const jobs = (
    JSON.parse(readFileSync(join(dir, "slurm", "slurm", "jobs.json"), "utf8")) as {
      jobs: Record<string, { step: string; job: string }>;
    }
  ).jobs;
  const time = (s: string) => Date.parse(s) / 1000;
  const rows: { kind: string; localS: number; inJobS: number; runS: number; waitS: number }[] = [];
  for (const [key, j] of Object.entries(jobs)) {
    const out = spawnSync("scontrol", ["-o", "show", "job", j.job], { encoding: "utf8" }).stdout;
    const f = (n: string) => new RegExp(`(?:^|\\s)${n}=(\\S+)`).exec(out)?.[1] ?? "";
    rows.push({
      kind: slurm.get(key)!.kind,
      localS: local.get(key)!.wallS,
      inJobS: slurm.get(key)!.wallS,
      runS: time(f("EndTime")) - time(f("StartTime")),
      waitS: time(f("StartTime")) - time(f("EligibleTime")),
    });
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const nproc = Number(spawnSync("nproc", { encoding: "utf8" }).stdout.trim());
  process.stdout.write(
    `machine: ${nproc} cores, load average ${load0.toFixed(1)} at start; ${rows.length} steps, one CPU per job\n`,
  );
  process.stdout.write("kind      steps  local wall  in-job wall  job start→end  eligible→start\n");
  for (const kind of ["prepare", "train", "merge", "evaluate"]) {
    const r = rows.filter((x) => x.kind === kind);
    if (!r.length) continue;
    process.stdout.write(
      `${kind.padEnd(9)} ${String(r.length).padStart(5)}  ${mean(r.map((x) => x.localS))
        .toFixed(2)
        .padStart(9)}s` +
        `  ${mean(r.map((x) => x.inJobS))
          .toFixed(2)
          .padStart(10)}s  ${mean(r.map((x) => x.runS))
          .toFixed(2)
          .padStart(12)}s` +
        `  ${mean(r.map((x) => x.waitS))
          .toFixed(2)
          .padStart(13)}s\n`,
    );
  }
  const overhead = mean(rows.map((x) => x.runS - x.inJobS));
  process.stdout.write(
    `per step: job start→end exceeds the step's own time by ${overhead.toFixed(2)} s on average (Slurm launch + Node/merglot start)\n` +
      `study wall: local ${localS.toFixed(1)} s, Slurm ${slurmS.toFixed(1)} s (ratio ${(slurmS / localS).toFixed(2)}; ` +
      `${((slurmS - localS) / rows.length).toFixed(2)} s per step)\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
