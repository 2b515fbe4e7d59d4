import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { MerglotError } from "../../src/errors.js";
import { mat, type Mat } from "../../src/tensor/matrix.js";
import { bidiagonalSvd, svd } from "../../src/tensor/svd.js";
import { wasmInstance, wasmLoadError } from "../../src/tensor/wasm.js";
import {
  at,
  composeSvd,
  maxAbsDiff,
  naiveMatmul,
  orthonormalityError,
  randomMatrix,
  randomOrthonormal,
} from "./reference.js";

/** A = Q1·diag(σ)·Q2ᵀ with random orthonormal Q1 (m × k), Q2 (n × k). */
function constructed(m: number, n: number, sigma: number[], seed: number): { a: Mat; q1: Mat; q2: Mat } {
  const k = sigma.length;
  const q1 = randomOrthonormal(m, k, seed);
  const q2 = randomOrthonormal(n, k, seed + 1000);
  return { a: composeSvd(q1, sigma, q2), q1, q2 };
}

function checkSvd(a: Mat, label: string, tol = 1e-13): ReturnType<typeof svd> {
  const r = svd(a);
  const k = Math.min(a.rows, a.cols);
  assert.deepEqual([r.u.rows, r.u.cols, r.s.length, r.v.rows, r.v.cols], [a.rows, k, k, a.cols, k], label);
  const smax = Math.max(1e-300, r.s[0] ?? 0);
  for (let i = 0; i < k; i++) {
    assert.ok(r.s[i] >= 0, `${label}: s[${i}] < 0`);
    if (i > 0) assert.ok(r.s[i] <= r.s[i - 1], `${label}: s not descending at ${i}`);
  }
  assert.ok(
    orthonormalityError(r.u) < tol * Math.max(1, k / 8),
    `${label}: UᵀU ≠ I (${orthonormalityError(r.u)})`,
  );
  assert.ok(
    orthonormalityError(r.v) < tol * Math.max(1, k / 8),
    `${label}: VᵀV ≠ I (${orthonormalityError(r.v)})`,
  );
  const err = maxAbsDiff(composeSvd(r.u, r.s, r.v).data, a.data);
  assert.ok(err <= tol * smax * Math.max(1, k / 8), `${label}: U·diag(s)·Vᵀ ≠ A (${err})`);
  return r;
}

