/**
 * SEARCH.yaml: what a merge search varies, how it scores a candidate, and when it stops. Validation is
 * strict (unknown keys are errors naming the field), like recipes, because a typo must never silently
 * change what is searched. Relative paths resolve against the file's folder.
 */
import { existsSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { MerglotError } from "../errors.js";
import { firstIssue, readYamlMapping } from "../yaml-input.js";
import { METHOD_NAMES, resolveMethod } from "../merge/methods.js";

const finite = z.number().refine(Number.isFinite, { message: "must be a finite number" });

/** A searched parameter: a range (per language or one global value), or a fixed number. */
const range = z.strictObject({ min: finite, max: finite, per_language: z.boolean().optional() });
/**
 * A per-model parameter's range may also be searched per module group: one coordinate per filter (a
 * substring of module names, as in mergekit's conditions, e.g. self_attn and mlp), written into the
 * candidates' recipes as a condition list. Every module must match one of the filters.
 */
const filters = z
  .array(z.string().min(1))
  .min(1)
  .refine((f) => new Set(f).size === f.length, { message: "filters repeat a name" });
const modelRange = range.extend({ filters: filters.optional() });
const param = z.union([finite, range]);
const modelParam = z.union([finite, modelRange]);

const methodName = z.string().refine((m) => resolveMethod(m) !== undefined, {
  message: `unknown merge method (known: ${METHOD_NAMES.join(", ")})`,
});
const parametersSchema = z.strictObject({
  weight: modelParam.optional(),
  density: modelParam.optional(),
  lambda: param.optional(),
});
const budgetSchema = z
  .strictObject({
    candidates: z.number().int().positive().optional(),
    seconds: z.number().positive().optional(),
  })
  .refine((b) => b.candidates !== undefined || b.seconds !== undefined, {
    message: "give candidates and/or seconds",
  });
const startValues = z.strictObject({
  weight: finite.optional(),
  density: finite.optional(),
  lambda: finite.optional(),
});
const optimizerSchema = z.strictObject({
  kind: z.enum(["cmaes", "random", "grid"]),
  /** grid: levels per searched coordinate (default 3). */
  grid_points: z.number().int().positive().optional(),
  /** cmaes: population size λ (default 4 + ⌊3 ln n⌋). */
  population: z.number().int().min(2).optional(),
  /**
   * A setting scored first, as a batch of its own (so the search's best is never worse on validation than
   * it), and CMA-ES's initial mean; searched parameters it does not name start at their range's centre.
   */
  start: startValues
    .extend({
      /** Per method, values that replace the ones above (task_arithmetic wants λ ≈ 1/n where TIES wants 1). */
      methods: z.record(z.string(), startValues).optional(),
    })
    .optional(),
  /** cmaes: initial step size σ0 as a fraction of the widest searched range (default 0.3). */
  sigma: z.number().positive().max(1).optional(),
});
const objectiveFields = {
  /** Validation rows per language (seeded selection; default: all). */
  limit: z.number().int().positive().optional(),
  /** No language more than this below its own adapter's validation score (a penalty, see search.ts). */
  max_drop: z.number().nonnegative().optional(),
};

/**
 * What a search varies and how long it runs, without the inputs (adapters, data, base, task): a study's
 * `search` section is this plus the tasks it applies to, since the study knows its inputs.
 */
export const searchSettingsFields = {
  methods: z.array(methodName).min(1),
  parameters: parametersSchema.optional(),
  budget: budgetSchema,
  optimizer: optimizerSchema,
  seed: z.number().int().nonnegative().optional(),
};

const searchSchema = z.strictObject({
  base: z.string().min(1),
  task: z.string().min(1),
  /** language code → PEFT adapter folder */
  adapters: z.record(z.string().min(1), z.string().min(1)),
  /** language code → dataset file or folder holding a validation (and test) split */
  data: z.record(z.string().min(1), z.string().min(1)),
  ...searchSettingsFields,
  objective: z.strictObject({ metric: z.string().min(1), ...objectiveFields }),
  /** Skip the final test-split evaluation of the best merge. */
  final_test: z.boolean().optional(),
});

/** A study's `search` section (src/study/schema.ts): the metric defaults to the task's primary metric. */
export const studySearchSchema = z.strictObject({
  /** The study's tasks to search (default: all). */
  tasks: z.array(z.string().min(1)).min(1).optional(),
  ...searchSettingsFields,
  methods: z.array(methodName).min(1).default(["ties"]),
  objective: z.strictObject({ metric: z.string().min(1).optional(), ...objectiveFields }).default({}),
  /** Candidates scored in parallel inside the search step (worker processes). Default 1. */
  jobs: z.number().int().positive().optional(),
});
export type StudySearchYaml = z.infer<typeof studySearchSchema>;

export type SearchYaml = z.infer<typeof searchSchema>;

export interface ParamRange {
  min: number;
  max: number;
  perLanguage: boolean;
  /** Module filters, one coordinate each (weight and density only). */
  filters?: string[];
}

/** Starting values of the searched parameters (a per-language weight starts at one value for all). */
export interface StartValues {
  weight?: number;
  density?: number;
  lambda?: number;
}

export interface SearchSpec {
  source: string;
  /** Field path prefix of the settings in messages ("search." in a study; default ""). */
  at?: string;
  base: string;
  task: string;
  /** The task's YAML text, when the caller has it (a study); `task` then only names it in messages. */
  taskText?: string;
  languages: string[];
  adapters: Record<string, string>;
  data: Record<string, string>;
  methods: string[];
  /** A number = fixed; a range = searched. Defaults: weight 1, density 1, lambda 1 (fixed). */
  weight: number | ParamRange;
  density: number | ParamRange;
  lambda: number | ParamRange;
  metric: string;
  limit?: number;
  maxDrop?: number;
  budget: { candidates?: number; seconds?: number };
  optimizer: {
    kind: "cmaes" | "random" | "grid";
    gridPoints: number;
    population?: number;
    /** Scored first; CMA-ES's initial mean (one value for every language of a per-language parameter). */
    start?: StartValues & { methods?: Record<string, StartValues> };
    /** CMA-ES σ0 as a fraction of the widest searched range. */
    sigma?: number;
  };
  seed: number;
  finalTest: boolean;
}

function toParam(
  v: number | { min: number; max: number; per_language?: boolean; filters?: string[] } | undefined,
  dflt: number,
  name: string,
  source: string,
  at: string,
): number | ParamRange {
  if (v === undefined) return dflt;
  if (typeof v === "number") return v;
  if (!(v.min <= v.max))
    throw new MerglotError(
      "search.field",
      `${source}: ${at}parameters.${name}: min ${v.min} is above max ${v.max}`,
    );
  return {
    min: v.min,
    max: v.max,
    perLanguage: v.per_language ?? false,
    ...(v.filters && { filters: [...v.filters] }),
  };
}

/** The parts of a SearchSpec that a study's search section also gives (checked the same way). */
export type SearchSettings = Pick<
  SearchSpec,
  "methods" | "weight" | "density" | "lambda" | "limit" | "maxDrop" | "budget" | "optimizer" | "seed"
>;

export function searchSettings(
  s: {
    methods: string[];
    parameters?: z.infer<typeof parametersSchema>;
    budget: z.infer<typeof budgetSchema>;
    optimizer: z.infer<typeof optimizerSchema>;
    seed?: number;
    objective: { limit?: number; max_drop?: number };
  },
  source: string,
  /** Field path prefix in messages ("" for SEARCH.yaml, "search." in a study). */
  at = "",
): SearchSettings {
  const p = s.parameters ?? {};
  const weight = toParam(p.weight, 1, "weight", source, at);
  const density = toParam(p.density, 1, "density", source, at);
  const lambda = toParam(p.lambda, 1, "lambda", source, at);
  const dens = typeof density === "number" ? [density] : [density.min, density.max];
  if (dens.some((d) => !(d > 0 && d <= 1)))
    throw new MerglotError(
      "search.field",
      `${source}: ${at}parameters.density: densities must lie in (0, 1]`,
    );
  // a searched density applies to the methods that use one; the others search the remaining parameters
  if (typeof density !== "number") {
    const without = s.methods.filter((m) => !resolveMethod(m)!.method.usesDensity);
    if (without.length === s.methods.length)
      throw new MerglotError(
        "search.field",
        `${source}: ${at}parameters.density: no method searched uses a density (${without.join(", ")}), so it cannot be searched`,
      );
    const bare = typeof weight === "number" && typeof lambda === "number" ? without : [];
    if (bare.length > 0)
      throw new MerglotError(
        "search.field",
        `${source}: ${at}methods: "${bare[0]}" does not use a density, the only searched parameter, so it would search nothing`,
      );
  }
  const start = s.optimizer.start;
  const ranges = { weight, density, lambda };
  const checkStart = (values: StartValues, at2: string, method?: string) => {
    for (const name of ["weight", "density", "lambda"] as const) {
      const x = values[name];
      const v = ranges[name];
      if (x === undefined) continue;
      const field = `${source}: ${at}${at2}.${name}`;
      if (typeof v === "number")
        throw new MerglotError(
          "search.field",
          `${field}: ${name} is not searched (fixed at ${v}), so it has no start`,
        );
      if (!(x >= v.min && x <= v.max))
        throw new MerglotError(
          "search.field",
          `${field}: ${x} lies outside the searched range [${v.min}, ${v.max}]`,
        );
      if (name === "density" && method !== undefined && !resolveMethod(method)!.method.usesDensity)
        throw new MerglotError("search.field", `${field}: "${method}" does not use a density`);
    }
  };
  if (start) {
    const { methods: perMethod, ...common } = start;
    checkStart(common, "optimizer.start");
    for (const [m, values] of Object.entries(perMethod ?? {})) {
      if (!s.methods.includes(m))
        throw new MerglotError(
          "search.field",
          `${source}: ${at}optimizer.start.methods.${m}: "${m}" is not one of the searched methods (${s.methods.join(", ")})`,
        );
      checkStart(values, `optimizer.start.methods.${m}`, m);
    }
  }
  if (s.optimizer.sigma !== undefined && s.optimizer.kind !== "cmaes")
    throw new MerglotError("search.field", `${source}: ${at}optimizer.sigma: only CMA-ES has a step size`);
  return {
    methods: s.methods,
    weight,
    density,
    lambda,
    limit: s.objective.limit,
    maxDrop: s.objective.max_drop,
    budget: { ...s.budget },
    optimizer: {
      kind: s.optimizer.kind,
      gridPoints: s.optimizer.grid_points ?? 3,
      population: s.optimizer.population,
      ...(start && {
        start: {
          ...start,
          ...(start.methods && {
            methods: Object.fromEntries(Object.entries(start.methods).map(([m, v]) => [m, { ...v }])),
          }),
        },
      }),
      ...(s.optimizer.sigma !== undefined && { sigma: s.optimizer.sigma }),
    },
    seed: s.seed ?? 0,
  };
}

export function parseSearchSpec(obj: unknown, source: string, baseDir: string): SearchSpec {
  const parsed = searchSchema.safeParse(obj);
  if (!parsed.success) {
    const { field, message } = firstIssue(parsed.error);
    throw new MerglotError("search.field", `${source}: ${field}: ${message}`);
  }
  const s = parsed.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const languages = Object.keys(s.adapters);
  if (languages.length === 0)
    throw new MerglotError("search.field", `${source}: adapters: give at least one`);
  for (const l of languages)
    if (!(l in s.data))
      throw new MerglotError("search.field", `${source}: data.${l}: missing (adapters has language "${l}")`);
  for (const l of Object.keys(s.data))
    if (!(l in s.adapters))
      throw new MerglotError("search.field", `${source}: data.${l}: no adapter for language "${l}"`);
  for (const m of s.methods) {
    const need = resolveMethod(m)!.method.exactInputs;
    if (need !== undefined && languages.length !== need)
      throw new MerglotError(
        "search.field",
        `${source}: methods: "${m}" merges exactly ${need} adapters, the search has ${languages.length}; use multislerp or karcher`,
      );
  }
  return {
    source,
    base: abs(s.base),
    task: /[\\/]/.test(s.task) || /\.ya?ml$/i.test(s.task) ? abs(s.task) : s.task,
    languages,
    adapters: Object.fromEntries(languages.map((l) => [l, abs(s.adapters[l]!)])),
    data: Object.fromEntries(languages.map((l) => [l, abs(s.data[l]!)])),
    metric: s.objective.metric,
    ...searchSettings(s, source),
    finalTest: s.final_test ?? true,
  };
}

export function loadSearchSpec(path: string): SearchSpec {
  if (!existsSync(path))
    throw new MerglotError("search.missing", `${path}: search file not found or unreadable`);
  const obj = readYamlMapping(path, "search.yaml", "a search file must be a YAML mapping", "search.missing");
  return parseSearchSpec(obj, path, dirname(resolve(path)));
}

/**
 * What is wrong with searching a parameter per module filter over these module names: a module that matches no
 * filter (it would merge with the default 1, a value the search never looks at), or a filter that is no module's
 * first match (the first matching filter wins, so it would be a coordinate that changes nothing); null if neither.
 */
export function filtersProblem(filters: readonly string[], modules: readonly string[]): string | null {
  const missed = modules.find((m) => !filters.some((f) => m.includes(f)));
  if (missed !== undefined)
    return `module "${missed}" matches none of ${filters.join(", ")}; add a filter that names it`;
  const used = new Set(modules.map((m) => filters.find((f) => m.includes(f))));
  const idle = filters.find((f) => !used.has(f));
  if (idle !== undefined)
    return `"${idle}" applies to no module: each module takes the first filter it contains`;
  return null;
}
