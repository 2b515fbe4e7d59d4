/**
 * The report as an ordered list of sections (text, tables, figures) built once from results.json; the HTML and
 * Markdown writers only lay these out, so both formats carry exactly the same content.
 */
import type { TopLevelSpec } from "vega-lite";
import * as charts from "./charts.js";
import type { StudyResults } from "./results.js";
import {
  allMetricsTable,
  bestOverall,
  mainTable,
  multitaskTable,
  primaryMetric,
  searchTable,
  updateClusterTable,
  variantLabel,
  variantMean,
  type Table,
} from "./tables.js";

export type Block =
  | { kind: "text"; text: string }
  | { kind: "table"; table: Table }
  | { kind: "figure"; id: string; title: string; spec: TopLevelSpec };

export interface Section {
  id: string;
  title: string;
  blocks: Block[];
}

export interface ReportDocument {
  title: string;
  subtitle: string;
  sections: Section[];
}

const fmt = (x: number, digits = 3) => x.toFixed(digits);

function figure(id: string, title: string, spec: TopLevelSpec | null): Block[] {
  return spec ? [{ kind: "figure", id, title, spec }] : [];
}

/** The headline: for each task, how the best merge compares with the combined baseline. */
function summaryText(results: StudyResults): string[] {
  return results.tasks.map((t) => {
    const metric = primaryMetric(results, t);
    const best = bestOverall(results, t);
    const comb = variantMean(results, t, "combined", metric);
    const per = variantMean(results, t, "per_language", metric);
    const bestScore = best ? variantMean(results, t, best, metric) : null;
    const parts = [`${t} (${metric}, mean over ${results.languages.length} languages):`];
    if (bestScore !== null && best) parts.push(`best merge ${best} ${fmt(bestScore)}`);
    if (comb !== null) parts.push(`combined ${fmt(comb)}`);
    if (per !== null) parts.push(`per-language ${fmt(per)}`);
    return parts.join(" ");
  });
}

/** Per search: what it tried, what it found on validation, and how that holds up on test. */
function searchText(results: StudyResults): string[] {
  const sig = (x: { delta: number; p: number; significant: boolean } | null) =>
    x
      ? `${x.delta >= 0 ? "+" : ""}${fmt(x.delta)} (p ${fmt(x.p)}${x.significant ? ", significant" : ""})`
      : "n/a";
  const num = (x: number | null) => (x === null ? "n/a" : fmt(x));
  return results.search.map(
    (e) =>
      `${e.task}: ${variantLabel(e.variant)}, ${e.candidates} candidates on the validation split, best #${e.best.index + 1} ` +
      `with validation ${e.metric} ${fmt(e.best.mean)}. Test, mean over languages: searched ${num(e.test.searched)}, ` +
      `best grid merge${e.best_grid_variant ? ` (${e.best_grid_variant})` : ""} ${num(e.test.best_grid)}, combined ${num(e.test.combined)}. ` +
      `Searched − best grid ${sig(e.vs_best_grid)}; searched − combined ${sig(e.vs_combined)} (paired bootstrap of the mean over languages).`,
  );
}

function costTable(results: StudyResults): Table | null {
  if (results.costs.length === 0) return null;
  const rows = results.costs.map((c) => ({
    label: `${c.task}: ${c.variant}`,
    variant: c.variant,
    cells: [c.trainings, c.sequential_s, c.parallel_s, c.device_s, c.cost].map((value, i) => ({
      value,
      best: false,
      significant: false,
      count: i === 0,
    })),
  }));
  return {
    id: "table-costs",
    title: "Training time and cost (measured)",
    caption:
      "Wall time of the trainings each way of building the model needs, one after another on one device and as " +
      `parallel jobs, device seconds, and cost at the study's price per device-hour (${results.currency}).`,
    groups: [
      {
        label: "",
        columns: ["trainings", "sequential (s)", "parallel (s)", "device (s)", `cost (${results.currency})`],
      },
    ],
    rows,
  };
}

