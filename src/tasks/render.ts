/**
 * Prompt rendering: a canonical example → the exact text the model is given, and the answers it is scored
 * or trained on. This is the one place that formats examples; `merglot eval` and `merglot train --task` both
 * call `renderExample`, so an adapter is evaluated on exactly the prompt format it was trained on.
 *
 * Steps: the task's column mapping and field check → the language's `doc_to_text` (Jinja) → the model's chat
 * template (one user turn, `add_generation_prompt`, BOS never doubled; see chat.ts) when there is one.
 * Continuations are `target_delimiter + choice` for plain prompts and the bare choice after a chat template
 * (the assistant's turn has just been opened, so no separator belongs there).
 */
import type { Example } from "../data/example.js";
import { MerglotError } from "../errors.js";
import { applyChatTemplate, type ChatFormat } from "./chat.js";
import { escapeForMessage, type Task } from "./load.js";
import type { FieldType } from "./schema.js";
import { evaluateExpression, renderTemplate } from "./template.js";

export interface RenderOptions {
  /** Language of the prompt (a key of the task's `prompts`). */
  lang: string;
  /** The model's chat format; null renders the plain task prompt. */
  chat: ChatFormat | null;
  /** Where the example comes from (a file name), for error messages. */
  where?: string;
}

export interface RenderedExample {
  id: string;
  /** The exact model input text (the runner adds the BOS token when the model wants one). */
  prompt: string;
  /** multiple_choice: the choice strings (as in the prompt's language). */
  choices?: string[];
  /** multiple_choice: the continuation strings scored after the prompt, one per choice. */
  continuations?: string[];
  /** multiple_choice: index of the gold choice. */
  goldIndex?: number;
  /** The gold answer: its label (or choice string) for multiple_choice, the reference text for generation. */
  gold: string;
  /** What training teaches the model to write after `prompt`. */
  completion: string;
  /** Extraction: the text the items must come from. */
  source?: string;
  /** Extraction: the reference items, when the example has them. */
  referenceItems?: string[];
}

function exampleWhere(o: RenderOptions, ex: Example): string {
  const id = typeof ex?.id === "string" ? escapeForMessage(ex.id) : "?";
  return `${o.where ?? "data"}: example ${id}`;
}

function typeOk(v: unknown, t: FieldType): boolean {
  if (t === "any") return v !== undefined && v !== null;
  if (t === "string") return typeof v === "string";
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

/** The variables templates see: the example's fields, renamed by the task's `columns`, checked against `fields`. */
export function templateVariables(task: Task, ex: Example, o: RenderOptions): Record<string, unknown> {
  const where = exampleWhere(o, ex);
  const doc: Record<string, unknown> = { ...ex };
  const found = () =>
    Object.keys(ex)
      .map((k) => escapeForMessage(k, 40))
      .join(", ");
  for (const [field, column] of Object.entries(task.definition.columns)) {
    if (field in ex) continue; // already canonical (a loader applied the mapping)
    if (!(column in ex))
      throw new MerglotError(
        "data.field",
        `${where}: missing column "${column}" (columns found: ${found()})`,
      );
    doc[field] = ex[column];
  }
  for (const [field, type] of Object.entries(task.definition.fields)) {
    if (!(field in doc) || doc[field] === undefined)
      throw new MerglotError("data.field", `${where}: missing field "${field}" (fields found: ${found()})`);
    if (!typeOk(doc[field], type))
      throw new MerglotError(
        "data.field",
        `${where}: field "${field}" must be ${type === "any" ? "present" : `a ${type}`}`,
      );
  }
  return doc;
}

/** The task's prompt for `lang`, or an error that says how to add one. */
function promptFor(task: Task, lang: string) {
  const p = task.definition.prompts[lang];
  if (!p) {
    throw new MerglotError(
      "task.lang",
      `task ${task.definition.task} has no prompt for language "${escapeForMessage(lang, 20)}" ` +
        `(it has ${Object.keys(task.definition.prompts).join(", ")}); copy ${task.source}, add prompts.${escapeForMessage(lang, 20)}, and pass the copy with --task`,
    );
  }
  return p;
}

/** Example → exact model input text: the task template, then the chat template when one is given. */
export function renderPrompt(task: Task, ex: Example, o: RenderOptions): string {
  const p = promptFor(task, o.lang);
  const doc = templateVariables(task, ex, o);
  const text = renderTemplate(p.doc_to_text, doc, `${task.source}: prompts.${o.lang}.doc_to_text`);
  return o.chat ? applyChatTemplate(o.chat, text, p.system) : text;
}

/** The choice strings of an example for `lang`. */
function choicesFor(task: Task, doc: Record<string, unknown>, o: RenderOptions, where: string): string[] {
  const spec = promptFor(task, o.lang).doc_to_choice ?? task.definition.doc_to_choice!;
  const value = Array.isArray(spec) ? spec : evaluateExpression(spec, doc, `${task.source}: doc_to_choice`);
  if (!Array.isArray(value) || value.some((c) => typeof c !== "string" || c.length === 0))
    throw new MerglotError("data.choices", `${where}: the choices must be a list of non-empty strings`);
  const labels = task.definition.labels;
  if (labels && value.length !== labels.length) {
    throw new MerglotError(
      "data.choices",
      `${where}: ${value.length} choices, but task ${task.definition.task} has ${labels.length} (${labels.join(", ")})`,
    );
  }
  if (value.length < 2) throw new MerglotError("data.choices", `${where}: at least 2 choices are needed`);
  return value as string[];
}

/** Everything evaluation and training need of one example (see RenderedExample). */
export function renderExample(task: Task, ex: Example, o: RenderOptions): RenderedExample {
  const d = task.definition;
  const where = exampleWhere(o, ex);
  const doc = templateVariables(task, ex, o);
  const prompt = renderPrompt(task, ex, o);
  const target = renderTemplate(d.doc_to_target, doc, `${task.source}: doc_to_target`);
  const delimiter = o.chat ? "" : d.target_delimiter;
  const out: RenderedExample = { id: String(ex.id), prompt, gold: target, completion: delimiter + target };
  if (d.output_type === "multiple_choice") {
    const choices = choicesFor(task, doc, o, where);
    const key = target.trim();
    let gold: number;
    if (d.labels) {
      gold = d.labels.indexOf(key);
      if (gold < 0)
        throw new MerglotError(
          "data.label",
          `${where}: label "${escapeForMessage(key, 40)}" is not one of the labels (${d.labels.join(", ")})`,
        );
    } else {
      gold = choices.indexOf(key);
      if (gold < 0 && /^\d+$/.test(key) && Number(key) < choices.length) gold = Number(key);
      if (gold < 0)
        throw new MerglotError(
          "data.label",
          `${where}: target "${escapeForMessage(key, 40)}" is neither one of the ${choices.length} choices nor a choice index`,
        );
    }
    out.choices = choices;
    out.continuations = choices.map((c) => delimiter + c);
    out.goldIndex = gold;
    out.gold = d.labels ? d.labels[gold]! : choices[gold]!;
    out.completion = out.continuations[gold]!;
  }
  if (d.doc_to_source) out.source = renderTemplate(d.doc_to_source, doc, `${task.source}: doc_to_source`);
  if (d.doc_to_items) {
    const items = doc[d.doc_to_items];
    if (items !== undefined && items !== null) {
      if (!Array.isArray(items) || items.some((x) => typeof x !== "string"))
        throw new MerglotError("data.field", `${where}: field "${d.doc_to_items}" must be a list of strings`);
      out.referenceItems = items as string[];
    }
  }
  return out;
}
