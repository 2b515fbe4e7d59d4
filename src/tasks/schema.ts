/**
 * The task file: a declarative description of what a model must do and how it is scored, in the style of
 * lm-evaluation-harness task YAML (`doc_to_text`, `doc_to_choice`, `doc_to_target`, `output_type`,
 * metrics), with one prompt per language. The schema is strict: an unknown key is an error naming it, so a
 * typo never silently falls back to a default.
 */
import { z } from "zod";
import { MerglotError } from "../errors.js";

/** Metric names exactly as they appear in metrics.json. */
export const CLASSIFICATION_METRICS = ["macro_f1", "macro_precision", "macro_recall", "accuracy"] as const;
export const CHOICE_METRICS = ["acc", "acc_norm"] as const;
export const GENERATION_METRICS = ["rouge1", "rouge2", "rougeL", "rougeLsum", "bertscore_f1"] as const;
export const EXTRACTION_METRICS = ["hallucination_rate", "item_precision", "item_recall"] as const;
export const METRIC_NAMES = [
  ...CLASSIFICATION_METRICS,
  ...CHOICE_METRICS,
  ...GENERATION_METRICS,
  ...EXTRACTION_METRICS,
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** Field types a task can require of its examples. */
export const FIELD_TYPES = ["string", "string[]", "any"] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

const LANG = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

/** A list of choice strings, or a Jinja expression over the example that yields one (e.g. `{{ choices }}`). */
const choiceSpec = z.union([z.array(z.string()).min(2), z.string().min(1)]);

const languagePrompt = z.strictObject({
  /** Jinja template: the example → the text given to the model (before any chat template). */
  doc_to_text: z.string().min(1),
  /** Per-language choice strings (verbalizers); default: the task's doc_to_choice. */
  doc_to_choice: choiceSpec.optional(),
  /** A system message for chat-template models. */
  system: z.string().optional(),
});

const generation = z.strictObject({
  /** Token budget of the answer. */
  max_tokens: z.number().int().min(1).max(65536),
  /** The answer ends before the first of these strings (and at the model's end-of-generation token). */
  stop: z.array(z.string().min(1)).default([]),
});

export const taskSchema = z.strictObject({
  /** The task's name (recorded in metrics.json). */
  task: z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-' only"),
  description: z.string().optional(),
  /** multiple_choice: log-prob scoring of the choices; generate_until: greedy generation. */
  output_type: z.enum(["multiple_choice", "generate_until"]),
  /** Where the data comes from when it is not given on the command line (a dataset path or hub id). */
  dataset: z
    .strictObject({
      path: z.string().min(1),
      config: z.string().min(1).optional(),
      split: z.string().min(1).default("test"),
    })
    .optional(),
  /** Field names the templates use → the example's own column names (for data with other names). */
  columns: z.record(z.string(), z.string()).default({}),
  /** Fields every example must have (after `columns`), with their types. */
  fields: z.record(z.string(), z.enum(FIELD_TYPES)),
  /** Class labels, in the order of the choices (classification); the target must be one of them. */
  labels: z.array(z.string().min(1)).min(2).optional(),
  /** The choices (multiple_choice), unless each language gives its own. */
  doc_to_choice: choiceSpec.optional(),
  /** Jinja template of the gold answer: a label, a choice string or a choice index (multiple_choice), the reference text (generate_until). */
  doc_to_target: z.string().min(1),
  /** Put between the prompt and a choice when scoring (lm-eval's target_delimiter); not used with a chat template. */
  target_delimiter: z.string().default(" "),
  generation: generation.optional(),
  /** Extraction: Jinja template of the text the items must come from. */
  doc_to_source: z.string().min(1).optional(),
  /** Extraction: the field with the reference items (optional per example). */
  doc_to_items: z.string().min(1).optional(),
  metrics: z.array(z.enum(METRIC_NAMES)).min(1),
  /** One prompt per language code (en, de, fr, ja, zh, …). */
  prompts: z.record(z.string(), languagePrompt),
});

export type TaskDefinition = z.infer<typeof taskSchema>;
export type LanguagePrompt = z.infer<typeof languagePrompt>;

function pathOf(path: readonly PropertyKey[]): string {
  return path.length === 0 ? "(top level)" : path.map(String).join(".");
}

/** Validate a parsed YAML document as a task; errors name the file and the field. */
export function parseTaskDefinition(raw: unknown, where: string): TaskDefinition {
  const r = taskSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    if (issue.code === "unrecognized_keys") {
      const keys = (issue as { keys: string[] }).keys;
      throw new MerglotError(
        "task.field",
        `${where}: unknown field ${keys.map((k) => `"${k}"`).join(", ")} in ${pathOf(issue.path)}`,
      );
    }
    throw new MerglotError("task.field", `${where}: ${pathOf(issue.path)}: ${issue.message}`);
  }
  const t = r.data;
  checkConsistency(t, where);
  return t;
}

function fail(where: string, message: string): never {
  throw new MerglotError("task.field", `${where}: ${message}`);
}

/** Rules that span fields: the metrics must fit the output type, the pieces each type needs must be there. */
function checkConsistency(t: TaskDefinition, where: string): void {
  const langs = Object.keys(t.prompts);
  if (langs.length === 0) fail(where, "prompts: at least one language is needed");
  for (const l of langs)
    if (!LANG.test(l)) fail(where, `prompts.${l}: not a language code (e.g. en, de, pt-BR)`);
  const has = (list: readonly string[]) => t.metrics.filter((m) => list.includes(m));
  if (t.output_type === "multiple_choice") {
    for (const l of langs) {
      if (!t.doc_to_choice && !t.prompts[l]!.doc_to_choice)
        fail(where, `prompts.${l}: doc_to_choice is needed (here or at the top level) for multiple_choice`);
    }
    const wrong = [...has(GENERATION_METRICS), ...has(EXTRACTION_METRICS)];
    if (wrong.length) fail(where, `metrics: ${wrong.join(", ")} need output_type generate_until`);
    if (has(CLASSIFICATION_METRICS).length && !t.labels)
      fail(where, `metrics: ${has(CLASSIFICATION_METRICS).join(", ")} need a labels list`);
    if (t.labels) {
      if (new Set(t.labels).size !== t.labels.length) fail(where, "labels: a label is listed twice");
      for (const l of langs) {
        const c = t.prompts[l]!.doc_to_choice ?? t.doc_to_choice;
        if (Array.isArray(c) && c.length !== t.labels.length) {
          fail(where, `prompts.${l}.doc_to_choice: ${c.length} choices but ${t.labels.length} labels`);
        }
      }
    }
  } else {
    if (!t.generation) fail(where, "generation: max_tokens is needed for generate_until");
    const wrong = [...has(CLASSIFICATION_METRICS), ...has(CHOICE_METRICS)];
    if (wrong.length) fail(where, `metrics: ${wrong.join(", ")} need output_type multiple_choice`);
    if (has(EXTRACTION_METRICS).length && !t.doc_to_source)
      fail(where, "doc_to_source is needed for hallucination_rate, item_precision and item_recall");
    if ((t.metrics.includes("item_precision") || t.metrics.includes("item_recall")) && !t.doc_to_items)
      fail(where, "doc_to_items is needed for item_precision and item_recall");
    if (t.doc_to_choice || langs.some((l) => t.prompts[l]!.doc_to_choice))
      fail(where, "doc_to_choice applies to multiple_choice tasks only");
  }
}
