import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mat } from "../../src/tensor/matrix.js";
import { qr, qrFactor } from "../../src/tensor/qr.js";
import {
  at,
  maxAbsDiff,
  naiveMatmul,
  naiveTranspose,
  orthonormalityError,
  randomMatrix,
} from "./reference.js";

function checkQr(a: ReturnType<typeof randomMatrix>, label: string): void {
  const { q, r } = qr(a);
  const k = Math.min(a.rows, a.cols);
  assert.deepEqual([q.rows, q.cols, r.rows, r.cols], [a.rows, k, k, a.cols], label);
  assert.ok(orthonormalityError(q) < 1e-13 * Math.max(1, a.rows / 10), `${label}: QᵀQ ≠ I`);
  for (let i = 0; i < k; i++)
    for (let j = 0; j < Math.min(i, a.cols); j++) assert.equal(at(r, i, j), 0, `${label}: R(${i},${j})`);
  const scale = Math.max(1, Math.sqrt(a.rows));
  assert.ok(maxAbsDiff(naiveMatmul(q, r).data, a.data) < 1e-14 * scale * a.cols + 1e-15, `${label}: QR ≠ A`);
}

describe("qr (Householder, thin)", () => {
  test("tall, square and wide matrices, including sizes that use the blocked and recursive paths", () => {
    for (const [m, n] of [
      [1, 1],
      [4, 1],
      [1, 4],
      [5, 3],
      [3, 5],
      [9, 9],
      [40, 17], // recursive panel (> 8 columns)
      [150, 70], // two outer panels of 64
      [90, 130],
    ]) {
      checkQr(randomMatrix(m, n, m * 31 + n), `${m}×${n}`);
    }
  });

  test("rank-deficient input: zero and repeated columns still give orthonormal Q and QR = A", () => {
    const a = randomMatrix(30, 8, 5);
    for (let i = 0; i < 30; i++) {
      a.data[i * 8 + 2] = 0; // a zero column
      a.data[i * 8 + 5] = a.data[i * 8 + 1]; // a repeated column
      a.data[i * 8 + 7] = 2 * a.data[i * 8 + 0] - a.data[i * 8 + 3]; // a linear combination
    }
    checkQr(a, "rank 5 of 8");
    const { r } = qr(a);
    // The diagonal of R is ±‖component of column j orthogonal to the previous ones‖: zero for column 2.
    assert.ok(Math.abs(at(r, 2, 2)) < 1e-14);
    checkQr(mat(6, 4), "zero matrix");
    assert.equal(qr(mat(6, 4)).q.rows, 6);
  });

  test("|R(j,j)| is the norm of column j's component orthogonal to the earlier columns (Gram–Schmidt)", () => {
    const a = randomMatrix(12, 4, 9);
    const { r } = qr(a);
    // Classical Gram–Schmidt by definition, independent of the code under test.
    const cols: number[][] = [];
    for (let j = 0; j < 4; j++) {
      const v = Array.from({ length: 12 }, (_, i) => at(a, i, j));
      for (const u of cols) {
        const d = u.reduce((s, x, i) => s + x * v[i], 0);
        for (let i = 0; i < 12; i++) v[i] -= d * u[i];
      }
      const nrm = Math.hypot(...v);
      cols.push(v.map((x) => x / nrm));
      assert.ok(Math.abs(Math.abs(at(r, j, j)) - nrm) < 1e-13, `column ${j}`);
    }
  });

  test("qOut receives Q on both paths", () => {
    for (const a of [randomMatrix(120, 20, 1), randomMatrix(20, 12, 2)]) {
      const k = Math.min(a.rows, a.cols);
      const buf = new Float64Array(a.rows * k);
      const { q } = qr(a, { qOut: buf });
      assert.equal(q.data, buf);
      assert.ok(maxAbsDiff(buf, qr(a).q.data) === 0);
    }
  });

  test("factored form: applyQ and applyQt agree with the explicit Q", () => {
    const a = randomMatrix(100, 70, 21);
    const f = qrFactor(a);
    const q = f.q();
    const x = randomMatrix(70, 5, 22);
    assert.ok(maxAbsDiff(f.applyQ(x).data, naiveMatmul(q, x).data) < 1e-13);
    const y = randomMatrix(100, 6, 23);
    assert.ok(maxAbsDiff(f.applyQt(y).data, naiveMatmul(naiveTranspose(q), y).data) < 1e-13);
    assert.ok(maxAbsDiff(f.r().data, qr(a).r.data) < 1e-13);
  });
});
