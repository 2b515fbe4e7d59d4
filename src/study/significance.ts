/**
 * Is a variant's score on a language different from the combined baseline's? A paired bootstrap over the test
 * examples both were scored on (src/eval/metrics/paired.ts), on the task's primary metric, recomputed from the
 * per-example samples: macro F1 / P / R from gold and predicted labels, every other metric as the mean of its
 * per-example values (accuracy: prediction = gold).
 */
import { classificationReport } from "../eval/metrics/classification.js";
import { pairedComparison } from "../eval/metrics/paired.js";

/** The metric the seed reports per built-in task (Table 1); a custom task uses its first metric. */
export const PRIMARY_METRIC: Record<string, string> = {
  sentiment: "macro_f1",
  reasoning: "acc",
  summarization: "rougeL",
  extraction: "hallucination_rate",
};

export interface ScoredSample {
  id: string;
  gold: string;
  prediction: string | null;
  [metric: string]: unknown;
}

export interface Significance {
  metric: string;
  delta: number;
  p: number;
  significant: boolean;
}

function perExample(s: ScoredSample, metric: string): number | null {
  const v = s[metric];
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (metric === "acc" || metric === "accuracy") return s.prediction === s.gold ? 1 : 0;
  return null;
}

/** Paired bootstrap of `metric` between two systems' samples (matched by id); null when it cannot be computed. */
export function compareToCombined(
  variant: readonly ScoredSample[],
  combined: readonly ScoredSample[],
  metric: string,
  options: { samples?: number; seed?: number; confidence?: number } = {},
): Significance | null {
  const byId = new Map(combined.map((s) => [s.id, s]));
  const pairs = variant.filter((s) => byId.has(s.id)).map((s) => [s, byId.get(s.id)!] as const);
  if (pairs.length < 2) return null;
  const a = pairs.map((p) => p[0]);
  const b = pairs.map((p) => p[1]);
  let score: (xs: readonly ScoredSample[]) => number;
  const macro = /^macro_(f1|precision|recall)$/.exec(metric);
  if (macro) {
    const labels = [...new Set(b.map((s) => s.gold))].sort();
    const key = macro[1] === "f1" ? "f" : (macro[1] as "precision" | "recall");
    // an unparsable prediction ("") is none of the labels: counted wrong, as in the evaluation
    score = (xs) =>
      classificationReport(
        xs.map((s) => s.prediction ?? ""),
        xs.map((s) => s.gold),
        { labels },
      ).macro[key];
  } else {
    if (a.some((s) => perExample(s, metric) === null) || b.some((s) => perExample(s, metric) === null))
      return null;
    score = (xs) => xs.reduce((t, s) => t + perExample(s, metric)!, 0) / xs.length;
  }
  const r = pairedComparison(a, b, score, {
    samples: options.samples ?? 1000,
    seed: options.seed ?? 0,
    confidence: options.confidence ?? 0.95,
  });
  return { metric, delta: r.delta, p: r.pValue, significant: r.significant };
}
