/**
 * The study's results file (`OUT_DIR/results.json`) as the report reads it. The study writes it; the report
 * validates it on the way in so that a hand-edited or truncated file gives one clear line, not a broken page.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { MerglotError } from "../errors.js";

const metricMap = z.record(z.string(), z.number());
const ciMap = z.record(z.string(), z.tuple([z.number(), z.number()]));
const significance = z.object({
  metric: z.string(),
  delta: z.number(),
  p: z.number(),
  significant: z.boolean(),
});

/** What `merglot study` writes (src/study/results.ts); unknown extra fields are ignored. */
export const studyFileSchema = z.object({
  study: z.union([z.string(), z.object({ name: z.string() })]),
  languages: z.array(z.string()).min(1),
  tasks: z.array(z.string()).min(1),
  primary: z.record(z.string(), z.string()).optional(),
  results: z.array(
    z.object({
      model: z.string().optional(),
      task: z.string(),
      lang: z.string(),
      variant: z.string(),
      metrics: metricMap,
      ci: ciMap.optional(),
      vs_combined: z
        .object({ metric: z.string(), delta: z.number(), p: z.number(), significant: z.boolean() })
        .optional(),
    }),
  ),
  costs: z
    .array(
      z.object({
        model: z.string().optional(),
        task: z.string().nullable(),
        variant: z.string(),
        trainings: z.array(z.string()),
        sequentialWallS: z.number().nonnegative(),
        parallelWallS: z.number().nonnegative(),
        deviceS: z.number().nonnegative(),
        cost: z.number().nonnegative().nullable(),
        currency: z.string(),
      }),
    )
    .default([]),
  update: z
    .object({
      lang: z.string(),
      entries: z.array(
        z.object({
          model: z.string().optional(),
          task: z.string(),
          variant: z.string(),
          update: z.object({ wallS: z.number(), deviceS: z.number(), cost: z.number().nullable() }),
          combined: z.object({ wallS: z.number(), deviceS: z.number(), cost: z.number().nullable() }),
          speedup: z.number(),
          costRatio: z.number(),
        }),
      ),
    })
    .nullable()
    .default(null),
  similarity: z
    .record(
      z.string(),
      z.object({
        task: z.string(),
        languages: z.array(z.string()),
        modules: z.record(z.string(), z.array(z.array(z.number()))),
      }),
    )
    .default({}),
  /** The study's merge searches (src/study/results.ts SearchSummary). */
  search: z
    .array(
      z.object({
        model: z.string().optional(),
        task: z.string(),
        variant: z.string(),
        optimizer: z.string(),
        methods: z.array(z.string()),
        metric: z.string(),
        candidates: z.number().int().nonnegative(),
        objectives: z.array(z.number()),
        curve: z.array(z.number()),
        best: z.object({
          index: z.number().int(),
          validation: z.record(z.string(), z.number()),
          mean: z.number(),
        }),
        test: z.object({
          searched: z.number().nullable(),
          best_grid: z.number().nullable(),
          combined: z.number().nullable(),
        }),
        best_grid_variant: z.string().nullable(),
        vs_best_grid: significance.nullable(),
        vs_combined: significance.nullable(),
      }),
    )
    .default([]),
});

/** The report's own view: one study, variants unique per task (prefixed by model when there are several). */
export interface StudyResults {
  study: string;
  languages: string[];
  tasks: string[];
  primary?: Record<string, string>;
  results: {
    task: string;
    lang: string;
    variant: string;
    metrics: Record<string, number>;
    ci?: Record<string, [number, number]>;
    vs_combined?: { metric: string; delta: number; p: number; significant: boolean };
  }[];
  costs: {
    variant: string;
    task: string;
    trainings: number;
    sequential_s: number;
    parallel_s: number;
    device_s: number;
    cost: number;
  }[];
  update: {
    task: string;
    lang: string;
    variant: string;
    merge_path_s: number;
    merge_path_cost: number;
    combined_path_s: number;
    combined_path_cost: number;
    speedup: number;
    cost_ratio: number;
  }[];
  /** Per task: languages and the cosine matrix per module kind (`all` = every module together). */
  similarity: Record<string, { languages: string[]; by_kind: Record<string, number[][]> }>;
  currency: string;
  search: SearchEntry[];
}

export type SearchEntry = z.infer<typeof studyFileSchema>["search"][number];

export type ResultRow = StudyResults["results"][number];
export type CostRow = StudyResults["costs"][number];
export type UpdateRow = StudyResults["update"][number];

/** Turn a parsed results.json into the report's view. */
export type StudyFile = z.input<typeof studyFileSchema>;

export function normaliseResults(raw: z.infer<typeof studyFileSchema>): StudyResults {
  const models = new Set(raw.results.map((r) => r.model ?? ""));
  const prefix = (model: string | undefined, v: string) => (models.size > 1 && model ? `${model}/${v}` : v);
  return {
    study: typeof raw.study === "string" ? raw.study : raw.study.name,
    languages: raw.languages,
    tasks: raw.tasks,
    primary: raw.primary,
    results: raw.results.map((r) => ({ ...r, variant: prefix(r.model, r.variant) })),
    // multitask costs (task null) are listed under every task they serve
    costs: raw.costs.flatMap((c) =>
      (c.task === null ? raw.tasks : [c.task]).map((task) => ({
        variant: prefix(c.model, c.variant),
        task,
        trainings: c.trainings.length,
        sequential_s: c.sequentialWallS,
        parallel_s: c.parallelWallS,
        device_s: c.deviceS,
        cost: c.cost ?? 0,
      })),
    ),
    update: (raw.update?.entries ?? []).map((e) => ({
      task: e.task,
      lang: raw.update!.lang,
      variant: prefix(e.model, e.variant),
      merge_path_s: e.update.wallS,
      merge_path_cost: e.update.cost ?? 0,
      combined_path_s: e.combined.wallS,
      combined_path_cost: e.combined.cost ?? 0,
      speedup: e.speedup,
      cost_ratio: e.costRatio,
    })),
    similarity: Object.fromEntries(
      Object.entries(raw.similarity).map(([k, b]) => [k, { languages: b.languages, by_kind: b.modules }]),
    ),
    currency: raw.costs[0]?.currency ?? "USD",
    search: raw.search.map((e) => ({
      ...e,
      variant: prefix(e.model, e.variant),
      best_grid_variant: e.best_grid_variant && prefix(e.model, e.best_grid_variant),
    })),
  };
}

/** Read and validate a results.json; errors name the file and the field path. */
export function readStudyResults(path: string): StudyResults {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT")
      throw new MerglotError("report.input", `${path}: no such file (run the study first)`);
    if (err.code) throw e;
    throw new MerglotError("report.input", `${path}: not valid JSON`);
  }
  const parsed = studyFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.join(".") : "(top level)";
    throw new MerglotError("report.input", `${path}: ${where}: ${issue.message}`);
  }
  return normaliseResults(parsed.data);
}
