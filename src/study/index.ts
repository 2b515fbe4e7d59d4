/** The study workflow: schema, step graph, cached runs, accounting, results (see each module). */
export { loadStudy, parseStudy, DEFAULT_LANGUAGES, DEFAULT_METHODS, DEFAULT_MERGE_SETS } from "./schema.js";
export type { Study, StudyTask, BaseModel, ExecutorSetting } from "./schema.js";
export { buildSteps, keySteps, planStudy, variantTag } from "./plan.js";
export type { Step, PlannedStep, StepKind } from "./plan.js";
export { runStudy, globToRegExp, selectSteps } from "./run.js";
export type { RunOptions, RunSummary, StudyEvent, PlanEntry } from "./run.js";
export { studyStatus } from "./status.js";
export type { StudyStatus, StatusStep } from "./status.js";
export { executorsFor, LOCAL_EXECUTORS } from "./executors.js";
export type { Executors, StepExecutor, StepContext, StepReport } from "./executors.js";
export {
  checkCommandTemplate,
  expandCommand,
  shellQuote,
  TRAIN_PLACEHOLDERS,
  trainCommandValues,
} from "./command.js";
export type { PlaceholderValues, TrainPlaceholder } from "./command.js";
export { baseNameCompatible, checkProducedAdapter } from "./check-adapter.js";
export type { AdapterCheck, AdapterRequest } from "./check-adapter.js";
export { accountWork, costOf, variantCosts, updateComparison } from "./costs.js";
export type { CostEntry, CostModel, UpdateEntry } from "./costs.js";
export { buildResults } from "./results.js";
export type { Results, ResultRow } from "./results.js";
