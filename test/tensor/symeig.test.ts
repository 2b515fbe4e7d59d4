import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mat, type Mat } from "../../src/tensor/matrix.js";
import { symEig } from "../../src/tensor/symeig.js";
import { tridiagonalEig, tridiagonalQr } from "../../src/tensor/tridiag.js";
import {
  at,
  composeSvd,
  maxAbsDiff,
  orthonormalityError,
  randomMatrix,
  randomOrthonormal,
} from "./reference.js";

/** A = Q·diag(λ)·Qᵀ with a random orthogonal Q. */
function constructed(lambda: number[], seed: number): Mat {
  const q = randomOrthonormal(lambda.length, lambda.length, seed);
  return composeSvd(q, lambda, q);
}

function checkEig(a: Mat, label: string, tol = 1e-13): ReturnType<typeof symEig> {
  const n = a.rows;
  const r = symEig(a);
  let amax = 0;
  for (const x of a.data) amax = Math.max(amax, Math.abs(x));
  for (let i = 1; i < n; i++) assert.ok(r.values[i] <= r.values[i - 1], `${label}: not descending`);
  assert.ok(orthonormalityError(r.vectors) < tol * Math.max(1, n / 8), `${label}: VᵀV ≠ I`);
  // A·v_j = λ_j·v_j by definition.
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let t = 0; t < n; t++) s += at(a, i, t) * at(r.vectors, t, j);
      assert.ok(
        Math.abs(s - r.values[j] * at(r.vectors, i, j)) < tol * Math.max(1, amax) * n,
        `${label}: residual (${i}, ${j})`,
      );
    }
  }
  return r;
}

describe("symEig", () => {
  test("recovers eigenvalues of constructed matrices (mixed signs, sizes across the divide-and-conquer leaves)", () => {
    for (const n of [1, 2, 5, 26, 60]) {
      const lambda = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? -1 : 1) * (1 + i) * 0.37);
      const r = checkEig(constructed(lambda, n), `n=${n}`);
      const sorted = [...lambda].sort((x, y) => y - x);
      assert.ok(maxAbsDiff(r.values, sorted) < 1e-13 * n, `n=${n}: λ`);
    }
  });

  test("repeated eigenvalues, a zero matrix, a diagonal matrix", () => {
    const lambda = [
      4, 4, 4, 4, 1, 1, 1, -2, -2, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    ];
    const r = checkEig(constructed(lambda, 9), "repeated");
    assert.ok(
      maxAbsDiff(
        r.values,
        [...lambda].sort((x, y) => y - x),
      ) <
        1e-13 * 8,
    );
    const z = checkEig(mat(6, 6), "zero");
    assert.deepEqual(Array.from(z.values), [0, 0, 0, 0, 0, 0]);
    const d = mat(3, 3, Float64Array.of(2, 0, 0, 0, -5, 0, 0, 0, 7));
    assert.deepEqual(Array.from(checkEig(d, "diagonal").values), [7, 2, -5]);
  });

  test("Gram matrices of random data (the merge engine's use) and tiny asymmetry", () => {
    const x = randomMatrix(50, 30, 4);
    const g = mat(30, 30);
    for (let i = 0; i < 30; i++) {
      for (let j = 0; j < 30; j++) {
        let s = 0;
        for (let r = 0; r < 50; r++) s += at(x, r, i) * at(x, r, j);
        g.data[i * 30 + j] = s;
      }
    }
    const r = checkEig(g, "gram");
    assert.ok(r.values[29] > 0);
    // Only (A + Aᵀ)/2 is used: a perturbation of the lower triangle by 1e-15 changes nothing visible.
    const h = mat(30, 30, g.data.slice());
    h.data[5 * 30 + 2] += 1e-15;
    assert.ok(maxAbsDiff(symEig(h).values, r.values) < 1e-13);
  });

  test("eigenvector signs: the largest-magnitude entry is positive", () => {
    const r = symEig(constructed([3, 1, -2, 0.5], 2));
    for (let j = 0; j < 4; j++) {
      let best = 0;
      for (let i = 0; i < 4; i++)
        if (Math.abs(at(r.vectors, i, j)) > Math.abs(best)) best = at(r.vectors, i, j);
      assert.ok(best > 0);
    }
  });
});