function updateTable(results: StudyResults): Table | null {
  if (results.update.length === 0) return null;
  return {
    id: "table-update-cost",
    title: "Updating one language",
    caption:
      "Retrain one language's adapter and re-merge, versus retrain the combined adapter on the updated data: " +
      "measured wall time and cost of each path, and the ratios (higher is better for merging).",
    groups: [
      {
        label: "",
        columns: [
          "merge path (s)",
          "combined path (s)",
          "speed-up ×",
          "merge path cost",
          "combined path cost",
          "cost ratio ×",
        ],
      },
    ],
    rows: results.update.map((u) => ({
      label: `${u.task}: ${u.lang}, ${u.variant}`,
      variant: `update/${u.lang}`,
      cells: [
        u.merge_path_s,
        u.combined_path_s,
        u.speedup,
        u.merge_path_cost,
        u.combined_path_cost,
        u.cost_ratio,
      ].map((value) => ({ value, best: false, significant: false })),
    })),
  };
}

/** Assemble the whole report from a study's results. */
export function buildDocument(results: StudyResults): ReportDocument {
  const sections: Section[] = [];
  sections.push({
    id: "summary",
    title: "Summary",
    blocks: summaryText(results).map((text) => ({ kind: "text", text })),
  });
  sections.push({
    id: "per-language",
    title: "Per-language results (Table 1)",
    blocks: [
      { kind: "table", table: mainTable(results) },
      ...results.tasks.flatMap((t) =>
        figure(`fig-lang-${t}`, `${t} per language`, charts.perLanguageChart(results, t)),
      ),
    ],
  });
  const st = searchTable(results);
  if (st)
    sections.push({
      id: "search",
      title: "Merge search",
      blocks: [
        ...searchText(results).map((text): Block => ({ kind: "text", text })),
        { kind: "table", table: st },
        ...results.tasks.flatMap((t) =>
          figure(`fig-search-${t}`, `${t} merge search`, charts.searchCurveChart(results, t)),
        ),
      ],
    });
  sections.push({
    id: "overall",
    title: "Overall (Figure 2)",
    blocks: results.tasks.flatMap((t) =>
      figure(`fig-overall-${t}`, `${t} overall`, charts.overallChart(results, t)),
    ),
  });
  const costBlocks: Block[] = [];
  const ct = costTable(results);
  if (ct) costBlocks.push({ kind: "table", table: ct });
  const ut = updateTable(results);
  if (ut) costBlocks.push({ kind: "table", table: ut });
  for (const t of results.tasks)
    costBlocks.push(...figure(`fig-cost-${t}`, `${t} cost`, charts.costChart(results, t)));
  if (costBlocks.length)
    sections.push({ id: "cost", title: "Training time and cost (Figures 3 and 6)", blocks: costBlocks });
  const uc = updateClusterTable(results);
  if (uc)
    sections.push({
      id: "update-cluster",
      title: "Update and clusters (Table 2)",
      blocks: [{ kind: "table", table: uc }],
    });
  const mt = multitaskTable(results);
  if (mt)
    sections.push({ id: "multitask", title: "Multitask (Table 3)", blocks: [{ kind: "table", table: mt }] });
  const hall = charts.hallucinationChart(results);
  if (hall)
    sections.push({
      id: "hallucination",
      title: "Hallucination (Figure 5)",
      blocks: figure("fig-hallucination", "hallucination", hall),
    });
  const sim = results.tasks.flatMap((t) =>
    figure(`fig-sim-${t}`, `${t} similarity`, charts.similarityChart(results, t)),
  );
  if (sim.length)
    sections.push({ id: "similarity", title: "Language-vector similarity (Figure 8)", blocks: sim });
  sections.push({
    id: "all",
    title: "Every variant, every metric (Table 4)",
    blocks: results.tasks.map((t) => ({ kind: "table", table: allMetricsTable(results, t) })),
  });
  return {
    title: `merglot study: ${results.study}`,
    subtitle: `${results.tasks.join(", ")} · languages ${results.languages.join(", ")}`,
    sections,
  };
}
