/**
 * The library entry points behind `merglot train` and `merglot pretrain`: load, tokenise, train, write.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { MerglotError } from "../errors.js";
import type { Ownership } from "../output/guard.js";
import { OWNERS } from "../output/owners.js";
import { checkOutput, openOutput, type OutputSpec } from "../output/slot.js";
import { writeAdapter } from "../formats/peft.js";
import { parseModelConfig } from "../engine/config.js";
import { loadModel, saveModel } from "../engine/load.js";
import { attachLora, loraAdapterConfig, loraParameters, loraTensors, type LoraSpec } from "../engine/lora.js";
import { LlamaModel } from "../engine/model.js";
import { Rng } from "../engine/rng.js";
import { loadTokenizer } from "../engine/tokenizer.js";
import {
  readPromptCompletionJsonl,
  readTextDocuments,
  tokenizeDocuments,
  tokenizePairs,
  type PromptCompletion,
} from "./data.js";
import type { Param } from "./optim.js";
import { runTraining, type RunOptions, type TrainConfig, type TrainingLog } from "./trainer.js";
import { readJsonFile } from "../json-input.js";

export interface TrainAdapterOptions {
  baseDir: string;
  /** Prompt/completion JSONL (ignored when `pairs` is given). */
  dataPath: string;
  /** Prompt/completion pairs given directly (e.g. from `taskTrainingPairs`). */
  pairs?: PromptCompletion[];
  outDir: string;
  lora: LoraSpec;
  train: TrainConfig;
  run?: RunOptions;
  /** Replace an existing training output (a folder with training_log.json). */
  force?: boolean;
  /** Replace whatever is at the output path (never an input or the checkpoint folder). */
  replaceForeign?: boolean;
  /** Tokenizer folder or tokenizer.json (default: the base model folder). */
  tokenizer?: string;
}

function withGrads(list: { name: string; data: Param["data"]; grad: Param["grad"] | null }[]): Param[] {
  return list.map((p) => {
    if (p.grad === null) throw new Error(`internal: parameter ${p.name} has no gradient buffer`);
    return { name: p.name, data: p.data, grad: p.grad };
  });
}

/** Train a LoRA adapter on prompt/completion JSONL and write it as a PEFT folder with training_log.json. */
export function trainAdapter(o: TrainAdapterOptions): { log: TrainingLog; model: LlamaModel } {
  const out = outputSpec(o, OWNERS.train, [o.baseDir, o.dataPath, o.tokenizer]);
  checkOutput(out); // before loading and training: a refused output costs nothing
  const model = loadModel(o.baseDir);
  const tok = loadTokenizer(o.tokenizer ?? o.baseDir);
  const eos = tok.eosTokenId ?? model.config.eosTokenIds[0] ?? null;
  const examples = tokenizePairs(o.pairs ?? readPromptCompletionJsonl(o.dataPath), tok, eos);
  checkVocabulary(examples, model.config.vocabSize, o.dataPath);
  attachLora(model, o.lora, new Rng(o.train.seed, 0x10a4));
  const log = runTraining(model, withGrads(loraParameters(model)), examples, o.train, o.run);
  writeAdapter(openOutput(out), {
    config: loraAdapterConfig(o.lora, o.baseDir),
    tensors: loraTensors(model),
    extraFiles: { "training_log.json": JSON.stringify(log, null, 1) + "\n" },
  });
  return { log, model };
}

export interface PretrainOptions {
  configPath: string;
  dataPath: string;
  outDir: string;
  /** Folder with tokenizer.json or its path (default: next to the config). */
  tokenizer?: string;
  train: TrainConfig;
  run?: RunOptions;
  force?: boolean;
  replaceForeign?: boolean;
}

/** Train a small model from scratch on text and write an HF model folder (config, weights, tokenizer, log). */
export function pretrainModel(o: PretrainOptions): { log: TrainingLog; model: LlamaModel } {
  const out = outputSpec(o, OWNERS.pretrain, [o.configPath, o.dataPath, o.tokenizer]);
  checkOutput(out);
  const raw = readJsonFile(o.configPath, { code: "config.json" });
  const config = parseModelConfig(raw, o.configPath);
  const tokPath = o.tokenizer ?? join(dirname(o.configPath), "tokenizer.json");
  const tok = loadTokenizer(tokPath);
  const eos = tok.eosTokenId ?? config.eosTokenIds[0] ?? null;
  const examples = tokenizeDocuments(readTextDocuments(o.dataPath), tok, eos);
  checkVocabulary(examples, config.vocabSize, o.dataPath);
  const model = new LlamaModel(config).initRandom(new Rng(o.train.seed, 0x1417));
  model.enableBaseGradients();
  const log = runTraining(model, withGrads(model.namedParameters()), examples, o.train, o.run);
  const tokFile = existsSync(join(tokPath, "tokenizer.json")) ? join(tokPath, "tokenizer.json") : tokPath;
  const extra: Record<string, string> = {
    "tokenizer.json": readFileSync(tokFile, "utf8"),
    "training_log.json": JSON.stringify(log, null, 1) + "\n",
  };
  const tokConfig = join(dirname(tokFile), "tokenizer_config.json");
  if (existsSync(tokConfig)) extra["tokenizer_config.json"] = readFileSync(tokConfig, "utf8");
  saveModel(model, openOutput(out), { extraFiles: extra });
  return { log, model };
}

/** The output policy of a training command: inputs, resume and checkpoint folders are protected. */
function outputSpec(
  o: { outDir: string; force?: boolean; replaceForeign?: boolean; run?: RunOptions },
  owner: Ownership,
  inputs: (string | undefined)[],
): OutputSpec {
  const more = [o.run?.resumeFrom ?? undefined, o.run?.checkpointDir ?? undefined];
  return {
    path: o.outDir,
    kind: "dir",
    inputs: [...inputs, ...more].filter((p): p is string => typeof p === "string"),
    owner,
    force: o.force,
    replaceForeign: o.replaceForeign,
  };
}

function checkVocabulary(examples: { ids: number[] }[], vocabSize: number, path: string): void {
  for (let i = 0; i < examples.length; i++) {
    const bad = examples[i].ids.find((t) => t >= vocabSize);
    if (bad !== undefined) {
      throw new MerglotError(
        "data.vocab",
        `${path}: example ${i + 1} has token id ${bad}, beyond the model's vocabulary (${vocabSize})`,
      );
    }
  }
}
