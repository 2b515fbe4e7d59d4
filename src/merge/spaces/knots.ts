/**
 * KnOTS space, computed from the factors. With B_s = [s_1B_1 | … | s_nB_n] = Q_B·R_B and A_iᵀ = Q_i·R_i,
 *   [ΔW_1 | … | ΔW_n] = Q_B · K · blockdiag(Q_1, …, Q_n)ᵀ,   K = R_B · blockdiag(R_1ᵀ, …, R_nᵀ)  (Σr × Σr),
 * so the thin SVD of the out × n·in concatenation is U = Q_B·U_K, Σ = Σ_K, V_i = Q_i·V_K[block i]. The task
 * tensors are x_i = Σ·V_iᵀ (k × in); the merged result is ΔW' = U·method(x_1..x_n), written as B' = U,
 * A' = merged, scaling 1. Cost: O((out + in)·(Σr)²) per module instead of O(out·n·in·min(out, n·in)).
 * Large temporaries come from `buffers` (reused across modules by the engine).
 */
import {
  cholesky,
  gemmF32,
  gemmF64,
  invertLower,
  mat,
  matmul,
  qr,
  symEig,
  type Mat,
} from "../../tensor/linalg.js";
import { fitRank, type OutputBuffers } from "../lowrank.js";
import {
  freshBuffers,
  runMethod,
  type Buffers,
  type MergeMethod,
  type MethodParams,
  METHOD_PARAM_DEFAULTS,
} from "../methods.js";
import type { SignMethod } from "../operators.js";
import { inputSlots } from "../ties-wasm.js";
import type { ModuleJob, OperatorBinder, SpaceResult } from "./types.js";

/** Singular values below this fraction of the largest are numerical zeros of float32 inputs and dropped. */
export const KNOTS_RELATIVE_TOLERANCE = 1e-6;

/** Thin QR that also accepts wide matrices (zero-padded to square; extra Q rows are ignored by callers). */
function thinQr(m: Mat, qOut: Float64Array): { q: Mat; r: Mat } {
  if (m.rows >= m.cols) return qr(m, { qOut: qOut.subarray(0, m.rows * m.cols) });
  const data = new Float64Array(m.cols * m.cols);
  data.set(m.data);
  return qr(mat(m.cols, m.cols, data));
}

/**
 * An orthonormal factorization X = Q·R (X tall, rows × n) kept implicit: `r` (n × n upper triangular) and the
 * two products the KnOTS basis needs, Q·C and T·Qᵀ.
 */
export interface Orthogonalized {
  r: Float64Array;
  /** Q·C for C (n × k) → rows × k (float32: it is written out as B' as it is). */
  mulQ(c: Float64Array, k: number, out: Float32Array): Float32Array;
  /** T·Qᵀ for T (k × n) → k × rows (float32, into `out`). */
  mulQt(t: Float64Array, k: number, out: Float32Array): Float32Array;
}

/** Orthonormality a Gram-based factorization must reach before it is trusted (max |QᵀQ − I|). */
const GRAM_ORTHO_TOLERANCE = 1e-9;

/**
 * Q = X·R⁻¹ with R from the Cholesky factor of the float64 Gram matrix XᵀX: two small n × n factorizations and
 * no rows × n Q at all. Accepted only when QᵀQ = R⁻ᵀ·G·R⁻¹ is the identity to GRAM_ORTHO_TOLERANCE (i.e. X is
 * well conditioned); otherwise undefined and the caller uses Householder/CholeskyQR2.
 * `x` is X row-major (rows × n) when `stored === "rows"`, or Xᵀ row-major (n × rows) when "transposed";
 * `gram`: XᵀX when the caller has it already (then `x` may be null: only the float32 copy is multiplied).
 */
