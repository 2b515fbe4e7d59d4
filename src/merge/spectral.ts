/**
 * Merge methods defined on the singular structure of the task updates, computed from the LoRA factors. With the
 * stacked factors B_s = [s_1B_1 | … | s_nB_n] = Q_B·R_B and A_sᵀ = [A_1; …; A_n]ᵀ = Q_A·R_A (orthonormal Q_B, Q_A,
 * as in the KnOTS space), every delta is ΔW_i = Q_B·C_i·Q_Aᵀ with the small core C_i = R_B[:, i]·R_A[:, i]ᵀ
 * (Σr × Σr). SVDs, projections onto singular subspaces and polar factors all commute with Q_B·(·)·Q_Aᵀ (the columns
 * are orthonormal), so each method runs on the cores and only the result is mapped back:
 * B' = Q_B·(U·diag(σ)), A' = Vᵀ·Q_Aᵀ. No out × in (let alone out × n·in) matrix is ever formed; the cost is that of
 * the KnOTS basis. Results are exact low-rank pairs (B' out × K, A' K × in, scaling 1).
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
import type { LowRank } from "./lowrank.js";
import type { Buffers, MethodParams } from "./methods.js";
import { orthogonalizeStacked, type Orthogonalized } from "./spaces/knots.js";
import type { ModuleJob } from "./spaces/types.js";
import { scratchF32, scratchF64 } from "../tensor/workspace.js";

/** Singular values below this fraction of the largest are numerical zeros (as in the KnOTS space). */
const RELATIVE_TOLERANCE = 1e-6;

interface ThinSvd {
  u: Mat;
  s: Float64Array;
  v: Mat;
}

/**
 * The frame's temporaries in the thread's reused scratch: one frame is alive at a time (one module), and fresh
 * arrays per module cost page faults and garbage collection (a fifth of a tsv merge).
 */
const scratch: Buffers = {
  f32: (role, n) => scratchF32(`spectral.${role}`, n),
  f64: (role, n) => scratchF64(`spectral.${role}`, n),
};

/** The orthonormal frame of one module's factors and each delta's core in it. */
interface Frame {
  qb: Orthogonalized;
  qa: Orthogonalized;
  /** Σ r_i: the cores are R × R. */
  R: number;
  /** The core of delta i as a product: C_i = X_i·Y_iᵀ with X_i = R_B[:, block i], Y_i = R_A[:, block i] (R × r_i). */
  x: Mat[];
  y: Mat[];
}

