import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  configureGemm,
  gemmBackendInfo,
  gemmF32,
  gemmF64,
  gram,
  matmul,
  matmulF32Fast,
} from "../../src/tensor/gemm.js";
import { fromRows, mat, transpose } from "../../src/tensor/matrix.js";
import { at, maxAbs, maxAbsDiff, naiveMatmul, naiveTranspose, randomMatrix } from "./reference.js";

const forcedJs = process.env.MERGLOT_GEMM === "js";

after(() => configureGemm({ backend: "auto", nativeMinVolume: 32 * 32 * 32 }));

test("the native kernel loads (onnxruntime-node is a devDependency, so the repo always tests it)", () => {
  const info = gemmBackendInfo();
  if (forcedJs) assert.equal(info.backend, "js");
  else assert.equal(info.backend, "ort", `native GEMM unavailable: ${info.reason}`);
});

// Every product test runs on both kernels; `nativeMinVolume: 0` sends even tiny products to ORT.
const backends: { name: string; setup: () => void }[] = [
  { name: "js", setup: () => configureGemm({ backend: "js" }) },
  ...(forcedJs ? [] : [{ name: "ort", setup: () => configureGemm({ backend: "ort", nativeMinVolume: 0 }) }]),
];

for (const { name, setup } of backends) {
  describe(`matmul on the ${name} kernel`, () => {
    test("matches the triple loop for all transposes and odd sizes", () => {
      setup();
      const shapes = [
        [1, 1, 1],
        [1, 7, 1],
        [3, 5, 2],
        [7, 3, 9],
        [13, 17, 11],
        [33, 5, 65],
        [66, 70, 35],
      ];
      let seed = 1;
      for (const [m, k, n] of shapes) {
        const a = randomMatrix(m, k, seed++);
        const b = randomMatrix(k, n, seed++);
        const want = naiveMatmul(a, b);
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const A = transA ? naiveTranspose(a) : a;
            const B = transB ? naiveTranspose(b) : b;
            const got = matmul(A, B, { transA, transB });
            assert.equal(got.rows, m);
            assert.equal(got.cols, n);
            assert.ok(
              maxAbsDiff(got.data, want.data) < 1e-13 * k + 1e-15,
              `${m}×${k}×${n} tA=${transA} tB=${transB}`,
            );
          }
        }
      }
    });

    test("k = 0 gives zeros and empty shapes give empty results", () => {
      setup();
      const z = matmul(mat(3, 0), mat(0, 4));
      assert.deepEqual([z.rows, z.cols], [3, 4]);
      assert.equal(maxAbs(z.data), 0);
      assert.equal(matmul(mat(0, 5), mat(5, 2)).data.length, 0);
      assert.equal(matmul(mat(2, 5), mat(5, 0)).data.length, 0);
    });

    test("a hand-computed 2×3 · 3×2 product", () => {
      setup();
      const a = fromRows([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      const b = fromRows([
        [7, 8],
        [9, 10],
        [11, 12],
      ]);
      assert.deepEqual(Array.from(matmul(a, b).data), [58, 64, 139, 154]);
    });

    test("alpha, beta, C and an in-place destination", () => {
      setup();
      const a = randomMatrix(40, 9, 3);
      const b = randomMatrix(9, 30, 4);
      const c = randomMatrix(40, 30, 5);
      const ab = naiveMatmul(a, b);
      for (const [alpha, beta] of [
        [1, 1],
        [-1, 1],
        [0.1, -0.3], // not exact in float32: exercises the float64 scalar path
        [2, 0],
      ]) {
        const want = ab.data.map((x, i) => alpha * x + beta * c.data[i]);
        const got = gemmF64(40, 30, 9, a.data, b.data, { alpha, beta, c: c.data });
        assert.ok(maxAbsDiff(got, want) < 1e-13, `alpha=${alpha} beta=${beta}`);
        const inPlace = c.data.slice();
        const ret = gemmF64(40, 30, 9, a.data, b.data, { alpha, beta, c: inPlace, out: inPlace });
        assert.equal(ret, inPlace);
        assert.ok(maxAbsDiff(inPlace, want) < 1e-13, `in place alpha=${alpha} beta=${beta}`);
      }
    });

    test("outputs larger than one native chunk (row chunks and column blocks)", () => {
      setup();
      // Chunks hold 1 MB: 600 × 260 f64 = 1.25 MB (row chunks); 40 × 4500 = 1.44 MB with n > 4096
      // (column blocks).
      for (const [m, k, n] of [
        [600, 13, 260],
        [40, 7, 4500],
      ]) {
        const a = randomMatrix(m, k, m);
        const b = randomMatrix(k, n, n);
        const c = randomMatrix(m, n, k);
        const want = naiveMatmul(a, b).data.map((x, i) => x - c.data[i]);
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const A = transA ? naiveTranspose(a) : a;
            const B = transB ? naiveTranspose(b) : b;
            const out = c.data.slice();
            gemmF64(m, n, k, A.data, B.data, { transA, transB, beta: -1, c: out, out });
            assert.ok(maxAbsDiff(out, want) < 1e-12, `${m}×${k}×${n} tA=${transA} tB=${transB}`);
          }
        }
      }
    });

    test("float32 products agree with float64 to float32 accuracy", () => {
      setup();
      const a = randomMatrix(37, 50, 7);
      const b = randomMatrix(50, 29, 8);
      const a32 = Float32Array.from(a.data);
      const b32 = Float32Array.from(b.data);
      // Reference on the float32-rounded inputs, so only the product's own rounding is measured.
      const want = naiveMatmul(mat(37, 50, Float64Array.from(a32)), mat(50, 29, Float64Array.from(b32)));
      // Rounding bound k·u·Σ|a_ip·b_pj| ≤ k·u·k·max|a|·max|b| with k = 50, u = 2⁻²⁴, |entries| ≤ 0.5.
      const tol = 50 * 2 ** -24 * 50 * 0.25;
      const got = matmulF32Fast(a32, 37, 50, b32, 29);
      assert.ok(got instanceof Float32Array);
      assert.ok(maxAbsDiff(got, want.data) < tol);
      const bt32 = Float32Array.from(transpose(b).data);
      assert.ok(maxAbsDiff(matmulF32Fast(a32, 37, 50, bt32, 29, true), want.data) < tol);
      const c32 = new Float32Array(37 * 29).fill(1);
      const withC = gemmF32(37, 29, 50, a32, b32, { alpha: -1, c: c32 });
      assert.ok(
        maxAbsDiff(
          withC,
          want.data.map((x) => 1 - x),
        ) < 1e-4,
      );
    });

    test("gram is AᵀA and exactly symmetric", () => {
      setup();
      for (const [m, n] of [
        [1, 1],
        [5, 3],
        [3, 5],
        [200, 150], // several native panels
        [7, 0],
      ]) {
        const a = randomMatrix(m, n, m + n);
        const g = gram(a);
        const want = naiveMatmul(naiveTranspose(a), a);
        assert.deepEqual([g.rows, g.cols], [n, n]);
        assert.ok(maxAbsDiff(g.data, want.data) < 1e-13 * m + 1e-15, `${m}×${n}`);
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) assert.equal(at(g, i, j), at(g, j, i));
      }
    });
  });
}

describe("argument checks", () => {
  test("mismatched inner dimensions name both shapes", () => {
    assert.throws(() => matmul(mat(2, 3), mat(4, 2)), /op\(A\) is 2 × 3, op\(B\) is 4 × 2/);
  });
  test("wrong buffer sizes and overlapping destinations are refused", () => {
    const a = new Float64Array(6);
    assert.throws(() => gemmF64(2, 2, 3, a, new Float64Array(5)), /B has 5 elements/);
    assert.throws(
      () => gemmF64(2, 3, 3, a.subarray(0, 6), new Float64Array(9), { out: a }),
      /must not overlap/,
    );
  });
});

test("products are deterministic: same inputs, same bits", () => {
  configureGemm({ backend: "auto" });
  const a = randomMatrix(120, 80, 11);
  const b = randomMatrix(80, 90, 12);
  const x = matmul(a, b).data;
  const y = matmul(a, b).data;
  assert.deepEqual(Buffer.from(x.buffer), Buffer.from(y.buffer));
});
