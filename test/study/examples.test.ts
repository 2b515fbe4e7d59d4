/**
 * The study files under examples/ stay valid: the local one loads and plans as it is (it reads the embedded
 * demo), the TRL one passes the whole schema once its machine-specific paths point at files that exist here,
 * and its command expands to the `trl sft` arguments the comments promise.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { expandCommand, trainCommandValues } from "../../src/study/command.js";
import { planStudy } from "../../src/study/plan.js";
import { loadStudy, parseStudy } from "../../src/study/schema.js";
import { readYamlMapping } from "../../src/yaml-input.js";
import { tempDir } from "../helpers/fixtures.js";
import { makeStudyFixture, type StudyFixture } from "./fixture.js";

const EXAMPLES = join(process.cwd(), "examples");

describe("examples/", () => {
  const tmp = tempDir("merglot-examples-");
  let fx: StudyFixture;
  before(() => {
    fx = makeStudyFixture(tmp.dir);
  });
  after(() => tmp.cleanup());

  test("study-local.yaml loads and plans as it is", () => {
    const s = loadStudy(join(EXAMPLES, "study-local.yaml"));
    assert.equal(s.executors.train.kind, "local");
    const steps = planStudy(s);
    assert.equal(steps.filter((x) => x.kind === "train").length, 6, "5 languages + combined");
  });

  test("study-trl-gpu.yaml: valid, command training only, and the command it runs", () => {
    const path = join(EXAMPLES, "study-trl-gpu.yaml");
    const obj = readYamlMapping(path, "study.yaml", "a study");
    // this machine has no Llama-3.1-8B and no data/ next to the example: point them at the fixture's
    obj.base_model = fx.base;
    for (const t of Object.values(obj.tasks as Record<string, { data: Record<string, unknown> }>))
      for (const lang of Object.keys(t.data))
        t.data[lang] = { train: fx.dataPath("en", "train"), test: fx.dataPath("en", "test") };
    const s = parseStudy(obj, path, EXAMPLES);
    assert.equal(s.training.r, 64);
    assert.equal(s.executors.train.kind, "command");
    assert.equal(s.executors.train.device, "a100");
    for (const k of ["prepare", "merge", "evaluate", "analyse"] as const)
      assert.equal(s.executors[k].kind, "local");
    const step = planStudy(s).find((x) => x.id === "train/sentiment/de")!;
    const values = trainCommandValues(step, {
      trainJsonl: "/s/inputs/train.jsonl",
      trainPairsJsonl: "/s/inputs/pairs/train.jsonl",
      trainPairsDir: "/s/inputs/pairs",
      outputDir: "/s/adapter",
      stepDir: "/s",
    });
    const line = s.executors.train.kind === "command" ? expandCommand(s.executors.train.command, values) : "";
    // the words /bin/sh passes to trl
    const r = spawnSync("/bin/sh", ["-c", `set -- ${line}; printf '%s\\0' "$@"`], { encoding: "utf8" });
    const argv = r.stdout.split("\0").slice(0, -1);
    const after = (flag: string) => argv[argv.indexOf(flag) + 1];
    assert.equal(argv[0], "trl");
    assert.equal(argv[1], "sft");
    assert.equal(after("--model_name_or_path"), fx.base);
    assert.equal(after("--dataset_name"), "/s/inputs/pairs");
    assert.equal(after("--output_dir"), "/s/adapter");
    assert.equal(after("--lora_r"), "64");
    assert.equal(after("--lora_alpha"), "64");
    assert.equal(after("--lora_target_modules"), "all-linear");
    assert.equal(after("--learning_rate"), "0.00002");
    assert.equal(after("--max_length"), "512");
    assert.equal(after("--run_name"), "train-sentiment-de");
  });
});
