/**
 * Classification metrics with scikit-learn's semantics (`accuracy_score`, `precision_recall_fscore_support`,
 * `confusion_matrix`), so that a number printed here can be compared with a number printed by a Python
 * pipeline:
 *
 * - per-class precision = TP / (TP + FP), recall = TP / (TP + FN), and F_β computed from the counts,
 *   (1 + β²)·TP / ((1 + β²)·TP + β²·FN + FP), never from rounded P and R;
 * - a ratio whose denominator is 0 takes the value `zeroDivision` (0 by default, as scikit-learn's "warn");
 *   NaN is accepted too and is then left out of the macro and weighted means (`_nanaverage`);
 * - macro = unweighted mean of the per-class values (so macro F1 is the mean of per-class F1, not the F1
 *   of macro P and R); weighted = mean weighted by support; micro = the same formulas on counts summed over
 *   the classes (equal to accuracy when every prediction is one of the classes);
 * - `labels` fixes the classes. A prediction outside them is a wrong answer, never a new class; a reference
 *   outside them is an error (a mislabelled test set should be fixed, not silently ignored). Without
 *   `labels` the classes are the sorted union of references and predictions, as scikit-learn does.
 */
import { MerglotError } from "../../errors.js";
import { checkPaired } from "./validate.js";

export type Label = string | number;

export interface ClassificationOptions {
  /** The classes, in the order they are reported. Default: sorted union of references and predictions. */
  labels?: readonly Label[];
  /** Value of a 0/0 ratio: 0 (default), 1 or NaN. */
  zeroDivision?: number;
  /** β of the F-score (default 1). */
  beta?: number;
}

export interface ClassScores {
  label: Label;
  precision: number;
  recall: number;
  f: number;
  /** Number of references of this class. */
  support: number;
}

export interface AveragedScores {
  precision: number;
  recall: number;
  f: number;
}

export interface ClassificationReport {
  labels: Label[];
  accuracy: number;
  perClass: ClassScores[];
  macro: AveragedScores;
  micro: AveragedScores;
  weighted: AveragedScores;
  /** confusion[i][j] = number of items whose reference is labels[i] and prediction labels[j]. */
  confusion: number[][];
  /** Predictions that are none of `labels` (counted wrong). */
  strayPredictions: number;
  count: number;
}

/** Share of items whose prediction equals the reference. */
export function accuracy(predictions: readonly Label[], references: readonly Label[]): number {
  checkPaired("accuracy", predictions.length, references.length);
  let hits = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === references[i]) hits++;
  return hits / predictions.length;
}

/**
 * Confusion matrix over `labels` (rows: reference, columns: prediction). Items whose prediction is not one
 * of the labels are not counted in any cell (as scikit-learn's `confusion_matrix(labels=...)`).
 */
export function confusionMatrix(
  predictions: readonly Label[],
  references: readonly Label[],
  labels?: readonly Label[],
): number[][] {
  checkPaired("confusion matrix", predictions.length, references.length);
  const classes = resolveLabels("confusion matrix", predictions, references, labels);
  const index = indexOf(classes);
  const m = classes.map(() => classes.map(() => 0));
  for (let i = 0; i < predictions.length; i++) {
    const r = index.get(references[i])!;
    const p = index.get(predictions[i]);
    if (p !== undefined) m[r][p]++;
  }
  return m;
}

