/** Evaluation metrics: the public surface of src/eval/metrics (see each module for exact definitions). */
export { accuracy, classificationReport, confusionMatrix } from "./classification.js";
export type {
  ClassificationOptions,
  ClassificationReport,
  ClassScores,
  AveragedScores,
  Label,
} from "./classification.js";
export { multipleChoiceAccuracy, argmaxFirst } from "./multiple-choice.js";
export type { ChoiceItem, MultipleChoiceScores } from "./multiple-choice.js";
export { rouge, rougeTokenizer, DEFAULT_ROUGE_TYPES } from "./rouge/rouge.js";
export type { RougeOptions, RougeResult, RougeMode, RougeAggregate } from "./rouge/rouge.js";
export { scoreRouge, rougeN, rougeL, rougeLsum, checkRougeType } from "./rouge/score.js";
export type { RougeScore, RougeType } from "./rouge/score.js";
export { rougeScoreTokenize, multilingualTokenizer } from "./rouge/tokenize.js";
export type { Tokenizer, MultilingualOptions, JapaneseSegmentation } from "./rouge/tokenize.js";
export { porterStem } from "./rouge/porter.js";
export { germanStem } from "./rouge/snowball-german.js";
export { frenchStem } from "./rouge/snowball-french.js";
export { bertScore } from "./bertscore/bertscore.js";
export type { BertScoreOptions, BertScoreResult } from "./bertscore/bertscore.js";
export { bertScorePair, idfFromReferences, uniformWeight } from "./bertscore/greedy.js";
export type { PRF, TokenWeight } from "./bertscore/greedy.js";
export { PUBLISHED_BASELINES, publishedBaseline, defaultModelFor, rescale } from "./bertscore/baselines.js";
export type { Baseline } from "./bertscore/baselines.js";
export type { EmbeddingProvider, TokenEmbeddings } from "./bertscore/provider.js";
export { loadTransformersProvider } from "./bertscore/transformers-provider.js";
export type { TransformersProviderOptions } from "./bertscore/transformers-provider.js";
export { hallucinationRate, normalizeForMatching, tokenCoverage } from "./hallucination.js";
export type { HallucinationExample, HallucinationOptions, HallucinationResult } from "./hallucination.js";
export { pairedComparison, pairedMeanComparison } from "./paired.js";
export type { PairedMethod, PairedOptions, PairedResult } from "./paired.js";
export { bootstrapMean, bootstrapStatistic, percentile } from "./bootstrap.js";
export type { BootstrapOptions, Interval } from "./bootstrap.js";
export { scoreFiles, formatReport } from "./score-files.js";
export type { ScoreFilesOptions, ScoreReport } from "./score-files.js";
