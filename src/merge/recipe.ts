/**
 * Recipes: the YAML file that says which adapters to merge, how, and what to write (DESIGN.md "Recipe").
 * Validation is strict: unknown keys are errors, because a typo must never silently change a merge, and
 * every message names the file and the field.
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { existsSync } from "node:fs";
import { MerglotError } from "../errors.js";
import { firstIssue, parseYamlMapping, readYamlMapping } from "../yaml-input.js";
import {
  METHOD_NAMES,
  METHOD_PARAM_DEFAULTS,
  resolveMethod,
  type MergeMethod,
  METHOD_PARAMS,
  type MethodParams,
} from "./methods.js";
import type { SignMethod } from "./operators.js";
import { modelParam, paramNumbers, type ModelParam, type ParamSetting } from "./param-setting.js";

const density = z.number().refine((x) => x > 0 && x <= 1, { message: "density must lie in (0, 1]" });
const weight = z.number().refine(Number.isFinite, { message: "weight must be a finite number" });

/**
 * The most adapters one recipe may list. Every input stays open for the whole merge (one handle each) and
 * takes part in every module, so lists far beyond this are a mistake or an attack, not a merge.
 */
export const MAX_MODELS = 10_000;

/**
 * `yaml`'s guard against alias bombs (a few lines that expand to billions of nodes): resolving more than
 * this many aliases in one document is refused. Set explicitly so that a change of default cannot lift it.
 */

/**
 * Whether weights sum to (numerically) zero, so that `linear`'s normalisation Σ w_i x_i / Σ w_i would
 * blow the result up: |Σw| within a relative tolerance of Σ|w|, not exactly 0 (0.1 + 0.2 − 0.3 is 5.6e-17
 * in floating point, and would scale the merge by ~1e16).
 */
export function weightsCancel(weights: readonly number[]): boolean {
  let sum = 0;
  let abs = 0;
  for (const w of weights) {
    sum += w;
    abs += Math.abs(w);
  }
  return Math.abs(sum) <= LINEAR_SUM_TOLERANCE * abs;
}
/**
 * Whether the method ranks entries against per-adapter thresholds found over all task tensors when the
 * recipe asks for `density_scope: global` (engine.ts): every method with a density but DARE, whose drops
 * are drawn entry by entry.
 */
export function usesGlobalThresholds(method: MergeMethod): boolean {
  return method.usesDensity && method.name !== "dare_linear" && method.name !== "dare_ties";
}

/** Relative tolerance of `weightsCancel`: a normalisation that amplifies by more than 1e9 is refused. */
export const LINEAR_SUM_TOLERANCE = 1e-9;

/**
 * The schema of a per-model setting (param-setting.ts): a number, a gradient (a non-empty list of numbers) or a
 * non-empty list of `{ filter?, value }` conditions, each number checked by `value`. Validated by hand rather
 * than as a zod union, whose failure says only "Invalid input": each problem is named at its own path.
 */
function settingSchema(value: z.ZodType<number>) {
  type Ctx = { addIssue(issue: { code: "custom"; message: string; path: (string | number)[] }): void };
  const issue = (ctx: Ctx, path: (string | number)[], message: string) =>
    ctx.addIssue({ code: "custom", message, path });
  const checkNumber = (ctx: Ctx, x: unknown, path: (string | number)[]) => {
    const r = value.safeParse(x);
    if (!r.success)
      issue(ctx, path, typeof x === "number" ? r.error.issues[0]!.message : "expected a number");
  };
  const checkScalarOrGradient = (ctx: Ctx, x: unknown, path: (string | number)[]) => {
    if (!Array.isArray(x)) return checkNumber(ctx, x, path);
    if (x.length === 0) return issue(ctx, path, "a gradient needs at least one number");
    x.forEach((v, i) => checkNumber(ctx, v, [...path, i]));
  };
  return z
    .unknown()
    .superRefine((v, ctx) => {
      const isObject = (x: unknown) => typeof x === "object" && x !== null && !Array.isArray(x);
      if (!Array.isArray(v) || !v.some(isObject)) return checkScalarOrGradient(ctx, v, []);
      v.forEach((c, i) => {
        if (!isObject(c))
          return issue(ctx, [i], "a condition list holds only { filter, value } entries (not numbers)");
        const entry = c as Record<string, unknown>;
        const unknown = Object.keys(entry).filter((k) => k !== "filter" && k !== "value");
        if (unknown.length > 0)
          return issue(
            ctx,
            [i],
            `unknown key(s) ${unknown.map((k) => `"${k}"`).join(", ")} (a condition has filter and value)`,
          );
        if (entry.filter !== undefined && (typeof entry.filter !== "string" || entry.filter === ""))
          issue(ctx, [i, "filter"], "a filter is a non-empty string (a part of module names)");
        if (entry.value === undefined) return issue(ctx, [i, "value"], "a condition needs a value");
        checkScalarOrGradient(ctx, entry.value, [i, "value"]);
      });
    })
    .transform((v) => v as ParamSetting);
}

