/**
 * Binds trim / drop to one adapter's recipe settings:
 * - trim in `tensor` scope selects within the task tensor; in `global` scope it applies a threshold found
 *   beforehand over all of that adapter's task tensors (see global-density.ts), with the tie quota this
 *   module gets so that exactly floor(ρ·N) entries survive overall.
 * - drop draws from a xoshiro stream seeded by (recipe seed, adapter index, module name, task-tensor key), so
 *   the result never depends on thread count or scheduling order.
 */
import { Rng, seedFrom } from "../tensor/linalg.js";
import { applyThreshold, drop, trim, type Tensor, type TrimThreshold } from "./operators.js";
import type { ModuleJob, OperatorBinder } from "./spaces/types.js";

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

export function makeBinder(opts: {
  seed: number;
  rescale: boolean;
  global?: GlobalThresholds;
}): OperatorBinder {
  return {
    trim(job: ModuleJob, tensorKey: string, i: number, x: Tensor): Tensor {
      const input = job.inputs[i]!;
      if (opts.global) {
        const t = opts.global.get(thresholdKey(input.index, tensorKey, job.name));
        if (!t) throw new Error(`no global threshold for adapter ${input.index}, ${tensorKey}, ${job.name}`);
        return applyThreshold(x, t);
      }
      return trim(x, input.density);
    },
    drop(job: ModuleJob, tensorKey: string, i: number, x: Tensor): Tensor {
      const input = job.inputs[i]!;
      return drop(
        x,
        input.density,
        new Rng(dropSeed(opts.seed, input.index, job.name, tensorKey)),
        opts.rescale,
      );
    },
  };
}