function frame(job: ModuleJob): Frame {
  const { inputs } = job;
  const { R, offsets, qb, qa } = orthogonalizeStacked(job, scratch, "spectral");
  const block = (r: Float64Array, idx: number) => {
    const k = inputs[idx]!.rank;
    const o = offsets[idx]!;
    const d = new Float64Array(R * k);
    for (let i = 0; i < R; i++) for (let j = 0; j < k; j++) d[i * k + j] = r[i * R + o + j]!;
    return mat(R, k, d);
  };
  return {
    qb,
    qa,
    R,
    x: inputs.map((_, i) => block(qb.r, i)),
    y: inputs.map((_, i) => block(qa.r, i)),
  };
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

/** Thin SVD of X·Yᵀ (X, Y R × r) through QR of both factors and the SVD of the r × r core. */
function productSvd(x: Mat, y: Mat): ThinSvd {
  const qx = qr(padRows(x));
  const qy = qr(padRows(y));
  const core = coreSvd(matmul(qx.r, qy.r, { transB: true }));
  return {
    u: firstRows(matmul(qx.q, core.u), x.rows),
    s: core.s,
    v: firstRows(matmul(qy.q, core.v), y.rows),
  };
}

/** Thin SVD of a core without the numerically zero part of its spectrum. */
function coreSvd(m: Mat): ThinSvd {
  const full = svd(m);
  const smax = full.s[0] ?? 0;
  let k = 0;
  while (k < full.s.length && full.s[k]! > RELATIVE_TOLERANCE * smax) k++;
  return { u: leadingColumns(full.u, k), s: full.s.slice(0, k), v: leadingColumns(full.v, k) };
}

/** Columns [0, k) of a row-major matrix. */
function leadingColumns(m: Mat, k: number): Mat {
  const d = new Float64Array(m.rows * k);
  for (let i = 0; i < m.rows; i++) for (let j = 0; j < k; j++) d[i * k + j] = m.data[i * m.cols + j]!;
  return mat(m.rows, k, d);
}

/** The nearest matrix with orthonormal columns (polar factor) of a tall m: m·(mᵀm)^(−1/2) on its range. */
function polar(m: Mat): Mat {
  const k = m.cols;
  if (k === 0) return m;
  const e = symEig(matmul(m, m, { transA: true }));
  const lmax = Math.max(e.values[0] ?? 0, 0);
  // (mᵀm)^(−1/2) = Q·diag(1/√λ)·Qᵀ over the kept directions, as one product (a k³ JavaScript loop took a third
  // of an iso_cts merge)
  const qs = new Float64Array(k * k);
  for (let t = 0; t < k; t++) {
    const l = e.values[t]!;
    // directions with a zero singular value (linearly dependent columns) get no weight
    if (!(l > RELATIVE_TOLERANCE * RELATIVE_TOLERANCE * lmax) || l <= 0) continue;
    const inv = 1 / Math.sqrt(l);
    for (let i = 0; i < k; i++) qs[i * k + t] = e.vectors.data[i * k + t]! * inv;
  }
  const w = matmul(mat(k, k, qs), e.vectors, { transB: true }).data;
  return matmul(m, mat(k, k, w));
}

const EMPTY: LowRank = { b: new Float32Array(0), a: new Float32Array(0), rank: 0 };

/** B' = Q_B·U·diag(σ)·c, A' = Vᵀ·Q_Aᵀ (U, V in the frame's R coordinates) as float32. */
function assemble(f: Frame, job: ModuleJob, u: Mat, sigma: ArrayLike<number>, v: Mat, c: number): LowRank {
  const k = u.cols;
  if (k === 0) return EMPTY;
  const us = new Float64Array(f.R * k);
  for (let i = 0; i < f.R; i++)
    for (let j = 0; j < k; j++) us[i * k + j] = u.data[i * k + j]! * sigma[j]! * c;
  const vt = new Float64Array(k * f.R);
  for (let i = 0; i < f.R; i++) for (let j = 0; j < k; j++) vt[j * f.R + i] = v.data[i * k + j]!;
  const b = f.qb.mulQ(us, k, new Float32Array(Math.max(job.out, f.R) * k)).slice(0, job.out * k);
  const a = f.qa.mulQt(vt, k, new Float32Array(k * Math.max(job.in, f.R))).slice(0, k * job.in);
  return { b, a, rank: k };
}

/** Concatenate the columns of thin SVD parts into U, V (R × K) and their singular values. */
function concat(parts: readonly ThinSvd[], R: number, scale: readonly number[]): ThinSvd {
  const K = parts.reduce((t, p) => t + p.s.length, 0);
  const u = mat(R, K, new Float64Array(R * K));
  const v = mat(R, K, new Float64Array(R * K));
  const s = new Float64Array(K);
  let col = 0;
  parts.forEach((p, idx) => {
    const k = p.s.length;
    for (let r = 0; r < R; r++)
      for (let j = 0; j < k; j++) {
        u.data[r * K + col + j] = p.u.data[r * k + j]!;
        v.data[r * K + col + j] = p.v.data[r * k + j]!;
      }
    for (let j = 0; j < k; j++) s[col + j] = scale[idx]! * p.s[j]!;
    col += k;
  });
  return { u, s, v };
}

/** Σ w_i X_i·Y_iᵀ: the task-arithmetic sum in the frame (R × R). */
function weightedSum(f: Frame, weights: readonly number[]): Mat {
  let m: Mat | undefined;
  f.x.forEach((x, i) => {
    const p = matmul(
      mat(
        x.rows,
        x.cols,
        x.data.map((v) => weights[i]! * v),
      ),
      f.y[i]!,
      { transB: true },
    );
    if (!m) m = p;
    else for (let j = 0; j < m.data.length; j++) m.data[j]! += p.data[j]!;
  });
  return m!;
}

/** TSV-Merge of one module (weights w_i scale each task's singular values; `lambda` the result). */
export function tsvMerge(job: ModuleJob, weights: readonly number[], lambda: number): LowRank {
  const n = job.inputs.length;
  const budget = Math.max(1, Math.floor(Math.min(job.out, job.in) / n));
  const f = frame(job);
  const parts = f.x.map((x, i) => {
    const p = productSvd(x, f.y[i]!);
    const k = Math.min(budget, p.s.length);
    return { u: leadingColumns(p.u, k), s: p.s.slice(0, k), v: leadingColumns(p.v, k) };
  });
  const all = concat(parts, f.R, weights);
  if (all.s.length === 0) return EMPTY;
  return assemble(f, job, polar(all.u), all.s, polar(all.v), lambda);
}

/** Iso-C of one module: the task-arithmetic sum with its (nonzero) spectrum flattened to its mean. */
export function isoCMerge(job: ModuleJob, weights: readonly number[], lambda: number): LowRank {
  const f = frame(job);
  const { u, s, v } = coreSvd(weightedSum(f, weights));
  if (s.length === 0) return EMPTY;
  const mean = s.reduce((t, x) => t + x, 0) / s.length;
  return assemble(f, job, u, new Float64Array(s.length).fill(mean), v, lambda);
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
  const f = frame(job);
  const m = coreSvd(weightedSum(f, weights));
  const rho = m.s.length;
  if (rho === 0) return EMPTY;
  const { common, perTask } = isoCtsSizes(rho, n, params.common_space_fraction);
  const uk = leadingColumns(m.u, common);
  const parts: ThinSvd[] = [{ u: uk, s: m.s.slice(0, common), v: leadingColumns(m.v, common) }];
  if (perTask > 0) {
    f.x.forEach((x, i) => {
      // (I − U_kU_kᵀ)·w_i X_i, then the thin SVD of its product with Y_iᵀ
      const wx = mat(
        x.rows,
        x.cols,
        x.data.map((v) => weights[i]! * v),
      );
      if (common > 0) {
        const proj = matmul(uk, matmul(uk, wx, { transA: true }));
        for (let j = 0; j < wx.data.length; j++) wx.data[j]! -= proj.data[j]!;
      }
      const p = productSvd(wx, f.y[i]!);
      const k = Math.min(perTask, p.s.length);
      parts.push({ u: leadingColumns(p.u, k), s: p.s.slice(0, k), v: leadingColumns(p.v, k) });
    });
  }
  const all = concat(
    parts,
    f.R,
    parts.map(() => 1),
  );
  const mean = all.s.reduce((t, x) => t + x, 0) / all.s.length;
  return assemble(f, job, polar(all.u), new Float64Array(all.s.length).fill(mean), polar(all.v), lambda);
}
