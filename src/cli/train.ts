/**
 * `merglot train`: train a LoRA adapter on prompt/completion JSONL with the built-in engine and write a PEFT
 * folder (+ training_log.json). The training options here are shared with `merglot pretrain`.
 */
import type { Command } from "commander";
import { MerglotError } from "../errors.js";
import { ortStatus, setOrtThreads } from "../tensor/ort.js";
import { trainAdapter } from "../train/api.js";
import type { BatchMode } from "../train/batching.js";
import type { Schedule } from "../train/optim.js";
import {
  latestCheckpoint,
  TRAIN_DEFAULTS,
  type RunOptions,
  type StepLog,
  type TrainConfig,
  type TrainingLog,
} from "../train/trainer.js";
import { loadExamples } from "../data/load.js";
import { chatFormatFromModelDir } from "../tasks/chat.js";
import { loadTask, loaderColumns } from "../tasks/load.js";
import type { PromptCompletion } from "../train/data.js";
import { taskTrainingPairs } from "../train/task-data.js";
import { progressBar } from "./progress.js";
import { printOut } from "./terminal.js";

export interface TrainingFlags {
  epochs: string;
  lr: string;
  batch: string;
  gradAccum: string;
  seqLen: string;
  packing?: boolean;
  schedule: string;
  warmup: string;
  maxGradNorm: string;
  weightDecay: string;
  seed: string;
  checkpointEvery?: string;
  checkpointDir?: string;
  resume?: string | boolean;
  threads?: string;
  force?: boolean;
  forceReplaceForeign?: boolean;
  json?: boolean;
}

/** Add the options every training command takes. */
export function addTrainingOptions(cmd: Command, defaults: Partial<TrainConfig> = {}): Command {
  const d = { ...TRAIN_DEFAULTS, ...defaults };
  return cmd
    .option("--epochs <n>", "passes over the data", String(d.epochs))
    .option("--lr <x>", "peak learning rate", String(d.lr))
    .option("--batch <n>", "rows per micro-batch", String(d.batchSize))
    .option("--grad-accum <n>", "micro-batches per optimiser step", String(d.gradAccum))
    .option("--seq-len <n>", "maximum tokens per row (longer examples are cut)", String(d.seqLen))
    .option("--schedule <s>", "linear | cosine | constant (after warm-up)", d.schedule)
    .option("--warmup <ratio>", "warm-up steps as a fraction of all steps", String(d.warmupRatio))
    .option("--max-grad-norm <x>", "clip gradients to this global L2 norm (0 = off)", String(d.maxGradNorm))
    .option("--weight-decay <x>", "AdamW weight decay", String(d.weightDecay))
    .option("--seed <n>", "seed for initialisation, data order and dropout", String(d.seed))
    .option("--checkpoint-every <n>", "write a checkpoint every n optimiser steps (and at the end)")
    .option("--checkpoint-dir <dir>", "where checkpoints go (default: OUTPUT.checkpoints)")
    .option("--resume [dir]", "continue from the newest checkpoint (default folder: OUTPUT.checkpoints)")
    .option("--threads <n>", "threads for the matrix kernels (default: all cores)")
    .option("--force", "overwrite an existing output")
    .option(
      "--force-replace-foreign",
      "replace an existing output even if merglot did not write it (never an input)",
    )
    .option("--json", "print the training summary as JSON");
}

function num(flag: string, v: string): number {
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x))
    throw new MerglotError("cli.flag", `--${flag}: expected a number, got "${v}"`);
  return x;
}

/** Upper bounds of the count flags: far above any run this engine can do, low enough that a typo such as
 *  `--epochs 1e12` or `--seq-len 1e9` is one clear line instead of a hang or a failed allocation. */
const MAX_COUNT: Record<string, number> = {
  epochs: 100_000,
  batch: 65_536,
  "grad-accum": 65_536,
  "seq-len": 1_048_576,
  threads: 256,
  r: 65_536,
};

function int(flag: string, v: string): number {
  const x = num(flag, v);
  if (!Number.isInteger(x) || x < 1)
    throw new MerglotError("cli.flag", `--${flag}: expected a positive integer, got "${v}"`);
  const max = MAX_COUNT[flag] ?? Number.MAX_SAFE_INTEGER;
  if (x > max) throw new MerglotError("cli.flag", `--${flag}: at most ${max}, got "${v}"`);
  return x;
}

export function trainConfigFrom(f: TrainingFlags, mode: BatchMode): TrainConfig {
  if (!["linear", "cosine", "constant"].includes(f.schedule)) {
    throw new MerglotError(
      "cli.flag",
      `--schedule: expected linear, cosine or constant, got "${f.schedule}"`,
    );
  }
  const seed = num("seed", f.seed);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new MerglotError("cli.flag", `--seed: expected a non-negative integer, got "${f.seed}"`);
  return {
    epochs: int("epochs", f.epochs),
    lr: num("lr", f.lr),
    batchSize: int("batch", f.batch),
    gradAccum: int("grad-accum", f.gradAccum),
    seqLen: int("seq-len", f.seqLen),
    mode,
    schedule: f.schedule as Schedule,
    warmupRatio: num("warmup", f.warmup),
    maxGradNorm: num("max-grad-norm", f.maxGradNorm),
    weightDecay: num("weight-decay", f.weightDecay),
    seed,
  };
}

