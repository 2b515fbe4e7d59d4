/**
 * "Is system A better than system B on this test set?" Two seeded, paired significance tests over the same
 * items, for any corpus metric (a mean of per-item scores, or macro F1 of per-item predictions):
 *
 * - paired bootstrap (Koehn, 2004; Efron & Tibshirani, 1993): resample the item indices with replacement,
 *   the same indices for both systems, and recompute δ* = metric(A*) − metric(B*). The interval is the
 *   percentile interval of δ*. The two-sided p-value tests δ = 0 by shifting the bootstrap distribution to
 *   the null: p = (1 + #{|δ* − δ| ≥ |δ|}) / (samples + 1).
 * - approximate randomisation (Noreen, 1989; Riezler & Maxwell, 2005): swap the two systems' outputs on
 *   each item with probability ½ and recompute |δ|; p = (1 + #{|δ_perm| ≥ |δ|}) / (samples + 1). The
 *   interval still comes from the paired bootstrap (randomisation gives none).
 *
 * `significant` is p < 1 − confidence. The +1 terms keep p above 0: with R samples, nothing can be claimed
 * below 1/(R + 1).
 */
import { MerglotError } from "../../errors.js";
import { mean, percentile, resolveBootstrap } from "./bootstrap.js";
import { Xoshiro128 } from "./rng.js";
import { checkPaired } from "./validate.js";

export type PairedMethod = "bootstrap" | "randomization";

export interface PairedOptions {
  method?: PairedMethod;
  /** Resamples / permutations (default 10000). */
  samples?: number;
  seed?: number;
  /** Interval coverage and significance level 1 − confidence (default 0.95). */
  confidence?: number;
}

export interface PairedResult {
  method: PairedMethod;
  /** Metric of A, of B, and A − B on the full test set. */
  a: number;
  b: number;
  delta: number;
  /** Percentile interval of A − B (paired bootstrap). */
  low: number;
  high: number;
  pValue: number;
  significant: boolean;
  confidence: number;
  samples: number;
  seed: number;
  count: number;
}

/** Paired test of any corpus metric over per-item outputs of two systems. */
export function pairedComparison<O>(
  outputsA: readonly O[],
  outputsB: readonly O[],
  metric: (outputs: readonly O[]) => number,
  options: PairedOptions = {},
): PairedResult {
  checkPaired("paired comparison", outputsA.length, outputsB.length);
  const method = options.method ?? "bootstrap";
  if (method !== "bootstrap" && method !== "randomization") {
    throw new MerglotError(
      "metrics.option",
      `paired comparison: method must be "bootstrap" or "randomization", got "${String(method)}"`,
    );
  }
  const { samples, seed, confidence } = resolveBootstrap({ ...options, samples: options.samples ?? 10000 });
  const n = outputsA.length;
  const a = metric(outputsA);
  const b = metric(outputsB);
  const delta = a - b;
  const tol = 1e-12 * Math.max(1, Math.abs(delta)); // floating-point ties count as "at least as extreme"

  // Bootstrap distribution of δ*, always computed: it gives the interval.
  const rng = new Xoshiro128(seed);
  const deltas = new Float64Array(samples);
  const bufA: O[] = new Array<O>(n);
  const bufB: O[] = new Array<O>(n);
  let extremeShifted = 0;
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < n; i++) {
      const k = rng.nextBelow(n);
      bufA[i] = outputsA[k];
      bufB[i] = outputsB[k];
    }
    const d = metric(bufA) - metric(bufB);
    deltas[s] = d;
    if (Math.abs(d - delta) >= Math.abs(delta) - tol) extremeShifted++;
  }
  let extreme = extremeShifted;
  if (method === "randomization") {
    // A separate stream (seed + 1) so that the permutations do not depend on the bootstrap's draws.
    const prng = new Xoshiro128(seed + 1);
    extreme = 0;
    for (let s = 0; s < samples; s++) {
      for (let i = 0; i < n; i++) {
        const swap = prng.nextBit();
        bufA[i] = swap ? outputsB[i] : outputsA[i];
        bufB[i] = swap ? outputsA[i] : outputsB[i];
      }
      if (Math.abs(metric(bufA) - metric(bufB)) >= Math.abs(delta) - tol) extreme++;
    }
  }
  deltas.sort();
  const tail = ((1 - confidence) / 2) * 100;
  const pValue = (extreme + 1) / (samples + 1);
  return {
    method,
    a,
    b,
    delta,
    low: percentile(deltas, tail),
    high: percentile(deltas, 100 - tail),
    pValue,
    significant: pValue < 1 - confidence,
    confidence,
    samples,
    seed,
    count: n,
  };
}

/** Paired test of the mean of per-item scores (accuracy as 0/1 per item, ROUGE F, BERTScore F, …). */
export function pairedMeanComparison(
  scoresA: readonly number[],
  scoresB: readonly number[],
  options: PairedOptions = {},
): PairedResult {
  return pairedComparison(scoresA, scoresB, mean, options);
}
