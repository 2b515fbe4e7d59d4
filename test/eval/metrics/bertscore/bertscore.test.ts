import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { bertScore } from "../../../../src/eval/metrics/bertscore/bertscore.js";
import type { EmbeddingProvider, TokenEmbeddings } from "../../../../src/eval/metrics/bertscore/provider.js";
import { MerglotError } from "../../../../src/errors.js";

const close = (a: number, b: number, eps = 1e-9): void => assert.ok(Math.abs(a - b) <= eps, `${a} ≉ ${b}`);

// A context-free toy provider: each word gets a fixed one-hot-ish vector; [CLS]/[SEP] wrap every text.
const VEC: Record<string, number[]> = {
  "[CLS]": [0, 0, 0, 1],
  "[SEP]": [0, 0, 1, 1],
  a: [1, 0, 0, 0],
  b: [0, 1, 0, 0],
  c: [1, 1, 0, 0],
};
const toy: EmbeddingProvider & { calls: number } = {
  name: "toy",
  calls: 0,
  async embed(texts: string[]): Promise<TokenEmbeddings[]> {
    this.calls++;
    return texts.map((t) => {
      const tokens = ["[CLS]", ...t.split(/\s+/).filter(Boolean), "[SEP]"];
      return {
        tokens,
        vectors: tokens.map((w) => Float32Array.from(VEC[w])),
        special: tokens.map((w) => w.startsWith("[")),
      };
    });
  },
};

describe("BERTScore over a corpus", () => {
  test("identical texts score 1; means and per-item values", async () => {
    // Item 2: candidate "a" vs reference "c": cos(a, c) = 1/√2 both ways → P = R = F = 1/√2.
    const r = await bertScore(["a b", "a"], ["a b", "c"], toy, { bootstrap: { samples: 50 } });
    close(r.perItem[0].f, 1);
    close(r.perItem[1].precision, Math.SQRT1_2, 1e-6);
    close(r.f.value, (1 + Math.SQRT1_2) / 2, 1e-6);
    assert.equal(r.count, 2);
    assert.equal(r.rescaled, false);
  });

  test("several references: P, R and F are each the best over the references", async () => {
    // vs "a b": P = 1, R = (1 + 0)/2... "b" best match in "a": cos(b, a) = 0, cos(b, [CLS]) = 0,
    // cos(b, [SEP]) = 0 → R = 1/2, F = 2/3.  vs "c": P = 1/√2, R = 1/√2.
    const r = await bertScore(["a"], [["a b", "c"]], toy);
    close(r.perItem[0].precision, 1, 1e-6);
    close(r.perItem[0].recall, Math.SQRT1_2, 1e-6);
    close(r.perItem[0].f, Math.SQRT1_2, 1e-6);
  });

  test("rescaling with explicit baseline values", async () => {
    const r = await bertScore(["a"], ["c"], toy, { baseline: { precision: 0.5, recall: 0.5, f: 0.5 } });
    close(r.perItem[0].f, (Math.SQRT1_2 - 0.5) / 0.5, 1e-6);
    assert.equal(r.rescaled, true);
  });

  test("each distinct text is embedded once, in one call", async () => {
    toy.calls = 0;
    await bertScore(["a", "a", "b"], ["a", "b", "b"], toy);
    assert.equal(toy.calls, 1);
  });

  test("rejects mismatched lengths, empty input and a provider that drops texts", async () => {
    await assert.rejects(
      bertScore(["a"], ["a", "b"], toy),
      (e: unknown) => e instanceof MerglotError && /1 predictions but 2 references/.test(e.message),
    );
    await assert.rejects(bertScore([], [], toy), /empty/);
    await assert.rejects(bertScore(["a"], [[]], toy), /item 1 has no reference/);
    const lossy: EmbeddingProvider = { name: "lossy", embed: async () => [] };
    await assert.rejects(bertScore(["a"], ["b"], lossy), /returned 0 embeddings for 2 texts/);
  });
});