// a weight or density may differ per module (mergekit's gradients and filtered conditions, param-setting.ts)
const weightSetting = settingSchema(weight);
const densitySetting = settingSchema(density);
const modelParams = z.strictObject({ weight: weightSetting.optional(), density: densitySetting.optional() });

const globalParams = z.strictObject({
  weight: weightSetting.optional(),
  density: densitySetting.optional(),
  density_scope: z.enum(["tensor", "global"]).optional(),
  sign_method: z.enum(["total", "frequency"]).optional(),
  rescale: z.boolean().optional(),
  lambda: z.number().refine(Number.isFinite, { message: "lambda must be a finite number" }).optional(),
  // method options (methods.ts declares which method reads which)
  epsilon: z
    .number()
    .refine((x) => x >= 0 && x <= 1, { message: "epsilon must lie in [0, 1]" })
    .optional(),
  gamma: z
    .number()
    .refine((x) => x >= 0 && x <= 1, { message: "gamma must lie in [0, 1]" })
    .optional(),
  select_topk: z
    .number()
    .refine((x) => x > 0 && x <= 1, { message: "select_topk must lie in (0, 1]" })
    .optional(),
  t: z
    .number()
    .refine((x) => x >= 0 && x <= 1, { message: "t must lie in [0, 1]" })
    .optional(),
  max_iter: z.number().int().positive().max(10000).optional(),
  tol: z
    .number()
    .refine((x) => x > 0 && x < 1, { message: "tol must lie in (0, 1)" })
    .optional(),
  common_space_fraction: z
    .number()
    .refine((x) => x >= 0 && x <= 1, { message: "common_space_fraction must lie in [0, 1]" })
    .optional(),
});

const outputSchema = z.strictObject({
  rank: z.union([z.literal("exact"), z.literal("full"), z.number().int().positive()]).optional(),
  dtype: z.enum(["float32", "float16", "bfloat16"]).optional(),
  format: z.enum(["peft", "gguf"]).optional(),
  path: z.string().min(1).optional(),
  /** For format gguf: the base model folder or its config.json (architecture, head counts). */
  base: z.string().min(1).optional(),
});

const recipeSchema = z.strictObject({
  merge_method: z.string().refine((m) => resolveMethod(m) !== undefined, {
    message: `unknown merge method (known: ${METHOD_NAMES.join(", ")})`,
  }),
  space: z.enum(["delta", "factors"]).optional(),
  models: z
    .array(z.strictObject({ model: z.string().min(1), parameters: modelParams.optional() }))
    .min(1, { message: "the models list is empty: give at least one adapter" })
    .max(MAX_MODELS, {
      message: `more than ${MAX_MODELS} adapters listed; merge at most ${MAX_MODELS} at once`,
    }),
  parameters: globalParams.optional(),
  seed: z.number().int().nonnegative().optional(),
  output: outputSchema.optional(),
});

export type RecipeYaml = z.infer<typeof recipeSchema>;
export type OutputRank = "exact" | "full" | number;
export type OutputDType = "float32" | "float16" | "bfloat16";

/** A validated recipe with every default filled in and paths resolved against the recipe's folder. */
export interface Recipe {
  /** Where the recipe came from (for messages); "<inline>" for library calls. */
  source: string;
  methodName: string;
  method: MergeMethod;
  knots: boolean;
  space: "delta" | "factors" | "knots" | "core";
  /** Per adapter: its weight and density, one number or resolved per module (param-setting.ts). */
  models: { path: string; weight: ModelParam; density: ModelParam }[];
  densityScope: "tensor" | "global";
  signMethod: SignMethod;
  rescale: boolean;
  lambda: number;
  /** DELLA's epsilon, Breadcrumbs' gamma, SCE's select_topk (defaults filled in). */
  methodParams: MethodParams;
  seed: number;
  output: {
    rank: OutputRank | null;
    dtype: OutputDType | null;
    format: "peft" | "gguf";
    path: string | null;
    base: string | null;
  };
  /** Parameters set in the recipe that the method does not read (reported, not an error). */
  unused: string[];
  /** The recipe as written, for the manifest. */
  raw: RecipeYaml;
}

