/**
 * Scoring and decoding with the built-in engine: per-position log-probabilities (for evaluation and for
 * parity checks against llama.cpp) and greedy generation, incremental with a KV cache.
 */
import { KvCache } from "./kv-cache.js";
import { causalBatch, type LlamaModel } from "./model.js";

/**
 * out[i] = log p(tokens[i+1] | tokens[0..i]) for i < tokens.length − 1 (log-softmax in float64).
 */
export function logProbs(model: LlamaModel, tokens: number[]): Float32Array {
  if (tokens.length < 2) return new Float32Array(0);
  const b = causalBatch([tokens]);
  const V = model.config.vocabSize;
  const out = new Float32Array(tokens.length - 1);
  model.forwardLogits(b, (r0, n, logits) => {
    for (let r = 0; r < n; r++) {
      const pos = r0 + r;
      if (pos >= out.length) break;
      out[pos] = logSoftmaxAt(logits, r * V, V, tokens[pos + 1]);
    }
  });
  return out;
}

/** Full next-token log-probability rows [tokens.length × vocab] (small vocabularies: tests, parity checks). */
export function logProbRows(model: LlamaModel, tokens: number[]): Float32Array {
  const b = causalBatch([tokens]);
  const V = model.config.vocabSize;
  const out = new Float32Array(tokens.length * V);
  model.forwardLogits(b, (r0, n, logits) => {
    for (let r = 0; r < n; r++) {
      const o = r * V;
      const lse = logSumExp(logits, o, V);
      for (let c = 0; c < V; c++) out[(r0 + r) * V + c] = logits[o + c] - lse;
    }
  });
  return out;
}

function logSumExp(x: ArrayLike<number>, o: number, n: number): number {
  let max = -Infinity;
  for (let c = 0; c < n; c++) if (x[o + c] > max) max = x[o + c];
  let s = 0;
  for (let c = 0; c < n; c++) s += Math.exp(x[o + c] - max);
  return max + Math.log(s);
}

function logSoftmaxAt(x: ArrayLike<number>, o: number, n: number, t: number): number {
  return x[o + t] - logSumExp(x, o, n);
}

export interface GenerateOptions {
  /** Generation ends after one of these tokens (it is kept in the output). Default: the config's EOS ids. */
  stopTokens?: number[];
  /**
   * Decode incrementally with a KV cache (default). `false` re-runs the forward over the whole sequence for
   * every new token: the reference the cache is checked against, and the benchmark's baseline.
   */
  kvCache?: boolean;
}

/**
 * Greedy decoding: append the arg-max token (lowest id on ties) until `maxNewTokens` or a stop token.
 * Returns only the new tokens.
 */
export function generate(
  model: LlamaModel,
  promptTokens: number[],
  maxNewTokens: number,
  opts: GenerateOptions = {},
): number[] {
  return generateBatch(model, [promptTokens], maxNewTokens, opts)[0];
}

/**
 * Greedy decoding of several prompts at once: one prefill over the padded prompts, then one decode step per
 * new token for the sequences still running, each with its own positions and cache slots. Every sequence gets
 * exactly the tokens generate() gives it alone.
 */
export function generateBatch(
  model: LlamaModel,
  prompts: number[][],
  maxNewTokens: number,
  opts: GenerateOptions = {},
): number[][] {
  for (const p of prompts)
    if (p.length === 0) throw new RangeError("generate: the prompt must hold at least one token");
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0)
    throw new RangeError(`generate: maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  const stop = new Set(opts.stopTokens ?? model.config.eosTokenIds);
  if (prompts.length === 0 || maxNewTokens === 0) return prompts.map(() => []);
  if (opts.kvCache === false) return prompts.map((p) => generateRecompute(model, p, maxNewTokens, stop));
  const V = model.config.vocabSize;
  const longest = Math.max(...prompts.map((p) => p.length));
  const cache = new KvCache(model.config, prompts.length, longest + maxNewTokens, model.ctor);
  const out: number[][] = prompts.map(() => []);
  let logits = model.prefill(prompts, cache);
  let running = Int32Array.from(prompts.keys());
  for (let step = 0; ; step++) {
    const next: number[] = [];
    const still: number[] = [];
    running.forEach((seq, i) => {
      const t = argmaxAt(logits, i * V, V);
      out[seq].push(t);
      if (!stop.has(t) && out[seq].length < maxNewTokens) {
        still.push(seq);
        next.push(t);
      }
    });
    if (still.length === 0) return out;
    running = Int32Array.from(still);
    logits = model.decode(cache, running, Int32Array.from(next));
  }
}

/** Index of the largest of x[o..o+n), the lowest on ties. */
function argmaxAt(x: ArrayLike<number>, o: number, n: number): number {
  let best = 0;
  for (let c = 1; c < n; c++) if (x[o + c] > x[o + best]) best = c;
  return best;
}

/** Greedy decoding without a cache: each step re-runs the forward over the whole sequence. */
function generateRecompute(
  model: LlamaModel,
  promptTokens: number[],
  maxNewTokens: number,
  stop: Set<number>,
): number[] {
  const seq = [...promptTokens];
  const out: number[] = [];
  const V = model.config.vocabSize;
  for (let step = 0; step < maxNewTokens; step++) {
    const b = causalBatch([seq]);
    const last = seq.length - 1;
    b.targets.fill(-1);
    b.targets[last] = 0; // score only the last position
    let next = 0;
    model.forwardLogits(
      b,
      (r0, n, logits) => {
        if (last < r0 || last >= r0 + n) return;
        next = argmaxAt(logits, (last - r0) * V, V);
      },
      false,
    );
    out.push(next);
    seq.push(next);
    if (stop.has(next)) break;
  }
  return out;
}
