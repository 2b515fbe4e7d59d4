/**
 * Corpus means with a bootstrap confidence interval (percentile method, as rouge-score's
 * BootstrapAggregator): resample the items with replacement `samples` times, take the statistic of each
 * resample, and report the (1 − c)/2 and (1 + c)/2 percentiles (numpy's default linear interpolation).
 * The point estimate is the statistic of the full corpus, not the bootstrap median. Seeded: the same
 * inputs and seed give the same interval.
 */
import { MerglotError } from "../../errors.js";
import { Xoshiro128 } from "./rng.js";
import { checkNonEmpty } from "./validate.js";

export interface BootstrapOptions {
  /** Number of resamples (default 1000, as rouge-score). */
  samples?: number;
  /** Seed of the resampling stream (default 0). */
  seed?: number;
  /** Coverage of the interval (default 0.95). */
  confidence?: number;
}

export interface Interval {
  /** The statistic on the full corpus. */
  value: number;
  low: number;
  high: number;
  confidence: number;
  samples: number;
  seed: number;
}

/** Most resamples accepted: 100× the usual 10,000 is far past where the interval stops moving, and the work
 *  (resamples × items) and the Float64Array of statistics must stay bounded. */
export const MAX_RESAMPLES = 1_000_000;

export function resolveBootstrap(options: BootstrapOptions = {}): Required<BootstrapOptions> {
  const samples = options.samples ?? 1000;
  const seed = options.seed ?? 0;
  const confidence = options.confidence ?? 0.95;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new MerglotError("metrics.option", `bootstrap: samples must be a positive integer, got ${samples}`);
  }
  if (samples > MAX_RESAMPLES) {
    throw new MerglotError(
      "metrics.option",
      `bootstrap: samples must be at most ${MAX_RESAMPLES}, got ${samples}`,
    );
  }
  if (!Number.isSafeInteger(seed))
    throw new MerglotError("metrics.option", `bootstrap: seed must be an integer, got ${seed}`);
  if (!(confidence > 0 && confidence < 1)) {
    throw new MerglotError("metrics.option", `bootstrap: confidence must lie in (0, 1), got ${confidence}`);
  }
  return { samples, seed, confidence };
}

/** numpy.percentile(sorted, q) with the default "linear" method; `sorted` ascending, q in [0, 100]. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError("percentile of an empty list");
  const pos = (q / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const frac = pos - lo;
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/**
 * Bootstrap interval of any corpus statistic. `statistic(indices)` evaluates the metric on the items at
 * `indices` (with repetitions); it is called once on 0..n−1 for the point value and `samples` times on
 * resamples.
 */
export function bootstrapStatistic(
  n: number,
  statistic: (indices: Int32Array) => number,
  options: BootstrapOptions = {},
): Interval {
  checkNonEmpty("bootstrap", n, "items");
  const { samples, seed, confidence } = resolveBootstrap(options);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const value = statistic(all);
  const rng = new Xoshiro128(seed);
  const stats = new Float64Array(samples);
  const idx = new Int32Array(n);
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < n; i++) idx[i] = rng.nextBelow(n);
    stats[s] = statistic(idx);
  }
  stats.sort();
  const tail = ((1 - confidence) / 2) * 100;
  return {
    value,
    low: percentile(stats, tail),
    high: percentile(stats, 100 - tail),
    confidence,
    samples,
    seed,
  };
}

/** Bootstrap interval of the mean of per-item scores. */
export function bootstrapMean(values: ArrayLike<number>, options: BootstrapOptions = {}): Interval {
  checkNonEmpty("bootstrap", values.length, "items");
  return bootstrapStatistic(
    values.length,
    (idx) => {
      let s = 0;
      for (let i = 0; i < idx.length; i++) s += values[idx[i]];
      return s / idx.length;
    },
    options,
  );
}
