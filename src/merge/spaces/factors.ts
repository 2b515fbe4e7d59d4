/**
 * Factors space: PEFT `add_weighted_adapter` semantics for its non-SVD combination types. The method runs on
 * the list of A_i with weights sgn(w_i·s_i)·√|w_i·s_i| and, separately, on the list of B_i with weights
 * √|w_i·s_i|. Ranks must be equal; the output has rank r and scaling 1 (α = r). The product of merged factors
 * carries cross terms — approximate by nature, but exactly what PEFT users get today.
 */
import { MerglotError } from "../../errors.js";
import {
  freshBuffers,
  resolveMethod,
  runMethod,
  type Buffers,
  type MergeMethod,
  type MethodParams,
  METHOD_PARAM_DEFAULTS,
} from "../methods.js";
import type { SignMethod } from "../operators.js";
import { fitRank, type OutputBuffers } from "../lowrank.js";
import type { ModuleJob, OperatorBinder, SpaceResult } from "./types.js";

export function mergeFactors(
  job: ModuleJob,
  method: MergeMethod,
  opts: { lambda: number; signMethod: SignMethod; params?: MethodParams },
  ops: OperatorBinder,
  buf: Buffers = freshBuffers,
  dest?: OutputBuffers,
): SpaceResult {
  const r = job.inputs[0]!.rank;
  const bad = job.inputs.find((x) => x.rank !== r);
  if (bad) {
    throw new MerglotError(
      "merge.rank",
      `module "${job.name}": factors space needs equal ranks (as PEFT), but adapters have ranks ` +
        `${job.inputs.map((x) => x.rank).join(", ")}; use space: delta or a knots_* method`,
    );
  }
  // `linear` normalises the user's weights, then combines like task arithmetic (PEFT's "linear" type)
  const userWeights = job.inputs.map((x) => x.weight);
  const linear = method.name === "linear";
  const w = linear ? method.coefficients!(userWeights) : userWeights;
  const runAs = linear ? resolveMethod("task_arithmetic")!.method : method;
  const ws = job.inputs.map((x, i) => w[i]! * x.scaling);
  const wA = ws.map((v) => Math.sign(v) * Math.sqrt(Math.abs(v)));
  const wB = ws.map((v) => Math.sqrt(Math.abs(v)));
  const combine = (key: "lora_A" | "lora_B", xs: Float32Array[], weights: number[], lambda: number) => {
    // each factor list gets its own buffer roles: the A result must survive merging the B list
    const own: Buffers = {
      f32: (role, n) => buf.f32(`${key}.${role}`, n),
      f64: (role, n) => buf.f64(`${key}.${role}`, n),
    };
    // rows: A_i is r × in, B_i is out × r
    const bound = ops.bind(job, key, (i) => xs[i]!, own, key === "lora_A" ? job.in : r);
    const ctx = {
      ...bound,
      weights,
      signMethod: opts.signMethod,
      params: opts.params ?? METHOD_PARAM_DEFAULTS,
    };
    return runMethod(runAs, xs, { ...ctx, buffers: own }, lambda);
  };
  const a = combine(
    "lora_A",
    job.inputs.map((x) => x.a),
    wA,
    1,
  );
  const b = combine(
    "lora_B",
    job.inputs.map((x) => x.b),
    wB,
    opts.lambda,
  );
  return fitRank({ a, b, rank: r }, job.out, job.in, job.targetRank, dest);
}
