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

/** The corpus score of `metric` over samples (macro P/R/F1 over `labels`); null when it cannot be computed. */
function scorerOf(
  metric: string,
  labels: readonly string[],
  samples: readonly ScoredSample[],
): ((xs: readonly ScoredSample[]) => number) | null {
  const macro = /^macro_(f1|precision|recall)$/.exec(metric);
  if (macro) {
    const key = macro[1] === "f1" ? "f" : (macro[1] as "precision" | "recall");
    // an unparsable prediction ("") is none of the labels: counted wrong, as in the evaluation
    return (xs) =>
      classificationReport(
        xs.map((s) => s.prediction ?? ""),
        xs.map((s) => s.gold),
        { labels: [...labels] },
      ).macro[key];
  }
  if (samples.some((s) => perExample(s, metric) === null)) return null;
  return (xs) => xs.reduce((t, s) => t + perExample(s, metric)!, 0) / xs.length;
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
  const labels = [...new Set(b.map((s) => s.gold))].sort();
  const score = scorerOf(metric, labels, [...a, ...b]);
  if (!score) return null;
  const r = pairedComparison(a, b, score, {
    samples: options.samples ?? 1000,
    seed: options.seed ?? 0,
    confidence: options.confidence ?? 0.95,
  });
  return { metric, delta: r.delta, p: r.pValue, significant: r.significant };
}

/**
 * Paired bootstrap of the metric's MEAN OVER LANGUAGES (the study's headline number) between two systems:
 * test examples are paired by (language, id) and resampled together; each resample scores every language on
 * its own rows and averages the languages. Null when a language has fewer than two pairs.
 */
export function compareMeanOverLanguages(
  a: Readonly<Record<string, readonly ScoredSample[]>>,
  b: Readonly<Record<string, readonly ScoredSample[]>>,
  metric: string,
  options: { samples?: number; seed?: number; confidence?: number } = {},
): Significance | null {
  type Tagged = { lang: string; s: ScoredSample };
  const langs = Object.keys(a)
    .filter((l) => l in b)
    .sort();
  if (langs.length === 0) return null;
  const A: Tagged[] = [];
  const B: Tagged[] = [];
  const scorers = new Map<string, (xs: readonly ScoredSample[]) => number>();
  for (const l of langs) {
    const byId = new Map(b[l]!.map((s) => [s.id, s]));
    const pairs = a[l]!.filter((s) => byId.has(s.id));
    if (pairs.length < 2) return null;
    for (const s of pairs) {
      A.push({ lang: l, s });
      B.push({ lang: l, s: byId.get(s.id)! });
    }
    const labels = [...new Set(b[l]!.map((s) => s.gold))].sort();
    const sc = scorerOf(metric, labels, [...a[l]!, ...b[l]!]);
    if (!sc) return null;
    scorers.set(l, sc);
  }
  // a resample may leave a language out: the mean is over the languages it holds
  const score = (xs: readonly Tagged[]) => {
    let sum = 0;
    let n = 0;
    for (const l of langs) {
      const rows = xs.filter((x) => x.lang === l).map((x) => x.s);
      if (rows.length === 0) continue;
      sum += scorers.get(l)!(rows);
      n++;
    }
    return sum / n;
  };
  const r = pairedComparison(A, B, score, {
    samples: options.samples ?? 1000,
    seed: options.seed ?? 0,
    confidence: options.confidence ?? 0.95,
  });
  return { metric, delta: r.delta, p: r.pValue, significant: r.significant };
}