/** Validate a parsed recipe object; `baseDir` resolves relative model paths. */
export function parseRecipe(obj: unknown, source: string, baseDir: string): Recipe {
  const parsed = recipeSchema.safeParse(obj);
  if (!parsed.success) {
    const { field, message } = firstIssue(parsed.error);
    throw new MerglotError("recipe.field", `${source}: ${field}: ${message}`);
  }
  const r = parsed.data;
  const { method, knots, prefixSpace } = resolveMethod(r.merge_method)!;
  const p = r.parameters ?? {};
  const models = r.models.map((m) => ({
    path: isAbsolute(m.model) ? m.model : resolve(baseDir, m.model),
    weight: modelParam([m.parameters?.weight, p.weight], 1),
    density: modelParam([m.parameters?.density, p.density], 1),
  }));
  if (method.exactInputs !== undefined && models.length !== method.exactInputs) {
    throw new MerglotError(
      "recipe.field",
      `${source}: models: "${r.merge_method}" merges exactly ${method.exactInputs} adapters, the recipe lists ${models.length} (use multislerp or karcher for more)`,
    );
  }
  const scalarWeights = models.map((m) => m.weight).filter((w): w is number => typeof w === "number");
  // per-module weights are checked per module when the merge is planned (plan.ts)
  if (
    (method.name === "linear" || method.normalisesWeights) &&
    scalarWeights.length === models.length &&
    weightsCancel(scalarWeights)
  ) {
    const sum = scalarWeights.reduce((s, w) => s + w, 0);
    throw new MerglotError(
      "recipe.field",
      `${source}: models[*].parameters.weight: the weights sum to ${sum === 0 ? "0" : `${sum} (0 up to rounding)`}, ` +
        `so "${method.name}" cannot normalise them`,
    );
  }
  if (method.fromFactors && r.space === "factors") {
    throw new MerglotError(
      "recipe.field",
      `${source}: space: "${r.merge_method}" exists only in the delta space (computed from the factors); remove "space: factors"`,
    );
  }
  const defaults = { ...METHOD_PARAM_DEFAULTS, ...method.paramDefaults };
  const methodParams = Object.fromEntries(METHOD_PARAMS.map((k) => [k, p[k] ?? defaults[k]])) as MethodParams;
  models.forEach((m, i) => {
    // every number written; the values a gradient interpolates are checked per module when the merge is planned
    for (const d of paramNumbers(m.density)) {
      const problem = method.checkDensity?.(d, methodParams);
      if (problem)
        throw new MerglotError("recipe.field", `${source}: models[${i}].parameters.density: ${problem}`);
    }
  });
  if (
    p.density_scope === "global" &&
    !method.tensorScopeOnly &&
    usesGlobalThresholds(method) &&
    models.some((m) => typeof m.density !== "number")
  )
    throw new MerglotError(
      "recipe.field",
      `${source}: parameters.density_scope: "global" keeps one density per adapter over all its tensors; ` +
        `per-module densities (gradients, filters) need density_scope: tensor`,
    );
  const unused: string[] = [];
  for (const k of METHOD_PARAMS) if (p[k] !== undefined && !method.params?.includes(k)) unused.push(k);
  const scopeUnused = !method.usesDensity || method.tensorScopeOnly === true;
  const densitySet = p.density !== undefined || r.models.some((m) => m.parameters?.density !== undefined);
  if (!method.usesDensity && densitySet) unused.push("density");
  if (scopeUnused && p.density_scope !== undefined) unused.push("density_scope");
  if (!method.usesSignMethod && p.sign_method !== undefined) unused.push("sign_method");
  if (!method.usesRescale && p.rescale !== undefined) unused.push("rescale");
  if (prefixSpace && r.space !== undefined) unused.push("space");
  const out = r.output ?? {};
  return {
    source,
    methodName: r.merge_method,
    method,
    knots,
    space: prefixSpace ?? r.space ?? "delta",
    models,
    densityScope: method.tensorScopeOnly ? "tensor" : (p.density_scope ?? "tensor"),
    signMethod: p.sign_method ?? "total",
    rescale: p.rescale ?? true,
    lambda: p.lambda ?? 1,
    methodParams,
    seed: r.seed ?? 0,
    output: {
      rank: out.rank ?? null,
      dtype: out.dtype ?? null,
      format: out.format ?? "peft",
      path: out.path === undefined ? null : isAbsolute(out.path) ? out.path : resolve(baseDir, out.path),
      base: out.base === undefined ? null : isAbsolute(out.base) ? out.base : resolve(baseDir, out.base),
    },
    unused,
    raw: r,
  };
}

/** Parse YAML text into a recipe; YAML syntax errors name the line and column. */
export function parseRecipeYaml(text: string, source: string, baseDir: string): Recipe {
  const obj = parseYamlMapping(
    text,
    source,
    "recipe.yaml",
    "a recipe must be a YAML mapping (merge_method, models, …)",
  );
  return parseRecipe(obj, source, baseDir);
}

export function loadRecipe(path: string): Recipe {
  if (!existsSync(path)) throw new MerglotError("recipe.missing", `${path}: recipe file not found`);
  const obj = readYamlMapping(
    path,
    "recipe.yaml",
    "a recipe must be a YAML mapping (merge_method, models, …)",
    "recipe.missing",
  );
  return parseRecipe(obj, path, dirname(resolve(path)));
}
