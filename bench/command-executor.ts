/**
 * bench/command-executor: what the `command` executor costs per train step, on the tests' tiny study
 * (test/study/fixture.ts: 3 languages + combined = 4 train steps), from the wall times the study records:
 *
 *   local     the built-in trainer in the study's process
 *   command   `merglot train` as the external command (a fresh Node process per step: start-up + the same work)
 *   overhead  a command that only copies a finished adapter into {output_dir}: what the executor itself adds
 *             (writing the step's inputs, starting /bin/sh, the log, checking the adapter)
 *
 * Usage: node dist/bench/command-executor.js [--json]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { shellQuote } from "../src/study/command.js";
import { makeStudyFixture } from "../test/study/fixture.js";

const CLI = join(import.meta.dirname, "../src/cli/main.js");
const dir = mkdtempSync(join(tmpdir(), "merglot-bench-command-"));
const fx = makeStudyFixture(dir);
const plain = readFileSync(fx.studyPath, "utf8");

function run(out: string, command: string | null): Record<string, number> {
  writeFileSync(
    fx.studyPath,
    plain +
      (command ? `executors:\n  train:\n    kind: command\n    command: ${JSON.stringify(command)}\n` : ""),
  );
  const r = spawnSync(
    process.execPath,
    [CLI, "study", "run", fx.studyPath, "-o", join(dir, out), "--only", "train/**", "--json"],
    {
      encoding: "utf8",
    },
  );
  if (r.status !== 0) throw new Error(`${out}: ${r.stderr}`);
  const lock = JSON.parse(readFileSync(join(dir, out, "study.lock.json"), "utf8")) as {
    steps: Record<string, { kind: string; wallS?: number; key: string }>;
  };
  return Object.fromEntries(
    Object.entries(lock.steps)
      .filter(([, s]) => s.kind === "train" && s.wallS !== undefined)
      .map(([id, s]) => [id, s.wallS!]),
  );
}

try {
  const local = run("local", null);
  const merglotTrain =
    `${shellQuote(process.execPath)} ${shellQuote(CLI)} train --base {base_model} --data {train_pairs_jsonl} ` +
    `-o {output_dir} --r {r} --alpha {alpha} --targets {target_modules_csv} --lr {lr} --epochs {epochs} ` +
    `--batch {batch} --seq-len {seq_len} --seed {seed} --schedule {schedule} --warmup {warmup} --json`;
  const command = run("command", merglotTrain);
  // a finished adapter of the same parameters, copied by the command: the executor's own cost
  const lock = JSON.parse(readFileSync(join(dir, "local", "study.lock.json"), "utf8")) as {
    steps: Record<string, { key: string }>;
  };
  const ready = join(dir, "local", "steps", lock.steps["train/sentiment/en"]!.key, "adapter");
  const overhead = run("copy", `cp -R ${shellQuote(ready)} {output_dir}`);
  const mean = (xs: Record<string, number>) => {
    const v = Object.values(xs);
    return v.reduce((a, b) => a + b, 0) / v.length;
  };
  const result = {
    steps: Object.keys(local).length,
    localMeanS: mean(local),
    commandMeanS: mean(command),
    overheadMeanS: mean(overhead),
    cores: availableParallelism(),
    load1: loadavg()[0],
  };
  if (process.argv.includes("--json")) console.log(JSON.stringify(result, null, 1));
  else
    console.log(
      `train steps: ${result.steps} (tiny study, 1-layer model)\n` +
        `local executor           ${result.localMeanS.toFixed(2)} s per step\n` +
        `command: merglot train   ${result.commandMeanS.toFixed(2)} s per step\n` +
        `command: copy only       ${result.overheadMeanS.toFixed(2)} s per step (the executor's own overhead)\n` +
        `machine: ${result.cores} cores, load ${result.load1.toFixed(1)}`,
    );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