/** Everything at once: accuracy, per-class and averaged P/R/F, confusion matrix. */
export function classificationReport(
  predictions: readonly Label[],
  references: readonly Label[],
  options: ClassificationOptions = {},
): ClassificationReport {
  const metric = "classification";
  checkPaired(metric, predictions.length, references.length);
  const zd = options.zeroDivision ?? 0;
  if (!(zd === 0 || zd === 1 || Number.isNaN(zd))) {
    throw new MerglotError("metrics.option", `${metric}: zeroDivision must be 0, 1 or NaN, got ${zd}`);
  }
  const beta = options.beta ?? 1;
  if (!(beta > 0) || !Number.isFinite(beta)) {
    throw new MerglotError("metrics.option", `${metric}: beta must be a positive finite number, got ${beta}`);
  }
  const classes = resolveLabels(metric, predictions, references, options.labels);
  const index = indexOf(classes);
  const k = classes.length;
  const tp = new Array<number>(k).fill(0);
  const predSum = new Array<number>(k).fill(0);
  const trueSum = new Array<number>(k).fill(0);
  const confusion = classes.map(() => new Array<number>(k).fill(0));
  let stray = 0;
  let hits = 0;
  for (let i = 0; i < predictions.length; i++) {
    const r = index.get(references[i])!;
    const p = index.get(predictions[i]);
    trueSum[r]++;
    if (p === undefined) {
      stray++;
      continue;
    }
    predSum[p]++;
    confusion[r][p]++;
    if (p === r) {
      tp[r]++;
      hits++;
    }
  }
  const b2 = beta * beta;
  const scoresFrom = (t: number, ps: number, ts: number): AveragedScores => ({
    precision: ratio(t, ps, zd),
    recall: ratio(t, ts, zd),
    f: ratio((1 + b2) * t, b2 * ts + ps, zd),
  });
  const perClass: ClassScores[] = classes.map((label, c) => ({
    label,
    ...scoresFrom(tp[c], predSum[c], trueSum[c]),
    support: trueSum[c],
  }));
  const mean = (key: keyof AveragedScores, weights?: number[]): number =>
    nanAverage(
      perClass.map((s) => s[key]),
      weights,
    );
  const macro = { precision: mean("precision"), recall: mean("recall"), f: mean("f") };
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const micro = scoresFrom(sum(tp), sum(predSum), sum(trueSum));
  let weighted: AveragedScores;
  if (sum(trueSum) === 0) {
    // Only reachable with an explicit empty-support label set; scikit-learn returns zero_division here.
    weighted = { precision: zd, recall: zd, f: zd };
  } else {
    weighted = {
      precision: mean("precision", trueSum),
      recall: mean("recall", trueSum),
      f: mean("f", trueSum),
    };
  }
  return {
    labels: classes,
    accuracy: hits / predictions.length,
    perClass,
    macro,
    micro,
    weighted,
    confusion,
    strayPredictions: stray,
    count: predictions.length,
  };
}

function ratio(num: number, den: number, zeroDivision: number): number {
  return den === 0 ? zeroDivision : num / den;
}

/** Weighted mean that skips NaN entries (and their weights); NaN when nothing is left. */
function nanAverage(xs: number[], weights?: number[]): number {
  let s = 0;
  let w = 0;
  for (let i = 0; i < xs.length; i++) {
    if (Number.isNaN(xs[i])) continue;
    const wi = weights ? weights[i] : 1;
    s += wi * xs[i];
    w += wi;
  }
  return w === 0 ? NaN : s / w;
}

function indexOf(labels: readonly Label[]): Map<Label, number> {
  return new Map(labels.map((l, i) => [l, i]));
}

/** The class list: explicit (validated) or the sorted union, as scikit-learn's `unique_labels`. */
function resolveLabels(
  metric: string,
  predictions: readonly Label[],
  references: readonly Label[],
  labels: readonly Label[] | undefined,
): Label[] {
  for (const [what, xs] of [
    ["prediction", predictions],
    ["reference", references],
  ] as const) {
    xs.forEach((x, i) => {
      if (!isLabel(x)) {
        throw new MerglotError(
          "metrics.label",
          `${metric}: ${what} ${i + 1} is ${JSON.stringify(x) ?? String(x)}; a label must be a string or a finite number`,
        );
      }
    });
  }
  if (labels) {
    if (labels.length === 0) throw new MerglotError("metrics.label", `${metric}: the label list is empty`);
    const seen = new Set<Label>();
    for (const l of labels) {
      if (!isLabel(l))
        throw new MerglotError("metrics.label", `${metric}: label ${String(l)} is not a string or number`);
      if (seen.has(l))
        throw new MerglotError("metrics.label", `${metric}: label ${JSON.stringify(l)} is listed twice`);
      seen.add(l);
    }
    references.forEach((r, i) => {
      if (!seen.has(r)) {
        throw new MerglotError(
          "metrics.label",
          `${metric}: reference ${i + 1} has label ${JSON.stringify(r)}, which is not one of the labels ` +
            `${JSON.stringify(labels)}`,
        );
      }
    });
    return [...labels];
  }
  const all = new Set<Label>([...references, ...predictions]);
  const list = [...all];
  const kinds = new Set(list.map((x) => typeof x));
  if (kinds.size > 1) {
    throw new MerglotError(
      "metrics.label",
      `${metric}: labels mix numbers and strings (${list
        .slice(0, 4)
        .map((x) => JSON.stringify(x))
        .join(", ")}); ` + "use one type or pass the label list explicitly",
    );
  }
  return list.sort((a, b) =>
    typeof a === "number" ? (a as number) - (b as number) : compareCodePoints(a as string, b as string),
  );
}

/** Python's string order (by code point); JS `<` compares UTF-16 units, which differs above U+FFFF. */
function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function isLabel(x: unknown): x is Label {
  return typeof x === "string" || (typeof x === "number" && Number.isFinite(x));
}
