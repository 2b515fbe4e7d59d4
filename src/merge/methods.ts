/**
 * Merge methods: each a small pure function over one module's task tensors (one per adapter) plus a
 * declared parameter schema. The space (delta, factors, knots) decides what the task tensors are; the
 * engine supplies `trim` / `drop` already bound to the adapter's density, scope and random stream, so the
 * methods themselves stay one line of composition each.
 */
import {
  disjointMean,
  electSign,
  scaleInPlace,
  ramMerge,
  sceMerge,
  weightedSum,
  type SignMethod,
  type Tensor,
  type TrimThreshold,
} from "./operators.js";
import { fusedDisjointMerge, type RangeOperator } from "./fused.js";
import { tiesMergeWasm } from "./ties-wasm.js";
import type { LowRank } from "./lowrank.js";
import { isoCMerge, isoCtsMerge, tsvMerge } from "./spectral.js";
import { karcherMerge, multislerpMerge, nuslerpMerge, slerpMerge } from "./spherical.js";
import type { ModuleJob } from "./spaces/types.js";

export interface MethodContext {
  /** Per-adapter weight w_i (default 1). */
  weights: readonly number[];
  signMethod: SignMethod;
  /** trim(x_i, ρ_i) in the recipe's density scope. */
  trim(i: number, x: Tensor): Tensor;
  /** drop(x_i, ρ_i) with the adapter's seeded stream and the recipe's `rescale`. */
  drop(i: number, x: Tensor): Tensor;
  /**
   * trim / drop by ranges of the task tensor (the engine's binder provides them): when present, ties and
   * dare_ties run the fused kernel of fused.ts (same bits as composing trim/drop, elect and disjoint mean).
   */
  trimRange?: RangeOperator;
  dropRange?: RangeOperator;
  /** Participant i's trim threshold (tie quota included) for the SIMD TIES kernel, when the binder has it. */
  trimThreshold?(i: number): TrimThreshold;
  /** DELLA's magprune(x_i, ρ_i, ε) with the adapter's seeded stream (row-wise ranks) and `rescale`. */
  magprune(i: number, x: Tensor): Tensor;
  /** Model Breadcrumbs' cuts of x_i (density ρ_i, outlier fraction γ). */
  breadcrumbs(i: number, x: Tensor): Tensor;
  /** The method options (DELLA's epsilon, Breadcrumbs' gamma, SCE's select_topk, RAM's epsilon). */
  params: MethodParams;
  /** Where temporaries and the result live (default: fresh arrays; the engine passes reused scratch). */
  buffers?: Buffers;
}

/** Named temporaries: a role is used for one purpose within one method call. */
export interface Buffers {
  f32(role: string, n: number): Float32Array;
  f64(role: string, n: number): Float64Array;
}

export const freshBuffers: Buffers = {
  f32: (_role, n) => new Float32Array(n),
  f64: (_role, n) => new Float64Array(n),
};

function sum(xs: readonly Tensor[], c: readonly number[], b: Buffers): Tensor {
  const n = xs[0]!.length;
  return weightedSum(xs, c, b.f32("method.out", n), b.f64("method.acc", n));
}

function disjoint(kept: readonly Tensor[], ctx: MethodContext): Tensor {
  const b = ctx.buffers ?? freshBuffers;
  const n = kept[0]!.length;
  // elect + disjoint mean are TIES with nothing trimmed: the SIMD kernel's bits are the JavaScript operators'
  const out = b.f32("method.out", n);
  // thresholds that keep every entry (zeros and −0 as ties, quota unlimited; fresh: the kernel consumes quotas)
  const all: TrimThreshold[] = kept.map(() => ({ bits: 0, ties: Number.MAX_SAFE_INTEGER }));
  if (tiesMergeWasm(kept, all, ctx.weights, ctx.signMethod, out)) return out;
  const gamma = electSign(kept, ctx.signMethod, b.f32("method.gamma", n), b.f64("method.sum", n));
  return disjointMean(kept, ctx.weights, gamma, out);
}

/** disjoint(op(x_i)…) through the fused kernel when the context has the range form of op. */
function disjointOf(
  xs: readonly Tensor[],
  ctx: MethodContext,
  range: RangeOperator | undefined,
  op: (i: number, x: Tensor) => Tensor,
): Tensor {
  if (!range)
    return disjoint(
      xs.map((x, i) => op(i, x)),
      ctx,
    );
  const out = (ctx.buffers ?? freshBuffers).f32("method.out", xs[0]!.length);
  return fusedDisjointMerge(xs, range, ctx.weights, ctx.signMethod, out);
}

