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
import type { Study } from "./schema.js";
import { readStepRecord, stepDir, type StepRecord } from "./store.js";

export interface ResultRow {
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
    costs: Study["costs"];
  };
  languages: string[];
  tasks: string[];
  results: ResultRow[];
  costs: CostEntry[];
  update: ReturnType<typeof updateComparison> | null;
  similarity: Record<
    string,
    { model: string; task: string; languages: string[]; modules: Record<string, number[][]> }
  >;
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
  const similarity: Results["similarity"] = {};
  for (const s of steps) {
    if (!records.has(s.id)) continue;
    const dir = stepDir(outDir, s.key);
    if (s.kind === "evaluate" && s.result) {
      const m = JSON.parse(readFileSync(join(dir, "metrics.json"), "utf8")) as StepMetrics;
      results.push({ ...s.result, n: m.count, metrics: m.metrics, ci: m.ci });
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
  const costModel = study.costs;
  return {
    study: {
      name: study.name,
      source: study.source,
      models: study.bases.map((b) => ({ name: b.name, path: b.path })),
      training: study.training,
      merges: study.merges,
      executor: study.executor,
      costs: study.costs,
    },
    languages: study.languages,
    tasks: study.tasks.map((t) => t.name),
    results,
    costs: variantCosts(steps, records, costModel),
    update: study.ablations.update
      ? updateComparison(steps, records, costModel, study.ablations.update.lang)
      : null,
    similarity,
  };
}
