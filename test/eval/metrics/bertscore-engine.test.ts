/**
 * BERTScore through the engine provider: vectors are the model's own hidden states, special tokens are flagged,
 * and the score is the greedy-matching definition recomputed here from those vectors.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { causalBatch } from "../../../src/engine/model.js";
import { loadTokenizer } from "../../../src/engine/tokenizer.js";
import { engineEmbeddingProvider } from "../../../src/eval/metrics/bertscore/engine-provider.js";
import { bertScore } from "../../../src/eval/metrics/bertscore/bertscore.js";
import { randomModel, tinyConfig } from "../../engine/helpers.js";
import { writeWordTokenizer } from "../../engine/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "merglot-bert-engine-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const words = ["the", "cat", "sat", "on", "mat", "dog", "ran"];
writeWordTokenizer(dir, words);
const tok = loadTokenizer(dir);
const model = randomModel(tinyConfig({ vocab_size: 3 + words.length }), 5, "f32");

function cos(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return d / Math.sqrt(na * nb);
}

test("vectors are the engine's hidden states of the chosen layer; <s> is special", async () => {
  const p = engineEmbeddingProvider(model, tok, { layer: 1 });
  const [e] = await p.embed(["the cat sat"]);
  assert.deepEqual(e!.tokens, ["<s>", "the", "cat", "sat"]);
  assert.deepEqual(e!.special, [true, false, false, false]);
  const ids = tok.encode("the cat sat", true);
  const h = model.hiddenStates(causalBatch([ids]), 1);
  const H = model.config.hiddenSize;
  e!.vectors.forEach((v, i) => assert.deepEqual(v, h.subarray(i * H, (i + 1) * H)));
  assert.throws(() => engineEmbeddingProvider(model, tok, { layer: 3 }), /layers 0\.\.2/);
});

test("BERTScore over engine embeddings equals greedy cosine matching computed by hand", async () => {
  const p = engineEmbeddingProvider(model, tok);
  const [c, r] = await p.embed(["the dog ran", "the cat sat on the mat"]);
  // non-special tokens only for the weights; every token (incl. <s>) is a candidate match, as in bert_score
  const rec = r!.vectors.map((v) => Math.max(...c!.vectors.map((u) => cos(u, v))));
  const prec = c!.vectors.map((u) => Math.max(...r!.vectors.map((v) => cos(u, v))));
  const avg = (xs: number[], sp: boolean[]) => {
    const kept = xs.filter((_, i) => !sp[i]);
    return kept.reduce((s, x) => s + x, 0) / kept.length;
  };
  const P = avg(prec, c!.special);
  const R = avg(rec, r!.special);
  const res = await bertScore(["the dog ran"], ["the cat sat on the mat"], p, { idf: false });
  const g = res.perItem[0]!;
  assert.ok(Math.abs(g.precision - P) < 1e-6, `${g.precision} vs ${P}`);
  assert.ok(Math.abs(g.recall - R) < 1e-6, `${g.recall} vs ${R}`);
  assert.ok(Math.abs(g.f - (2 * P * R) / (P + R)) < 1e-6);
});
