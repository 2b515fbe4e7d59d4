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
import { applyThreshold, drop, trimThreshold, type Tensor, type TrimThreshold } from "./operators.js";
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
}

export interface OperatorBinder {
  /**
   * Operators for one task tensor. `whole(i)` returns participant i's entire task tensor; it is called only
   * when a per-tensor threshold must be computed and the caller works in chunks.
   */
  bind(job: ModuleJob, tensorKey: string, whole: (i: number) => Tensor, buffers?: Buffers): BoundOperators;
}

export function makeBinder(opts: {
  seed: number;
  rescale: boolean;
  global?: GlobalThresholds;
}): OperatorBinder {
  return {
    bind(job, tensorKey, whole, buffers = freshBuffers) {
      const thresholds = new Map<number, TrimThreshold>();
      const streams = new Map<number, Rng>();
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
          const input = job.inputs[i]!;
          let rng = streams.get(i);
          if (!rng) streams.set(i, (rng = new Rng(dropSeed(opts.seed, input.index, job.name, tensorKey))));
          return drop(
            chunk,
            input.density,
            rng,
            opts.rescale,
            buffers.f32(`${tensorKey}.kept.${i}`, chunk.length),
          );
        },
      };
    },
  };
}