/** Checkpointing, resume, threads and the progress bar, from the flags. */
export function runOptionsFrom(f: TrainingFlags, output: string): { run: RunOptions; finish: () => void } {
  if (f.threads !== undefined) setOrtThreads(int("threads", f.threads));
  const ckptDir = f.checkpointDir ?? `${output}.checkpoints`;
  let resumeFrom: string | null = null;
  if (f.resume !== undefined && f.resume !== false) {
    const from = typeof f.resume === "string" ? f.resume : ckptDir;
    resumeFrom = latestCheckpoint(from);
    if (resumeFrom === null) throw new MerglotError("train.resume", `${from}: no checkpoint to resume from`);
  }
  const bar = f.json ? null : progressBar("training");
  const run: RunOptions = {
    checkpointEvery: f.checkpointEvery === undefined ? 0 : int("checkpoint-every", f.checkpointEvery),
    checkpointDir: f.checkpointEvery !== undefined || f.checkpointDir !== undefined ? ckptDir : null,
    resumeFrom,
    onStep: (s: StepLog, total: number) =>
      bar?.update(s.step, total, `steps | loss ${s.loss.toFixed(4)} | ${Math.round(tokensPerS(s))} tokens/s`),
  };
  return { run, finish: () => bar?.stop() };
}

let lastElapsed = 0;
function tokensPerS(s: StepLog): number {
  const dt = s.elapsedS - lastElapsed;
  lastElapsed = s.elapsedS;
  return dt > 0 ? s.tokens / dt : 0;
}

export function printSummary(log: TrainingLog, output: string, json: boolean | undefined): void {
  const kernels = ortStatus();
  if (json) {
    printOut(
      JSON.stringify(
        {
          output,
          steps: log.steps.length,
          totalSteps: log.totalSteps,
          finalLoss: log.finalLoss,
          tokens: log.tokens,
          wallTimeS: log.wallTimeS,
          tokensPerS: log.tokensPerS,
          kernels: kernels.available ? `onnxruntime (${kernels.threads} threads)` : "js",
        },
        null,
        2,
      ) + "\n",
    );
    return;
  }
  const first = log.steps[0]?.loss;
  printOut(
    `wrote ${output}: ${log.steps.length} steps, loss ${first?.toFixed(4) ?? "-"} → ${log.finalLoss?.toFixed(4) ?? "-"}, ` +
      `${log.tokens} tokens in ${log.wallTimeS.toFixed(1)} s (${Math.round(log.tokensPerS)} tokens/s)\n`,
  );
}

interface TrainFlags extends TrainingFlags {
  base: string;
  data: string;
  task?: string;
  lang?: string;
  split: string;
  chatTemplate: boolean;
  output: string;
  tokenizer?: string;
  r: string;
  alpha?: string;
  targets: string;
  dropout: string;
  rslora?: boolean;
}

/** Canonical task data → prompt/completion pairs, rendered as evaluation renders them. */
async function taskPairs(f: TrainFlags): Promise<PromptCompletion[]> {
  const task = loadTask(f.task!);
  const loaded = await loadExamples({
    path: f.data,
    task: task.definition.task,
    lang: f.lang,
    split: f.split,
    columns: loaderColumns(task),
  });
  const chat = f.chatTemplate === false ? null : chatFormatFromModelDir(f.base);
  return taskTrainingPairs(task, loaded.examples, { lang: f.lang, chat, where: f.data });
}

export function registerTrain(program: Command): void {
  const cmd = program
    .command("train")
    .description(
      "train a LoRA adapter on prompt/completion JSONL with the built-in engine (small models, CPU)",
    )
    .requiredOption("--base <dir>", "base model folder (config.json, *.safetensors, tokenizer.json)")
    .requiredOption(
      "--data <file>",
      'JSONL with {"prompt", "completion"} per line (loss on the completion only), or with --task the task\'s data',
    )
    .option(
      "--task <name|file>",
      "format the data with this task's prompts, exactly as merglot eval renders them (canonical examples in)",
    )
    .option(
      "--lang <code>",
      "with --task: only this language's examples (default: all, each in its own language)",
    )
    .option("--split <name>", "with --task: the split to read from a dataset folder", "train")
    .option(
      "--no-chat-template",
      "with --task: plain task prompts even when the base model has a chat template",
    )
    .requiredOption("-o, --output <dir>", "adapter folder to write (PEFT layout + training_log.json)")
    .option("--tokenizer <path>", "tokenizer.json or its folder (default: the base model folder)")
    .option("--r <n>", "LoRA rank", "8")
    .option("--alpha <x>", "LoRA alpha (default: 2·r)")
    .option(
      "--targets <list>",
      "comma-separated modules (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj) or all-linear",
      "all-linear",
    )
    .option("--dropout <p>", "LoRA dropout", "0")
    .option("--rslora", "rank-stabilised scaling α/√r")
    .option("--packing", "pack several examples per row instead of padding each to the batch's longest");
  addTrainingOptions(cmd).action(async (f: TrainFlags) => {
    const r = int("r", f.r);
    const spec = {
      r,
      alpha: f.alpha === undefined ? 2 * r : num("alpha", f.alpha),
      targets: f.targets
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
      rslora: f.rslora ?? false,
      dropout: num("dropout", f.dropout),
    };
    const train = trainConfigFrom(f, f.packing ? "packing" : "padding");
    const pairs = f.task === undefined ? undefined : await taskPairs(f);
    const { run, finish } = runOptionsFrom(f, f.output);
    try {
      const { log } = trainAdapter({
        baseDir: f.base,
        dataPath: f.data,
        pairs,
        outDir: f.output,
        tokenizer: f.tokenizer,
        lora: spec,
        train,
        run,
        force: f.force,
        replaceForeign: f.forceReplaceForeign,
      });
      finish();
      printSummary(log, f.output, f.json);
    } finally {
      finish();
    }
  });
}
