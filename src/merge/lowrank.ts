/**
 * Low-rank helpers shared by the spaces: a module's result is always a pair (B [out × k], A [k × in]) with
 * ΔW = B·A (scaling 1). These turn dense or low-rank results into the declared output rank.
 */
import type { ModuleJob } from "./spaces/types.js";
import { f32Operator, mat, matmul, qr, randomizedSvd, svd, transpose, type Mat } from "../tensor/linalg.js";

/** B' = [c_1 s_1 B_1 | … | c_n s_n B_n], A' = [A_1; …; A_n]: exactly Σ c_i ΔW_i, rank Σ r_i. */
export function concatFactors(job: ModuleJob, coeffs: readonly number[]): LowRank {
  const R = job.inputs.reduce((s, x) => s + x.rank, 0);
  const b = new Float32Array(job.out * R);
  const a = new Float32Array(R * job.in);
  let col = 0;
  job.inputs.forEach((x, i) => {
    const c = coeffs[i]! * x.scaling;
    for (let row = 0; row < job.out; row++) {
      for (let j = 0; j < x.rank; j++) b[row * R + col + j] = c * x.b[row * x.rank + j]!;
    }
    a.set(x.a, col * job.in);
    col += x.rank;
  });
  return { b, a, rank: R };
}

export interface LowRank {
  /** out × rank, row-major. */
  b: Float32Array;
  /** rank × in, row-major. */
  a: Float32Array;
  rank: number;
}

export function toMat(rows: number, cols: number, x: Float32Array | Float64Array): Mat {
  return mat(rows, cols, x instanceof Float64Array ? x : Float64Array.from(x));
}

/** Copy the first `k` columns of a row-major matrix into a `width`-column matrix (extra columns zero). */
export function takeColumns(m: Mat, k: number, width: number): Float32Array {
  const out = new Float32Array(m.rows * width);
  const c = Math.min(k, m.cols, width);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < c; j++) out[i * width + j] = m.data[i * m.cols + j]!;
  return out;
}

/** Copy the first `k` rows into a `height`-row matrix (extra rows zero). */
export function takeRows(m: Mat, k: number, height: number): Float32Array {
  const out = new Float32Array(height * m.cols);
  const r = Math.min(k, m.rows, height);
  for (let i = 0; i < r * m.cols; i++) out[i] = m.data[i]!;
  return out;
}

/** Pad (with zero columns of B / zero rows of A) or keep a low-rank pair to exactly `rank`. */
export function padRank(lr: LowRank, out: number, inF: number, rank: number, dest?: OutputBuffers): LowRank {
  if (lr.rank > rank) throw new Error(`padRank: cannot pad rank ${lr.rank} down to ${rank}`);
  if (lr.rank === rank && !dest) return lr;
  const k = lr.rank;
  const b = dest?.b(out * rank) ?? new Float32Array(out * rank);
  const a = dest?.a(rank * inF) ?? new Float32Array(rank * inF);
  if (k === rank) b.set(lr.b);
  else {
    for (let i = 0; i < out; i++) {
      b.set(lr.b.subarray(i * k, (i + 1) * k), i * rank);
      b.fill(0, i * rank + k, (i + 1) * rank);
    }
  }
  a.set(lr.a.subarray(0, k * inF));
  a.fill(0, k * inF);
  return { b, a, rank };
}

/** Where a module's final factors are written (reused buffers in the engine). */
export interface OutputBuffers {
  a(n: number): Float32Array;
  b(n: number): Float32Array;
}

/**
 * Best rank-`target` approximation of B·A without forming it: QR of B and of Aᵀ, SVD of the small core
 * R_B·R_Aᵀ. Output B' = Q_B·U_t·diag(σ_t), A' = (Q_A·V_t)ᵀ; padded with zeros when the product has a
 * lower rank than `target`.
 */
export function recompress(lr: LowRank, out: number, inF: number, target: number): LowRank {
  if (lr.rank === 0)
    return { b: new Float32Array(out * target), a: new Float32Array(target * inF), rank: target };
  const B = toMat(out, lr.rank, lr.b);
  const At = transpose(toMat(lr.rank, inF, lr.a));
  const qb = qr(tallOrPad(B));
  const qa = qr(tallOrPad(At));
  const core = matmul(qb.r, qa.r, { transB: true });
  const { u, s, v } = svd(core);
  const k = Math.min(target, s.length);
  const us = matmul(qb.q, u);
  for (let i = 0; i < us.rows; i++) for (let j = 0; j < us.cols; j++) us.data[i * us.cols + j]! *= s[j]!;
  const av = matmul(qa.q, v);
  return {
    b: takeColumns(sliceRows(us, out), k, target),
    a: takeRows(transpose(sliceRows(av, inF)), k, target),
    rank: target,
  };
}

/** Householder QR needs rows ≥ cols: pad with zero rows when a factor is wider than tall. */
function tallOrPad(m: Mat): Mat {
  if (m.rows >= m.cols) return m;
  const data = new Float64Array(m.cols * m.cols);
  data.set(m.data);
  return mat(m.cols, m.cols, data);
}

function sliceRows(m: Mat, rows: number): Mat {
  return rows === m.rows ? m : mat(rows, m.cols, m.data.slice(0, rows * m.cols));
}

/** Matrices up to this many entries get an exact SVD; larger ones a randomized one (see README accuracy). */
const EXACT_SVD_LIMIT = 512 * 512;

/**
 * A dense ΔW (out × in) written as a LoRA of rank `target`. At full rank the result is stored losslessly
 * without any SVD (B = ΔW, A = I or B = I, A = ΔW); otherwise a truncated SVD — exact for small modules,
 * randomized (float32 products on the fast kernel, float64 small factorizations) for large ones.
 */
export function denseToLowRank(
  d: Float32Array,
  out: number,
  inF: number,
  target: number,
  seed: bigint,
  dest?: OutputBuffers,
): LowRank {
  const full = Math.min(out, inF);
  if (target >= full) {
    const b = dest?.b(out * target).fill(0) ?? new Float32Array(out * target);
    const a = dest?.a(target * inF).fill(0) ?? new Float32Array(target * inF);
    if (inF <= out) {
      for (let i = 0; i < out; i++) b.set(d.subarray(i * inF, (i + 1) * inF), i * target);
      for (let i = 0; i < inF; i++) a[i * inF + i] = 1;
    } else {
      for (let i = 0; i < out; i++) b[i * target + i] = 1;
      a.set(d);
    }
    return { b, a, rank: target };
  }
  const { u, s, v } =
    out * inF <= EXACT_SVD_LIMIT
      ? svd(toMat(out, inF, d))
      : randomizedSvd(f32Operator(d, out, inF), target, {
          oversample: RSVD_OVERSAMPLE,
          powerIters: RSVD_POWER_ITERS,
          seed,
        });
  const k = Math.min(target, s.length);
  for (let i = 0; i < u.rows; i++) for (let j = 0; j < u.cols; j++) u.data[i * u.cols + j]! *= s[j]!;
  return { b: takeColumns(u, k, target), a: takeRows(transpose(v), k, target), rank: target };
}

/** Randomized SVD settings for large dense results (accuracy: see the README). */
export const RSVD_OVERSAMPLE = 10;
export const RSVD_POWER_ITERS = 2;

/** Fit an exact low-rank result to the declared rank: pad when it is smaller, truncate (SVD) when larger. */
export function fitRank(
  lr: LowRank,
  out: number,
  inF: number,
  target: number,
  dest?: OutputBuffers,
): LowRank {
  return lr.rank <= target ? padRank(lr, out, inF, target, dest) : recompress(lr, out, inF, target);
}
