import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { bootstrapMean, bootstrapStatistic, percentile } from "../../../src/eval/metrics/bootstrap.js";
import { Xoshiro128 } from "../../../src/eval/metrics/rng.js";
import { MerglotError } from "../../../src/errors.js";

describe("seeded random stream", () => {
  test("same seed, same stream; different seeds differ", () => {
    const a = new Xoshiro128(7);
    const b = new Xoshiro128(7);
    const c = new Xoshiro128(8);
    const xs = Array.from({ length: 5 }, () => a.nextUint32());
    assert.deepEqual(
      xs,
      Array.from({ length: 5 }, () => b.nextUint32()),
    );
    assert.notDeepEqual(
      xs,
      Array.from({ length: 5 }, () => c.nextUint32()),
    );
  });

  test("nextBelow covers [0, n) evenly (χ² on 60 000 draws, 6 bins)", () => {
    const r = new Xoshiro128(0);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[r.nextBelow(6)]++;
    const chi2 = counts.reduce((s, c) => s + (c - 10000) ** 2 / 10000, 0);
    assert.ok(chi2 < 20.5, `χ² = ${chi2}`); // 99.9% quantile of χ²(5) is 20.5
  });
});

describe("bootstrap confidence intervals", () => {
  test("percentile interpolates linearly like numpy", () => {
    assert.equal(percentile([1, 2, 3, 4], 25), 1.75);
    assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
    assert.equal(percentile([1, 2, 3, 4], 100), 4);
    assert.equal(percentile([5], 2.5), 5);
  });

  test("the value is the full-corpus mean; the interval brackets it and is reproducible", () => {
    const xs = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1];
    const a = bootstrapMean(xs, { samples: 2000, seed: 1 });
    assert.equal(a.value, 0.7);
    assert.ok(a.low < 0.7 && a.high > 0.7);
    // Normal approximation: sd of the mean = sqrt(0.21 / 10) ≈ 0.145, so the 95% interval is about ±0.28.
    assert.ok(a.low > 0.3 && a.high <= 1, `[${a.low}, ${a.high}]`);
    assert.deepEqual(bootstrapMean(xs, { samples: 2000, seed: 1 }), a);
    assert.notDeepEqual(bootstrapMean(xs, { samples: 2000, seed: 2 }), a);
  });

  test("constant scores give a zero-width interval", () => {
    const r = bootstrapMean([0.25, 0.25, 0.25], { samples: 100 });
    assert.deepEqual([r.value, r.low, r.high], [0.25, 0.25, 0.25]);
  });

  test("any statistic: the median of resampled data", () => {
    const data = [1, 2, 3, 100];
    const r = bootstrapStatistic(
      data.length,
      (idx) => percentile(Float64Array.from(idx, (i) => data[i]).sort(), 50),
      { samples: 300, seed: 4 },
    );
    assert.equal(r.value, 2.5);
    assert.ok(r.low >= 1 && r.high <= 100);
  });

  test("rejects empty input and bad options", () => {
    assert.throws(
      () => bootstrapMean([]),
      (e: unknown) => e instanceof MerglotError && /empty/.test(e.message),
    );
    assert.throws(() => bootstrapMean([1], { samples: 0 }), /samples must be a positive integer/);
    assert.throws(() => bootstrapMean([1], { confidence: 1 }), /confidence must lie in \(0, 1\)/);
    assert.throws(() => bootstrapMean([1], { seed: 0.5 }), /seed must be an integer/);
  });
});