function gramOrthogonalize(
  x: Float64Array | null,
  rows: number,
  n: number,
  stored: "rows" | "transposed",
  xF32: Float32Array,
  buf: Buffers,
  role: string,
  gram?: Float64Array,
): Orthogonalized | undefined {
  if (rows < n) return undefined;
  let g = gram;
  if (!g) {
    if (!x) throw new Error("gramOrthogonalize: neither X nor its Gram");
    const gOut = buf.f64(`${role}.gram`, n * n);
    g =
      stored === "rows"
        ? gemmF64(n, n, rows, x, x, { transA: true, out: gOut })
        : gemmF64(n, n, rows, x, x, { transB: true, out: gOut });
  }
  const l = cholesky(g, n);
  if (!l) return undefined;
  const lInv = invertLower(l, n);
  // check R⁻ᵀ·G·R⁻¹ = L⁻¹·G·L⁻ᵀ = I
  const lg = gemmF64(n, n, n, lInv, g, { out: buf.f64(`${role}.lg`, n * n) });
  const check = gemmF64(n, n, n, lg, lInv, { transB: true, out: buf.f64(`${role}.check`, n * n) });
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (Math.abs(check[i * n + j]! - (i === j ? 1 : 0)) > GRAM_ORTHO_TOLERANCE) return undefined;
    }
  }
  // (scratch, not fresh arrays: first touches of fresh memory cost page faults, see tensor/workspace.ts)
  const r = buf.f64(`${role}.r`, n * n); // R = Lᵀ
  const rInv = buf.f64(`${role}.rinv`, n * n); // R⁻¹ = (L⁻¹)ᵀ
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      r[i * n + j] = l[j * n + i]!;
      rInv[i * n + j] = lInv[j * n + i]!;
    }
  }
  return {
    r,
    // Q·C = X·(R⁻¹·C), the big product in float32 on the fast kernel (X itself is float32 data)
    mulQ: (c, k, out) => {
      const w = buf.f32(`${role}.w32`, n * k);
      w.set(gemmF64(n, k, n, rInv, c, { out: buf.f64(`${role}.w64`, n * k) })); // rounds as Float32Array.from
      const transA = stored === "transposed";
      return gemmF32(rows, k, n, xF32, w, { transA, out: out.subarray(0, rows * k) });
    },
    // T·Qᵀ = (T·R⁻ᵀ)·Xᵀ
    mulQt: (t, k, out) => {
      const m = buf.f32(`${role}.m32`, k * n);
      m.set(gemmF64(k, n, n, t, rInv, { transB: true, out: buf.f64(`${role}.m64`, k * n) }));
      const transB = stored === "rows";
      return gemmF32(k, rows, n, m, xF32, { transB, out: out.subarray(0, k * rows) });
    },
  };
}

/** Householder / CholeskyQR2 with an explicit Q: robust for rank-deficient or ill-conditioned factors. */
function qrOrthogonalize(x: Mat, buf: Buffers, role: string): Orthogonalized {
  const rows = x.rows;
  const { q, r } = thinQr(x, buf.f64(`${role}.q`, Math.max(x.rows, x.cols) * x.cols));
  return {
    r: r.data,
    mulQ: (c, k, out) => {
      const y = matmul(q, mat(q.cols, k, c), { out: buf.f64(`${role}.qc`, q.rows * k) });
      for (let i = 0; i < q.rows * k; i++) out[i] = y.data[i]!;
      return out.subarray(0, q.rows * k);
    },
    mulQt: (t, k, out) => {
      const y = matmul(mat(k, q.cols, t), q, { transB: true, out: buf.f64(`${role}.xt`, k * q.rows) });
      if (y.cols === rows) for (let i = 0; i < k * rows; i++) out[i] = y.data[i]!;
      else
        for (let a = 0; a < k; a++)
          for (let j = 0; j < rows; j++) out[a * rows + j] = y.data[a * y.cols + j]!;
      return out;
    },
  };
}

/**
 * Householder route for X given as float64 blocks (see StackedBlocks) when the Gram route was refused: X is
 * stacked in float64 (row-major X for "rows", X itself from the stacked Xᵀ for "transposed") and factored.
 */
function qrOrthogonalizeBlocks(
  b: StackedBlocks,
  len: number,
  stored: "rows" | "transposed",
  buf: Buffers,
  role: string,
): Orthogonalized {
  const x = stackBlocks(b, len, stored, buf, role);
  if (stored === "rows") return qrOrthogonalize(mat(len, b.R, x), buf, role);
  const xt = buf.f64(`${role}.xt`, len * b.R);
  for (let k = 0; k < b.R; k++) for (let j = 0; j < len; j++) xt[j * b.R + k] = x[k * len + j]!;
  return qrOrthogonalize(mat(len, b.R, xt), buf, role);
}

