/**
 * The study's figures as Vega-Lite specifications, rendered to SVG when the report is built, so the page needs
 * no script and no network to show them. Each function returns a spec; `renderSvg` turns any spec into markup.
 */
import * as vega from "vega";
import { compile, type Config, type TopLevelSpec } from "vega-lite";
import type { StudyResults } from "./results.js";
import { bestMergedPerMethod, lowerIsBetter, primaryMetric, variantMean, variantsOf } from "./tables.js";

const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Noto Sans CJK JP', sans-serif";

/** One look for every chart: quiet axes, readable labels, the page's font. */
const CONFIG: Config = {
  font: FONT,
  view: { stroke: null },
  axis: {
    labelFontSize: 11,
    titleFontSize: 11,
    titleFontWeight: "bold",
    gridColor: "#e8e8ee",
    domainColor: "#999",
  },
  legend: { labelFontSize: 11, titleFontSize: 11, orient: "bottom" },
  title: { fontSize: 13, fontWeight: "bold", anchor: "start", offset: 8 },
  bar: { cornerRadiusEnd: 2 },
};

/** Variant family, for colour: the two baselines, merges, and the ablations. */
export function familyOf(variant: string): string {
  if (variant === "combined") return "combined baseline";
  if (variant === "per_language") return "per-language adapters";
  const head = variant.split("/")[0]!;
  if (head === "merged") return `merge: ${variant.split("/")[1]}`;
  return head;
}

const BASELINE_COLORS = ["#3b4252", "#9aa0ad"];
const OTHER_COLORS = [
  "#4e79a7",
  "#f28e2b",
  "#59a14f",
  "#e15759",
  "#76b7b2",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
];

/** One colour per variant family for the whole report, so a method has the same colour in every figure. */
function familyColors(results: StudyResults): { domain: string[]; range: string[] } {
  const seen = new Set<string>();
  for (const r of results.results) seen.add(familyOf(r.variant));
  const baselines = ["combined baseline", "per-language adapters"].filter((f) => seen.has(f));
  const others = [...seen].filter((f) => !baselines.includes(f)).sort();
  return {
    domain: [...baselines, ...others],
    range: [
      ...baselines.map((f) => BASELINE_COLORS[f === "combined baseline" ? 0 : 1]!),
      ...others.map((_, i) => OTHER_COLORS[i % OTHER_COLORS.length]!),
    ],
  };
}

function familyColor(results: StudyResults) {
  return {
    field: "family",
    type: "nominal" as const,
    title: null,
    scale: familyColors(results),
    legend: { labelLimit: 320, columns: 3 },
  };
}

/** The merge search's progress: each candidate's validation objective and the best so far. */
export function searchCurveChart(results: StudyResults, task: string): TopLevelSpec | null {
  const entries = results.search.filter((e) => e.task === task);
  if (entries.length === 0) return null;
  const values = entries.flatMap((e) =>
    e.objectives.map((objective, i) => ({
      search: e.variant,
      candidate: i + 1,
      objective,
      best: e.curve[i]!,
    })),
  );
  const metric = entries[0]!.metric;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: `${task}: merge search on validation (${metric})`,
    width: 420,
    height: 200,
    data: { values },
    layer: [
      {
        mark: { type: "point", filled: true, size: 28, opacity: 0.5 },
        encoding: {
          x: { field: "candidate", type: "quantitative", title: "candidate" },
          y: { field: "objective", type: "quantitative", title: `validation ${metric}` },
          color: { field: "search", type: "nominal", title: null },
        },
      },
      {
        mark: { type: "line", interpolate: "step-after" },
        encoding: {
          x: { field: "candidate", type: "quantitative" },
          y: { field: "best", type: "quantitative" },
          color: { field: "search", type: "nominal", title: null },
        },
      },
    ],
  };
}

/** Figure 2: every variant's mean primary metric over languages, one panel per task. */
export function overallChart(results: StudyResults, task: string): TopLevelSpec {
  const metric = primaryMetric(results, task);
  const values = variantsOf(results, task)
    .map((variant) => ({
      variant,
      family: familyOf(variant),
      score: variantMean(results, task, variant, metric),
    }))
    .filter((d) => d.score !== null);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: `${task}: ${metric} (mean over languages${lowerIsBetter(metric) ? ", lower is better" : ""})`,
    width: 420,
    height: { step: 18 },
    data: { values },
    layer: [
      {
        mark: { type: "bar" },
        encoding: {
          y: { field: "variant", type: "nominal", sort: null, title: null, axis: { labelLimit: 420 } },
          x: { field: "score", type: "quantitative", title: metric, scale: { zero: true } },
          color: familyColor(results),
        },
      },
      {
        mark: { type: "text", align: "left", dx: 3, fontSize: 10, color: "#333" },
        encoding: {
          y: { field: "variant", type: "nominal", sort: null },
          x: { field: "score", type: "quantitative" },
          text: { field: "score", type: "quantitative", format: ".3f" },
        },
      },
    ],
  };
}

