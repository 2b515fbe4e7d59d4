/**
 * Merging one module: read the participating adapters' factors, check them, run the space, and write the
 * result straight into its planned place in the output file. Used both in process and inside worker
 * threads, so a module's result never depends on where it ran. Every large array lives in per-thread
 * scratch reused from module to module: on the VMs this runs on, first-touching fresh memory costs more
 * than the arithmetic.
 */
import { closeSync, openSync } from "node:fs";
import { fileError } from "../output/fs-errors.js";
import { isMerglotError, MerglotError } from "../errors.js";
import { LoraAdapter } from "../formats/peft.js";
import { writeEncodedAt } from "../formats/safetensors.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { scratchF32, scratchF64 } from "../tensor/workspace.js";
import { makeBinder, type GlobalThresholds } from "./binder.js";
import type { OutputBuffers } from "./lowrank.js";
import { METHOD_PARAM_DEFAULTS, resolveMethod, type Buffers, type MethodParams } from "./methods.js";
import type { SignMethod } from "./operators.js";
import { paramAt, type ModelParam } from "./param-setting.js";
import type { PlannedModule } from "./plan.js";
import { mergeDelta } from "./spaces/delta.js";
import { mergeFactors } from "./spaces/factors.js";
import { mergeCore } from "./spaces/core.js";
import { mergeKnots } from "./spaces/knots.js";
import type { ModuleJob, SpaceResult } from "./spaces/types.js";

/** The plain-data part of a plan a worker needs (structured-clone friendly). */
export interface ComputeSettings {
  methodName: string;
  space: "delta" | "factors" | "knots" | "core";
  seed: number;
  rescale: boolean;
  lambda: number;
  signMethod: SignMethod;
  /** DELLA's epsilon, Breadcrumbs' gamma, SCE's select_topk (defaults when absent). */
  methodParams?: MethodParams;
  models: { path: string; weight: ModelParam; density: ModelParam }[];
  global?: [string, { bits: number; ties: number }][];
  /** The output weights temp file, its dtype, and the user's output path (named in messages). */
  output?: { path: string; dtype: FloatDType; display: string };
  /**
   * Already-open descriptors of the adapters' weights files, one per model: every thread reads through
   * these (positional reads are thread-safe) instead of opening each adapter again, so a merge holds one
   * handle per adapter whatever the thread count.
   */
  weightsFds?: number[];
}

/** Thrown by a module run that saw the merge's stop flag: not an error of its own. */
export class MergeCancelled extends Error {
  constructor() {
    super("merge cancelled");
  }
}

/** Where a module's two tensors go in the output file. */
export interface Placement {
  aPos: number;
  bPos: number;
}

/** Per-thread scratch for the merge's temporaries. */
export const scratchBuffers: Buffers = {
  f32: (role, n) => scratchF32(`merge.${role}`, n),
  f64: (role, n) => scratchF64(`merge.${role}`, n),
};

const outputBuffers: OutputBuffers = {
  a: (n) => scratchF32("merge.out.a", n),
  b: (n) => scratchF32("merge.out.b", n),
};

/**
 * Opens adapters on first use and keeps them open for the life of the worker / merge; with `weightsFds`
 * the weights are read through those shared descriptors (not owned, never closed here).
 */
export class AdapterCache {
  private readonly open = new Map<number, LoraAdapter>();
  constructor(
    private readonly paths: readonly string[],
    private readonly weightsFds?: readonly number[],
  ) {}
  get(i: number): LoraAdapter {
    let a = this.open.get(i);
    if (!a) {
      const path = this.paths[i]!;
      try {
        a = LoraAdapter.open(path, { weightsFd: this.weightsFds?.[i] });
      } catch (e) {
        throw fileError(e, path, "opening the adapter");
      }
      this.open.set(i, a);
    }
    return a;
  }
  close(): void {
    for (const a of this.open.values()) a.close();
    this.open.clear();
  }
}

