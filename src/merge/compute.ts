/**
 * Merging one module: read the participating adapters' factors, check them, run the space, and write the
 * result straight into its planned place in the output file. Used both in process and inside worker
 * threads, so a module's result never depends on where it ran. Every large array lives in per-thread
 * scratch reused from module to module: on the VMs this runs on, first-touching fresh memory costs more
 * than the arithmetic.
 */
import { closeSync, openSync } from "node:fs";
import { MerglotError } from "../errors.js";
import { LoraAdapter } from "../formats/peft.js";
import { writeEncodedAt } from "../formats/safetensors.js";
import type { FloatDType } from "../tensor/dtypes.js";
import { scratchF32, scratchF64 } from "../tensor/workspace.js";
import { makeBinder, type GlobalThresholds } from "./binder.js";
import type { OutputBuffers } from "./lowrank.js";
import { METHOD_PARAM_DEFAULTS, resolveMethod, type Buffers, type MethodParams } from "./methods.js";
import type { SignMethod } from "./operators.js";
import type { PlannedModule } from "./plan.js";
import { mergeDelta } from "./spaces/delta.js";
import { mergeFactors } from "./spaces/factors.js";
import { mergeKnots } from "./spaces/knots.js";
import type { ModuleJob, SpaceResult } from "./spaces/types.js";

/** The plain-data part of a plan a worker needs (structured-clone friendly). */
export interface ComputeSettings {
  methodName: string;
  space: "delta" | "factors" | "knots";
  seed: number;
  rescale: boolean;
  lambda: number;
  signMethod: SignMethod;
  /** DELLA's epsilon, Breadcrumbs' gamma, SCE's select_topk (defaults when absent). */
  methodParams?: MethodParams;
  models: { path: string; weight: number; density: number }[];
  global?: [string, { bits: number; ties: number }][];
  /** The output weights temp file and its dtype. */
  output?: { path: string; dtype: FloatDType };
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

/** Opens adapters on first use and keeps them open for the life of the worker / merge. */
export class AdapterCache {
  private readonly open = new Map<number, LoraAdapter>();
  constructor(private readonly paths: readonly string[]) {}
  get(i: number): LoraAdapter {
    let a = this.open.get(i);
    if (!a) {
      a = LoraAdapter.open(this.paths[i]!);
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
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]!)) {
      throw new MerglotError(
        "merge.nonfinite",
        `${adapter}: tensor "${tensor}" contains ${x[i]} at index ${i}`,
      );
    }
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
    const a = adapter.readA(lm, buf.f32(`in.a.${p}`, lm.rank * lm.inFeatures));
    const b = adapter.readB(lm, buf.f32(`in.b.${p}`, lm.outFeatures * lm.rank));
    checkFinite(a, adapter.path, lm.aName);
    checkFinite(b, adapter.path, lm.bName);
    const cfg = settings.models[i]!;
    return { index: i, a, b, rank: lm.rank, scaling: lm.scaling, weight: cfg.weight, density: cfg.density };
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
    case "factors":
      return mergeFactors(job, method, opts, ops, buf, dest);
    default:
      return mergeDelta(job, method, opts, ops, buf, dest);
  }
}

/** Reads, merges and writes modules one at a time into the output file (one per thread). */
export class ModuleMerger {
  private readonly cache: AdapterCache;
  private readonly global?: GlobalThresholds;
  private fd = -1;
  private readonly bytes = new Uint8Array(1 << 20);

  constructor(private readonly settings: ComputeSettings) {
    this.cache = new AdapterCache(settings.models.map((m) => m.path));
    this.global = settings.global ? new Map(settings.global) : undefined;
  }

  run(m: PlannedModule, at: Placement): { readMs: number; computeMs: number; writeMs: number } {
    const out = this.settings.output!;
    if (this.fd < 0) this.fd = openSync(out.path, "r+");
    const t0 = performance.now();
    const job = loadJob(m, this.settings, this.cache);
    const t1 = performance.now();
    const r = computeJob(job, this.settings, this.global);
    const t2 = performance.now();
    writeEncodedAt(this.fd, at.aPos, r.a, out.dtype, this.bytes);
    writeEncodedAt(this.fd, at.bPos, r.b, out.dtype, this.bytes);
    return { readMs: t1 - t0, computeMs: t2 - t1, writeMs: performance.now() - t2 };
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.cache.close();
  }
}
