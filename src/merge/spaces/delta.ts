/**
 * Delta space: x_i = ΔW_i = s_i·B_i·A_i. Linear methods have an exact low-rank result (the `cat` of the
 * scaled factors); every other method forms one module's dense deltas, merges them and writes the result
 * at the declared rank (truncated SVD, or lossless at full rank).
 */
import { gemmF32 } from "../../tensor/gemm.js";
import { seedFrom } from "../../tensor/linalg.js";
import { denseToLowRank, fitRank, type LowRank } from "../lowrank.js";
import { runMethod, type MergeMethod } from "../methods.js";
import type { SignMethod } from "../operators.js";
import type { ModuleInput, ModuleJob, OperatorBinder, SpaceResult } from "./types.js";

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

/** Dense ΔW_i = s_i·B_i·A_i as float32 (one module at a time). */
export function denseDelta(x: ModuleInput, out: number, inF: number): Float32Array {
  return gemmF32(out, inF, x.rank, x.b, x.a, { alpha: x.scaling });
}

export function mergeDelta(
  job: ModuleJob,
  method: MergeMethod,
  opts: { lambda: number; signMethod: SignMethod; seed: number },
  ops: OperatorBinder,
): SpaceResult {
  const weights = job.inputs.map((x) => x.weight);
  if (method.linear && method.coefficients) {
    const coeffs = method.coefficients(weights).map((c) => c * opts.lambda);
    return fitRank(concatFactors(job, coeffs), job.out, job.in, job.targetRank);
  }
  const xs = job.inputs.map((x) => denseDelta(x, job.out, job.in));
  const merged = runMethod(
    method,
    xs,
    {
      weights,
      signMethod: opts.signMethod,
      trim: (i, x) => ops.trim(job, "delta", i, x),
      drop: (i, x) => ops.drop(job, "delta", i, x),
    },
    opts.lambda,
  );
  return denseToLowRank(merged, job.out, job.in, job.targetRank, seedFrom(opts.seed, job.name, "rsvd"));
}
