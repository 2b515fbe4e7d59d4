/**
 * The study's view of a task: how an example becomes a prompt and its gold completion, and how it is scored.
 * One render function serves training (prompt/completion pairs) and evaluation, so an adapter is scored on
 * the format it learned. This is the study's interim task layer until the evaluation harness (src/tasks,
 * src/eval/evaluate) lands; it covers the two kinds the study needs: `choice` (classification and multiple
 * choice: the choice with the highest log-probability wins) and `generate` (greedy answer, ROUGE-L).
 *
 * Templates use `{field}` placeholders filled from the example's fields; `{choices}` with a list field
 * renders lettered options (A. …, B. …).
 */
import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { z } from "zod";
import { MerglotError } from "../errors.js";
import type { Example } from "../data/example.js";

const taskFileSchema = z.strictObject({
  type: z.enum(["choice", "generate"]),
  prompt: z.string().min(1),
  /** Completion template (gold answer), e.g. " {label}". */
  target: z.string().min(1),
  /** For choice tasks: the fixed answer set (rendered completions are compared with these). */
  choices: z.array(z.string().min(1)).min(2).optional(),
  max_tokens: z.number().int().positive().optional(),
});

export type TaskDef = z.infer<typeof taskFileSchema>;

/** The built-in tasks of the seed study, on the canonical example fields (src/data/example.ts). */
export const BUILTIN_TASKS: Record<string, TaskDef> = {
  sentiment: {
    type: "choice",
    prompt: "Text: {text}\nSentiment:",
    target: " {label}",
    choices: [" positive", " neutral", " negative"],
  },
  reasoning: {
    type: "choice",
    prompt: "Question: {question}\n{choices}\nAnswer:",
    target: " {answer}",
    choices: [" A", " B", " C", " D", " E"],
  },
  summarization: {
    type: "generate",
    prompt: "Document: {document}\nSummary:",
    target: " {summary}",
    max_tokens: 64,
  },
};

/** Read a custom task file; errors name the file and the field. */
export function loadTaskFile(path: string, field: string): { def: TaskDef; text: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new MerglotError("study.task", `${field}: ${path}: task file not found or unreadable`);
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length)
    throw new MerglotError("study.task", `${path}: invalid YAML (${doc.errors[0]!.message.split("\n")[0]})`);
  const parsed = taskFileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.map(String).join(".") || "(top level)";
    throw new MerglotError("study.task", `${path}: ${where}: ${issue.message}`);
  }
  if (parsed.data.type === "choice" && !parsed.data.choices)
    throw new MerglotError("study.task", `${path}: choices: a choice task needs its list of answers`);
  return { def: parsed.data, text };
}

function fieldText(ex: Example, name: string, where: string): string {
  const v = ex[name];
  if (name === "choices" && Array.isArray(v))
    return v.map((c, i) => `${String.fromCharCode(65 + i)}. ${String(c)}`).join("\n");
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new MerglotError("study.data", `${where}: example "${ex.id}" has no text field "${name}"`);
}

function fill(template: string, ex: Example, where: string): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => fieldText(ex, name, where));
}

/** Example → exact model input and gold completion (one function for training and evaluation). */
export function renderExample(
  task: TaskDef,
  ex: Example,
  where: string,
): { prompt: string; completion: string } {
  const prompt = fill(task.prompt, ex, where);
  const completion = fill(task.target, ex, where);
  if (task.type === "choice" && !task.choices!.includes(completion))
    throw new MerglotError(
      "study.data",
      `${where}: example "${ex.id}": gold answer ${JSON.stringify(completion.trim())} is not one of the task's choices`,
    );
  return { prompt, completion };
}