/**
 * ties: the WebAssembly SIMD kernel when thresholds are available (same bits as the JavaScript fused kernel),
 * else the fused JavaScript kernel or the composition.
 */
function tiesOf(xs: readonly Tensor[], ctx: MethodContext): Tensor {
  if (ctx.trimThreshold && ctx.trimRange) {
    const out = (ctx.buffers ?? freshBuffers).f32("method.out", xs[0]!.length);
    const thresholds = xs.map((_, i) => ctx.trimThreshold!(i));
    if (tiesMergeWasm(xs, thresholds, ctx.weights, ctx.signMethod, out)) return out;
  }
  return disjointOf(xs, ctx, ctx.trimRange, (i, x) => ctx.trim(i, x));
}

/** Which recipe parameters a method reads (anything else set in the recipe is reported as unused). */
export interface MethodSchema {
  /** True when the result is linear in the task tensors (exact low-rank output in delta space). */
  linear: boolean;
  usesDensity: boolean;
  usesSignMethod: boolean;
  usesRescale: boolean;
  /** Extra recipe parameters the method reads (DELLA's epsilon, Breadcrumbs' gamma, SCE's select_topk). */
  params?: readonly MethodParam[];
  /** Defaults of `params` that differ for this method from METHOD_PARAM_DEFAULTS. */
  paramDefaults?: Partial<MethodParams>;
  /** Density is only counted per tensor (density_scope: global is not defined for the method). */
  tensorScopeOnly?: boolean;
  /** Needs each whole task tensor at once (statistics over the tensor and across adapters): no row chunks. */
  wholeTensor?: boolean;
  /**
   * Methods on the whole module's deltas (TSV-Merge, Iso-C/CTS, the spherical family): an exact low-rank result
   * computed from the factors. They exist only in the delta space (no knots_/core_ variant, no factors space).
   */
  fromFactors?(job: ModuleJob, weights: readonly number[], lambda: number, params: MethodParams): LowRank;
  /** Runs the SIMD TIES kernel on trim(x_i): a space may form the task tensors in its memory (inputSlots). */
  fusedTies?: boolean;
  /** The method is defined for exactly this many adapters (SLERP, NuSLERP: 2). */
  exactInputs?: number;
  /** Per-adapter weights are normalised (Σ w_i must not cancel, as for `linear`). */
  normalisesWeights?: boolean;
  /** A per-adapter density the method cannot use with these parameters: the reason, else undefined. */
  checkDensity?(density: number, params: MethodParams): string | undefined;
}

export const METHOD_PARAMS = [
  "epsilon",
  "gamma",
  "select_topk",
  "t",
  "max_iter",
  "tol",
  "common_space_fraction",
] as const;
export type MethodParam = (typeof METHOD_PARAMS)[number];
export type MethodParams = Record<MethodParam, number>;

/** Defaults of the extra parameters (see the README's method table for their sources). */
export const METHOD_PARAM_DEFAULTS: MethodParams = {
  // DELLA: no value fixed by the paper or mergekit (which requires it); a moderate spread of drop rates
  epsilon: 0.1,
  // Breadcrumbs: mergekit's default fraction of largest magnitudes removed
  gamma: 0.01,
  // SCE: mergekit's default (no variance selection)
  select_topk: 1,
  // SLERP: the midpoint (mergekit requires t; 0.5 weighs both adapters alike)
  t: 0.5,
  // Karcher mean: mergekit's defaults
  max_iter: 10,
  tol: 1e-5,
  // Iso-CTS: the paper's (and its code's) share of the spectrum given to the common subspace
  common_space_fraction: 0.8,
};

/** DELLA's keep probabilities ρ + ε/2 − ε·r/n must lie in (0, 1]: ε/2 ≤ ρ ≤ 1 − ε/2 (ρ = 1 keeps all). */
function dellaDensity(density: number, p: MethodParams): string | undefined {
  if (density >= 1) return undefined;
  const e = p.epsilon;
  if (density - e / 2 < 0 || density + e / 2 > 1)
    return `della needs epsilon/2 ≤ density ≤ 1 − epsilon/2 (density ${density}, epsilon ${e})`;
  return undefined;
}

export interface MergeMethod extends MethodSchema {
  name: BaseMethodName;
  description: string;
  /** Combination coefficients c_i of a linear method: result = Σ c_i x_i (before lambda). */
  coefficients?(weights: readonly number[]): number[];
  run(xs: readonly Tensor[], ctx: MethodContext): Tensor;
}

