/**
 * The command executor's pieces, each against an independent reference: placeholder expansion checked by a
 * real /bin/sh (what arguments does the shell actually pass?), the study schema's refusals, and the check of a
 * produced adapter against adapters written by hand with known ranks, targets, shapes and values.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MerglotError } from "../../src/errors.js";
import { convertModelToGguf } from "../../src/formats/convert.js";
import { baseNameCompatible, checkProducedAdapter } from "../../src/study/check-adapter.js";
import {
  checkCommandTemplate,
  expandCommand,
  shellQuote,
  TRAIN_PLACEHOLDERS,
} from "../../src/study/command.js";
import { planStudy } from "../../src/study/plan.js";
import { parseStudy } from "../../src/study/schema.js";
import { makeAdapter, tempDir } from "../helpers/fixtures.js";
import { writeByteModel } from "../tasks/tiny-model.js";
import { makeStudyFixture, type StudyFixture } from "./fixture.js";

/** The argv /bin/sh -c gives a command: each argument NUL-terminated by printf. */
function shellArgs(line: string): string[] {
  const r = spawnSync("/bin/sh", ["-c", line], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split("\0").slice(0, -1);
}

describe("command templates", () => {
  const nasty = [
    "/data/it's a dir/model",
    'say "hi" $HOME `id` $(id) \\ * ? [a] ~ ; | & > <',
    "two\nlines\ttab",
    "",
    "'",
    "''",
  ];

  test("every value reaches the command as exactly one argument, unchanged (checked by /bin/sh)", () => {
    for (const v of nasty)
      assert.deepEqual(shellArgs(`printf '%s\\0' ${shellQuote(v)}`), [v], JSON.stringify(v));
    const line = expandCommand("printf '%s\\0' {base_model} --out={output_dir} {task}", {
      base_model: nasty[0]!,
      output_dir: nasty[1]!,
      task: nasty[2]!,
    });
    assert.deepEqual(shellArgs(line), [nasty[0], `--out=${nasty[1]}`, nasty[2]]);
  });

  test("list placeholders are one word per item; their _csv forms one word", () => {
    const line = expandCommand("printf '%s\\0' --t {target_modules} --c {target_modules_csv} {languages}", {
      target_modules: ["q_proj", "v proj"],
      target_modules_csv: "q_proj,v_proj",
      languages: ["en", "de"],
    });
    assert.deepEqual(shellArgs(line), ["--t", "q_proj", "v proj", "--c", "q_proj,v_proj", "en", "de"]);
  });

  test("{{ and }} are literal braces; braces around anything but a name stay as written", () => {
    const line = expandCommand("printf '%s\\0' {{r}} '{ x }' {r}", { r: "8" });
    assert.deepEqual(shellArgs(line), ["{r}", "{ x }", "8"]);
  });

  test("an unknown placeholder is an error naming it and the known ones", () => {
    assert.throws(
      () => checkCommandTemplate("train --base {base} --out {output_dir}"),
      (e: unknown) =>
        e instanceof MerglotError &&
        /unknown placeholder \{base\}/.test(e.message) &&
        e.message.includes("{base_model}"),
    );
    for (const name of Object.keys(TRAIN_PLACEHOLDERS)) checkCommandTemplate(`x {${name}}`);
  });
});

describe("study.yaml executors", () => {
  const tmp = tempDir("merglot-study-executors-");
  before(() => {
    makeStudyFixture(tmp.dir);
  });
  after(() => tmp.cleanup());
  const data = Object.fromEntries(
    ["en", "de", "fr"].map((l) => [l, { train: `data/${l}/train.jsonl`, test: `data/${l}/test.jsonl` }]),
  );
  const study = (extra: Record<string, unknown>) => ({
    base_model: "./base",
    languages: ["en", "de", "fr"],
    tasks: { sentiment: { task_file: "tiny-sentiment.yaml", data } },
    ...extra,
  });
  const parse = (o: unknown) => parseStudy(o, "study.yaml", tmp.dir);
  const refuses = (o: unknown, pattern: RegExp) =>
    assert.throws(
      () => parse(o),
      (e: unknown) => e instanceof MerglotError && pattern.test(e.message),
    );
  const cmd = (command: string, more: Record<string, unknown> = {}) => ({
    executors: { train: { kind: "command", command, ...more } },
  });

  test("executors.<kind> overrides executor for that kind only", () => {
    const s = parse(study({ ...cmd("train {output_dir}", { device: "a100", timeout: 60 }) }));
    assert.equal(s.executors.train.kind, "command");
    assert.equal(s.executors.train.device, "a100");
    for (const k of ["prepare", "merge", "evaluate", "analyse"] as const)
      assert.equal(s.executors[k].kind, "local");
    const t = parse(study({ executor: { kind: "local", device: "cpu-box" } }));
    assert.equal(t.executors.merge.kind === "local" && t.executors.merge.device, "cpu-box");
  });

  test("an unknown placeholder is refused when the study is loaded, naming the field and the placeholder", () => {
    refuses(
      study(cmd("trl sft --lora_rank {rank}")),
      /study\.yaml: executors\.train\.command: unknown placeholder \{rank\}/,
    );
  });

  test("a command is for training steps only", () => {
    refuses(
      study({ executors: { merge: { kind: "command", command: "x" } } }),
      /executors\.merge\.kind: a command executor runs training steps only/,
    );
    refuses(
      study({ executor: { kind: "command", command: "x" } }),
      /executor\.kind: a command executor runs training steps only/,
    );
    refuses(study({ executors: { trian: { kind: "local" } } }), /executors: unknown key\(s\) "trian"/);
    refuses(study(cmd("x", { timeout: -1 })), /executors\.train\.timeout/);
    refuses(study(cmd("x", { enviroment: {} })), /executors\.train: unknown key\(s\) "enviroment"/);
  });

  test("the command is part of the train steps' keys (editing it re-runs them), device and env are not", () => {
    const keys = (o: Record<string, unknown>) =>
      Object.fromEntries(planStudy(parse(study(o))).map((s) => [s.id, s.key]));
    const a = keys(cmd("train {output_dir}"));
    const b = keys(cmd("train  {output_dir}"));
    const c = keys(cmd("train {output_dir}", { device: "h100", env: { A: "1" }, timeout: 5 }));
    const local = keys({});
    assert.notEqual(a["train/sentiment/en"], b["train/sentiment/en"]);
    assert.notEqual(a["train/sentiment/en"], local["train/sentiment/en"]);
    assert.deepEqual(a, c);
    assert.equal(a["prepare/sentiment/en"], local["prepare/sentiment/en"]);
  });

  test("a GGUF base trains with a command; the local trainer refuses it naming executors.train", () => {
    // planning reads no model: any file named .gguf is a GGUF base here (its bytes only enter the keys)
    const gguf = join(tmp.dir, "base.gguf");
    writeFileSync(gguf, "GGUF");
    const steps = planStudy(parse(study({ base_model: "./base.gguf", ...cmd("train {base_model}") })));
    assert.ok(steps.some((s) => s.kind === "train" && s.files.base === gguf));
    assert.throws(
      () => planStudy(parse(study({ base_model: "./base.gguf" }))),
      (e: unknown) =>
        e instanceof MerglotError &&
        /needs a command executor for training: executors\.train/.test(e.message),
    );
  });
});

describe("checking a produced adapter", () => {
  const tmp = tempDir("merglot-check-adapter-");
  let fx: StudyFixture;
  let n = 0;
  // The fixture's base: 1 layer, hidden 16, intermediate 32, 2 heads of 8, 1 KV head.
  const SHAPES: Record<string, [number, number]> = {
    "self_attn.q_proj": [16, 16],
    "self_attn.k_proj": [8, 16],
    "self_attn.v_proj": [8, 16],
    "self_attn.o_proj": [16, 16],
    "mlp.gate_proj": [32, 16],
    "mlp.up_proj": [32, 16],
    "mlp.down_proj": [16, 32],
  };
  const modules = (kinds: string[], rank = 4, shapes = SHAPES) =>
    Object.entries(shapes)
      .filter(([k]) => kinds.some((x) => k.endsWith(`.${x}`)))
      .map(([k, [out, inF]]) => ({ name: `model.layers.0.${k}`, rank, out, in: inF }));
  const ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
  const write = (o: Parameters<typeof makeAdapter>[1]) => {
    const dir = join(tmp.dir, `a${n++}`);
    makeAdapter(dir, { base: fx.base, alpha: 8, ...o });
    return dir;
  };
  const req = (over: Partial<{ r: number; alpha: number; targets: string[]; base: string }> = {}) => ({
    base: fx.base,
    r: 4,
    alpha: 8,
    targets: ["all-linear"],
    ...over,
  });
  const fails = (dir: string, pattern: RegExp, r = req()) =>
    assert.throws(
      () => checkProducedAdapter(dir, r),
      (e: unknown) => e instanceof MerglotError && pattern.test(e.message),
    );
  before(() => {
    fx = makeStudyFixture(tmp.dir);
  });
  after(() => tmp.cleanup());

  test("a matching adapter passes (all-linear, and a list of modules)", () => {
    assert.equal(checkProducedAdapter(write({ seed: 1, modules: modules(ALL) }), req()).modules, 7);
    const qv = write({ seed: 2, modules: modules(["q_proj", "v_proj"]) });
    assert.equal(checkProducedAdapter(qv, req({ targets: ["q_proj", "v_proj"] })).modules, 2);
  });

  test("missing folder or files, wrong rank, alpha, rsLoRA, targets, shapes and NaN are refused, each said", () => {
    fails(join(tmp.dir, "nothing"), /no adapter was written: .*nothing does not exist/);
    const empty = join(tmp.dir, "empty");
    mkdirSync(empty);
    fails(empty, /no adapter_config\.json: not a PEFT LoRA folder/);
    const noWeights = write({ seed: 3, modules: modules(ALL) });
    rmSync(join(noWeights, "adapter_model.safetensors"));
    fails(noWeights, /no adapter_model\.safetensors/);
    fails(
      write({ seed: 4, modules: modules(ALL, 2) }),
      /r is 2, but the study trains rank 4 \(training\.r\)/,
    );
    fails(
      write({ seed: 5, modules: modules(ALL), alpha: 16 }),
      /lora_alpha is 16, but the study trains alpha 8/,
    );
    fails(write({ seed: 6, modules: modules(ALL), useRslora: true }), /use_rslora is true/);
    // the config targets q and v only, the study all linear modules
    fails(
      write({ seed: 7, modules: modules(["q_proj", "v_proj"]) }),
      /target_modules \["q_proj","v_proj"\] does not cover model\.layers\.0\.self_attn\.k_proj/,
    );
    // the config covers more than asked
    fails(
      write({ seed: 8, modules: modules(ALL) }),
      /also covers model\.layers\.0\.self_attn\.k_proj/,
      req({ targets: ["q_proj", "v_proj"] }),
    );
    // config says all-linear, but the weights lack a module
    fails(
      write({
        seed: 9,
        modules: modules(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"]),
        extraConfig: { target_modules: "all-linear" },
      }),
      /has no LoRA for module model\.layers\.0\.mlp\.down_proj/,
    );
    fails(
      write({ seed: 10, modules: modules(ALL, 4, { ...SHAPES, "self_attn.q_proj": [8, 16] }) }),
      /module model\.layers\.0\.self_attn\.q_proj is 8 × 16, but the base model .* has 16 × 16/,
    );
    const nan = write({ seed: 11, modules: modules(ALL) });
    // poison one value of the last tensor (F32, little-endian) in place
    const bytes = readFileSync(join(nan, "adapter_model.safetensors"));
    bytes.writeFloatLE(Number.NaN, bytes.length - 4);
    writeFileSync(join(nan, "adapter_model.safetensors"), bytes);
    fails(nan, /holds a non-finite value \(NaN or infinity\): the training diverged/);
  });

  test("the base model's name: same path, same last part (an HF id) or a hub-cache snapshot; else refused", () => {
    assert.ok(baseNameCompatible("/models/Llama-3.1-8B", "/models/Llama-3.1-8B/"));
    assert.ok(baseNameCompatible("meta-llama/Llama-3.1-8B", "/models/llama-3.1-8b"));
    assert.ok(
      baseNameCompatible(
        "meta-llama/Llama-3.1-8B",
        "/hf/hub/models--meta-llama--Llama-3.1-8B/snapshots/0e9e39f249a16976918f6564b8830bc894c89659",
      ),
    );
    assert.ok(!baseNameCompatible("meta-llama/Llama-3.1-70B", "/models/Llama-3.1-8B"));
    assert.ok(
      !baseNameCompatible("Qwen/Qwen2.5-7B", "/hf/hub/models--meta-llama--Llama-3.1-8B/snapshots/abc"),
    );
    fails(
      write({ seed: 12, modules: modules(ALL), base: "meta-llama/Llama-3.1-8B" }),
      /base_model_name_or_path is "meta-llama\/Llama-3\.1-8B", but the study's base is .*base \(accepted: the same path, a name ending in "base"/,
    );
    checkProducedAdapter(write({ seed: 13, modules: modules(ALL), base: "someone/base" }), req());
  });

  test("against a GGUF base, shapes come from its metadata (its name is not compared)", () => {
    // a byte-level model (llama.cpp export needs a BPE tokenizer): hidden 32, 4 heads of 8, 2 KV heads, FFN 48
    const hf = join(tmp.dir, "byte-model");
    writeByteModel(hf, 5);
    const gguf = join(tmp.dir, "byte-model.gguf");
    convertModelToGguf(hf, gguf, { dtype: "F32" });
    const byte: Record<string, [number, number]> = {
      "self_attn.q_proj": [32, 32],
      "self_attn.k_proj": [16, 32],
      "self_attn.v_proj": [16, 32],
      "self_attn.o_proj": [32, 32],
      "mlp.gate_proj": [48, 32],
      "mlp.up_proj": [48, 32],
      "mlp.down_proj": [32, 48],
    };
    checkProducedAdapter(
      write({ seed: 14, modules: modules(ALL, 4, byte), base: "meta-llama/Other" }),
      req({ base: gguf }),
    );
    fails(
      write({ seed: 15, modules: modules(ALL, 4, { ...byte, "mlp.down_proj": [32, 40] }) }),
      /module model\.layers\.0\.mlp\.down_proj is 32 × 40, but the base model .*byte-model\.gguf\) has 32 × 48/,
      req({ base: gguf }),
    );
  });
});
