/**
 * The study's tables as plain data (title, columns, rows of numbers with their marks), built once from
 * results.json and then rendered to HTML and Markdown alike, so both formats always show the same numbers.
 */
import type { ResultRow, StudyResults } from "./results.js";

/** Metrics where a smaller value is better; every other metric is "higher is better". */
const LOWER_IS_BETTER = new Set(["hallucination_rate"]);

/** The metric the seed reports per task (Table 1), when the study does not name one. */
const DEFAULT_PRIMARY: Record<string, readonly string[]> = {
  sentiment: ["macro_f1"],
  reasoning: ["acc"],
  summarization: ["bertscore_f1", "rougeL"],
  extraction: ["hallucination_rate"],
};

export function lowerIsBetter(metric: string): boolean {
  return LOWER_IS_BETTER.has(metric);
}

/** The metric a task is ranked by: the study's choice, else the seed's, else the first metric present. */
export function primaryMetric(results: StudyResults, task: string): string {
  const chosen = results.primary?.[task];
  if (chosen) return chosen;
  const present = new Set(
    results.results.filter((r) => r.task === task).flatMap((r) => Object.keys(r.metrics)),
  );
  for (const m of DEFAULT_PRIMARY[task] ?? []) if (present.has(m)) return m;
  const first = [...present].sort()[0];
  return first ?? "score";
}

export interface Cell {
  value: number | null;
  /** Best in its column (highest, or lowest for lower-is-better metrics). */
  best: boolean;
  /** Significantly different from the combined baseline (paired bootstrap), when known. */
  significant: boolean;
  /** A count (shown without decimals); every other value is shown to three decimals. */
  count?: boolean;
}

export interface Table {
  id: string;
  title: string;
  caption: string;
  /** Column groups (e.g. one per task) and their columns (languages, then "avg"). */
  groups: { label: string; columns: string[] }[];
  rows: { label: string; variant: string; cells: Cell[] }[];
}

/** The merge method of a variant `merged/<method>/w<w>-d<d>`, or null for any other variant. */
export function mergeMethodOf(variant: string): string | null {
  const m = /^merged\/([^/]+)\//.exec(variant);
  return m ? m[1]! : null;
}

function lookup(
  results: StudyResults,
): (task: string, lang: string, variant: string) => ResultRow | undefined {
  const index = new Map<string, ResultRow>();
  for (const r of results.results) index.set(`${r.task}\u0000${r.lang}\u0000${r.variant}`, r);
  return (task, lang, variant) => index.get(`${task}\u0000${lang}\u0000${variant}`);
}

/** Mean of a variant's metric over the languages it was evaluated on (null when none). */
export function variantMean(
  results: StudyResults,
  task: string,
  variant: string,
  metric: string,
): number | null {
  const vals = results.results
    .filter((r) => r.task === task && r.variant === variant && Number.isFinite(r.metrics[metric]))
    .map((r) => r.metrics[metric]!);
  return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null;
}

/** Every variant evaluated on a task, in first-seen order. */
export function variantsOf(results: StudyResults, task: string): string[] {
  return [...new Set(results.results.filter((r) => r.task === task).map((r) => r.variant))];
}

/** For each merge method, its setting with the best mean primary metric over languages (the seed's Table 1). */
export function bestMergedPerMethod(results: StudyResults, task: string): string[] {
  const metric = primaryMetric(results, task);
  const sign = lowerIsBetter(metric) ? -1 : 1;
  const best = new Map<string, { variant: string; score: number }>();
  for (const v of variantsOf(results, task)) {
    const method = mergeMethodOf(v);
    const score = variantMean(results, task, v, metric);
    if (!method || score === null) continue;
    const cur = best.get(method);
    if (!cur || sign * score > sign * cur.score) best.set(method, { variant: v, score });
  }
  return [...best.values()].map((b) => b.variant);
}

