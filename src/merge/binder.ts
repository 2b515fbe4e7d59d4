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
  applyThresholdRange,
  breadcrumbsCuts,
  drop,
  trimThreshold,
  type BreadcrumbsCuts,
  type Tensor,
  type TrimThreshold,
} from "./operators.js";
import { magpruneFast } from "./della-wasm.js";
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
  /**
   * Participant i's trim threshold for this task tensor (computed on first use), with the tie quota still
   * to consume: the SIMD kernel (ties-wasm.ts) applies and updates it as trimRange would.
   */
  trimThreshold(i: number): TrimThreshold;
  /** trim of entries [from, from + len) of `chunk` into out[0, len) (the fused kernels' form of trim). */
  trimRange(i: number, chunk: Tensor, from: number, len: number, out: Tensor): void;
  /** drop of entries [from, from + len) of `chunk` into out[0, len), from the same stream as drop. */
  dropRange(i: number, chunk: Tensor, from: number, len: number, out: Tensor): void;
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
      // participant i's threshold, with the tie quota left (shared by trim and trimRange)
      const threshold = (i: number): TrimThreshold => {
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
        return t;
      };
      // float32 bit views of participant i's chunk and kept block (made once per chunk, not per block)
      const views: { x?: Tensor; xBits: Uint32Array; out?: Tensor; outBits: Uint32Array }[] = [];
      const view = (i: number, x: Tensor, out: Tensor) => {
        let v = views[i];
        if (!v) views[i] = v = { xBits: new Uint32Array(0), outBits: new Uint32Array(0) };
        if (v.x !== x) {
          v.x = x;
          v.xBits = new Uint32Array(x.buffer, x.byteOffset, x.length);
        }
        if (v.out !== out) {
          v.out = out;
          v.outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
        }
        return v;
      };
      return {
        trimThreshold: threshold,
        trim(i, chunk) {
          return applyThreshold(chunk, threshold(i), buffers.f32(`${tensorKey}.kept.${i}`, chunk.length));
        },
        trimRange(i, chunk, from, len, out) {
          const v = view(i, chunk, out);
          applyThresholdRange(v.xBits, from, len, threshold(i), v.outBits);
        },
        dropRange(i, chunk, from, len, out) {
          drop(chunk.subarray(from, from + len), job.inputs[i]!.density, stream(i), opts.rescale, out);
        },
        drop(i, chunk) {
          const out = buffers.f32(`${tensorKey}.kept.${i}`, chunk.length);
          return drop(chunk, job.inputs[i]!.density, stream(i), opts.rescale, out);
        },
        magprune(i, chunk) {
          const out = buffers.f32(`${tensorKey}.kept.${i}`, chunk.length);
          const d = job.inputs[i]!.density;
          return magpruneFast(chunk, d, params.epsilon, cols, stream(i), opts.rescale, out);
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
