/**
 * Scoring and decoding with the built-in engine: per-position log-probabilities (for evaluation and for
 * parity checks against llama.cpp) and greedy generation.
 */
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

/**
 * Greedy decoding: append the arg-max token (lowest id on ties) until `maxNewTokens` or a stop token.
 * Returns only the new tokens. Each step re-runs the forward over the whole sequence (no KV cache): meant
 * for the short completions of evaluation tasks on small models.
 */
export function generate(
  model: LlamaModel,
  promptTokens: number[],
  maxNewTokens: number,
  opts: { stopTokens?: number[] } = {},
): number[] {
  if (promptTokens.length === 0) throw new RangeError("generate: the prompt must hold at least one token");
  const stop = new Set(opts.stopTokens ?? model.config.eosTokenIds);
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
        const o = (last - r0) * V;
        let best = -Infinity;
        for (let c = 0; c < V; c++) {
          if (logits[o + c] > best) {
            best = logits[o + c];
            next = c;
          }
        }
      },
      false,
    );
    out.push(next);
    seq.push(next);
    if (stop.has(next)) break;
  }
  return out;
}
