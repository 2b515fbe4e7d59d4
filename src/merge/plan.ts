/**
 * Planning a merge: open every adapter's header, check that they can be merged, and decide each output
 * module's declared rank, the output config and the tensor layout — before any tensor data is read.
 */
import { totalmem } from "node:os";
import { MerglotError } from "../errors.js";
import {
  adapterConfigJson,
  compareModules,
  factorNames,
  LoraAdapter,
  type FloatDType,
  type LoraModule,
} from "../formats/peft.js";
import type { TensorSpec } from "../formats/safetensors.js";
import { weightsCancel, type Recipe } from "./recipe.js";
import { layerPosition, paramAt } from "./param-setting.js";

export interface PlannedModule {
  name: string;
  layer: number | null;
  /** Layer position in [0, 1] at which per-module gradients are read (param-setting.ts). */
  t: number;
  kind: string;
  out: number;
  in: number;
  /** Recipe indices of the adapters that have this module. */
  participants: number[];
  targetRank: number;
}

export interface PlannedAdapter {
  path: string;
  weightsPath: string;
  modules: Map<string, LoraModule>;
  baseModel: string | null;
  dtype: string;
}

export interface MergePlan {
  recipe: Recipe;
  adapters: PlannedAdapter[];
  modules: PlannedModule[];
  dtype: FloatDType;
  config: Record<string, unknown>;
  specs: TensorSpec[];
  warnings: string[];
}

const DTYPES: Record<string, FloatDType> = { float32: "F32", float16: "F16", bfloat16: "BF16" };

/** The declared output rank of one module (DESIGN.md, `output.rank`). */
export function targetRank(recipe: Recipe, ranks: number[], out: number, inF: number): number {
  const sum = ranks.reduce((s, r) => s + r, 0);
  const full = Math.min(out, inF);
  const rank = recipe.output.rank;
  // Rank beyond min(out, in) adds only zero padding (full rank is already lossless): capped, and warned.
  if (typeof rank === "number") return Math.min(rank, full);
  if (rank === "full") return full;
  const lowRankExact =
    recipe.space === "knots" ||
    recipe.space === "core" ||
    (recipe.space === "delta" && (recipe.method.linear || recipe.method.fromFactors !== undefined));
  if (recipe.space === "factors") return ranks[0]!;
  if (lowRankExact) return sum;
  // a dense delta-space result: lossless at full rank, PEFT's default (largest input rank) otherwise
  // reduce, not Math.max(...ranks): a spread of a very long list overflows the stack
  return rank === "exact" ? full : ranks.reduce((x, y) => Math.max(x, y));
}

/** A delta-space method that forms the dense out × in deltas (not linear, not computed from the factors). */
function denseResult(recipe: Recipe): boolean {
  return recipe.space === "delta" && !recipe.method.linear && !recipe.method.fromFactors;
}

/** The most elements one typed array can hold here (V8's limit); a larger tensor cannot even be read. */
const MAX_ARRAY_ELEMENTS = 2 ** 32;

/**
 * A rough upper bound of the memory one module's merge needs: every participant's factors (float32, plus
 * float64 working copies), the dense deltas of a non-linear delta-space method, and KnOTS' stacked bases.
 */
export function moduleWorkingBytes(
  recipe: Recipe,
  out: number,
  inF: number,
  ranks: readonly number[],
): number {
  const R = ranks.reduce((s, r) => s + r, 0);
  const factors = 12 * R * (inF + out);
  const dense = denseResult(recipe) ? 12 * out * inF : 0;
  const knots = recipe.space === "knots" || recipe.space === "core" ? 24 * (out + inF) * R : 0;
  return factors + dense + knots;
}

/**
 * Refuse, before any tensor data is read, a module whose sizes cannot be merged on this machine: a tensor
 * beyond what one array can hold, or a working set beyond the machine's memory (e.g. a sparse file whose
 * header declares a 128 GB tensor). Without this the merge would fail only when allocating, after the
 * inputs had started to be read and hashed.
 */
