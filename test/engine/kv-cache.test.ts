/**
 * Incremental decoding with the KV cache against recomputation: the same tokens, token for token, and the
 * same logits as a full forward over the whole sequence (the full forward is itself checked against the naive
 * reference in model.test.ts / io.test.ts), for GQA, qwen2 biases, a mistral sliding window shorter than the
 * sequence, llama3 RoPE scaling, and LoRA on every linear module.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { KvCache } from "../../src/engine/kv-cache.js";
import { attachLora } from "../../src/engine/lora.js";
import { causalBatch, type LlamaModel } from "../../src/engine/model.js";
import { Rng } from "../../src/engine/rng.js";
import { generate, generateBatch } from "../../src/engine/score.js";
import { randomModel, tinyConfig } from "./helpers.js";
import { referenceLogits } from "./reference.js";

const VOCAB = 37;

/** A random model with a LoRA on all seven linear modules whose B is non-zero (so it changes the outputs). */
function modelWithLora(overrides: Record<string, unknown>, seed: number, dtype: "f32" | "f64"): LlamaModel {
  const m = randomModel(
    tinyConfig({ vocab_size: VOCAB, max_position_embeddings: 128, ...overrides }),
    seed,
    dtype,
  );
  attachLora(m, { r: 3, alpha: 6, targets: ["all-linear"] }, new Rng(seed + 100));
  const rng = new Rng(seed + 200);
  for (const lin of m.linears())
    for (let i = 0; i < lin.lora!.b.length; i++) lin.lora!.b[i] = 0.3 * rng.normal();
  return m;
}

/** Logits of every position of one sequence by the full (cache-free) forward. */
function fullLogits(m: LlamaModel, tokens: number[]): Float64Array[] {
  const V = m.config.vocabSize;
  const rows: Float64Array[] = [];
  m.forwardLogits(causalBatch([tokens]), (_r0, n, l) => {
    for (let r = 0; r < n; r++) rows.push(Float64Array.from(l.subarray(r * V, (r + 1) * V)));
  });
  return rows;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const prompts = [[1, 5, 2, 9], [3], [7, 7, 0, 12, 30, 4, 4, 18, 2], [11, 6]];

const variants: [string, Record<string, unknown>][] = [
  ["llama, GQA 4/2", {}],
  ["llama, tied head, MHA", { tie_word_embeddings: true, num_key_value_heads: 4 }],
  ["qwen2 (q/k/v biases)", { model_type: "qwen2" }],
  ["mistral, sliding window 3 (shorter than the sequences)", { model_type: "mistral", sliding_window: 3 }],
  [
    "llama3 rope scaling, attention and MLP biases",
    {
      attention_bias: true,
      mlp_bias: true,
      rope_scaling: {
        rope_type: "llama3",
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8,
      },
    },
  ],
];

describe("KV-cache decoding", () => {
  for (const [label, overrides] of variants) {
    test(`${label}: batched cached generation = recomputation, token for token (f64 and f32, LoRA)`, () => {
      for (const dtype of ["f64", "f32"] as const) {
        const m = modelWithLora(overrides, 3, dtype);
        const want = prompts.map((p) => generate(m, p, 12, { stopTokens: [], kvCache: false }));
        assert.deepEqual(generateBatch(m, prompts, 12, { stopTokens: [] }), want, dtype);
        // one at a time through the cache as well
        prompts.forEach((p, i) => assert.deepEqual(generate(m, p, 12, { stopTokens: [] }), want[i], dtype));
        // the outputs are not degenerate: the sequences differ and do not repeat one token
        assert.ok(new Set(want.map((w) => w.join(","))).size > 1);
        assert.ok(want.some((w) => new Set(w).size > 2));
      }
    });

    test(`${label}: prefill and decode logits equal the full forward's (f64 ≤ 1e-9, f32 ≤ 1e-4)`, () => {
      for (const [dtype, tol] of [
        ["f64", 1e-9],
        ["f32", 1e-4],
      ] as const) {
        const m = modelWithLora(overrides, 4, dtype);
        const V = m.config.vocabSize;
        const cont = [
          [4, 8, 15, 16, 23],
          [42 % VOCAB, 1, 2, 3, 5],
          [8, 13, 21, 34, 0],
          [9, 9, 9, 1, 2],
        ];
        const cache = new KvCache(m.config, prompts.length, 20, m.ctor);
        const first = m.prefill(prompts, cache);
        const expect = prompts.map((p, i) => fullLogits(m, [...p, ...cont[i]]));
        prompts.forEach((p, i) => {
          const got = first.subarray(i * V, (i + 1) * V);
          assert.ok(maxDiff(got, expect[i][p.length - 1]) <= tol, `${dtype} prefill row ${i}`);
        });
        for (let s = 0; s < 5; s++) {
          // sequences 1 and 3 only: the others must stay untouched and keep their own positions
          const seqs = s % 2 === 0 ? Int32Array.of(0, 1, 2, 3) : Int32Array.of(1, 3);
          const logits = m.decode(
            cache,
            seqs,
            Int32Array.from(seqs, (q) => cont[q][cache.lengths[q] - prompts[q].length]),
          );
          seqs.forEach((q, k) => {
            const pos = cache.lengths[q] - 1;
            assert.ok(
              maxDiff(logits.subarray(k * V, (k + 1) * V), expect[q][pos]) <= tol,
              `${dtype} step ${s} seq ${q}`,
            );
          });
        }
      }
    });
  }

  test("decode logits match the naive reference forward (plain llama, no LoRA, f64)", () => {
    const m = randomModel(tinyConfig({ vocab_size: VOCAB }), 7, "f64");
    const params = new Map(m.namedParameters().map((p) => [p.name, p.data]));
    const seq = [2, 7, 1, 8, 2, 8];
    const cache = new KvCache(m.config, 1, seq.length, m.ctor);
    const rows: ArrayLike<number>[] = [m.prefill([seq.slice(0, 2)], cache)];
    for (let t = 2; t < seq.length; t++) rows.push(m.decode(cache, Int32Array.of(0), Int32Array.of(seq[t])));
    const ref = referenceLogits(m.config, params, seq);
    rows.forEach((r, i) => assert.ok(maxDiff(r, ref[i + 1]) < 1e-9, `position ${i + 1}`));
  });

  test("stop tokens end each sequence on its own; zero new tokens; bad requests are refused", () => {
    const m = modelWithLora({}, 5, "f64");
    const free = prompts.map((p) => generate(m, p, 8, { stopTokens: [], kvCache: false }));
    const stopAt = free[2][3];
    const want = free.map((w) => {
      const at = w.indexOf(stopAt);
      return at < 0 ? w : w.slice(0, at + 1);
    });
    assert.deepEqual(generateBatch(m, prompts, 8, { stopTokens: [stopAt] }), want);
    assert.deepEqual(generateBatch(m, prompts, 0), [[], [], [], []]);
    assert.throws(() => generateBatch(m, [[1], []], 3), /at least one token/);
    const cache = new KvCache(m.config, 1, 2, m.ctor);
    m.prefill([[1, 2]], cache);
    assert.throws(() => m.decode(cache, Int32Array.of(0), Int32Array.of(3)), /is full/);
    assert.throws(() => m.decode(cache, Int32Array.of(0), Int32Array.of(VOCAB)), /outside the vocabulary/);
  });
});
