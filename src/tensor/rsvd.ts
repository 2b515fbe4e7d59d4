/**
 * Randomized truncated SVD (Halko, Martinsson & Tropp 2011, Algorithms 4.4 + 5.1): a Gaussian test
 * matrix Ω (n × ℓ, ℓ = k + oversample) sketches the range Y = A·Ω, q power iterations
 * Q ← orth(A·orth(Aᵀ·Q)) sharpen it, and the exact SVD of the small B = Qᵀ·A gives the factors.
 *
 * Accuracy (HMT Thm 10.7/10.8): E‖A − UΣVᵀ‖ ≲ (1 + 9√(ℓ·min(m,n))/… )^{1/(2q+1)}·σ_{k+1}; with the
 * defaults (oversample 10, 2 power iterations) the spectral error is within a few percent of the
 * optimal σ_{k+1} for the slowly decaying spectra of LoRA deltas, and exact (to rounding) when
 * rank(A) ≤ k + oversample.
 *
 * A can be a dense matrix or any operator that multiplies by A and Aᵀ, e.g. a sum of low-rank terms
 * that is never formed. Ω's entries are `Rng(seed).normal()` in row-major order, so results are
 * reproducible from the seed.
 */
import { gemmF32, matmul } from "./gemm.js";
import { mat, type Mat } from "./matrix.js";
import { qr } from "./qr.js";
import { Rng } from "./rng.js";
import { svd, type Svd } from "./svd.js";
import { scratchF32 } from "./workspace.js";

/** A linear map given by its products: mul(X) = A·X (X cols × p), mulT(X) = Aᵀ·X (X rows × p). */
export interface LinearOperator {
  rows: number;
  cols: number;
  mul(x: Mat): Mat;
  mulT(x: Mat): Mat;
}

export interface RandomizedSvdOptions {
  /** Extra sketch columns beyond k (default 10). */
  oversample?: number;
  /** Power iterations (default 2). */
  powerIters?: number;
  seed: bigint | number;
}

/** The operator view of a dense float64 matrix. */
export function matOperator(a: Mat): LinearOperator {
  return {
    rows: a.rows,
    cols: a.cols,
    mul: (x) => matmul(a, x),
    mulT: (x) => matmul(a, x, { transA: true }),
  };
}

/**
 * The operator view of a dense float32 row-major rows × cols matrix (e.g. a merged ΔW), multiplied in
 * float32 on the fast kernel: the sketch only needs float32 accuracy, and the data stays half the size.
 */
export function f32Operator(data: Float32Array, rows: number, cols: number): LinearOperator {
  if (data.length !== rows * cols)
    throw new RangeError(`f32Operator: ${data.length} values for ${rows} × ${cols}`);
  const prod = (x: Mat, trans: boolean): Mat => {
    const outRows = trans ? cols : rows;
    // the float32 operand and product in reused scratch (fresh ones per product were ~7% of a delta-space
    // merge in garbage collection); only the float64 result the caller keeps is a new array
    const xf = scratchF32("rsvd.x32", x.data.length);
    for (let i = 0; i < xf.length; i++) xf[i] = x.data[i]!;
    const y = gemmF32(outRows, x.cols, x.rows, data, xf, {
      transA: trans,
      out: scratchF32("rsvd.y32", outRows * x.cols),
    });
    return mat(outRows, x.cols, Float64Array.from(y));
  };
  return { rows, cols, mul: (x) => prod(x, false), mulT: (x) => prod(x, true) };
}

/**
 * Rank-k truncated SVD of A: u (rows × k), s (k, descending), v (cols × k), with k clamped to
 * min(rows, cols).
 */
export function randomizedSvd(a: Mat | LinearOperator, k: number, opts: RandomizedSvdOptions): Svd {
  const op = "data" in a ? matOperator(a) : a;
  const m = op.rows;
  const n = op.cols;
  if (!Number.isSafeInteger(k) || k < 0)
    throw new RangeError(`randomizedSvd: rank ${k} is not a non-negative integer`);
  const oversample = opts.oversample ?? 10;
  const powerIters = opts.powerIters ?? 2;
  const kk = Math.min(k, m, n);
  const l = Math.min(kk + oversample, m, n);
  if (l === 0) return { u: mat(m, 0), s: new Float64Array(0), v: mat(n, 0) };

  const omega = mat(n, l);
  new Rng(opts.seed).fillNormal(omega.data);
  let q = orth(op.mul(omega));
  for (let it = 0; it < powerIters; it++) {
    const z = orth(op.mulT(q));
    q = orth(op.mul(z));
  }
  // B = Qᵀ·A (ℓ × n) is computed as its transpose Aᵀ·Q; svd(Bᵀ) = Ub·S·Vbᵀ gives A ≈ (Q·Vb)·S·Ubᵀ.
  const bt = op.mulT(q);
  const small = svd(bt);
  const u = matmul(q, leadingCols(small.v, kk));
  return { u, s: small.s.slice(0, kk), v: leadingCols(small.u, kk) };
}

/** Orthonormal basis of the columns of y (thin Householder Q). */
function orth(y: Mat): Mat {
  return qr(y).q;
}

function leadingCols(a: Mat, k: number): Mat {
  if (k === a.cols) return a;
  const out = mat(a.rows, k);
  for (let i = 0; i < a.rows; i++) out.data.set(a.data.subarray(i * a.cols, i * a.cols + k), i * k);
  return out;
}