function checkFinite(x: Float32Array, adapter: string, tensor: string): void {
  // x·0 is 0 for every finite x and NaN for ±Infinity and NaN: a branch-free pass (four independent sums, so
  // the additions do not wait on each other: 0.36 ns a value against 0.92 for the Number.isFinite loop); the
  // search below runs only when something is not finite
  let p0 = 0;
  let p1 = 0;
  let p2 = 0;
  let p3 = 0;
  const n4 = x.length & ~3;
  for (let i = 0; i < n4; i += 4) {
    p0 += x[i]! * 0;
    p1 += x[i + 1]! * 0;
    p2 += x[i + 2]! * 0;
    p3 += x[i + 3]! * 0;
  }
  for (let i = n4; i < x.length; i++) p0 += x[i]! * 0;
  if (p0 + p1 + p2 + p3 === 0) return;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]!)) {
      throw new MerglotError(
        "merge.nonfinite",
        `${adapter}: tensor "${tensor}" contains ${x[i]} at index ${i}`,
      );
    }
  }
}

/**
 * The largest magnitude each output dtype holds without turning into ±Infinity when rounded to it
 * (the halfway point above its largest finite value; float32 results are checked for finiteness alone).
 */
const DTYPE_OVERFLOW: Record<FloatDType, number> = {
  F64: Infinity,
  F32: Infinity,
  F16: 65520, // largest finite float16 is 65504; 65520 rounds up to Infinity
  BF16: 3.3961775292304e38, // largest finite bfloat16 is 3.3895313892515e38
};

/**
 * A merged factor must hold finite values that the output dtype can represent: huge weights or lambda
 * (e.g. 1e308) overflow float32 arithmetic, and a value above 65504 becomes Infinity in float16. Refused
 * before anything is written, naming the module.
 */
export function checkResult(x: Float32Array, module: string, factor: string, dtype: FloatDType): void {
  const limit = DTYPE_OVERFLOW[dtype];
  // the largest magnitude in four independent chains (Math.max propagates NaN); the search below runs only
  // when it is not below the limit (NaN, ±Infinity, or too large for the dtype)
  let m0 = 0;
  let m1 = 0;
  let m2 = 0;
  let m3 = 0;
  const n4 = x.length & ~3;
  for (let i = 0; i < n4; i += 4) {
    m0 = Math.max(m0, Math.abs(x[i]!));
    m1 = Math.max(m1, Math.abs(x[i + 1]!));
    m2 = Math.max(m2, Math.abs(x[i + 2]!));
    m3 = Math.max(m3, Math.abs(x[i + 3]!));
  }
  for (let i = n4; i < x.length; i++) m0 = Math.max(m0, Math.abs(x[i]!));
  if (Math.max(m0, m1, m2, m3) < limit) return;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (Number.isFinite(v) && Math.abs(v) < limit) continue;
    const what = Number.isFinite(v)
      ? `${v} at index ${i}, which is out of range for the output dtype ${dtype}; check the recipe's ` +
        `weights and lambda (or choose output.dtype: float32)`
      : `${v} at index ${i}; check the recipe's weights and lambda`;
    throw new MerglotError(
      "merge.nonfinite_result",
      `module "${module}": the merged ${factor} contains ${what}`,
    );
  }
}

/** Read one module's inputs into a job (factors land in `buf`, reused across modules). */
export function loadJob(
  m: PlannedModule,
  settings: ComputeSettings,
  cache: AdapterCache,
  buf: Buffers = scratchBuffers,
): ModuleJob {
  const inputs = m.participants.map((i, p) => {
    const adapter = cache.get(i);
    const lm = adapter.get(m.name)!;
    let a: Float32Array;
    let b: Float32Array;
    try {
      a = adapter.readA(lm, buf.f32(`in.a.${p}`, lm.rank * lm.inFeatures));
      b = adapter.readB(lm, buf.f32(`in.b.${p}`, lm.outFeatures * lm.rank));
    } catch (e) {
      throw fileError(e, adapter.weightsPath, `reading module "${m.name}"`);
    }
    checkFinite(a, adapter.path, lm.aName);
    checkFinite(b, adapter.path, lm.bName);
    const cfg = settings.models[i]!;
    const weight = paramAt(cfg.weight, m.name, m.t);
    const density = paramAt(cfg.density, m.name, m.t);
    return { index: i, a, b, rank: lm.rank, scaling: lm.scaling, weight, density };
  });
  return { name: m.name, out: m.out, in: m.in, inputs, targetRank: m.targetRank };
}

