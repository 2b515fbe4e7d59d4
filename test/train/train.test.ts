import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseModelConfig } from "../../src/engine/config.js";
import { loadModel, saveModel } from "../../src/engine/load.js";
import { loadAdapter } from "../../src/engine/lora.js";
import { LlamaModel } from "../../src/engine/model.js";
import { Rng } from "../../src/engine/rng.js";
import { generate, logProbs } from "../../src/engine/score.js";
import { loadTokenizer } from "../../src/engine/tokenizer.js";
import { readPromptCompletionJsonl } from "../../src/train/data.js";
import { pretrainModel, trainAdapter } from "../../src/train/api.js";
import { TRAIN_DEFAULTS, type TrainConfig } from "../../src/train/trainer.js";
import { writeWordTokenizer } from "../engine/fixtures.js";

/** Synthetic task: "a<i> ->" must be completed with "b<π(i)>" for a fixed permutation π. */
const N = 8;
const perm = (i: number) => (3 * i + 1) % N;
const words = [
  ...Array.from({ length: N }, (_, i) => `a${i}`),
  ...Array.from({ length: N }, (_, i) => `b${i}`),
  "->",
];

const baseConfig = {
  model_type: "llama",
  vocab_size: 3 + words.length,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  max_position_embeddings: 64,
  tie_word_embeddings: true,
  initializer_range: 0.3,
  eos_token_id: 2,
};

describe("LoRA training on a synthetic task", () => {
  const dir = mkdtempSync(join(tmpdir(), "merglot-train-"));
  const base = join(dir, "base");
  const data = join(dir, "data.jsonl");
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(() => {
    const m = new LlamaModel(parseModelConfig(baseConfig, "config.json")).initRandom(new Rng(42));
    saveModel(m, base);
    writeWordTokenizer(base, words);
    const lines = Array.from({ length: N }, (_, i) =>
      JSON.stringify({ prompt: `a${i} ->`, completion: `b${perm(i)}` }),
    );
    writeFileSync(data, lines.join("\n") + "\n");
  });

  const cfg: TrainConfig = {
    ...TRAIN_DEFAULTS,
    epochs: 40,
    lr: 2e-2,
    batchSize: 4,
    seqLen: 16,
    seed: 1,
    warmupRatio: 0.05,
  };
  const lora = { r: 4, alpha: 8, targets: ["all-linear"] };

  test("loss goes down, the task is learnt, and the written adapter reproduces the trained model exactly", () => {
    const out = join(dir, "adapter");
    const { log, model } = trainAdapter({ baseDir: base, dataPath: data, outDir: out, lora, train: cfg });
    assert.equal(log.totalSteps, 80);
    const first = log.steps[0].loss;
    const last = log.steps.at(-1)!.loss;
    assert.ok(first > 2, `initial loss ${first} is near chance`);
    assert.ok(last < 0.1, `final loss ${last}`);
    assert.ok(log.tokensPerS > 0 && log.tokens === 80 * 4 * 4);
    // accuracy by greedy decoding of the completion word
    const tok = loadTokenizer(base);
    let correct = 0;
    for (let i = 0; i < N; i++) {
      const next = generate(model, tok.encode(`a${i} ->`), 1);
      if (next[0] === tok.tokenToId(`b${perm(i)}`)) correct++;
    }
    assert.equal(correct, N);
    // the folder: PEFT config + weights + training log
    const cfgJson = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
    assert.equal(cfgJson.r, 4);
    assert.equal(cfgJson.lora_alpha, 8);
    assert.deepEqual(cfgJson.target_modules, [
      "down_proj",
      "gate_proj",
      "k_proj",
      "o_proj",
      "q_proj",
      "up_proj",
      "v_proj",
    ]);
    const tlog = JSON.parse(readFileSync(join(out, "training_log.json"), "utf8"));
    assert.equal(tlog.steps.length, 80);
    // reload: base + adapter gives the trained model's outputs bit for bit
    const reloaded = loadModel(base);
    loadAdapter(reloaded, out);
    const probe = tok.encode("a3 -> b2 a5 ->");
    assert.deepEqual(logProbs(reloaded, probe), logProbs(model, probe));
  });

  test("resuming from a checkpoint gives the same adapter as an uninterrupted run", () => {
    const c: TrainConfig = {
      ...cfg,
      epochs: 3,
      gradAccum: 2,
      mode: "packing",
      seqLen: 12,
      batchSize: 2,
      schedule: "cosine",
      warmupRatio: 0.2,
    };
    const l = { ...lora, dropout: 0.1 };
    const whole = trainAdapter({
      baseDir: base,
      dataPath: data,
      outDir: join(dir, "whole"),
      lora: l,
      train: c,
    });
    const ckpt = join(dir, "ckpt");
    trainAdapter({
      baseDir: base,
      dataPath: data,
      outDir: join(dir, "part"),
      lora: l,
      train: c,
      run: { checkpointDir: ckpt, checkpointEvery: 1, stopAfterStep: 2 },
    });
    const resumed = trainAdapter({
      baseDir: base,
      dataPath: data,
      outDir: join(dir, "resumed"),
      lora: l,
      train: c,
      run: { resumeFrom: ckpt },
    });
    assert.equal(resumed.log.steps.length, whole.log.steps.length);
    assert.deepEqual(
      resumed.log.steps.map((s) => s.loss),
      whole.log.steps.map((s) => s.loss),
    );
    assert.deepEqual(
      readFileSync(join(dir, "resumed", "adapter_model.safetensors")),
      readFileSync(join(dir, "whole", "adapter_model.safetensors")),
    );
    // other options: refused
    assert.throws(
      () =>
        trainAdapter({
          baseDir: base,
          dataPath: data,
          outDir: join(dir, "x"),
          lora: l,
          train: { ...c, lr: 1 },
          run: { resumeFrom: ckpt },
        }),
      /made with other training options/,
    );
  });

  test("the same seed gives a byte-identical adapter", () => {
    const c: TrainConfig = { ...cfg, epochs: 2 };
    trainAdapter({ baseDir: base, dataPath: data, outDir: join(dir, "s1"), lora, train: c });
    trainAdapter({ baseDir: base, dataPath: data, outDir: join(dir, "s2"), lora, train: c });
    assert.deepEqual(
      readFileSync(join(dir, "s1", "adapter_model.safetensors")),
      readFileSync(join(dir, "s2", "adapter_model.safetensors")),
    );
  });

  test("prompt/completion data is tokenised with BOS on the prompt and EOS after the completion", () => {
    const tok = loadTokenizer(base);
    assert.deepEqual(readPromptCompletionJsonl(data)[0], { prompt: "a0 ->", completion: "b1" });
    assert.deepEqual(tok.encode("a0 ->"), [1, 3, 19]);
  });
});

