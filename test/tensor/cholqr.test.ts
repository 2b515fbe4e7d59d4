import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { cholQr2, cholesky, invertLower } from "../../src/tensor/cholqr.js";
import { mat } from "../../src/tensor/matrix.js";
import { qr, qrFactor } from "../../src/tensor/qr.js";
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

describe("Cholesky and triangular inverse", () => {
  test("L·Lᵀ = G and L·L⁻¹ = I, on sizes that use the recursive (blocked) path", () => {
    for (const n of [1, 5, 48, 49, 130]) {
      const x = randomMatrix(n + 20, n, n);
      const g = naiveMatmul(naiveTranspose(x), x);
      const l = cholesky(g.data, n);
      assert.ok(l, `n=${n}`);
      const L = mat(n, n, l);
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(at(L, i, j), 0);
      assert.ok(maxAbsDiff(naiveMatmul(L, naiveTranspose(L)).data, g.data) < 1e-13 * n, `n=${n}: LLᵀ`);
      const inv = mat(n, n, invertLower(l, n));
      const eye = naiveMatmul(L, inv);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) assert.ok(Math.abs(at(eye, i, j) - (i === j ? 1 : 0)) < 1e-12);
    }
  });

  test("an indefinite matrix has no Cholesky factor", () => {
    assert.equal(cholesky(Float64Array.of(1, 2, 2, 1), 2), undefined);
  });
});

describe("CholeskyQR2 inside qr()", () => {
  test("tall well-conditioned: same factors as Householder (R with a non-negative diagonal)", () => {
    const a = randomMatrix(400, 40, 3);
    const c = cholQr2(a);
    assert.ok(c, "declined a well-conditioned matrix");
    assert.ok(orthonormalityError(c.q) < 1e-14);
    assert.ok(maxAbsDiff(naiveMatmul(c.q, c.r).data, a.data) < 1e-14);
    const h = qrFactor(a);
    assert.ok(maxAbsDiff(c.r.data, h.r().data) < 1e-13);
    assert.ok(maxAbsDiff(c.q.data, h.q().data) < 1e-13);
    const viaQr = qr(a);
    assert.ok(maxAbsDiff(viaQr.r.data, h.r().data) < 1e-13);
    for (let j = 0; j < 40; j++) assert.ok(at(viaQr.r, j, j) > 0);
  });

  test("ill-conditioned or rank-deficient tall input is declined and qr() still factors it exactly", () => {
    const sigma = Array.from({ length: 20 }, (_, i) => 10 ** (-i / 2)); // κ = 10^9.5
    const ill = composeSvd(randomOrthonormal(200, 20, 4), sigma, randomOrthonormal(20, 20, 5));
    assert.equal(cholQr2(ill), undefined);
    const deficient = randomMatrix(200, 20, 6);
    for (let i = 0; i < 200; i++) deficient.data[i * 20 + 19] = deficient.data[i * 20 + 3];
    assert.equal(cholQr2(deficient), undefined);
    for (const a of [ill, deficient]) {
      const { q, r } = qr(a);
      assert.ok(orthonormalityError(q) < 1e-13);
      assert.ok(maxAbsDiff(naiveMatmul(q, r).data, a.data) < 1e-14);
    }
  });
});
