/**
 * Delta space: x_i = ΔW_i = s_i·B_i·A_i. Linear methods have an exact low-rank result (the `cat` of the
 * scaled factors); every other method forms one module's dense deltas, merges them and writes the result
 * at the declared rank (truncated SVD, or lossless at full rank).
 */
import { gemmF32 } from "../../tensor/gemm.js";
import { seedFrom } from "../../tensor/linalg.js";
import { concatFactors, denseToLowRank, fitRank, type OutputBuffers } from "../lowrank.js";
export { concatFactors };
import {
  freshBuffers,
  runMethod,
  type Buffers,
  type MergeMethod,
  type MethodParams,
  METHOD_PARAM_DEFAULTS,
} from "../methods.js";
import type { SignMethod } from "../operators.js";
import { histogramSlot, inputSlots } from "../ties-wasm.js";
import type { ModuleInput, ModuleJob, OperatorBinder, SpaceResult } from "./types.js";

/** Dense ΔW_i = s_i·B_i·A_i as float32 (one module at a time). */
export function denseDelta(x: ModuleInput, out: number, inF: number): Float32Array {
  return gemmF32(out, inF, x.rank, x.b, x.a, { alpha: x.scaling });
}

export function mergeDelta(
  job: ModuleJob,
  method: MergeMethod,
  opts: { lambda: number; signMethod: SignMethod; seed: number; params?: MethodParams },
  ops: OperatorBinder,
  buf: Buffers = freshBuffers,
  dest?: OutputBuffers,
): SpaceResult {
  const weights = job.inputs.map((x) => x.weight);
  if (method.fromFactors) {
    return fitRank(
      method.fromFactors(job, weights, opts.lambda, opts.params ?? METHOD_PARAM_DEFAULTS),
      job.out,
      job.in,
      job.targetRank,
      dest,
    );
  }
  if (method.linear && method.coefficients) {
    const coeffs = method.coefficients(weights).map((c) => c * opts.lambda);
    return fitRank(concatFactors(job, coeffs), job.out, job.in, job.targetRank, dest);
  }
  // Dense results are merged in row chunks: only one adapter's full ΔW exists at a time (to find its trim
  // threshold), so memory stays near one dense module instead of n + 1 of them.
  const full = (i: number) => {
    const x = job.inputs[i]!;
    // formed in the histogram kernel's memory when it runs (its threshold is all this tensor is for)
    return gemmF32(job.out, job.in, x.rank, x.b, x.a, {
      alpha: x.scaling,
      out: histogramSlot(job.out * job.in) ?? buf.f32("delta.whole", job.out * job.in),
    });
  };
  const bound = ops.bind(job, "delta", full, buf, job.in);
  const merged = buf.f32("delta.merged", job.out * job.in);
  // (methods with statistics over the whole tensor and across adapters, such as SCE, take it in one piece)
  const rowsPerChunk = method.wholeTensor ? job.out : Math.max(1, Math.floor(CHUNK_ENTRIES / job.in));
  const ctx = {
    ...bound,
    weights,
    signMethod: opts.signMethod,
    params: opts.params ?? METHOD_PARAM_DEFAULTS,
    buffers: buf,
  };
  for (let r0 = 0; r0 < job.out; r0 += rowsPerChunk) {
    const r1 = Math.min(job.out, r0 + rowsPerChunk);
    const n = (r1 - r0) * job.in;
    // TIES: the chunks are formed straight in the SIMD kernel's memory (no copy there)
    const slots = method.fusedTies ? inputSlots(job.inputs.length, n) : null;
    const xs = job.inputs.map((x, i) =>
      gemmF32(r1 - r0, job.in, x.rank, x.b.subarray(r0 * x.rank, r1 * x.rank), x.a, {
        alpha: x.scaling,
        out: slots?.[i] ?? buf.f32(`delta.chunk.${i}`, n),
      }),
    );
    merged.set(runMethod(method, xs, ctx, opts.lambda), r0 * job.in);
  }
  return denseToLowRank(merged, job.out, job.in, job.targetRank, seedFrom(opts.seed, job.name, "rsvd"), dest);
}

/** Entries per row chunk of a dense delta-space merge (per adapter). */
const CHUNK_ENTRIES = 1 << 21;
