import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { attachLora, mergeLora } from "../../src/engine/lora.js";
import { causalBatch, LlamaModel, type TokenBatch } from "../../src/engine/model.js";
import { Rng } from "../../src/engine/rng.js";
import { checkGradient, maxAbsDiff, randomModel, tinyConfig } from "./helpers.js";
import { referenceLogits } from "./reference.js";

function engineLogits(m: LlamaModel, tokens: number[]): number[][] {
  const rows: number[][] = [];
  m.forwardLogits(causalBatch([tokens]), (r0, n, logits) => {
    for (let r = 0; r < n; r++)
      rows.push(Array.from(logits.subarray(r * m.config.vocabSize, (r + 1) * m.config.vocabSize)));
  });
  return rows;
}

function paramMap(m: LlamaModel): Map<string, ArrayLike<number>> {
  return new Map(m.namedParameters().map((p) => [p.name, Float64Array.from(p.data)]));
}

/** Two packed rows: row 0 holds two documents (segments 0, 1), row 1 one document and padding. */
function packedBatch(): TokenBatch {
  return {
    batch: 2,
    seq: 5,
    tokens: Int32Array.of(1, 4, 7, 2, 9, 3, 3, 8, 0, 0),
    positions: Int32Array.of(0, 1, 2, 0, 1, 0, 1, 2, 0, 1),
    segments: Int32Array.of(0, 0, 0, 1, 1, 2, 2, 2, -1, -1),
    targets: Int32Array.of(4, 7, -1, 9, 5, 3, 8, 1, -1, -1),
  };
}

const tokens = [1, 5, 2, 9, 9, 0, 3];

describe("forward against an independent naive implementation", () => {
  for (const [label, overrides] of [
    ["llama, untied, GQA", {}],
    ["qwen2 biases, tied, MHA", { model_type: "qwen2", tie_word_embeddings: true, num_key_value_heads: 4 }],
  ] as const) {
    test(label, () => {
      const c = tinyConfig(overrides);
      const m = randomModel(c, 11);
      const ref = referenceLogits(c, paramMap(m), tokens);
      const got = engineLogits(m, tokens);
      assert.ok(maxAbsDiff(got.flat(), ref.flat()) < 1e-10);
      // float32 engine on the same weights stays close
      const m32 = new LlamaModel(c, "f32");
      const src = m.namedParameters();
      m32.namedParameters().forEach((p, i) => p.data.set(src[i].data));
      assert.ok(maxAbsDiff(engineLogits(m32, tokens).flat(), ref.flat()) < 1e-4);
    });
  }

  test("a packed row scores each document as if it were alone", () => {
    const c = tinyConfig();
    const m = randomModel(c, 12);
    const b = packedBatch();
    const rows: number[][] = [];
    m.forwardLogits(b, (r0, n, logits) => {
      for (let r = 0; r < n; r++) rows.push(Array.from(logits.subarray(r * 11, (r + 1) * 11)));
    });
    const doc2 = referenceLogits(c, paramMap(m), [2, 9]);
    assert.ok(maxAbsDiff(rows.slice(3, 5).flat(), doc2.flat()) < 1e-10);
  });
});