/**
 * X = Q·R with Q implicit for X given by float64 blocks (`len` = out for "rows", in for "transposed") and its
 * float32 copy: the Gram route with the Gram by blocks, Householder when X is ill conditioned.
 */
function orthogonalizeBlocks(
  b: StackedBlocks,
  len: number,
  stored: "rows" | "transposed",
  xF32: Float32Array,
  buf: Buffers,
  role: string,
): Orthogonalized {
  const gram = blockGram(b, len, stored, buf, role);
  return (
    gramOrthogonalize(null, len, b.R, stored, xF32, buf, role, gram) ??
    qrOrthogonalizeBlocks(b, len, stored, buf, role)
  );
}

/**
 * The stacked, scaled factors of a module's deltas, orthogonalized on both sides: B_all = [s_1·B_1 … s_n·B_n]
 * (out × R) and A_all = [A_1; …; A_n] (R × in), R = Σ r_i. Core Space and the spectral methods (TSV, Iso-C/CTS)
 * both work in this pair of frames; `offsets[i]` is where delta i's block starts.
 */
export function orthogonalizeStacked(
  job: ModuleJob,
  buf: Buffers,
  role: string,
): { R: number; offsets: number[]; qb: Orthogonalized; qa: Orthogonalized } {
  const { out, in: inF, inputs } = job;
  // both sides' Grams by blocks (see blockGram); the float64 stacks only for the Householder fallback
  const bb = scaledBBlocks(job, buf, `${role}.b`);
  const { R, offsets, bs32 } = bb;
  const as32 = buf.f32(`${role}.as32`, R * inF);
  const ab: StackedBlocks = { blocks: [], offsets, ranks: bb.ranks, R };
  inputs.forEach((x, idx) => {
    as32.set(x.a, offsets[idx]! * inF);
    const blk = buf.f64(`${role}.a.${idx}`, x.rank * inF);
    blk.set(x.a); // float32 → float64, exact
    ab.blocks.push(blk);
  });
  const qb = orthogonalizeBlocks(bb, out, "rows", bs32, buf, `${role}.b`);
  const qa = orthogonalizeBlocks(ab, inF, "transposed", as32, buf, `${role}.a`);
  return { R, offsets, qb, qa };
}

export interface KnotsBasis {
  /** out × k, orthonormal columns (float32: written out as B'). */
  u: { rows: number; cols: number; data: Float32Array };
  /** k singular values, descending. */
  sigma: Float64Array;
  /** x_i = Σ·V_iᵀ, one k × in matrix per adapter (float32, row-major). */
  tasks: Float32Array[];
}

/**
 * The Gram of stacked factors by blocks, mirrored (it is symmetric: 15 of the 25 blocks of five adapters are
 * products; these long float64 sums are the frame's largest arithmetic). "rows": blocks X_i are out × r_i (columns
 * of B_all = [s_1·B_1 … s_n·B_n]) and G_ij = X_iᵀX_j; "transposed": blocks are r_i × in (rows of A_all = [A_1; …;
 * A_n]) and G_ij = X_i·X_jᵀ. `len` is out or in.
 */
function blockGram(
  b: StackedBlocks,
  len: number,
  stored: "rows" | "transposed",
  buf: Buffers,
  role: string,
): Float64Array {
  const { blocks, ranks, offsets, R } = b;
  const g = buf.f64(`${role}.blockgram`, R * R);
  for (let i = 0; i < blocks.length; i++) {
    for (let j = i; j < blocks.length; j++) {
      const ri = ranks[i]!;
      const rj = ranks[j]!;
      const gij = gemmF64(ri, rj, len, blocks[i]!, blocks[j]!, {
        transA: stored === "rows",
        transB: stored === "transposed",
        out: buf.f64(`${role}.gij`, ri * rj),
      });
      for (let a = 0; a < ri; a++)
        for (let b = 0; b < rj; b++) {
          const v = gij[a * rj + b]!;
          g[(offsets[i]! + a) * R + offsets[j]! + b] = v;
          g[(offsets[j]! + b) * R + offsets[i]! + a] = v;
        }
    }
  }
  return g;
}

