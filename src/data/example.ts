/**
 * The canonical example: what every dataset loader produces and every consumer (train, eval, study) reads.
 * One JSON object per line in the canonical per-language JSONL files (`merglot data` writes them):
 *
 *   sentiment      {"id","lang","text","label"}            label ∈ SENTIMENT_LABELS
 *   reasoning      {"id","lang","question","choices","answer"}  choices: 5 strings (A–E), answer: "A".."E"
 *   summarization  {"id","lang","document","summary"}
 *   extraction     {"id","lang","text","items"?}            items: reference items (optional)
 *
 * Custom tasks may carry any other fields; task templates read them by name.
 */
export const SENTIMENT_LABELS = ["positive", "neutral", "negative"] as const;
export type SentimentLabel = (typeof SENTIMENT_LABELS)[number];

export const STUDY_LANGUAGES = ["en", "de", "fr", "ja", "zh"] as const;

export const SPLITS = ["train", "validation", "test"] as const;
export type Split = (typeof SPLITS)[number];

export interface Example {
  /** Stable within a dataset: the source row's id when it has one, else `<lang>-<split>-<row index>`. */
  id: string;
  /** BCP-47-style language code (en, de, fr, ja, zh, …). */
  lang: string;
  [field: string]: unknown;
}
