/**
 * Planning a merge: open every adapter's header, check that they can be merged, and decide each output
 * module's declared rank, the output config and the tensor layout — before any tensor data is read.
 */
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
import type { Recipe } from "./recipe.js";

export interface PlannedModule {
  name: string;
  layer: number | null;
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
  if (typeof rank === "number") return rank;
  if (rank === "full") return full;
  const lowRankExact = recipe.space === "knots" || (recipe.space === "delta" && recipe.method.linear);
  if (recipe.space === "factors") return ranks[0]!;
  if (lowRankExact) return sum;
  // a dense delta-space result: lossless at full rank, PEFT's default (largest input rank) otherwise
  return rank === "exact" ? full : Math.max(...ranks);
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
  const fif = new Set(configs.map((c) => c.fanInFanOut));
  if (fif.size > 1)
    throw new MerglotError("merge.config", "adapters disagree on fan_in_fan_out; they cannot be merged");

  const names = new Map<string, LoraModule>();
  for (const a of adapters) for (const [n, m] of a.modules) if (!names.has(n)) names.set(n, m);
  const modules: PlannedModule[] = [];
  for (const first of [...names.values()].sort(compareModules)) {
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
    if (
      recipe.method.name === "linear" &&
      participants.reduce((t, i) => t + recipe.models[i]!.weight, 0) === 0
    ) {
      throw new MerglotError(
        "merge.weights",
        `module "${first.name}": the weights of the adapters that have it sum to 0, so "linear" cannot normalise them`,
      );
    }
    if (participants.length < adapters.length) {
      const missing = adapters.filter((_, i) => !participants.includes(i)).map((a) => a.path);
      warnings.push(
        `module "${first.name}" is merged over ${participants.length} of ${adapters.length} adapters (missing in ${missing.join(", ")})`,
      );
    }
    const s = shapeOf!;
    modules.push({
      name: first.name,
      layer: first.layer,
      kind: first.kind,
      out: s.out,
      in: s.in,
      participants,
      targetRank: targetRank(recipe, ranks, s.out, s.in),
    });
  }
  if (modules.length === 0)
    throw new MerglotError("merge.empty", "the adapters contain no LoRA modules to merge");

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
