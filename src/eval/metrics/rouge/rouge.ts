/**
 * Corpus ROUGE: per-item scores with the chosen tokenization (see tokenize.ts), their means, and a
 * bootstrap confidence interval for each mean (rouge-score's BootstrapAggregator reports the same
 * quantities: low / mid / high percentiles of resampled means).
 */
import { MerglotError } from "../../../errors.js";
import { bootstrapMean, type BootstrapOptions, type Interval } from "../bootstrap.js";
import { checkPaired } from "../validate.js";
import { checkRougeType, scoreRouge, type RougeScore, type RougeType } from "./score.js";
import {
  multilingualTokenizer,
  rougeScoreTokenize,
  splitWords,
  normalizeText,
  type JapaneseSegmentation,
  type Tokenizer,
} from "./tokenize.js";

export type RougeMode = "multilingual" | "rouge-score";

export interface RougeOptions {
  /** Tokenization (default "multilingual"). */
  mode?: RougeMode;
  /** Language of the texts; needed in multilingual mode for zh/ja segmentation and for stemming. */
  lang?: string;
  /** Default: rouge1, rouge2, rougeL, rougeLsum. */
  types?: RougeType[];
  /** Stem tokens (default false, as rouge-score's use_stemmer). */
  stem?: boolean;
  japanese?: JapaneseSegmentation;
  bootstrap?: BootstrapOptions;
}

export interface RougeAggregate {
  precision: Interval;
  recall: Interval;
  fmeasure: Interval;
}

export interface RougeResult {
  mode: RougeMode;
  lang: string | null;
  stem: boolean;
  types: RougeType[];
  scores: Record<RougeType, RougeAggregate>;
  perItem: Record<RougeType, RougeScore>[];
  count: number;
}

export const DEFAULT_ROUGE_TYPES: readonly RougeType[] = ["rouge1", "rouge2", "rougeL", "rougeLsum"];

/** The tokenizer a mode and language call for. */
export async function rougeTokenizer(options: RougeOptions = {}): Promise<Tokenizer> {
  const mode = options.mode ?? "multilingual";
  const stem = options.stem ?? false;
  if (mode === "rouge-score") return (text) => rougeScoreTokenize(text, stem);
  if (mode !== "multilingual") {
    throw new MerglotError(
      "metrics.option",
      `rouge: mode must be "multilingual" or "rouge-score", got "${String(mode)}"`,
    );
  }
  if (options.lang === undefined) {
    if (stem)
      throw new MerglotError("metrics.lang", "rouge: stemming needs the language of the texts (--lang)");
    return (text) => splitWords(normalizeText(text));
  }
  return multilingualTokenizer({ lang: options.lang, stem, japanese: options.japanese });
}

export async function rouge(
  predictions: readonly string[],
  references: readonly string[],
  options: RougeOptions = {},
): Promise<RougeResult> {
  checkPaired("rouge", predictions.length, references.length);
  const types = [...(options.types ?? DEFAULT_ROUGE_TYPES)];
  if (types.length === 0) throw new MerglotError("metrics.rouge-type", "rouge: no ROUGE type requested");
  types.forEach(checkRougeType);
  const tokenize = await rougeTokenizer(options);
  const perItem = predictions.map((p, i) => scoreRouge(references[i], p, types, tokenize));
  const scores: Record<RougeType, RougeAggregate> = {};
  for (const type of types) {
    const field = (k: keyof RougeScore): Interval =>
      bootstrapMean(
        perItem.map((s) => s[type][k]),
        options.bootstrap,
      );
    scores[type] = { precision: field("precision"), recall: field("recall"), fmeasure: field("fmeasure") };
  }
  return {
    mode: options.mode ?? "multilingual",
    lang: options.lang ?? null,
    stem: options.stem ?? false,
    types,
    scores,
    perItem,
    count: predictions.length,
  };
}
