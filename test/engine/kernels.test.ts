import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { gemm, gemmStats } from "../../src/engine/kernels.js";
import { ortStatus } from "../../src/tensor/ort.js";
import { Rng } from "../../src/engine/rng.js";

/** Naive C = op(A)·op(B), float64. */
function naive(
  tA: boolean,
  tB: boolean,
  M: number,
  N: number,
  K: number,
  A: ArrayLike<number>,
  B: ArrayLike<number>,
): Float64Array {
  const C = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++)
        s += (tA ? A[k * M + i] : A[i * K + k]) * (tB ? B[j * K + k] : B[k * N + j]);
      C[i * N + j] = s;
    }
  return C;
}

function rand(n: number, rng: Rng, ctor: Float32ArrayConstructor | Float64ArrayConstructor) {
  const a = new ctor(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

const variants: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

describe("gemm", () => {
  test("JS kernels, float64, odd shapes, overwrite and accumulate", () => {
    const rng = new Rng(1);
    for (const [tA, tB] of variants) {
      for (const [M, N, K] of [
        [1, 1, 1],
        [3, 5, 7],
        [6, 9, 4],
      ]) {
        const A = rand(M * K, rng, Float64Array);
        const B = rand(K * N, rng, Float64Array);
        const want = naive(tA, tB, M, N, K, A, B);
        const C = new Float64Array(M * N).fill(7);
        gemm(tA, tB, M, N, K, A, B, C, false);
        for (let i = 0; i < C.length; i++)
          assert.ok(Math.abs(C[i] - want[i]) < 1e-12, `${tA}${tB} ${M}x${N}x${K}`);
        gemm(tA, tB, M, N, K, A, B, C, true);
        for (let i = 0; i < C.length; i++) assert.ok(Math.abs(C[i] - 2 * want[i]) < 1e-12);
      }
    }
  });

  test("large float32 products take the native path when it is available, into sub-array outputs too", () => {
    const rng = new Rng(2);
    const [M, N, K] = [70, 90, 80];
    const before = gemmStats.nativeMacs;
    for (const [tA, tB] of variants) {
      const A = rand(M * K, rng, Float32Array);
      const B = rand(K * N, rng, Float32Array);
      const want = naive(tA, tB, M, N, K, A, B);
      const big = new Float32Array(M * N + 16).fill(3);
      const C = big.subarray(8, 8 + M * N);
      gemm(tA, tB, M, N, K, A, B, C, false);
      for (let i = 0; i < C.length; i++) assert.ok(Math.abs(C[i] - want[i]) < 1e-4 * (1 + Math.abs(want[i])));
      gemm(tA, tB, M, N, K, A, B, C, true);
      for (let i = 0; i < C.length; i++)
        assert.ok(Math.abs(C[i] - 2 * want[i]) < 2e-4 * (1 + Math.abs(want[i])));
      assert.equal(big[7], 3, "bytes before the view are untouched");
      assert.equal(big[8 + M * N], 3, "bytes after the view are untouched");
    }
    if (ortStatus().available) assert.ok(gemmStats.nativeMacs > before, "native path used");
  });
});
