import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bertScore } from "../../../../src/eval/metrics/bertscore/bertscore.js";
import { bertScorePair } from "../../../../src/eval/metrics/bertscore/greedy.js";
import type { EmbeddingProvider, TokenEmbeddings } from "../../../../src/eval/metrics/bertscore/provider.js";
import { loadTransformersProvider } from "../../../../src/eval/metrics/bertscore/transformers-provider.js";
import { MerglotError } from "../../../../src/errors.js";

// The fixture made by scripts/make-tiny-encoder.mjs (compiled tests live under dist/, the fixture does not).
const FIXTURE = fileURLToPath(new URL("../../../../../test/fixtures/tiny-encoder", import.meta.url));
interface Weights {
  hidden: number;
  vocab: string[];
  word: number[][];
  type: number[][];
  w1: number[][];
  w2: number[][];
}
const W = JSON.parse(readFileSync(join(FIXTURE, "weights.json"), "utf8")) as Weights;

/** The fixture's network written out by hand from its definition: tanh(e·W1 + mean(e)·W2). */
function referenceForward(tokens: string[]): number[][] {
  const H = W.hidden;
  const e = tokens.map((t) => W.word[W.vocab.indexOf(t)].map((x, k) => x + W.type[0][k]));
  const ctx = Array.from({ length: H }, (_, k) => e.reduce((s, v) => s + v[k], 0) / e.length);
  const matvec = (v: number[], m: number[][]): number[] =>
    Array.from({ length: H }, (_, j) => v.reduce((s, x, i) => s + x * m[i][j], 0));
  const c = matvec(ctx, W.w2);
  return e.map((v) => matvec(v, W.w1).map((x, j) => Math.tanh(x + c[j])));
}

describe("transformers.js embedding provider (offline, tiny encoder fixture)", () => {
  let provider: EmbeddingProvider;
  before(async () => {
    provider = await loadTransformersProvider({ modelDir: FIXTURE, batchSize: 2 });
  });

  test("tokens, special flags and vectors match the network computed by hand", async () => {
    const texts = ["The cat sat.", "  playing dogs ", "", "我爱北京 xyz"];
    const out = await provider.embed(texts);
    assert.deepEqual(out[0].tokens, ["[CLS]", "the", "cat", "sat", ".", "[SEP]"]);
    assert.deepEqual(out[1].tokens, ["[CLS]", "play", "##ing", "dog", "##s", "[SEP]"]);
    assert.deepEqual(out[2].tokens, ["[CLS]", "[SEP]"]); // bert_score: an empty sentence is just the markers
    assert.deepEqual(out[3].tokens, ["[CLS]", "我", "爱", "北", "京", "[UNK]", "[SEP]"]);
    assert.deepEqual(out[0].special, [true, false, false, false, false, true]);
    for (const e of out) {
      const expected = referenceForward(e.tokens);
      e.vectors.forEach((v, t) =>
        v.forEach((x, k) => assert.ok(Math.abs(x - expected[t][k]) < 1e-5, `${e.tokens[t]}[${k}]`)),
      );
    }
  });

  test("batching and padding do not change the vectors", async () => {
    const [alone] = await provider.embed(["the dog"]);
    const [, padded] = await provider.embed(["a very good movie and a bad film", "the dog"]);
    alone.vectors.forEach((v, t) =>
      v.forEach((x, k) => assert.ok(Math.abs(x - padded.vectors[t][k]) < 1e-6)),
    );
  });

  test("end to end: identical texts score 1, others the greedy score of the hand-computed vectors", async () => {
    const r = await bertScore(
      ["the cat sat on the mat", "the dog is playing"],
      ["the cat sat on the mat", "a cat sat"],
      provider,
      {
        idf: false,
      },
    );
    assert.ok(Math.abs(r.perItem[0].f - 1) < 1e-6);
    assert.deepEqual((await provider.embed(["the dog is playing"]))[0].tokens.slice(4, 6), ["play", "##ing"]);
    const asEmb = (tokens: string[]): TokenEmbeddings => ({
      tokens,
      vectors: referenceForward(tokens).map((v) => Float32Array.from(v)),
      special: tokens.map((t) => t === "[CLS]" || t === "[SEP]"),
    });
    const expected = bertScorePair(
      asEmb(["[CLS]", "the", "dog", "is", "play", "##ing", "[SEP]"]),
      asEmb(["[CLS]", "a", "cat", "sat", "[SEP]"]),
    );
    assert.ok(Math.abs(r.perItem[1].f - expected.f) < 1e-5);
    assert.ok(r.perItem[1].f < 1);
  });

  test("never downloads: remote loading is off and a missing file is a clear error", async () => {
    const tf = await import("@huggingface/transformers");
    assert.equal(tf.env.allowRemoteModels, false);
    const dir = mkdtempSync(join(tmpdir(), "merglot-encoder-"));
    try {
      cpSync(FIXTURE, dir, { recursive: true });
      rmSync(join(dir, "onnx", "model.onnx"));
      await assert.rejects(
        loadTransformersProvider({ modelDir: dir }),
        (e: unknown) => e instanceof MerglotError && e.message.includes("model.onnx: missing"),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("an unknown output name is reported with the outputs that exist", async () => {
    const p = await loadTransformersProvider({ modelDir: FIXTURE, outputName: "hidden_states.9" });
    await assert.rejects(
      p.embed(["the cat"]),
      /no output named "hidden_states.9" \(outputs: last_hidden_state\)/,
    );
  });
});
