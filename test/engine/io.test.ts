import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { writeSafetensors } from "../../src/formats/safetensors.js";
import { writeAdapter } from "../../src/formats/peft.js";
import { loadModel, saveModel } from "../../src/engine/load.js";
import { attachLora, loadAdapter, loraAdapterConfig, loraTensors } from "../../src/engine/lora.js";
import { causalBatch, LlamaModel } from "../../src/engine/model.js";
import { Rng } from "../../src/engine/rng.js";
import { generate, logProbRows, logProbs } from "../../src/engine/score.js";
import { maxAbsDiff, randomModel, tinyConfig } from "./helpers.js";
import { referenceLogits } from "./reference.js";

const tokens = [1, 5, 2, 9, 9, 0, 3];

function logitsOf(m: LlamaModel): Float32Array {
  const out: number[] = [];
  m.forwardLogits(causalBatch([tokens]), (_r0, n, l) => out.push(...l.subarray(0, n * m.config.vocabSize)));
  return Float32Array.from(out);
}

describe("model folders and adapters on disk", () => {
  const dir = mkdtempSync(join(tmpdir(), "merglot-io-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("save → load round trip (single file) keeps every tensor and the config", () => {
    const m = randomModel(tinyConfig({ model_type: "qwen2" }), 1, "f32");
    saveModel(m, join(dir, "single"));
    const cfg = JSON.parse(readFileSync(join(dir, "single", "config.json"), "utf8"));
    assert.equal(cfg.model_type, "qwen2");
    assert.equal(cfg.num_key_value_heads, 2);
    const back = loadModel(join(dir, "single"));
    const a = m.namedParameters();
    back.namedParameters().forEach((p, i) => assert.deepEqual(p.data, a[i].data, p.name));
    assert.deepEqual(logitsOf(back), logitsOf(m));
    assert.throws(() => saveModel(m, join(dir, "single")), /already exists/);
  });

  test("sharded checkpoints are read through model.safetensors.index.json; bf16 weights convert", () => {
    const m = randomModel(tinyConfig(), 2, "f32");
    const d = join(dir, "sharded");
    mkdirSync(d);
    writeFileSync(join(d, "config.json"), readFileSync(join(dir, "single", "config.json")));
    const cfg = { ...JSON.parse(readFileSync(join(d, "config.json"), "utf8")), model_type: "llama" };
    writeFileSync(join(d, "config.json"), JSON.stringify(cfg));
    const params = m.namedParameters();
    const half = Math.floor(params.length / 2);
    const shards = [params.slice(0, half), params.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((ps, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(
        join(d, file),
        ps.map((p) => ({ name: p.name, dtype: "BF16", shape: p.shape, data: p.data as Float32Array })),
      );
      for (const p of ps) weightMap[p.name] = file;
    });
    writeFileSync(
      join(d, "model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const back = loadModel(d);
    back.namedParameters().forEach((p, i) => {
      // bf16 keeps 8 significant bits
      assert.ok(
        maxAbsDiff(p.data, params[i].data) <= 0.01 * Math.max(...Array.from(params[i].data, Math.abs)),
        p.name,
      );
    });
    delete weightMap["model.norm.weight"];
    writeFileSync(
      join(d, "model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    assert.throws(() => loadModel(d), /tensor "model\.norm\.weight" is missing from the checkpoint/);
  });

  test("a written adapter reloads and reproduces the model's outputs exactly (unmerged) and closely (merged)", () => {
    const base = randomModel(tinyConfig(), 3, "f32");
    saveModel(base, join(dir, "base"));
    const spec = {
      r: 4,
      alpha: 8,
      targets: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    };
    attachLora(base, spec, new Rng(9));
    const rng = new Rng(10);
    for (const lin of base.linears())
      for (let i = 0; i < lin.lora!.b.length; i++) lin.lora!.b[i] = 0.2 * rng.normal();
    const want = logitsOf(base);
    writeAdapter(join(dir, "adapter"), {
      config: loraAdapterConfig(spec, join(dir, "base")),
      tensors: loraTensors(base),
    });
    const unmerged = loadModel(join(dir, "base"));
    loadAdapter(unmerged, join(dir, "adapter"));
    assert.deepEqual(logitsOf(unmerged), want);
    const merged = loadModel(join(dir, "base"));
    loadAdapter(merged, join(dir, "adapter"), { merge: true });
    assert.ok(merged.linears().every((l) => l.lora === null));
    assert.ok(maxAbsDiff(logitsOf(merged), want) < 1e-4);
  });
});

describe("scoring API", () => {
  test("logProbs is the log-softmax of the reference logits at the next token", () => {
    const m = randomModel(tinyConfig(), 4);
    const ref = referenceLogits(m.config, new Map(m.namedParameters().map((p) => [p.name, p.data])), tokens);
    const lp = logProbs(m, tokens);
    assert.equal(lp.length, tokens.length - 1);
    for (let i = 0; i < lp.length; i++) {
      const row = ref[i];
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
      assert.ok(Math.abs(lp[i] - (row[tokens[i + 1]] - lse)) < 1e-6);
    }
    const rows = logProbRows(m, tokens);
    assert.ok(Math.abs(rows[2 * 11 + tokens[3]] - lp[2]) < 1e-6);
  });

  test("generate picks the arg-max of the reference at every step and stops at EOS", () => {
    const m = randomModel(tinyConfig(), 5);
    const params = new Map(m.namedParameters().map((p) => [p.name, p.data]));
    const seq = [3, 1, 4];
    const want: number[] = [];
    for (let s = 0; s < 5; s++) {
      const last = referenceLogits(m.config, params, seq).at(-1)!;
      const next = last.indexOf(Math.max(...last));
      want.push(next);
      seq.push(next);
    }
    assert.deepEqual(generate(m, [3, 1, 4], 5, { stopTokens: [] }), want);
    assert.deepEqual(generate(m, [3, 1, 4], 5, { stopTokens: [want[1]] }), want.slice(0, 2));
  });
});
