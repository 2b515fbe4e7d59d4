/**
 * Input checks shared by every metric, so that each one rejects bad input with the same clear wording:
 * a metric that silently averaged over zero items or zipped two lists of different lengths would report a
 * number that means nothing.
 */
import { MerglotError } from "../../errors.js";

/** Throws unless `predictions` and `references` are non-empty and equally long. */
export function checkPaired(metric: string, predictions: number, references: number): void {
  if (predictions !== references) {
    throw new MerglotError(
      "metrics.length",
      `${metric}: ${predictions} predictions but ${references} references; they must pair up one to one`,
    );
  }
  checkNonEmpty(metric, predictions, "items");
}

/** Throws when a metric is asked to average over nothing. */
export function checkNonEmpty(metric: string, count: number, what: string): void {
  if (count === 0) {
    throw new MerglotError("metrics.empty", `${metric}: no ${what} to score (the input is empty)`);
  }
}

/** Throws unless `x` is a finite number (log-likelihoods, scores). */
export function checkFinite(metric: string, x: unknown, where: string): asserts x is number {
  if (typeof x !== "number" || !Number.isFinite(x)) {
    throw new MerglotError("metrics.value", `${metric}: ${where} must be a finite number, got ${String(x)}`);
  }
}