describe("whole-model gradients against central differences (float64)", () => {
  function check(
    m: LlamaModel,
    b: TokenBatch,
    names: (string | null)[] | null,
    seed: number,
    dropoutSeed: number | null,
  ): void {
    const rng = new Rng(seed);
    const lossOf = () =>
      m.forwardBackward(b, { backward: false, rng: dropoutSeed === null ? null : new Rng(dropoutSeed) })
        .loss * 0.25;
    m.zeroGradients();
    m.forwardBackward(b, { lossScale: 0.25, rng: dropoutSeed === null ? null : new Rng(dropoutSeed) });
    if (names === null) {
      for (const p of m.namedParameters()) checkGradient(p.name, p.data, p.grad!, lossOf, rng, { count: 2 });
    }
    for (const lin of m.linears()) {
      if (lin.lora === null) continue;
      checkGradient(`${lin.name}.lora_A`, lin.lora.a, lin.lora.gradA!, lossOf, rng, { count: 2 });
      checkGradient(`${lin.name}.lora_B`, lin.lora.b, lin.lora.gradB!, lossOf, rng, { count: 2 });
    }
  }

  test("full-parameter, qwen2 biases, untied head, packed batch", () => {
    const m = randomModel(tinyConfig({ model_type: "qwen2" }), 21);
    m.enableBaseGradients();
    check(m, packedBatch(), null, 1, null);
  });

  test("full-parameter, tied embeddings (embedding gets both gradients)", () => {
    const m = randomModel(tinyConfig({ tie_word_embeddings: true, num_hidden_layers: 1 }), 22);
    m.enableBaseGradients();
    check(m, causalBatch([tokens]), null, 2, null);
  });

  test("LoRA on all linear modules (rsLoRA, dropout), base frozen", () => {
    const m = randomModel(tinyConfig(), 23);
    attachLora(m, { r: 3, alpha: 5, targets: ["all-linear"], rslora: true, dropout: 0.25 }, new Rng(1));
    // PEFT starts B at zero; give it values so that every gradient path is exercised
    const rng = new Rng(2);
    for (const lin of m.linears())
      for (let i = 0; i < lin.lora!.b.length; i++) lin.lora!.b[i] = 0.3 * rng.normal();
    check(m, packedBatch(), [], 3, 77);
    for (const p of m.namedParameters()) assert.equal(p.grad, null, `${p.name} stays frozen`);
  });
});

describe("LoRA forward", () => {
  test("PEFT initialisation: A within ±1/√in, not all equal; B zero (so the output is unchanged)", () => {
    const m = randomModel(tinyConfig(), 31);
    const before = engineLogits(m, tokens);
    attachLora(m, { r: 4, alpha: 8, targets: ["q_proj", "v_proj", "down_proj"] }, new Rng(5));
    const q = m.layers[0].linears.q_proj.lora!;
    assert.equal(q.scaling, 2);
    assert.ok(q.a.every((x) => Math.abs(x) <= 1 / Math.sqrt(16)));
    assert.ok(new Set(q.a).size > q.a.length / 2);
    assert.ok(q.b.every((x) => x === 0));
    assert.equal(m.layers[0].linears.k_proj.lora, null);
    assert.equal(m.layers[1].linears.down_proj.lora!.a.length, 4 * 24);
    assert.deepEqual(engineLogits(m, tokens), before);
  });

  test("unmerged, merged and a dense reference on W + s·B·A agree", () => {
    const m = randomModel(tinyConfig(), 32);
    attachLora(m, { r: 2, alpha: 3, targets: ["all-linear"] }, new Rng(6));
    const rng = new Rng(7);
    for (const lin of m.linears()) for (let i = 0; i < lin.lora!.b.length; i++) lin.lora!.b[i] = rng.normal();
    // dense reference weights computed here
    const params = paramMap(m);
    for (const lin of m.linears()) {
      const l = lin.lora!;
      const w = Float64Array.from(lin.weight);
      for (let o = 0; o < lin.outF; o++)
        for (let i = 0; i < lin.inF; i++)
          for (let j = 0; j < l.r; j++) w[o * lin.inF + i] += 1.5 * l.b[o * l.r + j] * l.a[j * lin.inF + i];
      params.set(`${lin.name}.weight`, w);
    }
    const ref = referenceLogits(m.config, params, tokens).flat();
    const unmerged = engineLogits(m, tokens).flat();
    assert.ok(maxAbsDiff(unmerged, ref) < 1e-10);
    mergeLora(m);
    assert.ok(m.linears().every((l) => l.lora === null));
    assert.ok(maxAbsDiff(engineLogits(m, tokens).flat(), ref) < 1e-10);
  });
});