/** Mark the best cell of every column. */
function markBest(rows: Table["rows"], lowerBetter: (col: number) => boolean): void {
  const ncol = rows[0]?.cells.length ?? 0;
  for (let c = 0; c < ncol; c++) {
    const sign = lowerBetter(c) ? -1 : 1;
    let top = -Infinity;
    for (const r of rows) {
      const v = r.cells[c]!.value;
      if (v !== null && sign * v > top) top = sign * v;
    }
    for (const r of rows) {
      const v = r.cells[c]!.value;
      r.cells[c]!.best = v !== null && sign * v === top && rows.length > 1;
    }
  }
}

/**
 * A per-language table: one column group per task (its primary metric per language, then the average), one row
 * per variant. Used for Table 1 (baselines + best merge of each method) and Table 2 (updates and clusters).
 */
export function perLanguageTable(
  results: StudyResults,
  id: string,
  title: string,
  caption: string,
  rowsFor: (task: string) => string[],
  rowLabel: (variant: string) => string = (v) => v,
): Table {
  const get = lookup(results);
  const tasks = results.tasks;
  const groups = tasks.map((t) => ({
    label: `${t} (${primaryMetric(results, t)})`,
    columns: [...results.languages, "avg"],
  }));
  const variantOrder: string[] = [];
  for (const t of tasks) for (const v of rowsFor(t)) if (!variantOrder.includes(v)) variantOrder.push(v);
  const rows = variantOrder.map((variant) => {
    const cells: Cell[] = [];
    for (const t of tasks) {
      const metric = primaryMetric(results, t);
      const wanted = rowsFor(t).includes(variant);
      for (const lang of results.languages) {
        const r = wanted ? get(t, lang, variant) : undefined;
        const v = r?.metrics[metric];
        cells.push({
          value: v === undefined || !Number.isFinite(v) ? null : v,
          best: false,
          significant: r?.vs_combined?.significant === true && r.vs_combined.metric === metric,
        });
      }
      cells.push({
        value: wanted ? variantMean(results, t, variant, metric) : null,
        best: false,
        significant: false,
      });
    }
    return { label: rowLabel(variant), variant, cells };
  });
  const perGroup = results.languages.length + 1;
  markBest(rows, (c) => lowerIsBetter(primaryMetric(results, tasks[Math.floor(c / perGroup)]!)));
  return { id, title, caption, groups, rows };
}

/** "search (cma-es, ties)" for `search/cmaes/ties` (the searched merge's row label). */
export function variantLabel(variant: string): string {
  const m = /^(?:(.+)\/)?search\/([^/]+)\/([^/]+)$/.exec(variant);
  if (!m) return variant;
  const opt = m[2] === "cmaes" ? "cma-es" : m[2]!;
  return `${m[1] ? `${m[1]}/` : ""}search (${opt}, ${m[3]!.split("+").join(", ")})`;
}

