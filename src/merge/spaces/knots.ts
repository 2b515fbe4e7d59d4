/**
 * KnOTS space, computed from the factors. With B_s = [s_1B_1 | … | s_nB_n] = Q_B·R_B and A_iᵀ = Q_i·R_i,
 *   [ΔW_1 | … | ΔW_n] = Q_B · K · blockdiag(Q_1, …, Q_n)ᵀ,   K = R_B · blockdiag(R_1ᵀ, …, R_nᵀ)  (Σr × Σr),
 * so the thin SVD of the out × n·in concatenation is U = Q_B·U_K, Σ = Σ_K, V_i = Q_i·V_K[block i]. The task
 * tensors are x_i = Σ·V_iᵀ (k × in); the merged result is ΔW' = U·method(x_1..x_n), written as B' = U,
 * A' = merged, scaling 1. Cost: O((out + in)·(Σr)²) per module instead of O(out·n·in·min(out, n·in)).
 */
import { mat, matmul, qr, svd, type Mat } from "../../tensor/linalg.js";
import { fitRank } from "../lowrank.js";
import { runMethod, type MergeMethod } from "../methods.js";
import type { SignMethod } from "../operators.js";
import type { ModuleJob, OperatorBinder, SpaceResult } from "./types.js";

/** Singular values below this fraction of the largest are numerical zeros of float32 inputs and dropped. */
export const KNOTS_RELATIVE_TOLERANCE = 1e-6;

/** Thin QR that also accepts wide matrices (zero-padded to square; extra Q rows are sliced off by callers). */
function thinQr(m: Mat): { q: Mat; r: Mat } {
  if (m.rows >= m.cols) return qr(m);
  const data = new Float64Array(m.cols * m.cols);
  data.set(m.data);
  return qr(mat(m.cols, m.cols, data));
}

export interface KnotsBasis {
  /** out × k, orthonormal columns. */
  u: Mat;
  /** k singular values, descending. */
  sigma: Float64Array;
  /** x_i = Σ·V_iᵀ, one k × in matrix per adapter (float32, row-major). */
  tasks: Float32Array[];
}

/** The KnOTS decomposition of one module from its factors (no out × n·in matrix is ever formed). */
export function knotsBasis(job: ModuleJob): KnotsBasis {
  const { out, in: inF, inputs } = job;
  const R = inputs.reduce((s, x) => s + x.rank, 0);
  const bs = new Float64Array(out * R);
  let col = 0;
  for (const x of inputs) {
    for (let i = 0; i < out; i++) {
      for (let j = 0; j < x.rank; j++) bs[i * R + col + j] = x.scaling * x.b[i * x.rank + j]!;
    }
    col += x.rank;
  }
  const qb = thinQr(mat(out, R, bs));
  const qas = inputs.map((x) => {
    // A_iᵀ is in × r; build it directly in row-major order
    const at = new Float64Array(inF * x.rank);
    for (let k = 0; k < x.rank; k++) for (let j = 0; j < inF; j++) at[j * x.rank + k] = x.a[k * inF + j]!;
    return thinQr(mat(inF, x.rank, at));
  });
  // K[:, block i] = R_B[:, block i] · R_iᵀ
  const K = new Float64Array(R * R);
  col = 0;
  inputs.forEach((x, idx) => {
    const ri = qas[idx]!.r; // r × r upper triangular
    for (let row = 0; row < R; row++) {
      for (let c = 0; c < x.rank; c++) {
        let acc = 0;
        for (let t = 0; t < x.rank; t++) acc += qb.r.data[row * R + col + t]! * ri.data[c * x.rank + t]!;
        K[row * R + col + c] = acc;
      }
    }
    col += x.rank;
  });
  const core = svd(mat(R, R, K));
  const smax = core.s[0] ?? 0;
  let k = 0;
  while (k < core.s.length && core.s[k]! > KNOTS_RELATIVE_TOLERANCE * smax && core.s[k]! > 0) k++;
  // U = Q_B · U_K[:, :k], restricted to the real `out` rows
  const uk = mat(R, k, new Float64Array(R * k));
  for (let i = 0; i < R; i++)
    for (let j = 0; j < k; j++) uk.data[i * k + j] = core.u.data[i * core.u.cols + j]!;
  const uFull = matmul(qb.q, uk);
  const u = uFull.rows === out ? uFull : mat(out, k, uFull.data.slice(0, out * k));
  const sigma = core.s.slice(0, k);
  const tasks: Float32Array[] = [];
  col = 0;
  inputs.forEach((x, idx) => {
    // T_i = diag(σ) · V_K[block i, :k]ᵀ  (k × r_i), then x_i = T_i · Q_iᵀ  (k × in)
    const t = new Float64Array(k * x.rank);
    for (let a = 0; a < k; a++) {
      for (let b = 0; b < x.rank; b++)
        t[a * x.rank + b] = sigma[a]! * core.v.data[(col + b) * core.v.cols + a]!;
    }
    const q = qas[idx]!.q;
    const xi = matmul(mat(k, x.rank, t), q, { transB: true }); // k × q.rows
    const task = new Float32Array(k * inF);
    for (let a = 0; a < k; a++) for (let j = 0; j < inF; j++) task[a * inF + j] = xi.data[a * xi.cols + j]!;
    tasks.push(task);
    col += x.rank;
  });
  return { u, sigma, tasks };
}

export function mergeKnots(
  job: ModuleJob,
  method: MergeMethod,
  opts: { lambda: number; signMethod: SignMethod },
  ops: OperatorBinder,
): SpaceResult {
  const { u, tasks } = knotsBasis(job);
  const k = u.cols;
  const bound = ops.bind(job, "knots", (i) => tasks[i]!);
  const weights = job.inputs.map((x) => x.weight);
  const merged =
    k === 0
      ? new Float32Array(0)
      : runMethod(
          method,
          tasks,
          { weights, signMethod: opts.signMethod, trim: bound.trim, drop: bound.drop },
          opts.lambda,
        );
  return fitRank({ b: Float32Array.from(u.data), a: merged, rank: k }, job.out, job.in, job.targetRank);
}
