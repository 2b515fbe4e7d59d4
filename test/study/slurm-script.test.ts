/**
 * The slurm executor's settings and generated sbatch scripts, without a cluster (the real runs are in
 * slurm.test.ts): the study file's `executor` / `executors` fields, what a script asks Slurm for, and that the
 * script bash runs picks the step of its array task.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MerglotError } from "../../src/errors.js";
import { executorOf, loadStudy, parseStudy } from "../../src/study/schema.js";
import { renderJobScript, shellQuote } from "../../src/study/slurm/script.js";
import { tempDir } from "../helpers/fixtures.js";
import { makeStudyFixture } from "./fixture.js";

describe("slurm executor settings and scripts", () => {
  const tmp = tempDir("merglot-slurm-script-");
  before(() => makeStudyFixture(tmp.dir));
  after(() => tmp.cleanup());
  const valid = (extra: Record<string, unknown>) => ({
    base_model: "./base",
    languages: ["en", "de", "fr"],
    tasks: {
      sentiment: {
        task_file: "tiny-sentiment.yaml",
        data: Object.fromEntries(
          ["en", "de", "fr"].map((l) => [
            l,
            { train: `data/${l}/train.jsonl`, test: `data/${l}/test.jsonl` },
          ]),
        ),
      },
    },
    ...extra,
  });
  const parse = (o: unknown) => parseStudy(o, "study.yaml", tmp.dir);
  const refuses = (o: unknown, pattern: RegExp) =>
    assert.throws(
      () => parse(o),
      (e: unknown) => e instanceof MerglotError && pattern.test(e.message),
    );

  test("executors.<kind> overrides executor for its step kind only", () => {
    const s = parse(
      valid({
        executor: { kind: "slurm", partition: "cpu" },
        executors: {
          train: { kind: "slurm", partition: "gpu", gpus: 1, array_limit: 2 },
          prepare: { kind: "local" },
        },
      }),
    );
    assert.deepEqual(executorOf(s, "train"), {
      kind: "slurm",
      partition: "gpu",
      gpus: 1,
      array_limit: 2,
      sbatch: [],
    });
    assert.equal(executorOf(s, "prepare").kind, "local");
    assert.deepEqual(executorOf(s, "evaluate"), { kind: "slurm", partition: "cpu", sbatch: [] });
  });

  test("bad slurm settings are refused with the field named", () => {
    refuses(valid({ executor: { kind: "slurm", time: "2 hours" } }), /executor\.time: a Slurm time limit/);
    refuses(
      valid({ executors: { train: { kind: "slurm", mem: "lots" } } }),
      /executors\.train\.mem: memory as/,
    );
    refuses(
      valid({ executors: { train: { kind: "slurm", sbatch: ["--account=x\n#SBATCH --qos=y"] } } }),
      /executors\.train\.sbatch\[0\]: one sbatch option per item/,
    );
    refuses(
      valid({ executors: { train: { kind: "slurm", partiton: "gpu" } } }),
      /executors\.train: unknown key/,
    );
    refuses(valid({ executors: { trian: { kind: "slurm" } } }), /executors: unknown key\(s\) "trian"/);
    // a training command inside the jobs: train steps only, placeholders checked at load
    refuses(
      valid({ executors: { merge: { kind: "slurm", command: "trl sft" } } }),
      /executors\.merge\.command: a command runs training steps only/,
    );
    refuses(
      valid({ executors: { train: { kind: "slurm", command: "trl sft --out {ouput_dir}" } } }),
      /executors\.train\.command: .*ouput_dir/,
    );
    const withCommand = valid({
      executors: { train: { kind: "slurm", command: "trl sft --out {output_dir}" } },
    });
    assert.equal(executorOf(parse(withCommand), "train").kind, "slurm");
  });

  test("the example study file loads", () => {
    const s = loadStudy(join(process.cwd(), "examples/study-slurm.yaml"));
    const train = executorOf(s, "train");
    assert.equal(train.kind, "slurm");
    assert.equal(train.kind === "slurm" && train.array_limit, 3);
  });

  test("a job array's script: resources, dependencies, and the spec of each array task", () => {
    const script = renderJobScript({
      name: "merglot:train/sentiment",
      log: "/out/slurm/logs/train-sentiment-%A_%a.log",
      specs: [
        { path: "/out/slurm/specs/a.json", stepId: "train/sentiment/en" },
        { path: "/out/it's here/b.json", stepId: "train/sentiment/de" },
      ],
      after: ["12", "13_1"],
      settings: {
        kind: "slurm",
        partition: "gpu",
        gpus: 2,
        time: "02:00:00",
        mem: "64G",
        cpus: 8,
        array_limit: 4,
        sbatch: ["--account=myproj"],
      },
      node: "/usr/bin/node",
      main: "/opt/merglot/dist/src/cli/main.js",
      study: "tiny",
    });
    const sb = script
      .split("\n")
      .filter((l) => l.startsWith("#SBATCH "))
      .map((l) => l.slice(8));
    assert.deepEqual(sb, [
      "--job-name=merglot:train/sentiment",
      "--output=/out/slurm/logs/train-sentiment-%A_%a.log",
      "--array=0-1%4",
      "--partition=gpu",
      "--gpus=2",
      "--time=02:00:00",
      "--mem=64G",
      "--cpus-per-task=8",
      "--dependency=afterok:12:13_1",
      "--kill-on-invalid-dep=yes",
      "--account=myproj",
    ]);
    // bash runs the script: array task 1 runs the second spec (the quote in its path survives)
    const dir = tmp.dir;
    const path = join(dir, "job.sh");
    writeFileSync(
      path,
      script.replace(
        `exec '/usr/bin/node' '/opt/merglot/dist/src/cli/main.js'`,
        "printf '%s|' \"$MERGLOT_THREADS\"",
      ),
    );
    const r = spawnSync("bash", [path], {
      encoding: "utf8",
      env: { ...process.env, SLURM_ARRAY_TASK_ID: "1", SLURM_CPUS_PER_TASK: "8" },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "8|study|step|/out/it's here/b.json|");
    assert.equal(shellQuote("a'b"), `'a'\\''b'`);
  });
});
