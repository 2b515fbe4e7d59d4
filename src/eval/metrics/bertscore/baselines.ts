/**
 * Baseline rescaling (bert_score's `rescale_with_baseline`): x' = (x − b) / (1 − b) for each of P, R and F
 * separately, where b is the average score of unrelated sentence pairs for that model, layer and language.
 * Raw BERTScores crowd into a narrow band near the baseline (≈ 0.83 for roberta-large), so rescaled scores
 * are easier to read; the ranking of systems does not change.
 *
 * The table holds bert_score's published values (its `rescale_baseline/<lang>/<model>.tsv` files, row =
 * layer) for the default models: roberta-large at layer 17 (English), bert-base-multilingual-cased at
 * layer 9 (the languages it publishes), bert-base-chinese at layer 8 (bert_score's default for Chinese).
 * bert_score publishes no multilingual baseline for Japanese; pass explicit values for other settings.
 */
import { MerglotError } from "../../../errors.js";
import type { PRF } from "./greedy.js";

export interface Baseline extends PRF {
  model: string;
  layer: number;
  lang: string;
}

const T = (
  model: string,
  layer: number,
  lang: string,
  precision: number,
  recall: number,
  f: number,
): Baseline => ({
  model,
  layer,
  lang,
  precision,
  recall,
  f,
});

const MBERT = "bert-base-multilingual-cased";
export const PUBLISHED_BASELINES: readonly Baseline[] = [
  T("roberta-large", 17, "en", 0.83150584, 0.8314941, 0.83122575),
  T(MBERT, 9, "cs", 0.6044539, 0.6045382, 0.604006),
  T(MBERT, 9, "de", 0.61532813, 0.61528224, 0.6147353),
  T(MBERT, 9, "en", 0.6320527, 0.6320019, 0.63146895),
  T(MBERT, 9, "es", 0.63474494, 0.6346978, 0.6342529),
  T(MBERT, 9, "et", 0.61113626, 0.6111767, 0.6106605),
  T(MBERT, 9, "fi", 0.6112424, 0.6111909, 0.6107369),
  T(MBERT, 9, "fr", 0.62573117, 0.62573653, 0.6252499),
  T(MBERT, 9, "it", 0.62051994, 0.6205607, 0.62006223),
  T(MBERT, 9, "lv", 0.61489826, 0.6149375, 0.614489),
  T(MBERT, 9, "pt", 0.6314677, 0.6314837, 0.63099706),
  T(MBERT, 9, "zh", 0.62840384, 0.62833464, 0.62803453),
  T("bert-base-chinese", 8, "zh", 0.54804957, 0.5480091, 0.54755783),
];

/** bert_score's default model and layer per language. */
export function defaultModelFor(lang: string): { model: string; layer: number } {
  if (lang === "en") return { model: "roberta-large", layer: 17 };
  if (lang === "zh") return { model: "bert-base-chinese", layer: 8 };
  return { model: MBERT, layer: 9 };
}

/** The published baseline for (model, lang, layer); layer defaults to the model's bert_score default. */
export function publishedBaseline(model: string, lang: string, layer?: number): Baseline {
  const found = PUBLISHED_BASELINES.find(
    (b) => b.model === model && b.lang === lang && (layer === undefined || b.layer === layer),
  );
  if (!found) {
    const known = PUBLISHED_BASELINES.map((b) => `${b.model}/${b.lang}/L${b.layer}`).join(", ");
    throw new MerglotError(
      "metrics.baseline",
      `bertscore: no published rescaling baseline for model ${model}, language ${lang}` +
        `${layer === undefined ? "" : `, layer ${layer}`} (known: ${known}); pass the baseline values explicitly`,
    );
  }
  return found;
}

/** (x − b) / (1 − b) for P, R and F. */
export function rescale(score: PRF, baseline: PRF): PRF {
  return {
    precision: (score.precision - baseline.precision) / (1 - baseline.precision),
    recall: (score.recall - baseline.recall) / (1 - baseline.recall),
    f: (score.f - baseline.f) / (1 - baseline.f),
  };
}