/** A stacked factor as float64 blocks, one per delta: block i has r_i = ranks[i] columns / rows from offsets[i]. */
interface StackedBlocks {
  blocks: Float64Array[];
  offsets: number[];
  ranks: number[];
  R: number;
}

/** s_i·B_i as contiguous float64 blocks (out × r_i) and interleaved into B_all (out × R, float32). */
function scaledBBlocks(job: ModuleJob, buf: Buffers, role: string): StackedBlocks & { bs32: Float32Array } {
  const { out, inputs } = job;
  const R = inputs.reduce((s, x) => s + x.rank, 0);
  const bs32 = buf.f32(`${role}.bs32`, out * R);
  const blocks: Float64Array[] = [];
  const offsets: number[] = [];
  let col = 0;
  inputs.forEach((x, idx) => {
    const blk = buf.f64(`${role}.b.${idx}`, out * x.rank);
    const n = out * x.rank;
    const s = x.scaling;
    for (let t = 0; t < n; t++) blk[t] = s * x.b[t]!;
    for (let i = 0; i < out; i++) {
      const row = i * R + col;
      const src = i * x.rank;
      for (let j = 0; j < x.rank; j++) bs32[row + j] = blk[src + j]!;
    }
    blocks.push(blk);
    offsets.push(col);
    col += x.rank;
  });
  return { blocks, offsets, ranks: inputs.map((x) => x.rank), R, bs32 };
}

/** The blocks laid side by side ("rows": out × R) or stacked ("transposed": R × in) in float64. */
function stackBlocks(
  b: StackedBlocks,
  len: number,
  stored: "rows" | "transposed",
  buf: Buffers,
  role: string,
): Float64Array {
  const x = buf.f64(`${role}.stacked`, len * b.R);
  b.blocks.forEach((blk, idx) => {
    const r = b.ranks[idx]!;
    const o = b.offsets[idx]!;
    if (stored === "transposed") x.set(blk, o * len);
    else for (let i = 0; i < len; i++) for (let j = 0; j < r; j++) x[i * b.R + o + j] = blk[i * r + j]!;
  });
  return x;
}

/**
 * The KnOTS decomposition of one module from its factors (no out × n·in matrix is ever formed). `taskSlots`:
 * where to form the task tensors (each ≥ R·in entries; the TIES kernel's memory), else scratch of `buf`.
 */