describe("svd", () => {
  test("recovers the singular values of constructed matrices to ~1e-12 (tall, wide, square, QR-first)", () => {
    const cases: [number, number][] = [
      [30, 20],
      [20, 30],
      [52, 52], // Golub–Kahan form of size 104: several divide-and-conquer merges
      [72, 30], // m > n: QR first
      [30, 72],
    ];
    for (const [m, n] of cases) {
      const k = Math.min(m, n);
      const sigma = Array.from({ length: k }, (_, i) => 10 * Math.exp(-i / 6));
      const { a, q1 } = constructed(m, n, sigma, m + n);
      const r = checkSvd(a, `${m}×${n}`);
      assert.ok(maxAbsDiff(r.s, sigma) < 1e-12 * sigma[0], `${m}×${n}: σ`);
      // Distinct σ: each left singular vector is the constructed one up to sign.
      for (let j = 0; j < k; j++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += at(r.u, i, j) * at(q1, i, j);
        assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-9, `${m}×${n}: u_${j}`);
      }
    }
  });

  test("repeated singular values", () => {
    const sigma = [3, 3, 3, 2, 2, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.1];
    const { a } = constructed(40, 12, sigma, 7);
    const r = checkSvd(a, "repeated");
    assert.ok(maxAbsDiff(r.s, sigma) < 1e-13 * 3);
    const sq = constructed(30, 30, [...sigma, ...sigma, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 8);
    checkSvd(sq.a, "repeated square");
  });

  test("rank-deficient and zero matrices (exact zeros among the singular values)", () => {
    const sigma = [5, 4, 3, 2, 1];
    const { a } = constructed(50, 30, sigma, 3);
    const r = checkSvd(a, "rank 5");
    assert.ok(maxAbsDiff(r.s.subarray(0, 5), sigma) < 1e-13 * 5);
    for (let i = 5; i < 30; i++) assert.ok(r.s[i] < 1e-13 * 5, `s[${i}] = ${r.s[i]}`);
    const sq = constructed(40, 40, [2, 2, 1, 1e-3], 4);
    checkSvd(sq.a, "rank 4 of 40");
    const z = checkSvd(mat(7, 5), "zero");
    assert.deepEqual(Array.from(z.s), [0, 0, 0, 0, 0]);
    checkSvd(mat(3, 9), "zero wide");
  });

  test("tiny shapes: 1×1, row and column vectors, empty", () => {
    const r = svd(mat(1, 1, Float64Array.of(-3)));
    assert.ok(Math.abs(r.s[0] - 3) < 1e-15 * 3);
    assert.equal(at(r.u, 0, 0), 1); // sign convention
    assert.ok(Math.abs(at(r.v, 0, 0) + 1) < 1e-15);
    const row = randomMatrix(1, 6, 1);
    const rr = checkSvd(row, "1×6");
    assert.ok(Math.abs(rr.s[0] - Math.hypot(...row.data)) < 1e-15);
    checkSvd(randomMatrix(6, 1, 2), "6×1");
    assert.equal(svd(mat(0, 4)).s.length, 0);
    assert.equal(svd(mat(4, 0)).u.rows, 4);
  });

  test("extreme scales do not overflow or underflow", () => {
    for (const scale of [1e200, 1e-200]) {
      const sigma = [3, 2, 1].map((x) => x * scale);
      const { a } = constructed(8, 5, [...sigma, 0.5 * scale, 0.25 * scale], 12);
      const r = svd(a);
      assert.ok(Math.abs(r.s[0] / sigma[0] - 1) < 1e-13, `scale ${scale}`);
      assert.ok(orthonormalityError(r.u) < 1e-13);
    }
  });

  test("sign convention: the largest-magnitude entry of each left singular vector is positive", () => {
    const r = svd(randomMatrix(12, 9, 5));
    for (let j = 0; j < 9; j++) {
      let best = 0;
      for (let i = 0; i < 12; i++) if (Math.abs(at(r.u, i, j)) > Math.abs(best)) best = at(r.u, i, j);
      assert.ok(best > 0);
    }
  });

  test("non-finite input is refused", () => {
    const a = randomMatrix(3, 3, 1);
    a.data[4] = Number.NaN;
    assert.throws(
      () => svd(a),
      (e: unknown) => e instanceof MerglotError && /entry \(1, 1\) is NaN/.test(e.message),
    );
  });

  test("U·diag(s)·Vᵀ against an independent product for a random matrix", () => {
    const a = randomMatrix(33, 27, 77);
    const r = checkSvd(a, "random");
    // AᵀA·v_j = s_j²·v_j by definition (Aᵀ(A v) computed with the naive product).
    const av = naiveMatmul(a, r.v);
    for (let j = 0; j < 27; j++) {
      for (let i = 0; i < 33; i++) assert.ok(Math.abs(at(av, i, j) - r.s[j] * at(r.u, i, j)) < 1e-13);
    }
  });
});