describe("pre-training a small model from scratch", () => {
  test("loss goes down and the output folder is a loadable HF model with its tokenizer", () => {
    const dir = mkdtempSync(join(tmpdir(), "merglot-pretrain-"));
    try {
      const src = join(dir, "src");
      mkdirSync(src);
      writeWordTokenizer(src, words);
      writeFileSync(join(src, "config.json"), JSON.stringify(baseConfig));
      // documents: the permutation task written as text, so there is structure to learn
      const docs = Array.from(
        { length: 24 },
        (_, k) => `a${k % N} -> b${perm(k % N)} a${(k + 3) % N} -> b${perm((k + 3) % N)}`,
      );
      writeFileSync(join(src, "corpus.txt"), docs.join("\n\n") + "\n");
      const out = join(dir, "model");
      const { log, model } = pretrainModel({
        configPath: join(src, "config.json"),
        dataPath: join(src, "corpus.txt"),
        outDir: out,
        train: { ...TRAIN_DEFAULTS, epochs: 8, lr: 1e-2, batchSize: 4, seqLen: 32, mode: "packing", seed: 3 },
      });
      const first = log.steps[0].loss;
      const last = log.steps.at(-1)!.loss;
      assert.ok(last < first * 0.5, `loss ${first} → ${last}`);
      const back = loadModel(out);
      const tok = loadTokenizer(out);
      const probe = tok.encode("a1 -> b4 a2 ->");
      assert.deepEqual(logProbs(back, probe), logProbs(model, probe));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