function checkModuleFits(
  recipe: Recipe,
  name: string,
  where: string,
  out: number,
  inF: number,
  ranks: number[],
): void {
  const rMax = ranks.reduce((x, y) => Math.max(x, y), 0);
  const arrays: [string, number][] = [
    [`lora_A (${rMax} × ${inF})`, rMax * inF],
    [`lora_B (${out} × ${rMax})`, out * rMax],
  ];
  if (denseResult(recipe)) arrays.push([`its delta (${out} × ${inF})`, out * inF]);
  for (const [what, n] of arrays) {
    if (n > MAX_ARRAY_ELEMENTS)
      throw new MerglotError(
        "merge.too_large",
        `module "${name}" (${where}): ${what} has ${n} entries, more than one array can hold (${MAX_ARRAY_ELEMENTS})`,
      );
  }
  const need = moduleWorkingBytes(recipe, out, inF, ranks);
  const have = totalmem();
  if (need > have) {
    throw new MerglotError(
      "merge.too_large",
      `module "${name}" (${where}): merging its ${out} × ${inF} tensors needs about ${gib(need)} of memory, ` +
        `more than this machine's ${gib(have)}`,
    );
  }
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

export function planMerge(recipe: Recipe, opts: { allowBaseMismatch?: boolean } = {}): MergePlan {
  const warnings: string[] = [];
  const adapters: PlannedAdapter[] = [];
  const configs: LoraAdapter["config"][] = [];
  for (const m of recipe.models) {
    const a = LoraAdapter.open(m.path);
    try {
      adapters.push({
        path: m.path,
        weightsPath: a.weightsPath,
        modules: new Map(a.modules.map((x) => [x.name, x])),
        baseModel: a.config.baseModel,
        dtype: a.modules[0]?.dtype ?? "F32",
      });
      configs.push(a.config);
    } finally {
      a.close();
    }
  }
  const bases = new Set(adapters.map((a) => a.baseModel ?? ""));
  if (bases.size > 1) {
    const list = adapters.map((a) => `${a.path} → ${JSON.stringify(a.baseModel)}`).join("; ");
    if (!opts.allowBaseMismatch) {
      throw new MerglotError(
        "merge.base",
        `adapters were trained on different base models (${list}); pass --allow-base-mismatch if that is intended`,
      );
    }
    warnings.push(`adapters name different base models: ${list}`);
  }
  adapters.forEach((a, i) => {
    const why = targetMismatch(a, configs[i]!);
    if (why !== null)
      warnings.push(
        `${a.path}: target_modules disagrees with the weights (${why}); the output's target_modules lists the merged modules`,
      );
  });
  const fif = new Set(configs.map((c) => c.fanInFanOut));
  if (fif.size > 1)
    throw new MerglotError("merge.config", "adapters disagree on fan_in_fan_out; they cannot be merged");

  const names = new Map<string, LoraModule>();
  for (const a of adapters) for (const [n, m] of a.modules) if (!names.has(n)) names.set(n, m);
  const modules: PlannedModule[] = [];
  const layers = Math.max(-1, ...[...names.values()].map((m) => m.layer ?? -1)) + 1;
  for (const first of [...names.values()].sort(compareModules)) {
    const t = layerPosition(first.name, first.layer, layers);
    const participants: number[] = [];
    const ranks: number[] = [];
    let shapeOf: { path: string; out: number; in: number } | null = null;
    adapters.forEach((a, i) => {
      const m = a.modules.get(first.name);
      if (!m) return;
      if (shapeOf && (shapeOf.out !== m.outFeatures || shapeOf.in !== m.inFeatures)) {
        throw new MerglotError(
          "merge.shape",
          `module "${first.name}" has shape ${shapeOf.out}×${shapeOf.in} in ${shapeOf.path} but ` +
            `${m.outFeatures}×${m.inFeatures} in ${a.path}`,
        );
      }
      shapeOf ??= { path: a.path, out: m.outFeatures, in: m.inFeatures };
      participants.push(i);
      ranks.push(m.rank);
    });
    if (recipe.space === "factors" && new Set(ranks).size > 1) {
      throw new MerglotError(
        "merge.rank",
        `module "${first.name}": factors space needs equal ranks (as PEFT) but the adapters have ranks ` +
          `${ranks.join(", ")}; use space: delta or a knots_* method`,
      );
    }
    const m = recipe.method;
    if (
      (m.name === "linear" || m.normalisesWeights) &&
      weightsCancel(participants.map((i) => paramAt(recipe.models[i]!.weight, first.name, t)))
    ) {
      throw new MerglotError(
        "merge.weights",
        `module "${first.name}": the weights of the adapters that have it sum to 0 (up to rounding), so "${m.name}" cannot normalise them`,
      );
    }
    // a per-module density is checked where it is read: a gradient between two valid values may cross a gap
    // of the valid set (DELLA's is [ε/2, 1 − ε/2] ∪ {1})
    for (const i of participants) {
      const density = recipe.models[i]!.density;
      if (typeof density === "number") continue;
      const problem = m.checkDensity?.(paramAt(density, first.name, t), recipe.methodParams);
      if (problem)
        throw new MerglotError(
          "recipe.field",
          `${recipe.source}: models[${i}].parameters.density: module "${first.name}": ${problem}`,
        );
    }
    if (participants.length < adapters.length) {
      const missing = adapters.filter((_, i) => !participants.includes(i)).map((a) => a.path);
      warnings.push(
        `module "${first.name}" is merged over ${participants.length} of ${adapters.length} adapters (missing in ${missing.join(", ")})`,
      );
    }
    const s = shapeOf!;
    checkModuleFits(recipe, first.name, s.path, s.out, s.in, ranks);
    modules.push({
      name: first.name,
      layer: first.layer,
      t,
      kind: first.kind,
      out: s.out,
      in: s.in,
      participants,
      targetRank: targetRank(recipe, ranks, s.out, s.in),
    });
  }
  if (modules.length === 0)
    throw new MerglotError("merge.empty", "the adapters contain no LoRA modules to merge");
  const asked = recipe.output.rank;
  if (typeof asked === "number") {
    const capped = modules.filter((m) => Math.min(m.out, m.in) < asked);
    if (capped.length > 0) {
      const m = capped[0]!;
      warnings.push(
        `output.rank ${asked} is above min(out, in) of ${capped.length} of ${modules.length} modules ` +
          `(e.g. "${m.name}", ${m.out} × ${m.in}); those are written at rank min(out, in), which is already lossless`,
      );
    }
  }

  const dtype = recipe.output.dtype
    ? DTYPES[recipe.output.dtype]!
    : adapters[0]!.dtype === "F64"
      ? "F32"
      : (adapters[0]!.dtype as FloatDType);
  const specs: TensorSpec[] = [];
  for (const m of modules) {
    const n = factorNames(m.name);
    specs.push({ name: n.a, dtype, shape: [m.targetRank, m.in] });
    specs.push({ name: n.b, dtype, shape: [m.out, m.targetRank] });
  }
  return {
    recipe,
    adapters,
    modules,
    dtype,
    config: outputConfig(modules, adapters, configs),
    specs,
    warnings,
  };
}

/** PEFT's match of a `target_modules` list entry: the module's full name or its last dotted components. */
function listed(entry: string, module: string): boolean {
  return module === entry || module.endsWith(`.${entry}`);
}

/**
 * How an adapter's `target_modules` list disagrees with its weights (modules it has that the list does not
 * name, entries that name none of its modules), or null when it agrees or is not a list.
 */
export function targetMismatch(a: PlannedAdapter, config: LoraAdapter["config"]): string | null {
  const list = config.targetModules;
  if (!Array.isArray(list)) return null;
  const names = [...a.modules.keys()];
  const unlisted = [
    ...new Set(
      names.filter((n) => !list.some((e) => listed(e, n))).map((n) => n.slice(n.lastIndexOf(".") + 1)),
    ),
  ];
  const unused = list.filter((e) => !names.some((n) => listed(e, n)));
  if (unlisted.length === 0 && unused.length === 0) return null;
  const parts: string[] = [];
  if (unlisted.length) parts.push(`its weights have ${unlisted.join(", ")}, which the list does not name`);
  if (unused.length) parts.push(`the list names ${unused.join(", ")}, which its weights do not have`);
  return parts.join("; ");
}

/**
 * Written with scaling exactly 1 for every module: lora_alpha = r, and modules whose declared rank differs
 * from the most common one listed in rank_pattern / alpha_pattern with the same value.
 */
function outputConfig(
  modules: PlannedModule[],
  adapters: PlannedAdapter[],
  configs: LoraAdapter["config"][],
): Record<string, unknown> {
  const counts = new Map<number, number>();
  for (const m of modules) counts.set(m.targetRank, (counts.get(m.targetRank) ?? 0) + 1);
  const r = [...counts.entries()].sort((x, y) => y[1] - x[1] || x[0] - y[0])[0]![0];
  const rankPattern: Record<string, number> = {};
  for (const m of modules) if (m.targetRank !== r) rankPattern[m.name] = m.targetRank;
  // The kinds of the modules actually written, never the inputs' lists: an input's list may name kinds it
  // has no weights for (PEFT accepts that), and copying it would make PEFT add LoRA layers the output lacks.
  const targets = [...new Set(modules.map((m) => m.kind))];
  return adapterConfigJson({
    r,
    lora_alpha: r,
    target_modules: targets,
    base_model_name_or_path: adapters[0]!.baseModel,
    rank_pattern: rankPattern,
    alpha_pattern: { ...rankPattern },
    fan_in_fan_out: configs[0]!.fanInFanOut,
  });
}