export const BASE_METHODS = [
  "task_arithmetic",
  "linear",
  "magnitude_prune",
  "ties",
  "dare_linear",
  "dare_ties",
  "della",
  "della_linear",
  "breadcrumbs",
  "breadcrumbs_ties",
  "sce",
  "ram",
  "tsv",
  "iso_c",
  "iso_cts",
  "slerp",
  "nuslerp",
  "multislerp",
  "karcher",
] as const;
export type BaseMethodName = (typeof BASE_METHODS)[number];

function normalised(weights: readonly number[]): number[] {
  const total = weights.reduce((s, w) => s + w, 0);
  return weights.map((w) => w / total);
}

/** The schema shared by the methods computed from the factors (they never run on task tensors). */
const spectral = {
  linear: false,
  usesDensity: false,
  usesSignMethod: false,
  usesRescale: false,
  run: (): Tensor => {
    throw new Error("this method is computed from the factors (delta space only)");
  },
} as const;

const methods: Record<BaseMethodName, MergeMethod> = {
  task_arithmetic: {
    name: "task_arithmetic",
    description: "Σ w_i x_i",
    linear: true,
    usesDensity: false,
    usesSignMethod: false,
    usesRescale: false,
    coefficients: (w) => [...w],
    run: (xs, ctx) => sum(xs, ctx.weights, ctx.buffers ?? freshBuffers),
  },
  linear: {
    name: "linear",
    description: "Σ w_i x_i / Σ w_i",
    linear: true,
    usesDensity: false,
    usesSignMethod: false,
    usesRescale: false,
    coefficients: normalised,
    run: (xs, ctx) => sum(xs, normalised(ctx.weights), ctx.buffers ?? freshBuffers),
  },
  magnitude_prune: {
    name: "magnitude_prune",
    description: "Σ w_i trim(x_i)",
    linear: false,
    usesDensity: true,
    usesSignMethod: false,
    usesRescale: false,
    run: (xs, ctx) =>
      weightedSum(
        xs.map((x, i) => ctx.trim(i, x)),
        ctx.weights,
      ),
  },
  ties: {
    name: "ties",
    description: "disjoint mean of trim(x_i) under the elected sign",
    linear: false,
    usesDensity: true,
    usesSignMethod: true,
    usesRescale: false,
    fusedTies: true,
    run: tiesOf,
  },
  dare_linear: {
    name: "dare_linear",
    description: "Σ w_i drop(x_i)",
    linear: false,
    usesDensity: true,
    usesSignMethod: false,
    usesRescale: true,
    run: (xs, ctx) =>
      weightedSum(
        xs.map((x, i) => ctx.drop(i, x)),
        ctx.weights,
      ),
  },
  dare_ties: {
    name: "dare_ties",
    description: "disjoint mean of drop(x_i) under the elected sign",
    linear: false,
    usesDensity: true,
    usesSignMethod: true,
    usesRescale: true,
    run: (xs, ctx) => disjointOf(xs, ctx, ctx.dropRange, (i, x) => ctx.drop(i, x)),
  },
  della: {
    name: "della",
    description: "disjoint mean of magprune(x_i) under the elected sign (DELLA)",
    linear: false,
    usesDensity: true,
    usesSignMethod: true,
    usesRescale: true,
    params: ["epsilon"],
    tensorScopeOnly: true,
    checkDensity: dellaDensity,
    run: (xs, ctx) =>
      disjoint(
        xs.map((x, i) => ctx.magprune(i, x)),
        ctx,
      ),
  },
  della_linear: {
    name: "della_linear",
    description: "Σ w_i magprune(x_i) (DELLA without sign election)",
    linear: false,
    usesDensity: true,
    usesSignMethod: false,
    usesRescale: true,
    params: ["epsilon"],
    tensorScopeOnly: true,
    checkDensity: dellaDensity,
    run: (xs, ctx) =>
      weightedSum(
        xs.map((x, i) => ctx.magprune(i, x)),
        ctx.weights,
      ),
  },
  breadcrumbs: {
    name: "breadcrumbs",
    description: "Σ w_i breadcrumbs(x_i) (Model Breadcrumbs)",
    linear: false,
    usesDensity: true,
    usesSignMethod: false,
    usesRescale: false,
    params: ["gamma"],
    tensorScopeOnly: true,
    run: (xs, ctx) =>
      weightedSum(
        xs.map((x, i) => ctx.breadcrumbs(i, x)),
        ctx.weights,
      ),
  },
  breadcrumbs_ties: {
    name: "breadcrumbs_ties",
    description: "disjoint mean of breadcrumbs(x_i) under the elected sign",
    linear: false,
    usesDensity: true,
    usesSignMethod: true,
    usesRescale: false,
    params: ["gamma"],
    tensorScopeOnly: true,
    run: (xs, ctx) =>
      disjoint(
        xs.map((x, i) => ctx.breadcrumbs(i, x)),
        ctx,
      ),
  },
  sce: {
    name: "sce",
    description: "SCE: variance selection, squared-magnitude weights, minority signs erased",
    linear: false,
    usesDensity: false,
    usesSignMethod: true,
    usesRescale: false,
    params: ["select_topk"],
    wholeTensor: true,
    run: (xs, ctx) =>
      sceMerge(xs, ctx.weights, ctx.params.select_topk, ctx.signMethod, ctx.buffers ?? freshBuffers),
  },
  ram: {
    name: "ram",
    description: "RAM: lone contributions kept, shared ones averaged (|x| > epsilon contributes)",
    linear: false,
    usesDensity: false,
    usesSignMethod: false,
    usesRescale: false,
    params: ["epsilon"],
    // mergekit's default for RAM: meant for sparse RL updates; dense LoRA deltas need a larger one
    paramDefaults: { epsilon: 1e-5 },
    run: (xs, ctx) =>
      ramMerge(
        xs,
        ctx.weights,
        ctx.params.epsilon,
        (ctx.buffers ?? freshBuffers).f32("method.out", xs[0]!.length),
      ),
  },
  tsv: {
    name: "tsv",
    description: "TSV-Merge: per-task singular vectors, orthogonalized (from the factors)",
    ...spectral,
    fromFactors: tsvMerge,
  },
  iso_c: {
    name: "iso_c",
    description:
      "Iso-C: Σ w_i ΔW_i with its spectrum flattened to the mean singular value (from the factors)",
    ...spectral,
    fromFactors: isoCMerge,
  },
  iso_cts: {
    name: "iso_cts",
    description:
      "Iso-CTS: common subspace of Σ w_i ΔW_i plus task-specific subspaces, isotropic spectrum (from the factors)",
    ...spectral,
    params: ["common_space_fraction"],
    fromFactors: isoCtsMerge,
  },
  slerp: {
    name: "slerp",
    description: "SLERP of two deltas: direction on the great circle, norm interpolated (parameter t)",
    ...spectral,
    params: ["t"],
    exactInputs: 2,
    fromFactors: slerpMerge,
  },
  nuslerp: {
    name: "nuslerp",
    description: "NuSLERP of two deltas: SLERP with t = w_2 / (w_1 + w_2)",
    ...spectral,
    exactInputs: 2,
    fromFactors: nuslerpMerge,
  },
  multislerp: {
    name: "multislerp",
    description: "Multi-SLERP: normalised weighted mean of the unit deltas × the weighted mean norm",
    ...spectral,
    normalisesWeights: true,
    fromFactors: multislerpMerge,
  },
  karcher: {
    name: "karcher",
    description: "Karcher mean of the unit deltas on the sphere × the weighted mean norm",
    ...spectral,
    params: ["max_iter", "tol"],
    normalisesWeights: true,
    fromFactors: karcherMerge,
  },
};

