/**
 * Binds trim / drop to one adapter's recipe settings for one task tensor of one module:
 * - trim applies a magnitude threshold: in `tensor` scope computed from the adapter's whole task tensor, in
 *   `global` scope found beforehand over all of that adapter's task tensors (see global-density.ts), with this
 *   module's tie quota. The quota is consumed as entries are kept, so a task tensor may be processed in
 *   consecutive row chunks with exactly the result of one pass.
 * - drop draws from a xoshiro stream seeded by (recipe seed, adapter index, module name, task-tensor key) that
 *   persists across chunks, so the result never depends on chunking, thread count or scheduling order.
 */
import { Rng, seedFrom } from "../tensor/linalg.js";
import {
  applyBreadcrumbs,
  applyThreshold,
  breadcrumbsCuts,
  drop,
  magprune,
  trimThreshold,
  type BreadcrumbsCuts,
  type Tensor,
  type TrimThreshold,
} from "./operators.js";
import { freshBuffers, type Buffers } from "./methods.js";
import type { ModuleJob } from "./spaces/types.js";

/** Global-scope thresholds: key `${adapterIndex}/${tensorKey}/${module}` → threshold with this module's tie quota. */
export type GlobalThresholds = Map<string, TrimThreshold>;

export function thresholdKey(adapterIndex: number, tensorKey: string, module: string): string {
  return `${adapterIndex}/${tensorKey}/${module}`;
}

/** The seed of DARE's stream for one adapter's task tensor of one module (documented in the README). */
export function dropSeed(
  recipeSeed: number,
  adapterIndex: number,
  module: string,
  tensorKey: string,
): bigint {
  return seedFrom(recipeSeed, adapterIndex, module, tensorKey);
}

/** trim / drop for participant i of one task tensor, in flat order over one or more consecutive chunks. */
export interface BoundOperators {
  trim(i: number, chunk: Tensor): Tensor;
  drop(i: number, chunk: Tensor): Tensor;
  /** DELLA's magprune(x_i, ρ_i, ε) on whole rows, from the same seeded stream DARE uses. */
  magprune(i: number, chunk: Tensor): Tensor;
  /** Model Breadcrumbs' two magnitude cuts (tensor scope), chunkable like trim. */
  breadcrumbs(i: number, chunk: Tensor): Tensor;
}

/** Method options the operators read beyond the per-adapter density (DELLA's ε, Breadcrumbs' γ). */
export interface OperatorParams {
  epsilon: number;
  gamma: number;
}

export interface OperatorBinder {
  /**
   * Operators for one task tensor. `whole(i)` returns participant i's entire task tensor; it is called only
   * when a per-tensor threshold must be computed and the caller works in chunks. `cols` is the task tensor's
   * row length (chunks always hold whole rows).
   */
  bind(
    job: ModuleJob,
    tensorKey: string,
    whole: (i: number) => Tensor,
    buffers: Buffers | undefined,
    cols: number,
  ): BoundOperators;
}

export function makeBinder(opts: {
  seed: number;
  rescale: boolean;
  global?: GlobalThresholds;
  params?: OperatorParams;
}): OperatorBinder {
  const params = opts.params ?? { epsilon: 0, gamma: 0 };
  return {
    bind(job, tensorKey, whole, buffers = freshBuffers, cols) {
      const thresholds = new Map<number, TrimThreshold>();
      const cuts = new Map<number, BreadcrumbsCuts>();
      const streams = new Map<number, Rng>();
      const stream = (i: number): Rng => {
        let rng = streams.get(i);
        if (!rng) {
          rng = new Rng(dropSeed(opts.seed, job.inputs[i]!.index, job.name, tensorKey));
          streams.set(i, rng);
        }
        return rng;
      };
      return {
        trim(i, chunk) {
          let t = thresholds.get(i);
          if (!t) {
            const input = job.inputs[i]!;
            if (opts.global) {
              const g = opts.global.get(thresholdKey(input.index, tensorKey, job.name));
              if (!g)
                throw new Error(`no global threshold for adapter ${input.index}, ${tensorKey}, ${job.name}`);
              t = { ...g };
            } else {
              t = trimThreshold(whole(i), input.density);
            }
            thresholds.set(i, t);
          }
          return applyThreshold(chunk, t, buffers.f32(`${tensorKey}.kept.${i}`, chunk.length));
        },
        drop(i, chunk) {
          const out = buffers.f32(`${tensorKey}.kept.${i}`, chunk.length);
          return drop(chunk, job.inputs[i]!.density, stream(i), opts.rescale, out);
        },
        magprune(i, chunk) {
          const out = buffers.f32(`${tensorKey}.kept.${i}`, chunk.length);
          const d = job.inputs[i]!.density;
          return magprune(chunk, d, params.epsilon, cols, stream(i), opts.rescale, out);
        },
        breadcrumbs(i, chunk) {
          let c = cuts.get(i);
          if (!c) cuts.set(i, (c = breadcrumbsCuts(whole(i), job.inputs[i]!.density, params.gamma)));
          const out = buffers.f32(`${tensorKey}.kept.${i}`, chunk.length);
          return applyBreadcrumbs(chunk, c, out, buffers.f32(`${tensorKey}.top.${i}`, chunk.length));
        },
      };
    },
  };
}
