/**
 * Merging one module: read the participating adapters' factors, check them, run the space. Used both in
 * process and inside worker threads, so a module's result never depends on where it ran.
 */
import { MerglotError } from "../errors.js";
import { LoraAdapter } from "../formats/peft.js";
import { makeBinder, type GlobalThresholds } from "./binder.js";
import { resolveMethod } from "./methods.js";
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
  models: { path: string; weight: number; density: number }[];
  global?: [string, { bits: number; ties: number }][];
}

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

/** Read one module's inputs into a job. */
export function loadJob(m: PlannedModule, settings: ComputeSettings, cache: AdapterCache): ModuleJob {
  const inputs = m.participants.map((i) => {
    const adapter = cache.get(i);
    const lm = adapter.get(m.name)!;
    const a = adapter.readA(lm);
    const b = adapter.readB(lm);
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
): SpaceResult {
  const { method } = resolveMethod(settings.methodName)!;
  const ops = makeBinder({ seed: settings.seed, rescale: settings.rescale, global });
  const opts = { lambda: settings.lambda, signMethod: settings.signMethod, seed: settings.seed };
  switch (settings.space) {
    case "knots":
      return mergeKnots(job, method, opts, ops);
    case "factors":
      return mergeFactors(job, method, opts, ops);
    default:
      return mergeDelta(job, method, opts, ops);
  }
}