export function computeJob(
  job: ModuleJob,
  settings: ComputeSettings,
  global?: GlobalThresholds,
  buf: Buffers = scratchBuffers,
  dest: OutputBuffers = outputBuffers,
): SpaceResult {
  const { method } = resolveMethod(settings.methodName)!;
  const p = settings.methodParams ?? METHOD_PARAM_DEFAULTS;
  const params = { epsilon: p.epsilon, gamma: p.gamma };
  const ops = makeBinder({ seed: settings.seed, rescale: settings.rescale, global, params });
  const opts = {
    lambda: settings.lambda,
    signMethod: settings.signMethod,
    seed: settings.seed,
    params: p,
  };
  switch (settings.space) {
    case "knots":
      return mergeKnots(job, method, opts, ops, buf, dest);
    case "core":
      return mergeCore(job, method, opts, ops, buf, dest);
    case "factors":
      return mergeFactors(job, method, opts, ops, buf, dest);
    default:
      return mergeDelta(job, method, opts, ops, buf, dest);
  }
}

/**
 * computeJob, with linear-algebra failures named by module: a non-finite intermediate (weights or lambda
 * so large that the dense merge overflows before its SVD) is the same user error as a non-finite result.
 */
function computeModule(job: ModuleJob, settings: ComputeSettings, global?: GlobalThresholds): SpaceResult {
  try {
    return computeJob(job, settings, global);
  } catch (e) {
    if (!isMerglotError(e) || !e.code.startsWith("linalg.")) throw e;
    const nonfinite = e.code === "linalg.nonfinite";
    throw new MerglotError(
      nonfinite ? "merge.nonfinite_result" : e.code,
      `module "${job.name}": ${nonfinite ? "the merge overflowed (" : ""}${e.message.replace(/\.$/, "")}` +
        (nonfinite ? "); check the recipe's weights and lambda" : ""),
      { cause: e },
    );
  }
}

/** Reads, merges and writes modules one at a time into the output file (one per thread). */
export class ModuleMerger {
  private readonly cache: AdapterCache;
  private readonly global?: GlobalThresholds;
  private fd = -1;
  private readonly bytes = new Uint8Array(1 << 20);

  constructor(private readonly settings: ComputeSettings) {
    this.cache = new AdapterCache(
      settings.models.map((m) => m.path),
      settings.weightsFds,
    );
    this.global = settings.global ? new Map(settings.global) : undefined;
  }

  /**
   * `stopped` is polled between the read, compute and write steps: when it says so the run throws
   * MergeCancelled, so that a failed parallel merge winds down within one step per thread.
   */
  run(
    m: PlannedModule,
    at: Placement,
    stopped: () => boolean = () => false,
  ): { readMs: number; computeMs: number; writeMs: number } {
    const out = this.settings.output!;
    try {
      if (this.fd < 0) this.fd = openSync(out.path, "r+");
    } catch (e) {
      throw fileError(e, out.display, "opening the output for writing");
    }
    if (stopped()) throw new MergeCancelled();
    const t0 = performance.now();
    const job = loadJob(m, this.settings, this.cache);
    if (stopped()) throw new MergeCancelled();
    const t1 = performance.now();
    const r = computeModule(job, this.settings, this.global);
    checkResult(r.a, m.name, "lora_A", out.dtype);
    checkResult(r.b, m.name, "lora_B", out.dtype);
    if (stopped()) throw new MergeCancelled();
    const t2 = performance.now();
    try {
      writeEncodedAt(this.fd, at.aPos, r.a, out.dtype, this.bytes);
      writeEncodedAt(this.fd, at.bPos, r.b, out.dtype, this.bytes);
    } catch (e) {
      throw fileError(e, out.display, `writing module "${m.name}"`);
    }
    return { readMs: t1 - t0, computeMs: t2 - t1, writeMs: performance.now() - t2 };
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.cache.close();
  }
}
