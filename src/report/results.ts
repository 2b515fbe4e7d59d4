/**
 * The study's results file (`OUT_DIR/results.json`) as the report reads it. The study writes it; the report
 * validates it on the way in so that a hand-edited or truncated file gives one clear line, not a broken page.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { MerglotError } from "../errors.js";

const metricMap = z.record(z.string(), z.number());
const ciMap = z.record(z.string(), z.tuple([z.number(), z.number()]));

const resultRow = z.object({
  task: z.string(),
  lang: z.string(),
  variant: z.string(),
  metrics: metricMap,
  ci: ciMap.optional(),
  /** Paired bootstrap against the combined baseline on the task's primary metric, when the study ran it. */
  vs_combined: z
    .object({ metric: z.string(), delta: z.number(), p: z.number(), significant: z.boolean() })
    .optional(),
});

const costRow = z.object({
  /** What the trainings were for: `combined`, `per_language`, `update/<lang>`, `combined_update`, … */
  variant: z.string(),
  task: z.string(),
  trainings: z.number().int().nonnegative(),
  /** Sum of the trainings' wall times: one after another on one device. */
  sequential_s: z.number().nonnegative(),
  /** Wall time when the trainings run as parallel jobs (the longest one, plus any merge). */
  parallel_s: z.number().nonnegative(),
  device_s: z.number().nonnegative(),
  cost: z.number().nonnegative(),
});

const updateRow = z.object({
  task: z.string(),
  lang: z.string(),
  /** Retrain one language + re-merge. */
  merge_path_s: z.number().nonnegative(),
  merge_path_cost: z.number().nonnegative(),
  /** Retrain the combined adapter on the updated data. */
  combined_path_s: z.number().nonnegative(),
  combined_path_cost: z.number().nonnegative(),
  speedup: z.number(),
  cost_ratio: z.number(),
});

const similarityBlock = z.object({
  languages: z.array(z.string()),
  /** Row-major n × n cosine similarities, keyed by module kind (`all` for every module together). */
  by_kind: z.record(z.string(), z.array(z.array(z.number()))),
});

export const studyResultsSchema = z.object({
  study: z.string(),
  languages: z.array(z.string()).min(1),
  tasks: z.array(z.string()).min(1),
  /** The metric the study ranks by, per task (e.g. sentiment → macro_f1). */
  primary: z.record(z.string(), z.string()).optional(),
  results: z.array(resultRow),
  costs: z.array(costRow).default([]),
  update: z.array(updateRow).default([]),
  similarity: z.record(z.string(), similarityBlock).default({}),
  currency: z.string().default("USD"),
});

export type StudyResults = z.infer<typeof studyResultsSchema>;
export type ResultRow = StudyResults["results"][number];
export type CostRow = StudyResults["costs"][number];
export type UpdateRow = StudyResults["update"][number];

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
  const parsed = studyResultsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.join(".") : "(top level)";
    throw new MerglotError("report.input", `${path}: ${where}: ${issue.message}`);
  }
  return parsed.data;
}
