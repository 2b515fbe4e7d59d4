/** Datasets: files and hub snapshots → canonical examples (see example.ts), sampling, split-read log. */
export { SENTIMENT_LABELS, STUDY_LANGUAGES, SPLITS, type Example, type Split, type SentimentLabel } from "./example.js";
export { loadExamples, describeDataset, type LoadOptions, type LoadedExamples } from "./load.js";
export { splitReads, clearSplitReads, type SplitRead } from "./split-log.js";
export { BUILTIN_TASKS, isBuiltinTask, type BuiltinTask } from "./schemas.js";
export { sampleKey, stableStringify } from "./sample.js";
export { examplesSha256, exampleLine } from "./jsonl-out.js";
export { LANGUAGE_NAMES } from "./languages.js";
