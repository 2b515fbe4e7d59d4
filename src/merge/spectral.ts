/**
 * Merge methods defined on the singular structure of the task updates, computed from the LoRA factors: every
 * SVD is that of a low-rank product (QR of the factors, SVD of a small core), so no out × in (let alone
 * out × n·in) matrix is ever formed. Results are exact low-rank pairs (B' out × K, A' K × in, scaling 1).
 * - TSV-Merge (Gargiulo et al., "Task Singular Vectors: Reducing Task Interference in Model Merging", CVPR 2025,
 *   arXiv:2412.00081): per task keep the top ⌊min(out, in)/n⌋ singular triplets (the paper's 1/n share of the
 *   rank budget; a LoRA of lower rank keeps all of its own), concatenate U = [U_1 | … | U_n] and
 *   V = [V_1 | … | V_n], replace each by its nearest orthonormal matrix (Procrustes: the polar factor P·Qᵀ of its
 *   SVD P·S·Qᵀ) and reconstruct U⊥·diag(w_i σ_i)·V⊥ᵀ.
 * - Iso-C (Marczak et al., "No Task Left Behind: Isotropic Model Merging with Common and Task-Specific
 *   Subspaces", ICML 2025, arXiv:2502.04959): the task-arithmetic sum M = Σ w_i ΔW_i = U Σ Vᵀ with its spectrum
 *   flattened to the mean singular value: σ̄·U·Vᵀ. For a low-rank M the mean runs over its nonzero singular
 *   values (below 1e-6·σ_max counts as zero): the zero part of the spectrum has no defined directions.
 * - Iso-CTS (same paper, Algorithm 2, with the defaults of its code: common_space_fraction 0.8): the top k singular
 *   triplets of M span the common subspace; each task's delta with the common subspace projected out,
 *   (I − U_kU_kᵀ)·w_iΔW_i, gives its top s task-specific triplets; U = [U_k | U_1' | … | U_n'] and V likewise are
 *   replaced by their polar factors and the result is σ̄·U⊥·V⊥ᵀ, σ̄ the mean of all the selected singular values.
 *   The paper sizes the spectrum by d = min(out, in) of a full-rank update; a LoRA sum has only ρ = rank(M) ≤ Σ r_i
 *   defined directions, so here d = ρ (as in Core Space, where the merged core is Σr × Σr): k = ⌊f·ρ⌋, then, as the
 *   code does, the task-specific total ρ − k is rounded to a multiple of n (k absorbs the rest) and
 *   s = (ρ − k)/n per task (a task whose residual has fewer nonzero singular values gives those it has).
 */
import { mat, matmul, qr, svd, symEig, type Mat } from "../tensor/linalg.js";
import type { MethodParams } from "./methods.js";
import type { LowRank } from "./lowrank.js";
import type { ModuleJob } from "./spaces/types.js";

/** Singular values below this fraction of the largest are numerical zeros (as in the KnOTS space). */
const RELATIVE_TOLERANCE = 1e-6;

interface ThinSvd {
  u: Mat;
  s: Float64Array;
  v: Mat;
}

/** Householder QR needs rows ≥ cols: zero rows pad a wide factor (Q's extra rows are dropped after use). */
function padRows(m: Mat): Mat {
  if (m.rows >= m.cols) return m;
  const d = new Float64Array(m.cols * m.cols);
  d.set(m.data);
  return mat(m.cols, m.cols, d);
}

function firstRows(m: Mat, rows: number): Mat {
  return m.rows === rows ? m : mat(rows, m.cols, m.data.slice(0, rows * m.cols));
}

/** Thin SVD of B·A (B out × r, A r × in) from the factors, without the numerically zero part of the spectrum. */
function productSvd(b: Mat, a: Mat): ThinSvd {
  const out = b.rows;
  const inF = a.cols;
  const r = b.cols;
  const at = mat(inF, r, new Float64Array(inF * r));
  for (let i = 0; i < r; i++) for (let j = 0; j < inF; j++) at.data[j * r + i] = a.data[i * inF + j]!;
  const qb = qr(padRows(b));
  const qa = qr(padRows(at));
  const core = svd(matmul(qb.r, qa.r, { transB: true }));
  const smax = core.s[0] ?? 0;
  let k = 0;
  while (k < core.s.length && core.s[k]! > RELATIVE_TOLERANCE * smax) k++;
  const keep = (m: Mat) => {
    const d = new Float64Array(m.rows * k);
    for (let i = 0; i < m.rows; i++) for (let j = 0; j < k; j++) d[i * k + j] = m.data[i * m.cols + j]!;
    return mat(m.rows, k, d);
  };
  return {
    u: firstRows(matmul(qb.q, keep(core.u)), out),
    s: core.s.slice(0, k),
    v: firstRows(matmul(qa.q, keep(core.v)), inF),
  };
}

