import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareToCombined, type ScoredSample } from "../../src/study/significance.js";

const labels = ["positive", "neutral", "negative"];
const gold = Array.from({ length: 30 }, (_, i) => labels[i % 3]!);
const sys = (pred: (g: string, i: number) => string | null): ScoredSample[] =>
  gold.map((g, i) => ({ id: `x${i}`, gold: g, prediction: pred(g, i) }));

describe("paired bootstrap against the combined baseline", () => {
  it("identical outputs: δ = 0 and p = 1 (every resample ties)", () => {
    const a = sys((g, i) => (i % 2 ? g : "neutral"));
    const r = compareToCombined(a, a, "macro_f1", { samples: 200 })!;
    assert.equal(r.delta, 0);
    assert.equal(r.p, 1);
    assert.equal(r.significant, false);
  });

  it("all right against all wrong: δ = 1 for macro F1 and accuracy, p = 1/(R+1), significant", () => {
    const right = sys((g) => g);
    const wrong = sys((g) => labels[(labels.indexOf(g) + 1) % 3]!);
    for (const metric of ["macro_f1", "acc"]) {
      const r = compareToCombined(right, wrong, metric, { samples: 199 })!;
      assert.equal(r.delta, 1, metric);
      assert.equal(r.p, 1 / 200, metric);
      assert.equal(r.significant, true, metric);
    }
  });

  it("pairs by id, counts an unparsable prediction as wrong, and needs per-example values for other metrics", () => {
    const right = sys((g) => g);
    const noneParsed = sys(() => null);
    const shuffled = [...right].reverse();
    const r = compareToCombined(shuffled, noneParsed, "macro_f1", { samples: 99 })!;
    assert.equal(r.delta, 1);
    assert.equal(compareToCombined(right, right, "rougeL"), null);
    const withValues = right.map((s, i) => ({ ...s, rougeL: i < 15 ? 1 : 0 }));
    assert.equal(compareToCombined(withValues, withValues, "rougeL")!.delta, 0);
  });
});
