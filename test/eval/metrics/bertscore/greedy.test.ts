import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  bertScorePair,
  idfFromReferences,
  uniformWeight,
} from "../../../../src/eval/metrics/bertscore/greedy.js";
import {
  publishedBaseline,
  rescale,
  defaultModelFor,
} from "../../../../src/eval/metrics/bertscore/baselines.js";
import type { TokenEmbeddings } from "../../../../src/eval/metrics/bertscore/provider.js";
import { MerglotError } from "../../../../src/errors.js";

const close = (a: number, b: number, eps = 1e-12): void => assert.ok(Math.abs(a - b) <= eps, `${a} ≉ ${b}`);
const emb = (tokens: string[], vectors: number[][], special?: boolean[]): TokenEmbeddings => ({
  tokens,
  vectors: vectors.map((v) => Float32Array.from(v)),
  special: special ?? tokens.map((t) => t === "[CLS]" || t === "[SEP]"),
});

// Hand-built embeddings (vectors are normalised by the metric; cosines worked out below).
//   reference: [CLS] (0,0,1)   the (1,0,0)   cat (1,1,0)   [SEP] (0,1,1)
//   candidate: [CLS] (0,0,1)   the (1,0,0)   zz (0,0.6,0.8)   [SEP] (0,1,1)
// Candidate "the": best cosine 1 (ref "the").
// Candidate "zz":  vs the 0, vs cat 0.6/√2, vs [CLS] 0.8, vs [SEP] 1.4/√2 ≈ 0.99 → best is the reference's
//                  [SEP]: special tokens get no weight but remain match targets, as in bert_score.
// Reference "the": best 1.  Reference "cat": vs the 1/√2, vs zz 0.6/√2, vs [CLS] 0, vs [SEP] 1/2 → 1/√2.
const ref = emb(
  ["[CLS]", "the", "cat", "[SEP]"],
  [
    [0, 0, 1],
    [1, 0, 0],
    [1, 1, 0],
    [0, 1, 1],
  ],
);
const cand = emb(
  ["[CLS]", "the", "zz", "[SEP]"],
  [
    [0, 0, 1],
    [1, 0, 0],
    [0, 0.6, 0.8],
    [0, 1, 1],
  ],
);
const other = emb(
  ["[CLS]", "dog", "[SEP]"],
  [
    [0, 0, 1],
    [0, 1, 0],
    [0, 1, 1],
  ],
);
const S = Math.SQRT2;

describe("BERTScore greedy matching", () => {
  test("without idf: P and R are plain means over the non-special tokens", () => {
    const s = bertScorePair(cand, ref, uniformWeight);
    const P = (1 + 1.4 / S) / 2;
    const R = (1 + 1 / S) / 2;
    close(s.precision, P, 1e-6);
    close(s.recall, R, 1e-6);
    close(s.f, (2 * P * R) / (P + R), 1e-6);
  });

  test("with idf from the references: log((N+1)/(df+1)), unseen tokens log(N+1)", () => {
    const idf = idfFromReferences([ref, other]); // N = 2
    close(idf("the"), Math.log(3 / 2));
    close(idf("[CLS]"), 0); // in every reference
    close(idf("zz"), Math.log(3));
    const s = bertScorePair(cand, ref, idf);
    const a = Math.log(1.5);
    const b = Math.log(3);
    const P = (a * 1 + b * (1.4 / S)) / (a + b);
    const R = (a * 1 + a * (1 / S)) / (2 * a);
    close(s.precision, P, 1e-6);
    close(s.recall, R, 1e-6);
    close(s.f, (2 * P * R) / (P + R), 1e-6);
  });

  test("a token repeated in one reference counts once for df", () => {
    const idf = idfFromReferences([emb(["a", "a"], [[1], [1]], [false, false]), emb(["b"], [[1]], [false])]);
    close(idf("a"), Math.log(3 / 2));
  });

  test("identical texts score 1; a text of only special tokens scores 0", () => {
    const s = bertScorePair(ref, ref);
    close(s.precision, 1, 1e-6);
    close(s.f, 1, 1e-6);
    const empty = emb(
      ["[CLS]", "[SEP]"],
      [
        [0, 0, 1],
        [0, 1, 1],
      ],
    );
    assert.deepEqual(bertScorePair(empty, ref), { precision: 0, recall: 0, f: 0 });
    assert.deepEqual(bertScorePair(ref, empty), { precision: 0, recall: 0, f: 0 });
  });

  test("baseline rescaling (x − b) / (1 − b) with the published roberta-large L17 values", () => {
    const b = publishedBaseline("roberta-large", "en");
    assert.equal(b.layer, 17);
    close(b.f, 0.83122575);
    const raw = bertScorePair(cand, ref);
    const r = rescale(raw, b);
    close(r.precision, (raw.precision - 0.83150584) / (1 - 0.83150584));
    close(r.recall, (raw.recall - 0.8314941) / (1 - 0.8314941));
    close(r.f, (raw.f - 0.83122575) / (1 - 0.83122575));
    close(publishedBaseline("bert-base-multilingual-cased", "de", 9).f, 0.6147353);
    assert.deepEqual(defaultModelFor("fr"), { model: "bert-base-multilingual-cased", layer: 9 });
    assert.throws(
      () => publishedBaseline("bert-base-multilingual-cased", "ja"),
      (e: unknown) => e instanceof MerglotError && /no published rescaling baseline/.test(e.message),
    );
  });

  test("rejects inconsistent embeddings", () => {
    const bad = { tokens: ["a"], vectors: [], special: [false] } as TokenEmbeddings;
    assert.throws(() => bertScorePair(bad, ref), /1 tokens, 0 vectors/);
    const wide = emb(["x"], [[1, 0, 0, 0]], [false]);
    assert.throws(() => bertScorePair(wide, ref), /different lengths/);
  });
});
