/**
 * Multiple-choice accuracy from per-choice log-likelihoods, as lm-evaluation-harness defines it for
 * `output_type: multiple_choice`:
 *
 * - `acc`: the choice with the highest log-likelihood is the prediction;
 * - `acc_norm`: the highest log-likelihood divided by the choice's length in characters (Python `len`,
 *   i.e. Unicode code points, not UTF-16 units);
 * - `acc_bytes`: the same divided by the choice's length in UTF-8 bytes.
 *
 * Ties go to the first choice (numpy's argmax). The lengths are those of the choice strings themselves
 * (the harness's `doc_to_choice`), without the delimiter that precedes them in the prompt.
 */
import { MerglotError } from "../../errors.js";
import { checkFinite, checkPaired } from "./validate.js";

export interface ChoiceItem {
  /** Log-likelihood of each choice given the context. */
  logprobs: readonly number[];
  /** The choice strings; needed for acc_norm and acc_bytes. */
  choices?: readonly string[];
  /** Index of the correct choice (or several, any of which counts). */
  gold: number | readonly number[];
}

export interface MultipleChoiceScores {
  acc: number;
  /** Present when every item carries its choice strings. */
  acc_norm?: number;
  acc_bytes?: number;
  count: number;
  /** Per item: 1 if right, 0 if wrong (for bootstrap and paired tests). */
  perItem: { acc: number[]; acc_norm?: number[]; acc_bytes?: number[] };
}

/** Index of the largest value; the first one on ties. */
export function argmaxFirst(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

export function multipleChoiceAccuracy(items: readonly ChoiceItem[]): MultipleChoiceScores {
  const metric = "multiple choice";
  checkPaired(metric, items.length, items.length);
  const withText = items.some((it) => it.choices !== undefined);
  const missing = items.findIndex((it) => it.choices === undefined);
  if (withText && missing >= 0) {
    throw new MerglotError(
      "metrics.value",
      `${metric}: item ${missing + 1} has no choice strings while others have; acc_norm needs them for every item`,
    );
  }
  const acc: number[] = [];
  const accNorm: number[] = [];
  const accBytes: number[] = [];
  items.forEach((it, n) => {
    const where = `item ${n + 1}`;
    if (!Array.isArray(it.logprobs) || it.logprobs.length === 0) {
      throw new MerglotError("metrics.value", `${metric}: ${where} has no choice log-likelihoods`);
    }
    it.logprobs.forEach((x, i) => checkFinite(metric, x, `${where} log-likelihood ${i}`));
    const golds = typeof it.gold === "number" ? [it.gold] : [...it.gold];
    if (golds.length === 0) throw new MerglotError("metrics.label", `${metric}: ${where} has no gold index`);
    for (const g of golds) {
      if (!Number.isInteger(g) || g < 0 || g >= it.logprobs.length) {
        throw new MerglotError(
          "metrics.label",
          `${metric}: ${where} has gold index ${String(g)}, but only choices 0..${it.logprobs.length - 1} exist`,
        );
      }
    }
    const right = (pred: number): number => (golds.includes(pred) ? 1 : 0);
    acc.push(right(argmaxFirst(it.logprobs)));
    if (!withText) return;
    const choices = it.choices!;
    if (choices.length !== it.logprobs.length) {
      throw new MerglotError(
        "metrics.length",
        `${metric}: ${where} has ${it.logprobs.length} log-likelihoods but ${choices.length} choice strings`,
      );
    }
    const chars = choices.map((c) => [...c].length);
    const bytes = choices.map((c) => Buffer.byteLength(c, "utf8"));
    const empty = chars.findIndex((c) => c === 0);
    if (empty >= 0) {
      throw new MerglotError(
        "metrics.value",
        `${metric}: ${where} choice ${empty} is an empty string; length normalisation needs a non-empty choice`,
      );
    }
    accNorm.push(right(argmaxFirst(it.logprobs.map((l, i) => l / chars[i]))));
    accBytes.push(right(argmaxFirst(it.logprobs.map((l, i) => l / bytes[i]))));
  });
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const out: MultipleChoiceScores = { acc: mean(acc), count: items.length, perItem: { acc } };
  if (withText) {
    out.acc_norm = mean(accNorm);
    out.acc_bytes = mean(accBytes);
    out.perItem.acc_norm = accNorm;
    out.perItem.acc_bytes = accBytes;
  }
  return out;
}
