import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { classificationReport } from "../../../src/eval/metrics/classification.js";
import { pairedComparison, pairedMeanComparison } from "../../../src/eval/metrics/paired.js";
import { MerglotError } from "../../../src/errors.js";

describe("paired significance tests", () => {
  test("identical systems: δ = 0, p = 1, not significant", () => {
    for (const method of ["bootstrap", "randomization"] as const) {
      const r = pairedMeanComparison([1, 0, 1, 1], [1, 0, 1, 1], { method, samples: 500 });
      assert.equal(r.delta, 0);
      assert.equal(r.pValue, 1);
      assert.equal(r.significant, false);
    }
  });

  test("A right everywhere B is wrong: the smallest p the sample count allows", () => {
    const a = new Array(40).fill(1);
    const b = new Array(40).fill(0);
    for (const method of ["bootstrap", "randomization"] as const) {
      const r = pairedMeanComparison(a, b, { method, samples: 999 });
      assert.equal(r.delta, 1);
      assert.equal(r.pValue, 1 / 1000);
      assert.equal(r.significant, true);
      assert.deepEqual([r.low, r.high], [1, 1]);
    }
  });

  test("randomisation approaches the exact permutation p-value", () => {
    // Per-item differences (1, 1, 1): of the 2³ sign flips, only all-plus and all-minus reach |mean| ≥ 1,
    // so the exact two-sided p-value is 2/8 = 0.25.
    const r = pairedMeanComparison([1, 1, 1], [0, 0, 0], {
      method: "randomization",
      samples: 20000,
      seed: 5,
    });
    assert.ok(Math.abs(r.pValue - 0.25) < 0.01, `p = ${r.pValue}`);
    assert.equal(r.significant, false);
  });

  test("a 0.5-point difference on a small noisy test set is not significant", () => {
    // 200 items; B differs from A on 20 items, A winning 11 and losing 9: δ = 0.01.
    const a = Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? 1 : 0));
    const b = [...a];
    for (let i = 0; i < 11; i++) b[2 * i] = 0; // A right, B wrong
    for (let i = 0; i < 9; i++) b[2 * i + 101] = 1; // A wrong, B right
    const r = pairedMeanComparison(a, b, { samples: 4000, seed: 11 });
    assert.ok(Math.abs(r.delta - 0.01) < 1e-12);
    assert.equal(r.significant, false);
    assert.ok(r.low < 0 && r.high > 0);
    // Sign test intuition: 11 vs 9 discordant pairs is nowhere near significant.
    assert.ok(r.pValue > 0.5, `p = ${r.pValue}`);
  });

  test("seeded: the same inputs and seed give the same result", () => {
    const a = [0.2, 0.5, 0.9, 0.4, 0.7];
    const b = [0.1, 0.6, 0.8, 0.3, 0.7];
    assert.deepEqual(
      pairedMeanComparison(a, b, { seed: 3, samples: 300 }),
      pairedMeanComparison(a, b, { seed: 3, samples: 300 }),
    );
  });

  test("works for corpus metrics such as macro F1", () => {
    const refs = ["p", "p", "n", "n", "u", "u"];
    const outA = ["p", "p", "n", "n", "u", "u"].map((p, i) => ({ p, r: refs[i] }));
    const outB = ["p", "n", "n", "p", "u", "n"].map((p, i) => ({ p, r: refs[i] }));
    const macroF1 = (o: readonly { p: string; r: string }[]): number =>
      classificationReport(
        o.map((x) => x.p),
        o.map((x) => x.r),
        { labels: ["n", "p", "u"] },
      ).macro.f;
    const r = pairedComparison(outA, outB, macroF1, { samples: 300, method: "randomization" });
    assert.equal(r.a, 1);
    // B: n TP1 FP2 FN1 → 2/5; p TP1 FP1 FN1 → 1/2; u TP1 FP0 FN1 → 2/3.
    assert.ok(Math.abs(r.b - (2 / 5 + 1 / 2 + 2 / 3) / 3) < 1e-12);
  });

  test("rejects mismatched lengths, empty input and bad options", () => {
    assert.throws(
      () => pairedMeanComparison([1], [1, 0]),
      (e: unknown) => e instanceof MerglotError && /1 predictions but 2 references/.test(e.message),
    );
    assert.throws(() => pairedMeanComparison([], []), /empty/);
    assert.throws(() => pairedMeanComparison([1], [0], { method: "sign" as "bootstrap" }), /method must be/);
  });
});