describe("bidiagonal SVD kernels", () => {
  function bidiag(d: number[], e: number[]): Mat {
    const n = d.length;
    const b = mat(n, n);
    for (let i = 0; i < n; i++) {
      b.data[i * n + i] = d[i];
      if (i < n - 1) b.data[i * n + i + 1] = e[i];
    }
    return b;
  }
  function check(d: number[], e: number[], method: "dc" | "qr", label: string): void {
    const n = d.length;
    const r = bidiagonalSvd(Float64Array.from(d), Float64Array.from(e), method);
    assert.ok(r, `${label}: ${method} declined`);
    const u = mat(n, n);
    const v = mat(n, n);
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        u.data[i * n + j] = r.ut[j * n + i];
        v.data[i * n + j] = r.vt[j * n + i];
      }
    }
    const b = bidiag(d, e);
    const bmax = Math.max(...d.map(Math.abs), ...e.map(Math.abs));
    assert.ok(orthonormalityError(u) < 1e-13 * Math.max(1, n / 8), `${label} ${method}: U`);
    assert.ok(orthonormalityError(v) < 1e-13 * Math.max(1, n / 8), `${label} ${method}: V`);
    assert.ok(maxAbsDiff(composeSvd(u, r.s, v).data, b.data) < 1e-14 * bmax * n, `${label} ${method}: B`);
  }

  test("divide and conquer and QR iteration both decompose random and graded bidiagonals", () => {
    const r = randomMatrix(1, 200, 3).data;
    for (const n of [1, 2, 7, 30, 80]) {
      const d = Array.from({ length: n }, (_, i) => 1 + r[i]);
      const e = Array.from({ length: n - 1 }, (_, i) => r[100 + i]);
      for (const method of ["dc", "qr"] as const) check(d, e, method, `random n=${n}`);
    }
    const graded = Array.from({ length: 20 }, (_, i) => 2 ** -i);
    for (const method of ["dc", "qr"] as const) check(graded, graded.slice(1), method, "graded");
  });

  test("QR iteration handles zero diagonal entries (zero chasing) where divide and conquer declines", () => {
    const d = [1, 0, 2, 0, 0, 3, 0];
    const e = [0.5, 0.25, 0.5, 1, 0.5, 0.25];
    check(d, e, "qr", "zeros");
    assert.equal(bidiagonalSvd(Float64Array.from(d), Float64Array.from(e), "dc"), undefined);
  });
});

describe("svd's WebAssembly bidiagonalization", () => {
  // The kernel (wasm/bidiag.ts) must give the JavaScript loop's bits; the JavaScript run is a child process with
  // MERGLOT_WASM=js (the switch is read once per process). Shapes: square, tall (QR first), wide (transpose),
  // odd widths (the kernel's two-at-a-time loops end on one column), a zero column (τ_L = 0) and repeated
  // rows (rank-deficient: trailing reflectors τ_R = 0).
  const script = (m: number, n: number, kind: string) => `
    import { svd } from ${JSON.stringify(new URL("../../src/tensor/svd.js", import.meta.url).href)};
    import { mat } from ${JSON.stringify(new URL("../../src/tensor/matrix.js", import.meta.url).href)};
    let s = 4242;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296) - 0.5;
    const a = mat(${m}, ${n});
    for (let i = 0; i < ${m}; i++) for (let j = 0; j < ${n}; j++) a.data[i * ${n} + j] = rnd();
    if (${JSON.stringify(kind)} === "zero-column") for (let i = 0; i < ${m}; i++) a.data[i * ${n} + 3] = 0;
    if (${JSON.stringify(kind)} === "repeated-rows")
      for (let i = ${m} >> 1; i < ${m}; i++) for (let j = 0; j < ${n}; j++) a.data[i * ${n} + j] = a.data[(i % 5) * ${n} + j];
    const r = svd(a);
    const hex = (x) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString("hex");
    process.stdout.write(hex(r.s) + ":" + hex(r.u.data) + ":" + hex(r.v.data));`;
  const run = (m: number, n: number, kind: string, env: Record<string, string>) => {
    const res = spawnSync(process.execPath, ["--input-type=module", "-e", script(m, n, kind)], {
      env: { ...process.env, ...env },
      encoding: "utf8",
      maxBuffer: 1 << 28,
    });
    assert.equal(res.status, 0, res.stderr);
    return res.stdout;
  };
  test("the kernel loads (else the comparisons below would compare JavaScript with itself)", () => {
    assert.notEqual(wasmInstance("bidiag"), null, wasmLoadError("bidiag") ?? "");
  });
  for (const [m, n, kind] of [
    [33, 33, "random"],
    [130, 97, "random"],
    [64, 257, "random"],
    [120, 120, "zero-column"],
    [90, 70, "repeated-rows"],
  ] as const) {
    test(`${m} × ${n} ${kind}: singular values and vectors bit-identical to the JavaScript loop`, () => {
      const wasm = run(m, n, kind, { MERGLOT_WASM: "" });
      const js = run(m, n, kind, { MERGLOT_WASM: "js" });
      assert.ok(wasm.length > 0);
      assert.equal(wasm, js);
    });
  }
});