/** Figure 7: per-language scores of both baselines and the best merge of each method. */
export function perLanguageChart(results: StudyResults, task: string): TopLevelSpec {
  const metric = primaryMetric(results, task);
  const variants = [
    ...["combined", "per_language"].filter((v) => variantsOf(results, task).includes(v)),
    ...bestMergedPerMethod(results, task),
  ];
  const values = results.results
    .filter((r) => r.task === task && variants.includes(r.variant) && Number.isFinite(r.metrics[metric]))
    .map((r) => ({
      lang: r.lang,
      variant: r.variant,
      family: familyOf(r.variant),
      score: r.metrics[metric]!,
    }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: `${task}: ${metric} per language`,
    data: { values },
    mark: { type: "bar" },
    width: { step: 12 },
    height: 160,
    encoding: {
      column: {
        field: "lang",
        type: "nominal",
        title: null,
        sort: results.languages,
        header: { labelFontSize: 12 },
      },
      x: { field: "variant", type: "nominal", sort: variants, axis: null, title: null },
      y: { field: "score", type: "quantitative", title: metric },
      color: familyColor(results),
      tooltip: [{ field: "variant" }, { field: "score", format: ".3f" }],
    },
  };
}

/** Figures 3 and 6: training time (one device vs parallel jobs) and cost of each way to get a model. */
export function costChart(results: StudyResults, task: string): TopLevelSpec | null {
  const rows = results.costs.filter((c) => c.task === task);
  if (rows.length === 0) return null;
  const values = rows.flatMap((c) =>
    [
      { measure: "wall time, sequential (s)", value: c.sequential_s },
      { measure: "wall time, parallel jobs (s)", value: c.parallel_s },
      { measure: `cost (${results.currency})`, value: c.cost },
    ].map((m) => ({ ...m, variant: c.variant })),
  );
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: `${task}: training time and cost`,
    data: { values },
    facet: {
      column: {
        field: "measure",
        type: "nominal",
        title: null,
        sort: ["wall time, sequential (s)", "wall time, parallel jobs (s)", `cost (${results.currency})`],
        header: { labelFontSize: 11 },
      },
    },
    resolve: { scale: { x: "independent" } },
    spec: {
      width: 200,
      height: { step: 18 },
      mark: { type: "bar" },
      encoding: {
        y: { field: "variant", type: "nominal", sort: null, title: null },
        x: { field: "value", type: "quantitative", title: null },
        color: { field: "variant", type: "nominal", legend: null, scale: { range: OTHER_COLORS } },
        tooltip: [{ field: "value", type: "quantitative", format: ".3f" }],
      },
    },
  };
}

/** Figure 8: cosine similarity between language vectors, one heatmap per task (all modules together). */
export function similarityChart(results: StudyResults, task: string): TopLevelSpec | null {
  const block = results.similarity[task];
  if (!block) return null;
  const kind = block.by_kind["all"] ? "all" : Object.keys(block.by_kind)[0];
  if (!kind) return null;
  const m = block.by_kind[kind]!;
  const values = block.languages.flatMap((a, i) =>
    block.languages.map((b, j) => ({ a, b, cos: m[i]?.[j] ?? null })),
  );
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: `${task}: language-vector cosine similarity${kind === "all" ? "" : ` (${kind})`}`,
    data: { values },
    width: { step: 40 },
    height: { step: 40 },
    encoding: {
      x: {
        field: "b",
        type: "nominal",
        sort: block.languages,
        title: null,
        axis: { orient: "top", labelAngle: 0 },
      },
      y: { field: "a", type: "nominal", sort: block.languages, title: null },
    },
    layer: [
      {
        mark: { type: "rect" },
        encoding: {
          color: {
            field: "cos",
            type: "quantitative",
            title: "cosine",
            scale: { scheme: "blues", domain: [-0.2, 1] },
          },
        },
      },
      {
        mark: { type: "text", fontSize: 10 },
        encoding: {
          text: { field: "cos", type: "quantitative", format: ".2f" },
          color: { condition: { test: "datum.cos > 0.6", value: "white" }, value: "#222" },
        },
      },
    ],
  };
}

/** Figure 5: hallucination rate per language (lower is better) for the baselines, best merge and updates. */
export function hallucinationChart(results: StudyResults): TopLevelSpec | null {
  const task = results.tasks.find((t) =>
    results.results.some((r) => r.task === t && Number.isFinite(r.metrics["hallucination_rate"])),
  );
  if (!task) return null;
  const values = results.results
    .filter((r) => r.task === task && Number.isFinite(r.metrics["hallucination_rate"]))
    .filter((r) => !r.variant.startsWith("merged/") || bestMergedPerMethod(results, task).includes(r.variant))
    .map((r) => ({
      lang: r.lang,
      variant: r.variant,
      family: familyOf(r.variant),
      rate: r.metrics["hallucination_rate"]!,
    }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: `${task}: aggregated hallucination rate (lower is better)`,
    data: { values },
    mark: { type: "bar" },
    width: { step: 12 },
    height: 160,
    encoding: {
      column: { field: "lang", type: "nominal", title: null, sort: results.languages },
      x: { field: "variant", type: "nominal", axis: null },
      y: { field: "rate", type: "quantitative", title: "hallucination rate" },
      color: familyColor(results),
    },
  };
}

/**
 * Compile a Vega-Lite spec and render it to standalone SVG markup (no DOM, no network). Vega numbers clip paths
 * and gradients from a process-wide counter, so the ids are renamed to `<idPrefix>-<n>` in order of appearance:
 * the same spec gives the same bytes in any process, and ids stay unique among the page's inline SVGs.
 */
export async function renderSvg(spec: TopLevelSpec, idPrefix: string): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return renumberIds(await view.toSVG(), idPrefix);
  } finally {
    view.finalize();
  }
}

function renumberIds(svg: string, prefix: string): string {
  const ids = new Map<string, string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g))
    if (!ids.has(m[1]!)) ids.set(m[1]!, `${prefix}-${ids.size + 1}`);
  if (ids.size === 0) return svg;
  return svg
    .replace(/(\sid=")([^"]+)(")/g, (all, a: string, id: string, b: string) =>
      ids.has(id) ? a + ids.get(id)! + b : all,
    )
    .replace(/(url\(#|href="#)([^)"]+)/g, (all, a: string, id: string) =>
      ids.has(id) ? a + ids.get(id)! : all,
    );
}
