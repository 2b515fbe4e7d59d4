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
import {
  compareMeanOverLanguages,
  compareToCombined,
  PRIMARY_METRIC,
  type ScoredSample,
  type Significance,
} from "./significance.js";
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
  /** One entry per finished search step (absent when the study has no search). */
  search?: SearchSummary[];
}

/** A study's merge search of one task: its curve on validation, its best merge's test score, the tests. */
export interface SearchSummary {
  model: string;
  task: string;
  variant: string;
  optimizer: string;
  methods: string[];
  /** The objective's metric (on validation) = the task's primary metric unless the study names another. */
  metric: string;
  candidates: number;
  /** Validation objective of each candidate, in the order they were proposed. */
  objectives: number[];
  /** Best validation objective so far after each candidate. */
  curve: number[];
  best: { index: number; params: unknown; validation: Record<string, number>; mean: number };
  /** Every split the search read (the loaders' log): validation files only. */
  split_reads: { path: string; split: string }[];
  /** Test mean over languages of the primary metric: the searched merge, the best grid merge, combined. */
  test: { searched: number | null; best_grid: number | null; combined: number | null };
  best_grid_variant: string | null;
  /** Paired bootstrap of the test mean over languages (searched − other). */
  vs_best_grid: Significance | null;
  vs_combined: Significance | null;
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
  const search = searchSummaries(study, steps, records, outDir, results, samplesOf);
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
    ...(study.search ? { search } : {}),
  };
}

/** Mean over the study's languages of a variant's metric; null unless every language has it. */
function meanOf(
  rows: ResultRow[],
  study: Study,
  model: string,
  task: string,
  variant: string,
  metric: string,
) {
  const vals = study.languages.map(
    (l) =>
      rows.find((r) => r.model === model && r.task === task && r.lang === l && r.variant === variant)
        ?.metrics[metric],
  );
  return vals.every((v) => v !== undefined) ? vals.reduce((a, b) => a + b!, 0) / vals.length : null;
}

function searchSummaries(
  study: Study,
  steps: PlannedStep[],
  records: Map<string, StepRecord>,
  outDir: string,
  rows: ResultRow[],
  samplesOf: Map<ResultRow, string>,
): SearchSummary[] {
  const out: SearchSummary[] = [];
  for (const s of steps) {
    if (s.kind !== "search" || !records.has(s.id)) continue;
    const json = JSON.parse(readFileSync(join(stepDir(outDir, s.key), "search.json"), "utf8")) as {
      optimizer: string;
      methods: string[];
      metric: string;
      split_reads: { path: string; split: string }[];
      best: { index: number; params: unknown; scores: Record<string, number>; mean: number };
      candidates: { objective: number }[];
    };
    const evalStep = steps.find((e) => e.kind === "evaluate" && e.deps.adapter0 === s.id && e.result);
    const { model, task, variant } = evalStep!.result!;
    const metric = primaryOf(task, rows);
    const variants = [
      ...new Set(rows.filter((r) => r.model === model && r.task === task).map((r) => r.variant)),
    ];
    let bestGrid: string | null = null;
    let bestGridMean = -Infinity;
    for (const v of variants.filter((x) => x.startsWith("merged/"))) {
      const m = meanOf(rows, study, model, task, v, metric);
      if (m !== null && m > bestGridMean) {
        bestGridMean = m;
        bestGrid = v;
      }
    }
    const samples = (v: string) => {
      const o: Record<string, ScoredSample[]> = {};
      for (const l of study.languages) {
        const r = rows.find((x) => x.model === model && x.task === task && x.lang === l && x.variant === v);
        if (!r) return null;
        o[l] = readSamples(samplesOf.get(r)!);
      }
      return o;
    };
    const opts = {
      samples: study.evaluation.bootstrap,
      seed: study.evaluation.seed,
      confidence: study.evaluation.confidence,
    };
    const mine = samples(variant);
    const compare = (other: string | null) => {
      const theirs = other ? samples(other) : null;
      return mine && theirs ? compareMeanOverLanguages(mine, theirs, metric, opts) : null;
    };
    let best = -Infinity;
    const curve = json.candidates.map((c) => (best = Math.max(best, c.objective)));
    out.push({
      model,
      task,
      variant,
      optimizer: json.optimizer,
      methods: json.methods,
      metric: json.metric,
      candidates: json.candidates.length,
      objectives: json.candidates.map((c) => c.objective),
      curve,
      best: {
        index: json.best.index,
        params: json.best.params,
        validation: json.best.scores,
        mean: json.best.mean,
      },
      split_reads: json.split_reads,
      test: {
        searched: meanOf(rows, study, model, task, variant, metric),
        best_grid: bestGrid ? bestGridMean : null,
        combined: meanOf(rows, study, model, task, "combined", metric),
      },
      best_grid_variant: bestGrid,
      vs_best_grid: compare(bestGrid),
      vs_combined: compare("combined"),
    });
  }
  return out;
}
