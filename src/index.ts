/** merglot's library entry: `import { merge, LoraAdapter, … } from "merglot"`. */
export { MerglotError } from "./errors.js";
export { VERSION } from "./version.js";
export { merge, type MergeOptions, type MergeSummary } from "./merge/engine.js";
export { loadRecipe, parseRecipe, parseRecipeYaml, type Recipe } from "./merge/recipe.js";
export { planMerge, type MergePlan } from "./merge/plan.js";
export { METHOD_NAMES, resolveMethod } from "./merge/methods.js";
export * as operators from "./merge/operators.js";
export { knotsBasis } from "./merge/spaces/knots.js";
export {
  LoraAdapter,
  AdapterWriter,
  writeAdapter,
  readAdapter,
  parsePeftConfig,
  moduleScaling,
  matchPatternKey,
  type LoraModule,
  type PeftConfig,
} from "./formats/peft.js";
export { SafetensorsReader, SafetensorsWriter, writeSafetensors } from "./formats/safetensors.js";
export { inspectPath, formatReport, type InspectReport } from "./inspect/inspect.js";
export { deltaFrobeniusNorm } from "./analysis/delta-norm.js";
export { convertAdapterToGguf, convertModelToGguf } from "./formats/convert.js";
export { GgufReader, GgufWriter, writeGguf } from "./formats/gguf.js";
export { LlamaCppRunner } from "./eval/runners/llamacpp.js";
export { EngineRunner } from "./eval/runners/engine.js";
export type { Runner } from "./eval/runners/runner.js";
export * as metrics from "./eval/metrics/index.js";
export { loadModel, saveModel } from "./engine/load.js";
export { trainAdapter, pretrainModel } from "./train/api.js";
export { languageVectorSimilarity } from "./analysis/similarity.js";
export * as data from "./data/index.js";
export {
  loadExamples,
  describeDataset,
  splitReads,
  clearSplitReads,
  type LoadOptions,
  type LoadedExamples,
  type SplitRead,
  type Example,
  type Split,
} from "./data/index.js";
export {
  evaluate,
  type EvaluateOptions,
  type EvaluateResult,
  type MetricsReport,
  type Sample,
} from "./eval/evaluate.js";
export { openRunner, type OpenRunnerOptions, type RunnerKind } from "./eval/open-runner.js";
export { loadTask, parseTask, builtinTaskNames, type Task } from "./tasks/load.js";
export { renderExample, renderPrompt, type RenderedExample, type RenderOptions } from "./tasks/render.js";
export {
  applyChatTemplate,
  chatFormatOf,
  chatFormatFromModelDir,
  chatFormatFromGguf,
  type ChatFormat,
} from "./tasks/chat.js";
export { taskTrainingPairs } from "./train/task-data.js";
export * as study from "./study/index.js";