/** The spaces a method name can put a per-tensor method in by prefix: `knots_<m>`, `core_<m>`. */
export const PREFIX_SPACES = ["knots", "core"] as const;
export type PrefixSpace = (typeof PREFIX_SPACES)[number];

export const METHOD_NAMES: readonly string[] = [
  ...BASE_METHODS,
  ...PREFIX_SPACES.flatMap((p) =>
    BASE_METHODS.filter((m) => !methods[m].fromFactors).map((m) => `${p}_${m}`),
  ),
];

/**
 * Resolve a recipe's `merge_method` into the base method and the space its name puts it in (`knots_<m>`: the
 * KnOTS space, `core_<m>`: Core Space; undefined: the recipe's `space`).
 */
export function resolveMethod(
  name: string,
): { method: MergeMethod; knots: boolean; prefixSpace?: PrefixSpace } | undefined {
  const prefixSpace = PREFIX_SPACES.find((p) => name.startsWith(`${p}_`));
  const base = (prefixSpace ? name.slice(prefixSpace.length + 1) : name) as BaseMethodName;
  if (!Object.hasOwn(methods, base)) return undefined;
  const method = methods[base];
  if (prefixSpace && method.fromFactors) return undefined;
  return { method, knots: prefixSpace === "knots", ...(prefixSpace ? { prefixSpace } : {}) };
}

/** Run a method and apply the final `lambda`. */
export function runMethod(
  method: MergeMethod,
  xs: readonly Tensor[],
  ctx: MethodContext,
  lambda: number,
): Tensor {
  return scaleInPlace(method.run(xs, ctx), lambda);
}
