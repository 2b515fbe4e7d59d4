/**
 * BERTScore over a corpus: embeds every distinct text once through an EmbeddingProvider, scores each
 * candidate against its reference(s) with greedy cosine matching, optionally with idf weights from the
 * references and baseline rescaling, and reports corpus means with bootstrap intervals.
 *
 * With several references for one candidate, P, R and F are each the maximum over the references (as
 * bert_score does), and idf counts every reference as one document.
 */
import { MerglotError } from "../../../errors.js";
import { bootstrapMean, type BootstrapOptions, type Interval } from "../bootstrap.js";
import { checkPaired } from "../validate.js";
import { rescale } from "./baselines.js";
import { bertScorePair, idfFromReferences, uniformWeight, type PRF } from "./greedy.js";
import type { EmbeddingProvider, TokenEmbeddings } from "./provider.js";

export interface BertScoreOptions {
  /** Weight tokens by their idf over the references (bert_score `idf=True`); default false. */
  idf?: boolean;
  /** Rescale with these baseline values (see baselines.ts for the published ones); default: no rescaling. */
  baseline?: PRF | null;
  bootstrap?: BootstrapOptions;
}

export interface BertScoreResult {
  precision: Interval;
  recall: Interval;
  f: Interval;
  perItem: PRF[];
  idf: boolean;
  rescaled: boolean;
  provider: string;
  count: number;
}

export async function bertScore(
  predictions: readonly string[],
  references: readonly (string | readonly string[])[],
  provider: EmbeddingProvider,
  options: BertScoreOptions = {},
): Promise<BertScoreResult> {
  checkPaired("bertscore", predictions.length, references.length);
  const refLists = references.map((r, i) => {
    const list = typeof r === "string" ? [r] : [...r];
    if (list.length === 0)
      throw new MerglotError("metrics.empty", `bertscore: item ${i + 1} has no reference`);
    return list;
  });
  const texts = [...new Set([...predictions, ...refLists.flat()])];
  const embedded = await provider.embed(texts);
  if (embedded.length !== texts.length) {
    throw new MerglotError(
      "metrics.embedding",
      `bertscore: provider ${provider.name} returned ${embedded.length} embeddings for ${texts.length} texts`,
    );
  }
  const byText = new Map<string, TokenEmbeddings>(texts.map((t, i) => [t, embedded[i]]));
  const weight = options.idf ? idfFromReferences(refLists.flat().map((t) => byText.get(t)!)) : uniformWeight;
  const baseline = options.baseline ?? null;
  const perItem = predictions.map((p, i) => {
    let best: PRF | null = null;
    for (const [k, ref] of refLists[i].entries()) {
      const s = bertScorePair(byText.get(p)!, byText.get(ref)!, weight, `item ${i + 1} reference ${k + 1}`);
      best = best
        ? {
            precision: Math.max(best.precision, s.precision),
            recall: Math.max(best.recall, s.recall),
            f: Math.max(best.f, s.f),
          }
        : s;
    }
    return baseline ? rescale(best!, baseline) : best!;
  });
  return {
    precision: bootstrapMean(
      perItem.map((s) => s.precision),
      options.bootstrap,
    ),
    recall: bootstrapMean(
      perItem.map((s) => s.recall),
      options.bootstrap,
    ),
    f: bootstrapMean(
      perItem.map((s) => s.f),
      options.bootstrap,
    ),
    perItem,
    idf: options.idf ?? false,
    rescaled: baseline !== null,
    provider: provider.name,
    count: predictions.length,
  };
}
