/**
 * Core Space (Panariello et al., "Accurate and Efficient Low-Rank Model Merging in Core Space", NeurIPS 2025,
 * arXiv:2509.17786; as its code's `merge_space: core`): shared reference bases from the stacked factors,
 *   U_B = left singular vectors of [s_1B_1 | … | s_nB_n]  (out × k_B),
 *   V_A = right singular vectors of [A_1; …; A_n]          (in × k_A),
 * each adapter's core M_i = U_Bᵀ·s_iB_iA_i·V_A (k_B × k_A, k ≤ Σ r_i), the method run on the cores, and
 * ΔW' = U_B·merged·V_Aᵀ, written exactly as B' = U_B, A' = merged·V_Aᵀ (scaling 1). The projection loses nothing
 * (U_BU_Bᵀ·B_i = B_i and A_iV_AV_Aᵀ = A_i), so linear methods give exactly their delta-space result; per-entry
 * methods (TIES, DARE, …) act on the aligned k_B × k_A cores instead of the out × in deltas.
 * From the factors: B_s = Q_B·R_B and A_sᵀ = Q_A·R_A; with R_B = P·S·Wᵀ, U_B = Q_B·P and U_Bᵀ·B_s = Pᵀ·R_B; with
 * R_Aᵀ = P'·S'·W'ᵀ, V_A = Q_A·W' and A_s·V_A = R_Aᵀ·W'. Cost O((out + in)·(Σr)²), no out × in matrix.
 * Singular values below 1e-6·σ_max are dropped (numerical zeros of float32 factors), as in the KnOTS space.
 */
import { gemmF64, mat, svd, transposeData } from "../../tensor/linalg.js";
import { fitRank, type OutputBuffers } from "../lowrank.js";
import {
  freshBuffers,
  METHOD_PARAM_DEFAULTS,
  runMethod,
  type Buffers,
  type MergeMethod,
  type MethodParams,
} from "../methods.js";
import type { SignMethod } from "../operators.js";
import { KNOTS_RELATIVE_TOLERANCE, orthogonalizeStacked } from "./knots.js";
import type { ModuleJob, OperatorBinder, SpaceResult } from "./types.js";

export interface CoreBasis {
  /** U_B, out × kB (float32, written out as B'). */
  u: { rows: number; cols: number; data: Float32Array };
  kB: number;
  kA: number;
  /** The cores M_i, kB × kA each (float32, row-major). */
  tasks: Float32Array[];
  /** merged (kB × kA) → merged·V_Aᵀ (kB × in). */
  back(merged: Float32Array): Float32Array;
}

function rankAbove(s: Float64Array): number {
  const smax = s[0] ?? 0;
  let k = 0;
  while (k < s.length && s[k]! > KNOTS_RELATIVE_TOLERANCE * smax && s[k]! > 0) k++;
  return k;
}

/** The Core Space decomposition of one module from its factors. */
export function coreBasis(job: ModuleJob, buf: Buffers = freshBuffers): CoreBasis {
  const { out, in: inF, inputs } = job;
  const { R, offsets, qb, qa } = orthogonalizeStacked(job, buf, "core");

  // B side: R_B = P·S·Wᵀ
  const sb = svd(mat(R, R, Float64Array.from(qb.r)));
  const kB = rankAbove(sb.s);
  const pk = new Float64Array(R * kB);
  for (let i = 0; i < R; i++) for (let j = 0; j < kB; j++) pk[i * kB + j] = sb.u.data[i * sb.u.cols + j]!;
  const uData = qb.mulQ(pk, kB, buf.f32("core.u", Math.max(out, R) * kB)).subarray(0, out * kB);
  const cb = gemmF64(kB, R, R, pk, qb.r, { transA: true }); // U_Bᵀ·B_s = Pᵀ·R_B (kB × R)

  // A side: R_Aᵀ = P'·S'·W'ᵀ
  const raT = transposeData(qa.r, R, R);
  const sa = svd(mat(R, R, raT));
  const kA = rankAbove(sa.s);
  const wk = new Float64Array(R * kA);
  for (let i = 0; i < R; i++) for (let j = 0; j < kA; j++) wk[i * kA + j] = sa.v.data[i * sa.v.cols + j]!;
  const ca = gemmF64(R, kA, R, raT, wk); // A_s·V_A = R_Aᵀ·W' (R × kA)

  const tasks: Float32Array[] = [];
  inputs.forEach((x, idx) => {
    const col = offsets[idx]!;
    const m = buf.f32(`core.task.${idx}`, kB * kA);
    // core_i = C_B[:, block i] · C_A[block i, :] (kB × r_i · r_i × kA) on the native GEMM (a JavaScript triple
    // loop took a sixth of a core_ties merge)
    const r = x.rank;
    const cbi = buf.f64("core.cb.block", kB * r);
    for (let a = 0; a < kB; a++) for (let t = 0; t < r; t++) cbi[a * r + t] = cb[a * R + col + t]!;
    const prod = gemmF64(kB, kA, r, cbi, ca.subarray(col * kA, (col + r) * kA), {
      out: buf.f64("core.task64", kB * kA),
    });
    m.set(prod); // rounds to float32 as the element stores did
    tasks.push(m);
  });
  const back = (merged: Float32Array) => {
    // merged·V_Aᵀ = (merged·W'ᵀ)·Q_Aᵀ
    const t = gemmF64(kB, R, kA, Float64Array.from(merged), wk, { transB: true });
    return qa.mulQt(t, kB, buf.f32("core.back", kB * inF)).subarray(0, kB * inF);
  };
  return { u: { rows: out, cols: kB, data: uData }, kB, kA, tasks, back };
}

export function mergeCore(
  job: ModuleJob,
  method: MergeMethod,
  opts: { lambda: number; signMethod: SignMethod; params?: MethodParams },
  ops: OperatorBinder,
  buf: Buffers = freshBuffers,
  dest?: OutputBuffers,
): SpaceResult {
  const basis = coreBasis(job, buf);
  const { kB, kA, tasks } = basis;
  if (kB === 0 || kA === 0)
    return fitRank(
      { b: new Float32Array(0), a: new Float32Array(0), rank: 0 },
      job.out,
      job.in,
      job.targetRank,
      dest,
    );
  const bound = ops.bind(job, "core", (i) => tasks[i]!, buf, kA);
  const ctx = {
    ...bound,
    weights: job.inputs.map((x) => x.weight),
    signMethod: opts.signMethod,
    params: opts.params ?? METHOD_PARAM_DEFAULTS,
    buffers: buf,
  };
  const merged = runMethod(method, tasks, ctx, opts.lambda);
  return fitRank({ b: basis.u.data, a: basis.back(merged), rank: kB }, job.out, job.in, job.targetRank, dest);
}
