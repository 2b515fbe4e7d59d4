import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mat, type Mat } from "../../src/tensor/matrix.js";
import { f32Operator, randomizedSvd, type LinearOperator } from "../../src/tensor/rsvd.js";
import {
  at,
  composeSvd,
  maxAbsDiff,
  naiveMatmul,
  naiveTranspose,
  orthonormalityError,
  randomMatrix,
  randomOrthonormal,
} from "./reference.js";

function constructed(m: number, n: number, sigma: number[], seed: number): Mat {
  return composeSvd(
    randomOrthonormal(m, sigma.length, seed),
    sigma,
    randomOrthonormal(n, sigma.length, seed + 1),
  );
}

/** Spectral norm by power iteration on MᵀM (an independent estimate; 300 steps from a fixed start). */
function spectralNorm(m: Mat): number {
  let x = Float64Array.from({ length: m.cols }, (_, i) => 1 + ((i * 7919) % 13) / 13);
  let est = 0;
  for (let it = 0; it < 300; it++) {
    const y = new Float64Array(m.rows);
    for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) y[i] += at(m, i, j) * x[j];
    const z = new Float64Array(m.cols);
    for (let i = 0; i < m.rows; i++) for (let j = 0; j < m.cols; j++) z[j] += at(m, i, j) * y[i];
    const nz = Math.hypot(...z);
    if (nz === 0) return 0;
    est = Math.sqrt(nz / Math.hypot(...x));
    x = z.map((v) => v / nz);
  }
  return est;
}

describe("randomizedSvd", () => {
  test("exact rank ≤ k: recovers σ and A to rounding", () => {
    const sigma = [9, 7, 4, 2, 1, 0.5];
    const a = constructed(120, 80, sigma, 1);
    for (const powerIters of [0, 2]) {
      const r = randomizedSvd(a, 6, { seed: 3, oversample: 4, powerIters });
      assert.deepEqual([r.u.rows, r.u.cols, r.v.rows, r.v.cols, r.s.length], [120, 6, 80, 6, 6]);
      assert.ok(maxAbsDiff(r.s, sigma) < 1e-12 * 9, `q=${powerIters}: σ`);
      assert.ok(maxAbsDiff(composeSvd(r.u, r.s, r.v).data, a.data) < 1e-12 * 9, `q=${powerIters}: A`);
      assert.ok(orthonormalityError(r.u) < 1e-13 && orthonormalityError(r.v) < 1e-13);
    }
  });

  test("decaying spectrum: the rank-k error is close to the optimal σ_{k+1}", () => {
    // σ_i = 0.8^i on a 150 × 100 matrix, k = 10: the optimum (Eckart–Young) is σ_11 = 0.8^10 ≈ 0.107.
    // HMT's bound for oversampling 10 and two power iterations is ≲ (1 + 9·√(20·100))^(1/5)·σ_11 ≈ 3.2·σ_11;
    // measured here: spectral error = 1.00000·σ_11 and σ_1..σ_10 to ~1e-9 relative (without power
    // iterations: up to 1.003·σ_11 and 2 %). Required: ≤ 1.001·σ_11 and σ to 1e-6.
    const sigma = Array.from({ length: 100 }, (_, i) => 0.8 ** i);
    const a = constructed(150, 100, sigma, 5);
    const r = randomizedSvd(a, 10, { seed: 11 });
    const approx = composeSvd(r.u, r.s, r.v);
    const residual = mat(
      150,
      100,
      a.data.map((x, i) => x - approx.data[i]),
    );
    const err = spectralNorm(residual);
    assert.ok(err >= sigma[10] * (1 - 1e-6), `error ${err} below the optimum ${sigma[10]}?`);
    assert.ok(err <= 1.001 * sigma[10], `error ${err} vs σ_11 = ${sigma[10]}`);
    for (let i = 0; i < 10; i++) assert.ok(Math.abs(r.s[i] / sigma[i] - 1) < 1e-6, `σ_${i + 1}`);
  });

  test("an operator (a sum of low-rank terms, never formed) gives the same factors as the dense matrix", () => {
    const b1 = randomMatrix(90, 4, 1);
    const a1 = randomMatrix(4, 70, 2);
    const b2 = randomMatrix(90, 3, 3);
    const a2 = randomMatrix(3, 70, 4);
    const p2 = naiveMatmul(b2, a2).data;
    const dense = mat(
      90,
      70,
      naiveMatmul(b1, a1).data.map((x, i) => x + p2[i]),
    );
    const op: LinearOperator = {
      rows: 90,
      cols: 70,
      mul: (x) => {
        const p = naiveMatmul(b1, naiveMatmul(a1, x));
        const q = naiveMatmul(b2, naiveMatmul(a2, x));
        return mat(
          p.rows,
          p.cols,
          p.data.map((v, i) => v + q.data[i]),
        );
      },
      mulT: (x) => {
        const p = naiveMatmul(naiveTranspose(a1), naiveMatmul(naiveTranspose(b1), x));
        const q = naiveMatmul(naiveTranspose(a2), naiveMatmul(naiveTranspose(b2), x));
        return mat(
          p.rows,
          p.cols,
          p.data.map((v, i) => v + q.data[i]),
        );
      },
    };
    const ro = randomizedSvd(op, 7, { seed: 9 });
    const rd = randomizedSvd(dense, 7, { seed: 9 });
    assert.ok(maxAbsDiff(ro.s, rd.s) < 1e-12);
    assert.ok(maxAbsDiff(composeSvd(ro.u, ro.s, ro.v).data, dense.data) < 1e-12);
  });

  test("float32 operator: factors accurate to float32 rounding", () => {
    const sigma = [5, 3, 2, 1];
    const a = constructed(60, 50, sigma, 21);
    const r = randomizedSvd(f32Operator(Float32Array.from(a.data), 60, 50), 4, { seed: 1 });
    assert.ok(maxAbsDiff(r.s, sigma) < 1e-5);
    assert.ok(maxAbsDiff(composeSvd(r.u, r.s, r.v).data, a.data) < 1e-5);
  });

  test("reproducible from the seed; k is clamped to min(rows, cols)", () => {
    const a = randomMatrix(40, 30, 8);
    const x = randomizedSvd(a, 5, { seed: 123n });
    const y = randomizedSvd(a, 5, { seed: 123n });
    assert.deepEqual(Buffer.from(x.u.data.buffer), Buffer.from(y.u.data.buffer));
    assert.deepEqual(Array.from(x.s), Array.from(y.s));
    const z = randomizedSvd(a, 5, { seed: 124n });
    assert.notDeepEqual(Array.from(z.s), Array.from(x.s));
    const full = randomizedSvd(a, 100, { seed: 1 });
    assert.equal(full.s.length, 30);
    assert.ok(maxAbsDiff(composeSvd(full.u, full.s, full.v).data, a.data) < 1e-12);
  });
});
