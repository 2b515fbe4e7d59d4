/**
 * results.json: what the report reads. Every number in it is copied from a finished step's output
 * (evaluate → metrics.json, analyse → similarity.json) or computed from recorded step measurements
 * (costs.ts); steps that have not run are simply absent.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { updateComparison, variantCosts, type CostEntry } from "./costs.js";
import type { StepMetrics } from "./executors.js";
import type { PlannedStep } from "./plan.js";
import { deviceOf, type Study } from "./schema.js";
import { compareToCombined, PRIMARY_METRIC, type ScoredSample, type Significance } from "./significance.js";
import { readStepRecord, stepDir, type StepRecord } from "./store.js";

export interface ResultRow {
  /** Paired bootstrap against the combined baseline on the task's primary metric (same model, language). */
  vs_combined?: Significance;
  model: string;
  task: string;
  lang: string;
  variant: string;
  /** Examples evaluated. */
  n: number;
  metrics: Record<string, number>;
  /** Bootstrap confidence interval [low, high] of each metric. */
  ci: Record<string, [number, number]>;
}

export interface Results {
  study: {
    name: string;
    source: string;
    models: { name: string; path: string }[];
    training: Study["training"];
    merges: Study["merges"];
    executor: Study["executor"];
    /** What ran each step kind (its env and command stay in study.yaml: they may hold secrets). */
    executors: Record<string, { kind: string; device: string }>;
    costs: Study["costs"];
  };
  languages: string[];
  tasks: string[];
  /** The metric each task is ranked and tested by (the seed's Table 1 metric). */
  primary: Record<string, string>;
  results: ResultRow[];
  costs: CostEntry[];
  update: ReturnType<typeof updateComparison> | null;
  similarity: Record<
    string,
    { model: string; task: string; languages: string[]; modules: Record<string, number[][]> }
  >;
}

function readSamples(path: string): ScoredSample[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as ScoredSample);
}

/** The task's primary metric: the seed's for built-in tasks, else the first metric its evaluations report. */
function primaryOf(task: string, rows: ResultRow[]): string {
  return PRIMARY_METRIC[task] ?? Object.keys(rows.find((r) => r.task === task)?.metrics ?? {})[0] ?? "";
}

/** Mark each variant's row with its paired bootstrap against the combined baseline (seeded: deterministic). */
function addSignificance(study: Study, rows: ResultRow[], samplesOf: Map<ResultRow, string>): void {
  const key = (r: ResultRow) => `${r.model}\u0000${r.task}\u0000${r.lang}`;
  const combined = new Map(rows.filter((r) => r.variant === "combined").map((r) => [key(r), r]));
  for (const r of rows) {
    const base = combined.get(key(r));
    if (!base || r === base) continue;
    const metric = primaryOf(r.task, rows);
    if (!(metric in r.metrics)) continue;
    const sig = compareToCombined(readSamples(samplesOf.get(r)!), readSamples(samplesOf.get(base)!), metric, {
      samples: study.evaluation.bootstrap,
      seed: study.evaluation.seed,
      confidence: study.evaluation.confidence,
    });
    if (sig) r.vs_combined = sig;
  }
}

/** Records of the finished steps, by step id. */
export function finishedRecords(outDir: string, steps: PlannedStep[]): Map<string, StepRecord> {
  const m = new Map<string, StepRecord>();
  for (const s of steps) {
    const r = readStepRecord(outDir, s.key);
    if (r) m.set(s.id, r);
  }
  return m;
}

export function buildResults(study: Study, steps: PlannedStep[], outDir: string): Results {
  const records = finishedRecords(outDir, steps);
  const results: ResultRow[] = [];
  const samplesOf = new Map<ResultRow, string>();
  const similarity: Results["similarity"] = {};
  for (const s of steps) {
    if (!records.has(s.id)) continue;
    const dir = stepDir(outDir, s.key);
    if (s.kind === "evaluate" && s.result) {
      const m = JSON.parse(readFileSync(join(dir, "metrics.json"), "utf8")) as StepMetrics;
      const row: ResultRow = { ...s.result, n: m.count, metrics: m.metrics, ci: m.ci };
      results.push(row);
      samplesOf.set(row, join(dir, "samples.jsonl"));
    } else if (s.kind === "analyse" && existsSync(join(dir, "similarity.json"))) {
      const sim = JSON.parse(readFileSync(join(dir, "similarity.json"), "utf8")) as {
        languages: string[];
        modules: Record<string, number[][]>;
      };
      const task = s.id.split("/").at(-1)!;
      const model = study.bases.length > 1 ? s.id.split("/")[0]! : study.bases[0]!.name;
      similarity[study.bases.length > 1 ? `${model}/${task}` : task] = { model, task, ...sim };
    }
  }
  addSignificance(study, results, samplesOf);
  const costModel = study.costs;
  return {
    study: {
      name: study.name,
      source: study.source,
      models: study.bases.map((b) => ({ name: b.name, path: b.path })),
      training: study.training,
      merges: study.merges,
      executor: study.executor,
      executors: Object.fromEntries(
        Object.entries(study.executors).map(([k, e]) => [k, { kind: e.kind, device: deviceOf(e) }]),
      ),
      costs: study.costs,
    },
    languages: study.languages,
    tasks: study.tasks.map((t) => t.name),
    primary: Object.fromEntries(study.tasks.map((t) => [t.name, primaryOf(t.name, results)])),
    results,
    costs: variantCosts(steps, records, costModel),
    update: study.ablations.update
      ? updateComparison(steps, records, costModel, study.ablations.update.lang)
      : null,
    similarity,
  };
}
