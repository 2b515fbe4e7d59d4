import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ortAvailable, ortBatchedMatMul, ortGemm, ortStatus, ortSwitchedOff } from "../../src/tensor/ort.js";
import { lcg } from "./reference.js";

/** Naive alpha·op(A)·op(B) + beta·C in float64, row-major. */
function naive(
  tA: boolean,
  tB: boolean,
  m: number,
  n: number,
  k: number,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  alpha = 1,
  beta = 0,
  c?: ArrayLike<number>,
): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++)
        s += (tA ? a[p * m + i] : a[i * k + p]) * (tB ? b[j * k + p] : b[p * n + j]);
      y[i * n + j] = alpha * s + (c === undefined ? 0 : beta * c[i * n + j]);
    }
  return y;
}

function random(n: number, seed: number): Float64Array {
  const r = lcg(seed);
  return Float64Array.from({ length: n }, () => r() * 2 - 1);
}

function maxDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
  return d;
}

describe("tensor/ort", () => {
  test("the addon loads and the status reflects the engine's switch", () => {
    assert.equal(ortAvailable(), true, `onnxruntime unavailable: ${ortStatus("linalg").reason}`);
    const s = ortStatus("engine");
    assert.equal(s.available, !ortSwitchedOff("engine"));
    assert.ok(s.threads >= 1);
  });

  for (const [tA, tB] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    test(`float64 Gemm transA=${tA} transB=${tB} with alpha, beta, C writes into the given array`, () => {
      const [m, n, k] = [37, 29, 41];
      const a = random(m * k, 1);
      const b = random(k * n, 2);
      const c = random(m * n, 3);
      const out = new Float64Array(m * n + 5).fill(7); // longer than m·n: the tail stays untouched
      const ok = ortGemm("linalg", { m, n, k, a, b, transA: tA, transB: tB, alpha: 0.5, beta: -2, c, out });
      assert.equal(ok, true);
      assert.ok(maxDiff(out.subarray(0, m * n), naive(tA, tB, m, n, k, a, b, 0.5, -2, c)) < 1e-12);
      assert.deepEqual([...out.subarray(m * n)], [7, 7, 7, 7, 7]);
    });
  }

  test("float32 Gemm into a subarray view", () => {
    const [m, n, k] = [64, 48, 80];
    const a = Float32Array.from(random(m * k, 4));
    const b = Float32Array.from(random(n * k, 5));
    const backing = new Float32Array(10 + m * n);
    const out = backing.subarray(10);
    assert.equal(
      ortGemm("engine", { m, n, k, a, b, transA: false, transB: true, alpha: 1, beta: 0, c: undefined, out }),
      true,
    );
    assert.ok(maxDiff(out, naive(false, true, m, n, k, a, b)) < 1e-4);
    assert.ok(backing.subarray(0, 10).every((x) => x === 0));
  });

  test("batched float32 MatMul with transposed operands", () => {
    const [batch, m, n, k] = [3, 9, 11, 13];
    const a = Float32Array.from(random(batch * m * k, 6));
    const b = Float32Array.from(random(batch * n * k, 7));
    const out = new Float32Array(batch * m * n);
    assert.equal(ortBatchedMatMul("engine", true, true, batch, m, n, k, a, b, out), true);
    for (let s = 0; s < batch; s++) {
      const want = naive(
        true,
        true,
        m,
        n,
        k,
        a.subarray(s * m * k, (s + 1) * m * k),
        b.subarray(s * n * k, (s + 1) * n * k),
      );
      assert.ok(maxDiff(out.subarray(s * m * n, (s + 1) * m * n), want) < 1e-4);
    }
  });
});