/** The nearest matrix with orthonormal columns (polar factor) of a tall m: m·(mᵀm)^(−1/2) on its range. */
function polar(m: Mat): Mat {
  const k = m.cols;
  if (k === 0) return m;
  const e = symEig(matmul(m, m, { transA: true }));
  const lmax = Math.max(e.values[0] ?? 0, 0);
  const w = new Float64Array(k * k);
  for (let t = 0; t < k; t++) {
    const l = e.values[t]!;
    // directions with a zero singular value (linearly dependent columns) get no weight
    if (!(l > RELATIVE_TOLERANCE * RELATIVE_TOLERANCE * lmax) || l <= 0) continue;
    const inv = 1 / Math.sqrt(l);
    for (let i = 0; i < k; i++) {
      const qi = e.vectors.data[i * k + t]! * inv;
      for (let j = 0; j < k; j++) w[i * k + j]! += qi * e.vectors.data[j * k + t]!;
    }
  }
  return matmul(m, mat(k, k, w));
}

/** s_i·B_i of every input scaled by c_i, as float64 matrices. */
function scaledB(job: ModuleJob, i: number, c: number): Mat {
  const x = job.inputs[i]!;
  const d = new Float64Array(job.out * x.rank);
  for (let j = 0; j < d.length; j++) d[j] = c * x.scaling * x.b[j]!;
  return mat(job.out, x.rank, d);
}

function aOf(job: ModuleJob, i: number): Mat {
  const x = job.inputs[i]!;
  return mat(x.rank, job.in, Float64Array.from(x.a));
}

/** B' = U·diag(σ)·c, A' = Vᵀ as float32. */
function assemble(u: Mat, sigma: ArrayLike<number>, v: Mat, c: number): LowRank {
  const k = u.cols;
  const b = new Float32Array(u.rows * k);
  for (let i = 0; i < u.rows; i++)
    for (let j = 0; j < k; j++) b[i * k + j] = u.data[i * k + j]! * sigma[j]! * c;
  const a = new Float32Array(k * v.rows);
  for (let i = 0; i < v.rows; i++) for (let j = 0; j < k; j++) a[j * v.rows + i] = v.data[i * k + j]!;
  return { b, a, rank: k };
}

/** TSV-Merge of one module (weights w_i scale each task's singular values; `lambda` the result). */
export function tsvMerge(job: ModuleJob, weights: readonly number[], lambda: number): LowRank {
  const n = job.inputs.length;
  const budget = Math.max(1, Math.floor(Math.min(job.out, job.in) / n));
  const parts = job.inputs.map((_, i) => productSvd(scaledB(job, i, 1), aOf(job, i)));
  const ks = parts.map((p) => Math.min(budget, p.s.length));
  const K = ks.reduce((s, k) => s + k, 0);
  if (K === 0) return { b: new Float32Array(0), a: new Float32Array(0), rank: 0 };
  const uCat = mat(job.out, K, new Float64Array(job.out * K));
  const vCat = mat(job.in, K, new Float64Array(job.in * K));
  const sigma = new Float64Array(K);
  let col = 0;
  parts.forEach((p, i) => {
    const k = ks[i]!;
    for (let r = 0; r < job.out; r++)
      for (let j = 0; j < k; j++) uCat.data[r * K + col + j] = p.u.data[r * p.u.cols + j]!;
    for (let r = 0; r < job.in; r++)
      for (let j = 0; j < k; j++) vCat.data[r * K + col + j] = p.v.data[r * p.v.cols + j]!;
    for (let j = 0; j < k; j++) sigma[col + j] = weights[i]! * p.s[j]!;
    col += k;
  });
  return assemble(polar(uCat), sigma, polar(vCat), lambda);
}