describe("tridiagonal eigensolvers", () => {
  function tridiagResidual(d: number[], e: number[], values: Float64Array, zt: Float64Array): number {
    const n = d.length;
    let err = 0;
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        let s = d[i] * zt[j * n + i];
        if (i > 0) s += e[i - 1] * zt[j * n + i - 1];
        if (i < n - 1) s += e[i] * zt[j * n + i + 1];
        err = Math.max(err, Math.abs(s - values[j] * zt[j * n + i]));
      }
    }
    return err;
  }
  function rowsOrthonormality(zt: Float64Array, n: number): number {
    const m = mat(n, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m.data[i * n + j] = zt[j * n + i];
    return orthonormalityError(m);
  }

  test("divide and conquer: Wilkinson matrices (close pairs), glued copies (heavy deflation), zero couplings", () => {
    // W⁺_21: d_i = |10 − i|, e_i = 1 — its largest eigenvalues come in pairs that agree to ~1e-14.
    const w21d = Array.from({ length: 21 }, (_, i) => Math.abs(10 - i));
    const cases: [string, number[], number[]][] = [
      ["W21+", w21d, Array(20).fill(1)],
      [
        "glued W21+ ×4",
        [...w21d, ...w21d, ...w21d, ...w21d],
        Array.from({ length: 83 }, (_, i) => ((i + 1) % 21 === 0 ? 1e-10 : 1)),
      ],
      [
        "split",
        Array.from({ length: 70 }, (_, i) => Math.sin(i)),
        Array.from({ length: 69 }, (_, i) => (i % 10 === 9 ? 0 : 0.5)),
      ],
      ["constant", Array(50).fill(2), Array(49).fill(0)],
    ];
    for (const [label, d, e] of cases) {
      const n = d.length;
      const { values, zt } = tridiagonalEig(Float64Array.from(d), Float64Array.from(e));
      for (let i = 1; i < n; i++) assert.ok(values[i] >= values[i - 1], `${label}: ascending`);
      assert.ok(tridiagResidual(d, e, values, zt) < 1e-13 * n, `${label}: residual`);
      assert.ok(rowsOrthonormality(zt, n) < 1e-14 * n, `${label}: orthogonality`);
    }
  });

  test("QR iteration agrees with divide and conquer on the eigenvalues", () => {
    const r = randomMatrix(1, 80, 17).data;
    const d = Array.from(r.subarray(0, 40));
    const e = Array.from(r.subarray(40, 79));
    const dq = Float64Array.from(d);
    const zt = new Float64Array(40 * 40);
    for (let i = 0; i < 40; i++) zt[i * 40 + i] = 1;
    tridiagonalQr(dq, Float64Array.from(e), zt, 40);
    assert.ok(tridiagResidual(d, e, dq, zt) < 1e-13 * 40);
    const dc = tridiagonalEig(Float64Array.from(d), Float64Array.from(e)).values;
    assert.ok(maxAbsDiff(Float64Array.from(dq).sort(), dc) < 1e-14 * 40);
  });
});

describe("symEig's WebAssembly tridiagonalization", () => {
  // The kernel (wasm/symeig.ts) must give the JavaScript loop's bits; the JavaScript run is a child process with
  // MERGLOT_WASM=js (the switch is read once per process).
  const script = (n: number) => `
    import { symEig } from ${JSON.stringify(new URL("../../src/tensor/symeig.js", import.meta.url).href)};
    import { mat } from ${JSON.stringify(new URL("../../src/tensor/matrix.js", import.meta.url).href)};
    let s = 12345;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296) - 0.5;
    const a = mat(${n}, ${n});
    for (let i = 0; i < ${n}; i++) for (let j = 0; j <= i; j++) a.data[i * ${n} + j] = a.data[j * ${n} + i] = rnd();
    const r = symEig(a);
    process.stdout.write(Buffer.from(r.values.buffer).toString("hex") + ":" + Buffer.from(r.vectors.data.buffer).toString("hex"));`;
  const run = (n: number, env: Record<string, string>) => {
    const res = spawnSync(process.execPath, ["--input-type=module", "-e", script(n)], {
      env: { ...process.env, ...env },
      encoding: "utf8",
    });
    assert.equal(res.status, 0, res.stderr);
    return res.stdout;
  };
  test("the kernel loads (else the comparison below would compare JavaScript with itself)", () => {
    assert.ok(existsSync(new URL("../../src/wasm/symeig.wasm", import.meta.url)), "npm run build makes it");
  });
  for (const n of [33, 80, 129]) {
    test(`n = ${n}: eigenvalues and eigenvectors bit-identical to the JavaScript loop`, () => {
      const wasm = run(n, { MERGLOT_WASM: "" });
      const js = run(n, { MERGLOT_WASM: "js" });
      assert.ok(wasm.length > 0);
      assert.equal(wasm, js);
    });
  }
});
