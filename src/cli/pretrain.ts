/**
 * `merglot pretrain`: train a small llama-architecture model from scratch (all parameters) on text and write
 * an HF model folder (config.json, model.safetensors, tokenizer files, training_log.json).
 */
import type { Command } from "commander";
import { pretrainModel } from "../train/api.js";
import {
  addTrainingOptions,
  printSummary,
  runOptionsFrom,
  trainConfigFrom,
  type TrainingFlags,
} from "./train.js";

interface PretrainFlags extends TrainingFlags {
  config: string;
  data: string;
  output: string;
  tokenizer?: string;
  padding?: boolean;
}

export function registerPretrain(program: Command): void {
  const cmd = program
    .command("pretrain")
    .description("train a small model from scratch (all parameters) on text; writes an HF model folder")
    .requiredOption("--config <file>", "HF config.json of the model to create (llama, mistral, qwen2)")
    .requiredOption(
      "--data <file>",
      'text (documents separated by blank lines) or JSONL with {"text"} per line',
    )
    .requiredOption("-o, --output <dir>", "model folder to write")
    .option("--tokenizer <path>", "tokenizer.json or its folder (default: next to the config)")
    .option("--padding", "one document per row instead of packing");
  addTrainingOptions(cmd, { lr: 1e-3, epochs: 1, seqLen: 256 }).action((f: PretrainFlags) => {
    const train = trainConfigFrom(f, f.padding ? "padding" : "packing");
    const { run, finish } = runOptionsFrom(f, f.output);
    try {
      const { log } = pretrainModel({
        configPath: f.config,
        dataPath: f.data,
        outDir: f.output,
        tokenizer: f.tokenizer,
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
