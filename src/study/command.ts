/**
 * Command templates of the `command` executor (and of any executor that runs a user's training command, such as
 * a Slurm job): the documented {placeholders}, their check when the study is loaded, and their expansion into
 * one /bin/sh command line with every value shell-quoted.
 *
 * Syntax: `{name}` is a placeholder (a name of letters, digits and `_`); `{{` and `}}` are literal braces; any
 * other brace is literal. An unknown name is an error when the study is loaded (not when the first training
 * starts). Values are inserted single-quoted, so a path with spaces, quotes or `$` reaches the command as one
 * argument, unchanged: do not quote placeholders yourself. List placeholders (`{target_modules}`,
 * `{languages}`) become one quoted word per item (`--lora_target_modules {target_modules}` →
 * `--lora_target_modules 'q_proj' 'v_proj'`); their `_csv` forms are one word, comma-joined.
 */
import { MerglotError } from "../errors.js";
import type { PlannedStep } from "./plan.js";

/** Every placeholder a training command may use, with what it holds (README "Running at scale" lists these). */
export const TRAIN_PLACEHOLDERS = {
  base_model: "the base model: its HF folder (or GGUF file), absolute path",
  train_jsonl:
    "the step's training examples as canonical JSONL (the prepare steps' train.jsonl; for `combined`, every language's)",
  train_pairs_jsonl:
    "the same examples rendered as merglot trains on them, {\"prompt\", \"completion\"} per line (TRL's standard prompt-completion format): the task's prompt in the example's language, then the base model's chat template",
  train_pairs_dir:
    "a folder holding only train_pairs_jsonl (for loaders that take a folder: TRL's --dataset_name)",
  output_dir: "where the command must write the PEFT adapter folder (does not exist yet)",
  step_dir: "the step's working folder (holds the inputs above and the command's log)",
  step_id: "the step's id, e.g. train/sentiment/de",
  step_name: "the step's id with / replaced by - (for run names)",
  r: "LoRA rank (training.r)",
  alpha: "LoRA alpha (training.alpha)",
  lr: "peak learning rate (training.lr)",
  epochs: "passes over the data (training.epochs)",
  batch: "rows per batch (training.batch)",
  seq_len: "maximum tokens per row (training.seq_len)",
  seed: "seed (training.seed)",
  schedule: "learning-rate schedule after warm-up: linear, cosine or constant (training.schedule)",
  warmup: "warm-up steps as a fraction of all steps (training.warmup)",
  target_modules: "LoRA target modules, one word each (all-linear, or e.g. q_proj v_proj)",
  target_modules_csv: "LoRA target modules, comma-joined in one word (all-linear, or e.g. q_proj,v_proj)",
  task: "the task's name in the study (its key under tasks:)",
  lang: "the step's language; for a combined training, all of them comma-joined",
  languages: "the languages the step trains on, one word each",
  languages_csv: "the languages the step trains on, comma-joined in one word",
} as const;

export type TrainPlaceholder = keyof typeof TRAIN_PLACEHOLDERS;
export type PlaceholderValues = Record<TrainPlaceholder, string | string[]>;

type Piece = { text: string } | { name: string };

/** Split a template into literal text and placeholders; throws on an unknown placeholder. */
function parseTemplate(template: string): Piece[] {
  const pieces: Piece[] = [];
  let text = "";
  const re = /\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
  let last = 0;
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    text += template.slice(last, m.index);
    last = m.index + m[0].length;
    if (m[0] === "{{" || m[0] === "}}") {
      text += m[0][0];
      continue;
    }
    const name = m[1]!;
    if (!Object.hasOwn(TRAIN_PLACEHOLDERS, name))
      throw new MerglotError(
        "study.command",
        `unknown placeholder {${name}} (known: ${Object.keys(TRAIN_PLACEHOLDERS)
          .map((k) => `{${k}}`)
          .join(", ")}; write {{ and }} for literal braces)`,
      );
    if (text !== "") pieces.push({ text });
    text = "";
    pieces.push({ name });
  }
  text += template.slice(last);
  if (text !== "") pieces.push({ text });
  return pieces;
}

/** Check a template's placeholders (when the study is loaded); a MerglotError names the unknown one. */
export function checkCommandTemplate(template: string): void {
  parseTemplate(template);
}

/** The placeholders a template uses, in order of first use. */
export function templatePlaceholders(template: string): TrainPlaceholder[] {
  const names: TrainPlaceholder[] = [];
  for (const p of parseTemplate(template))
    if ("name" in p && !names.includes(p.name as TrainPlaceholder)) names.push(p.name as TrainPlaceholder);
  return names;
}

/** One POSIX shell word holding exactly `s` (single quotes; a quote inside becomes '\''). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The template with every placeholder replaced by its shell-quoted value (lists: one quoted word per item). */
export function expandCommand(template: string, values: Partial<PlaceholderValues>): string {
  return parseTemplate(template)
    .map((p) => {
      if ("text" in p) return p.text;
      const v = values[p.name as TrainPlaceholder];
      if (v === undefined) throw new Error(`internal: no value for placeholder {${p.name}}`);
      return Array.isArray(v) ? v.map(shellQuote).join(" ") : shellQuote(v);
    })
    .join("");
}

/** The same values as environment variables (MERGLOT_BASE_MODEL, …; lists space-joined) for scripts. */
export function placeholderEnv(values: PlaceholderValues): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [
      `MERGLOT_${k.toUpperCase()}`,
      Array.isArray(v) ? v.join(" ") : v,
    ]),
  );
}

/** Paths a training command reads and writes, decided by the executor that runs it. */
export interface TrainCommandPaths {
  trainJsonl: string;
  trainPairsJsonl: string;
  trainPairsDir: string;
  outputDir: string;
  stepDir: string;
}

/** Training parameters as plan.ts stores them in a train step. */
interface TrainStepParams {
  lora: { r: number; alpha: number; targets: string[] };
  train: {
    epochs: number;
    lr: number;
    batchSize: number;
    seqLen: number;
    seed: number;
    schedule: string;
    warmupRatio: number;
  };
}

/** Every placeholder's value for one train step. */
export function trainCommandValues(step: PlannedStep, paths: TrainCommandPaths): PlaceholderValues {
  const { lora, train } = step.params as unknown as TrainStepParams;
  const languages = (step.context?.languages ?? "").split(",").filter((l) => l !== "");
  const base = step.files.base;
  if (base === undefined) throw new Error(`internal: train step ${step.id} has no base model`);
  return {
    base_model: base,
    train_jsonl: paths.trainJsonl,
    train_pairs_jsonl: paths.trainPairsJsonl,
    train_pairs_dir: paths.trainPairsDir,
    output_dir: paths.outputDir,
    step_dir: paths.stepDir,
    step_id: step.id,
    step_name: step.id.replace(/\//g, "-"),
    r: String(lora.r),
    alpha: String(lora.alpha),
    lr: String(train.lr),
    epochs: String(train.epochs),
    batch: String(train.batchSize),
    seq_len: String(train.seqLen),
    seed: String(train.seed),
    schedule: train.schedule,
    warmup: String(train.warmupRatio),
    target_modules: [...lora.targets],
    target_modules_csv: lora.targets.join(","),
    task: step.context?.taskName ?? "",
    lang: languages.join(","),
    languages,
    languages_csv: languages.join(","),
  };
}
