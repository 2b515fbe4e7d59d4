/**
 * BERTScore's core (Zhang et al., 2020; the bert_score package's `greedy_cos_idf`), on embeddings:
 *
 * - each candidate token is matched to its most similar reference token by cosine similarity, and the
 *   reverse; P = Σ_c w_c · max_r cos(c, r) / Σ_c w_c over candidate tokens, R the same over reference
 *   tokens, F = 2PR / (P + R);
 * - the weights w are 1 (no idf) or the idf of the token computed over the references; either way the
 *   special tokens (start/end markers) get weight 0 but stay available as match targets, exactly as
 *   bert_score does;
 * - a text made only of special tokens (an empty sentence) scores P = R = F = 0, as bert_score reports it.
 *
 * The maximum is taken over the real tokens of the other text only. (bert_score computes a batch at a
 * time with zero-padded similarity rows, so a token whose every similarity is negative would get 0 there
 * when the other text is shorter than the batch's longest; real encoders make this practically
 * unreachable, and the batch-independent value is the one the definition gives.)
 */
import { MerglotError } from "../../../errors.js";
import type { TokenEmbeddings } from "./provider.js";

export interface PRF {
  precision: number;
  recall: number;
  f: number;
}

/** A token → weight function; special tokens are zeroed by the caller. */
export type TokenWeight = (token: string) => number;

/**
 * bert_score's idf: log((N + 1) / (df + 1)), df = number of references containing the token (each
 * reference counted once), N = number of references; an unseen token gets log(N + 1).
 */
export function idfFromReferences(references: readonly TokenEmbeddings[]): TokenWeight {
  const df = new Map<string, number>();
  for (const ref of references) {
    for (const t of new Set(ref.tokens)) df.set(t, (df.get(t) ?? 0) + 1);
  }
  const n = references.length;
  return (token) => Math.log((n + 1) / ((df.get(token) ?? 0) + 1));
}

export const uniformWeight: TokenWeight = () => 1;

function unitVectors(e: TokenEmbeddings, what: string): Float64Array[] {
  if (e.tokens.length !== e.vectors.length || e.tokens.length !== e.special.length) {
    throw new MerglotError(
      "metrics.embedding",
      `bertscore: ${what} has ${e.tokens.length} tokens, ${e.vectors.length} vectors and ${e.special.length} special flags; they must match`,
    );
  }
  return e.vectors.map((v, i) => {
    let norm = 0;
    for (let k = 0; k < v.length; k++) norm += v[k] * v[k];
    norm = Math.sqrt(norm);
    const u = new Float64Array(v.length);
    // A zero vector has no direction: it matches nothing (cosine 0) instead of poisoning the sums with NaN.
    if (norm > 0) for (let k = 0; k < v.length; k++) u[k] = v[k] / norm;
    if (!Number.isFinite(norm)) {
      throw new MerglotError(
        "metrics.embedding",
        `bertscore: ${what} token ${i} ("${e.tokens[i]}") has a non-finite vector`,
      );
    }
    return u;
  });
}

function weightsOf(e: TokenEmbeddings, weight: TokenWeight): number[] {
  return e.tokens.map((t, i) => (e.special[i] ? 0 : weight(t)));
}

/** BERTScore of one candidate against one reference. */
export function bertScorePair(
  candidate: TokenEmbeddings,
  reference: TokenEmbeddings,
  weight: TokenWeight = uniformWeight,
  what = "pair",
): PRF {
  const c = unitVectors(candidate, `${what} candidate`);
  const r = unitVectors(reference, `${what} reference`);
  const wc = weightsOf(candidate, weight);
  const wr = weightsOf(reference, weight);
  const candEmpty = candidate.special.every((s) => s);
  const refEmpty = reference.special.every((s) => s);
  if (candEmpty || refEmpty) return { precision: 0, recall: 0, f: 0 };
  const dim = c[0].length;
  if (r.some((v) => v.length !== dim) || c.some((v) => v.length !== dim)) {
    throw new MerglotError("metrics.embedding", `bertscore: ${what} has token vectors of different lengths`);
  }
  const bestForCand = new Float64Array(c.length).fill(-Infinity);
  const bestForRef = new Float64Array(r.length).fill(-Infinity);
  for (let i = 0; i < c.length; i++) {
    for (let j = 0; j < r.length; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += c[i][k] * r[j][k];
      if (s > bestForCand[i]) bestForCand[i] = s;
      if (s > bestForRef[j]) bestForRef[j] = s;
    }
  }
  const weighted = (best: Float64Array, w: number[]): number => {
    let num = 0;
    let den = 0;
    for (let i = 0; i < best.length; i++) {
      num += w[i] * best[i];
      den += w[i];
    }
    // All weights zero (every token has idf 0, e.g. it occurs in every reference): bert_score divides
    // 0 by 0 and reports NaN, which then poisons F; we report 0 for that side instead.
    return den === 0 ? 0 : num / den;
  };
  const precision = weighted(bestForCand, wc);
  const recall = weighted(bestForRef, wr);
  const f = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f: Number.isNaN(f) ? 0 : f };
}