export function knotsBasis(
  job: ModuleJob,
  buf: Buffers = freshBuffers,
  taskSlots: Float32Array[] | null = null,
): KnotsBasis {
  const { out, in: inF, inputs } = job;
  const bb = scaledBBlocks(job, buf, "knots.b");
  const { R, offsets } = bb;
  const qb = orthogonalizeBlocks(bb, out, "rows", bb.bs32, buf, "knots.b");
  const qas = inputs.map((x, idx) => {
    const a64 = buf.f64(`knots.a.${idx}`, x.rank * inF);
    a64.set(x.a); // float32 → float64, exact (a native conversion loop)
    const fast = gramOrthogonalize(a64, inF, x.rank, "transposed", x.a, buf, `knots.a${idx}`);
    if (fast) return fast;
    // A_iᵀ (in × r) explicitly for the QR route
    const at = buf.f64(`knots.at.${idx}`, inF * x.rank);
    for (let k = 0; k < x.rank; k++) for (let j = 0; j < inF; j++) at[j * x.rank + k] = x.a[k * inF + j]!;
    return qrOrthogonalize(mat(inF, x.rank, at), buf, `knots.a${idx}`);
  });
  // K[:, block i] = R_B[:, block i] · R_iᵀ (R_i upper triangular: its zeros add nothing)
  const K = buf.f64("knots.K", R * R);
  inputs.forEach((x, idx) => {
    const r = x.rank;
    const c0 = offsets[idx]!;
    const rb = buf.f64("knots.rb", R * r);
    for (let row = 0; row < R; row++) for (let c = 0; c < r; c++) rb[row * r + c] = qb.r[row * R + c0 + c]!;
    const ki = gemmF64(R, r, r, rb, qas[idx]!.r, { transB: true, out: buf.f64("knots.ki", R * r) });
    for (let row = 0; row < R; row++) for (let c = 0; c < r; c++) K[row * R + c0 + c] = ki[row * r + c]!;
  });
  // K = U_K Σ V_Kᵀ from the eigen-decomposition of K·Kᵀ = U_K Σ² U_Kᵀ (a third of the cost of an SVD);
  // the task coefficients Σ·V_Kᵀ = U_Kᵀ·K then need no division by σ, so small σ lose nothing.
  const kkt = gemmF64(R, R, R, K, K, { transB: true, out: buf.f64("knots.kkt", R * R) });
  for (let i = 0; i < R; i++) for (let j = 0; j < i; j++) kkt[i * R + j] = kkt[j * R + i]!; // exact symmetry
  const eig = symEig(mat(R, R, kkt));
  const sAll = eig.values.map((v) => Math.sqrt(Math.max(v, 0)));
  const smax = sAll[0] ?? 0;
  let k = 0;
  while (k < sAll.length && sAll[k]! > KNOTS_RELATIVE_TOLERANCE * smax && sAll[k]! > 0) k++;
  const uk = buf.f64("knots.uk", R * k);
  for (let i = 0; i < R; i++) for (let j = 0; j < k; j++) uk[i * k + j] = eig.vectors.data[i * R + j]!;
  // U = Q_B · U_K[:, :k], restricted to the real `out` rows (the first rows of a padded Q)
  const uData = qb.mulQ(uk, k, buf.f32("knots.u", Math.max(out, R) * k));
  const u = { rows: out, cols: k, data: uData.subarray(0, out * k) };
  const sigma = sAll.slice(0, k);
  // Σ·V_Kᵀ = U_Kᵀ·K  (k × R)
  const sv = gemmF64(k, R, R, uk, K, { transA: true, out: buf.f64("knots.sv", k * R) });
  const tasks: Float32Array[] = [];
  inputs.forEach((x, idx) => {
    // T_i = (Σ·V_Kᵀ)[:, block i]  (k × r_i), then x_i = T_i · Q_iᵀ  (k × in)
    const col = offsets[idx]!;
    const t = buf.f64("knots.t", k * x.rank);
    for (let a = 0; a < k; a++) for (let b = 0; b < x.rank; b++) t[a * x.rank + b] = sv[a * R + col + b]!;
    const dest = taskSlots?.[idx]?.subarray(0, k * inF) ?? buf.f32(`knots.task.${idx}`, k * inF);
    tasks.push(qas[idx]!.mulQt(t, k, dest));
  });
  return { u, sigma, tasks };
}

export function mergeKnots(
  job: ModuleJob,
  method: MergeMethod,
  opts: { lambda: number; signMethod: SignMethod; params?: MethodParams },
  ops: OperatorBinder,
  buf: Buffers = freshBuffers,
  dest?: OutputBuffers,
): SpaceResult {
  // TIES: the task tensors are formed straight in the SIMD kernel's memory (no copy there)
  const R = job.inputs.reduce((s, x) => s + x.rank, 0);
  const slots = method.fusedTies ? inputSlots(job.inputs.length, R * job.in) : null;
  const { u, tasks } = knotsBasis(job, buf, slots);
  const k = u.cols;
  const bound = ops.bind(job, "knots", (i) => tasks[i]!, buf, job.in);
  const weights = job.inputs.map((x) => x.weight);
  const ctx = {
    ...bound,
    weights,
    signMethod: opts.signMethod,
    params: opts.params ?? METHOD_PARAM_DEFAULTS,
    buffers: buf,
  };
  const merged = k === 0 ? new Float32Array(0) : runMethod(method, tasks, ctx, opts.lambda);
  return fitRank({ b: u.data, a: merged, rank: k }, job.out, job.in, job.targetRank, dest);
}
