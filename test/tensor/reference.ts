/**
 * Independent reference implementations for the linear-algebra tests: the textbook definitions,
 * written plainly and never calling the code under test.
 */
import type { Mat } from "../../src/tensor/matrix.js";

/** Deterministic uniform(−0.5, 0.5) stream (a 32-bit LCG, Numerical Recipes constants). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

export function randomMatrix(rows: number, cols: number, seed: number): Mat {
  const r = lcg(seed);
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = r();
  return { rows, cols, data };
}

export function at(a: Mat, i: number, j: number): number {
  return a.data[i * a.cols + j];
}

/** (A·B)_ij = Σ_p A_ip·B_pj, the triple loop. */
export function naiveMatmul(a: Mat, b: Mat): Mat {
  if (a.cols !== b.rows) throw new Error("naiveMatmul: shapes");
  const out = { rows: a.rows, cols: b.cols, data: new Float64Array(a.rows * b.cols) };
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < b.cols; j++) {
      let s = 0;
      for (let p = 0; p < a.cols; p++) s += at(a, i, p) * at(b, p, j);
      out.data[i * b.cols + j] = s;
    }
  }
  return out;
}

export function naiveTranspose(a: Mat): Mat {
  const out = { rows: a.cols, cols: a.rows, data: new Float64Array(a.data.length) };
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out.data[j * a.rows + i] = at(a, i, j);
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** max |QᵀQ − I| over the columns of q. */
export function orthonormalityError(q: Mat): number {
  let err = 0;
  for (let i = 0; i < q.cols; i++) {
    for (let j = 0; j < q.cols; j++) {
      let s = 0;
      for (let r = 0; r < q.rows; r++) s += at(q, r, i) * at(q, r, j);
      err = Math.max(err, Math.abs(s - (i === j ? 1 : 0)));
    }
  }
  return err;
}

/**
 * A random matrix with orthonormal columns (rows × cols, rows ≥ cols) by modified Gram–Schmidt, run
 * twice ("twice is enough") on a random matrix.
 */
export function randomOrthonormal(rows: number, cols: number, seed: number): Mat {
  const a = randomMatrix(rows, cols, seed);
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < cols; j++) {
      for (let k = 0; k < j; k++) {
        let d = 0;
        for (let r = 0; r < rows; r++) d += a.data[r * cols + j] * a.data[r * cols + k];
        for (let r = 0; r < rows; r++) a.data[r * cols + j] -= d * a.data[r * cols + k];
      }
      let nrm = 0;
      for (let r = 0; r < rows; r++) nrm += a.data[r * cols + j] ** 2;
      nrm = Math.sqrt(nrm);
      for (let r = 0; r < rows; r++) a.data[r * cols + j] /= nrm;
    }
  }
  return a;
}

/** U·diag(s)·Vᵀ by definition. */
export function composeSvd(u: Mat, s: ArrayLike<number>, v: Mat): Mat {
  const out = { rows: u.rows, cols: v.rows, data: new Float64Array(u.rows * v.rows) };
  for (let i = 0; i < u.rows; i++) {
    for (let j = 0; j < v.rows; j++) {
      let x = 0;
      for (let k = 0; k < s.length; k++) x += at(u, i, k) * s[k] * at(v, j, k);
      out.data[i * v.rows + j] = x;
    }
  }
  return out;
}
