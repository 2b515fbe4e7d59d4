/**
 * The operators on hand-derived cases: trim's tie rule (lower flat index wins), chunked application with a
 * shared threshold, and the elect / disjoint-mean definitions.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { applyThreshold, disjointMean, electSign, trim, trimThreshold } from "../../src/merge/operators.js";

const f = (xs: number[]) => Float32Array.from(xs);

test("trim keeps floor(ρN) largest magnitudes; equal magnitudes: lower index first", () => {
  // magnitudes 3, 2, 2, 2, 1, 0 — keeping 3 entries must take the 3 and the first two 2s
  assert.deepEqual(trim(f([2, -3, -2, 2, 1, 0]), 0.5), f([2, -3, -2, 0, 0, 0]));
  assert.deepEqual(trim(f([2, -3, -2, 2, 1, 0]), 1), f([2, -3, -2, 2, 1, 0]));
  assert.deepEqual(trim(f([2, -3, -2, 2, 1, 0]), 0.1), f([0, 0, 0, 0, 0, 0])); // floor(0.6) = 0
  assert.deepEqual(trim(f([5, 5, 5, 5]), 0.75), f([5, 5, 5, 0]));
});

test("a threshold applied chunk by chunk keeps exactly what one pass keeps", () => {
  const x = f([1, -4, 4, 2, -4, 3, 4, 0, -1, 4]);
  const whole = applyThreshold(x, trimThreshold(x, 0.4)); // k = 4: the 4s, in index order, then stop
  assert.deepEqual(whole, f([0, -4, 4, 0, -4, 0, 4, 0, 0, 0]));
  const t = trimThreshold(x, 0.4);
  const parts = [x.subarray(0, 3), x.subarray(3, 7), x.subarray(7)].map((c) => applyThreshold(c, t));
  assert.deepEqual(Float32Array.from(parts.flatMap((p) => [...p])), whole);
});

test("elect and disjoint mean as defined: zeros never agree, γ = +1 on a zero sum", () => {
  const xs = [f([1, -2, 0, 3]), f([-3, -1, 0, -3]), f([1, 0, 0, 1])];
  const total = electSign(xs, "total");
  assert.deepEqual([...total], [-1, -1, 1, 1]); // sums −1, −3, 0, 1
  assert.deepEqual([...electSign(xs, "frequency")], [1, -1, 1, 1]); // sign sums 1, −2, 0, 1
  const w = [1, 2, 0.5];
  // entry 0 (γ=−1): only −3 agrees → 2·(−3)/1; entry 1 (γ=−1): −2 and −1 → (1·−2 + 2·−1)/2;
  // entry 2: nothing agrees → 0; entry 3 (γ=+1): 3 and 1 → (3 + 0.5)/2
  assert.deepEqual(disjointMean(xs, w, total), f([-6, -2, 0, 1.75]));
});