/** The searched merges of a task (variants `search/…`). */
export function searchVariants(results: StudyResults, task: string): string[] {
  return variantsOf(results, task).filter((v) => /(^|\/)search\//.test(v));
}

/** The merge search next to what it competes with: the best grid merge and both baselines, on test. */
export function searchTable(results: StudyResults): Table | null {
  if (results.search.length === 0) return null;
  return perLanguageTable(
    results,
    "table-search",
    "Merge search on test",
    "The merge found by searching weights, densities and λ on the validation split, the best merge of the " +
      "study's grid (by mean over languages) and both baselines, on the test split. †: significantly different " +
      "from the combined baseline (paired bootstrap, p < 0.05).",
    (t) => {
      const entries = results.search.filter((e) => e.task === t);
      return [
        ...entries.map((e) => e.variant),
        ...new Set(entries.map((e) => e.best_grid_variant).filter((v): v is string => v !== null)),
        ...["combined", "per_language"].filter((v) => variantsOf(results, t).includes(v)),
      ];
    },
    variantLabel,
  );
}

/** Table 1: the two baselines and the best setting of each merge method, per language and task. */
export function mainTable(results: StudyResults): Table {
  return perLanguageTable(
    results,
    "table-main",
    "Per-language scores",
    "The base model, both baselines and the best setting of each merge method (by mean over languages). Bold: " +
      "best in its column. †: significantly different from the combined baseline (paired bootstrap, p < 0.05).",
    (t) => [
      ...["base", "combined", "per_language"].filter((v) => variantsOf(results, t).includes(v)),
      ...bestMergedPerMethod(results, t),
      ...searchVariants(results, t),
    ],
    variantLabel,
  );
}

/** Table 2: updated-language merges and language-cluster merges next to the best merge they change. */
export function updateClusterTable(results: StudyResults): Table | null {
  const extra = (t: string) =>
    variantsOf(results, t).filter((v) => v.startsWith("update/") || v.startsWith("cluster/"));
  if (!results.tasks.some((t) => extra(t).length > 0)) return null;
  return perLanguageTable(
    results,
    "table-update-cluster",
    "Language update and language clusters",
    "The best merged model, the merge with one language's adapter retrained on more data (update/…), and " +
      "merges of language groups where each language is scored with its own group's adapter (cluster/…).",
    (t) => {
      const best = bestOverall(results, t);
      return [...(best ? [best] : []), ...extra(t)];
    },
  );
}

/** The merged variant with the best mean primary metric on a task. */
export function bestOverall(results: StudyResults, task: string): string | null {
  const metric = primaryMetric(results, task);
  const sign = lowerIsBetter(metric) ? -1 : 1;
  let best: { v: string; s: number } | null = null;
  for (const v of bestMergedPerMethod(results, task)) {
    const s = variantMean(results, task, v, metric)!;
    if (!best || sign * s > sign * best.s) best = { v, s };
  }
  return best?.v ?? null;
}

/** Table 3: multitask merges (one adapter for every task) against the best per-task merge, mean over languages. */
export function multitaskTable(results: StudyResults): Table | null {
  const multi = [...new Set(results.results.map((r) => r.variant).filter((v) => v.startsWith("multitask/")))];
  if (multi.length === 0) return null;
  const groups = [
    {
      label: "mean over languages",
      columns: results.tasks.map((t) => `${t} (${primaryMetric(results, t)})`),
    },
  ];
  const rowVariants = ["best merged (per task)", ...multi];
  const rows = rowVariants.map((variant, i) => ({
    label: variant,
    variant,
    cells: results.tasks.map((t) => {
      const v = i === 0 ? bestOverall(results, t) : variant;
      return {
        value: v ? variantMean(results, t, v, primaryMetric(results, t)) : null,
        best: false,
        significant: false,
      };
    }),
  }));
  markBest(rows, (c) => lowerIsBetter(primaryMetric(results, results.tasks[c]!)));
  return {
    id: "table-multitask",
    title: "Multitask merging",
    caption:
      "One adapter for every task and language, against the best merge of each task's language adapters.",
    groups,
    rows,
  };
}

/** Every variant's mean over languages of every metric, per task (the seed's Table 4). */
export function allMetricsTable(results: StudyResults, task: string): Table {
  const metrics = [
    ...new Set(results.results.filter((r) => r.task === task).flatMap((r) => Object.keys(r.metrics))),
  ].sort();
  const rows = variantsOf(results, task).map((variant) => ({
    label: variant,
    variant,
    cells: metrics.map((m) => ({
      value: variantMean(results, task, variant, m),
      best: false,
      significant: false,
    })),
  }));
  markBest(rows, (c) => lowerIsBetter(metrics[c]!));
  return {
    id: `table-all-${task}`,
    title: `All variants: ${task}`,
    caption: "Mean over languages of every metric, for every variant the study evaluated.",
    groups: [{ label: task, columns: metrics }],
    rows,
  };
}