/** [w_1 s_1 B_1 | … | w_n s_n B_n] and [A_1; …; A_n]: the factors of M = Σ w_i ΔW_i. */
function weightedStack(job: ModuleJob, weights: readonly number[]): { b: Mat; a: Mat } {
  const R = job.inputs.reduce((s, x) => s + x.rank, 0);
  const b = mat(job.out, R, new Float64Array(job.out * R));
  const a = mat(R, job.in, new Float64Array(R * job.in));
  let col = 0;
  job.inputs.forEach((x, i) => {
    const bi = scaledB(job, i, weights[i]!);
    for (let r = 0; r < job.out; r++)
      for (let j = 0; j < x.rank; j++) b.data[r * R + col + j] = bi.data[r * x.rank + j]!;
    a.data.set(x.a, col * job.in);
    col += x.rank;
  });
  return { b, a };
}

const EMPTY: LowRank = { b: new Float32Array(0), a: new Float32Array(0), rank: 0 };

/** Iso-C of one module: the task-arithmetic sum with its (nonzero) spectrum flattened to its mean. */
export function isoCMerge(job: ModuleJob, weights: readonly number[], lambda: number): LowRank {
  const { b, a } = weightedStack(job, weights);
  const { u, s, v } = productSvd(b, a);
  if (s.length === 0) return EMPTY;
  const mean = s.reduce((t, x) => t + x, 0) / s.length;
  return assemble(u, new Float64Array(s.length).fill(mean), v, lambda);
}

/** Columns [0, k) of a row-major matrix. */
function leadingColumns(m: Mat, k: number): Mat {
  const d = new Float64Array(m.rows * k);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < k; j++) d[i * k + j] = m.data[i * m.cols + j]!;
  return mat(m.rows, k, d);
}

/** The sizes of Iso-CTS' common and per-task subspaces for a spectrum of ρ directions and n tasks. */
export function isoCtsSizes(rho: number, n: number, fraction: number): { common: number; perTask: number } {
  const k0 = Math.floor(rho * fraction);
  const specific = Math.round((rho - k0) / n) * n;
  const common = Math.max(0, rho - specific);
  return { common, perTask: Math.floor((rho - common) / n) };
}

/** Iso-CTS of one module (see the header). */
export function isoCtsMerge(
  job: ModuleJob,
  weights: readonly number[],
  lambda: number,
  params: MethodParams,
): LowRank {
  const n = job.inputs.length;
  const { b, a } = weightedStack(job, weights);
  const m = productSvd(b, a);
  const rho = m.s.length;
  if (rho === 0) return EMPTY;
  const { common, perTask } = isoCtsSizes(rho, n, params.common_space_fraction);
  const uk = leadingColumns(m.u, common);
  const parts: ThinSvd[] = [{ u: uk, s: m.s.slice(0, common), v: leadingColumns(m.v, common) }];
  if (perTask > 0) {
    job.inputs.forEach((_, i) => {
      // (I − U_kU_kᵀ)·w_i s_i B_i, then the residual's thin SVD with its A_i
      const bi = scaledB(job, i, weights[i]!);
      const proj = common > 0 ? matmul(uk, matmul(uk, bi, { transA: true })) : undefined;
      if (proj) for (let j = 0; j < bi.data.length; j++) bi.data[j]! -= proj.data[j]!;
      const p = productSvd(bi, aOf(job, i));
      const k = Math.min(perTask, p.s.length);
      parts.push({ u: leadingColumns(p.u, k), s: p.s.slice(0, k), v: leadingColumns(p.v, k) });
    });
  }
  const K = parts.reduce((t, p) => t + p.s.length, 0);
  const uCat = mat(job.out, K, new Float64Array(job.out * K));
  const vCat = mat(job.in, K, new Float64Array(job.in * K));
  let col = 0;
  let total = 0;
  for (const p of parts) {
    const k = p.s.length;
    for (let r = 0; r < job.out; r++)
      for (let j = 0; j < k; j++) uCat.data[r * K + col + j] = p.u.data[r * k + j]!;
    for (let r = 0; r < job.in; r++)
      for (let j = 0; j < k; j++) vCat.data[r * K + col + j] = p.v.data[r * k + j]!;
    for (let j = 0; j < k; j++) total += p.s[j]!;
    col += k;
  }
  return assemble(polar(uCat), new Float64Array(K).fill(total / K), polar(vCat), lambda);
}
