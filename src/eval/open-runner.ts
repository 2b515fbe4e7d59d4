/**
 * A runner from a model path: an HF model folder runs on the built-in engine, a GGUF file on llama.cpp.
 * PEFT adapters given for a GGUF base are converted to llama.cpp LoRA GGUFs on the fly, into a cache folder
 * keyed by the content of the adapter and of the base model, so each is converted once.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { MerglotError } from "../errors.js";
import { convertAdapterToGguf, type BaseShape } from "../formats/convert.js";
import { GgufReader } from "../formats/gguf.js";
import type { LlamaModelConfig } from "../formats/gguf-model.js";
import type { LlamaCppArch } from "../formats/llama-names.js";
import { tempPathFor } from "../fsutil.js";
import { hashPaths } from "./content-hash.js";
import { EngineRunner } from "./runners/engine.js";
import { LlamaCppRunner, openGgufDetokenizer, type LlamaGpu } from "./runners/llamacpp.js";
import { loadTokenizer } from "../engine/tokenizer.js";
import type { Runner } from "./runners/runner.js";

export type RunnerKind = "engine" | "llamacpp";

export interface OpenRunnerOptions {
  /** HF model folder (engine) or GGUF file (llama.cpp). */
  model: string;
  /** PEFT adapter folders, applied together at scale 1. */
  adapters?: readonly string[];
  /** Default: engine for a folder, llamacpp for a file. */
  runner?: RunnerKind;
  /** llama.cpp parity mode (no flash attention, F32 KV cache). Default false. */
  exact?: boolean;
  /** llama.cpp threads. */
  threads?: number;
  /** Parallel llama.cpp sequences (the batch). */
  sequences?: number;
  /** llama.cpp backend (CPU by default; see LlamaCppRunnerOptions.gpu). */
  gpu?: LlamaGpu;
  /** Where converted LoRA GGUFs are kept. Default: $MERGLOT_CACHE or ~/.cache/merglot. */
  cacheDir?: string;
}

export function defaultCacheDir(): string {
  return process.env.MERGLOT_CACHE ?? join(homedir(), ".cache", "merglot");
}

/** Which runner a model path calls for (and whether an explicit choice fits it). */
export function runnerKindFor(model: string, requested?: RunnerKind): RunnerKind {
  if (!existsSync(model)) throw new MerglotError("eval.model", `${model}: no such model folder or GGUF file`);
  const isDir = statSync(model).isDirectory();
  const kind = requested ?? (isDir ? "engine" : "llamacpp");
  if (kind === "engine" && !isDir)
    throw new MerglotError(
      "eval.runner",
      `${model}: the engine runner needs an HF model folder (config.json, *.safetensors, tokenizer.json)`,
    );
  if (kind === "llamacpp" && isDir)
    throw new MerglotError(
      "eval.runner",
      `${model}: the llama.cpp runner needs a GGUF file (write one with: merglot convert ${model} -o model.gguf)`,
    );
  return kind;
}

/** The base model's shape as llama.cpp's GGUF metadata states it (to check and convert adapters). */
export function baseShapeFromGguf(path: string): BaseShape {
  const r = GgufReader.open(path);
  try {
    const arch = r.getString("general.architecture");
    if (!arch) throw new MerglotError("eval.model", `${path}: no general.architecture in the GGUF`);
    const num = (key: string): number => {
      const v = r.getNumber(`${arch}.${key}`);
      if (v === undefined) throw new MerglotError("eval.model", `${path}: no ${arch}.${key} in the GGUF`);
      return v;
    };
    const hidden = num("embedding_length");
    const heads = num("attention.head_count");
    const kvHeads = num("attention.head_count_kv");
    const headDim = r.getNumber(`${arch}.attention.key_length`) ?? hidden / heads;
    const tied = r.get("output.weight") === undefined;
    const config: LlamaModelConfig = {
      path,
      modelType: arch,
      arch: arch as LlamaCppArch,
      hiddenSize: hidden,
      numLayers: num("block_count"),
      numHeads: heads,
      numKvHeads: kvHeads,
      headDim,
      explicitHeadDim: false,
      intermediateSize: num("feed_forward_length"),
      vocabSize: r.get("token_embd.weight")?.shape[1] ?? 0,
      maxPositionEmbeddings: r.getNumber(`${arch}.context_length`) ?? 0,
      rmsNormEps: 0,
      ropeTheta: 0,
      ropeScaling: null,
      tieWordEmbeddings: tied,
      raw: {},
    };
    return {
      architecture: config.arch,
      headCount: heads,
      headCountKv: kvHeads,
      tieWordEmbeddings: tied,
      config,
    };
  } finally {
    r.close();
  }
}

/** The LoRA GGUF of a PEFT adapter for a GGUF base, converted once into the cache. */
export function cachedLoraGguf(adapter: string, baseGguf: string, cacheDir: string): string {
  const key = createHash("sha256")
    .update(hashPaths([adapter]))
    .update("\0")
    .update(hashPaths([baseGguf]))
    .digest("hex")
    .slice(0, 32);
  const dir = join(cacheDir, "lora-gguf");
  const out = join(dir, `${key}.gguf`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = tempPathFor(out);
  convertAdapterToGguf(adapter, tmp, { baseShape: baseShapeFromGguf(baseGguf), force: true });
  renameSync(tmp, out);
  return out;
}

export async function openRunner(o: OpenRunnerOptions): Promise<Runner> {
  const kind = runnerKindFor(o.model, o.runner);
  const adapters = o.adapters ?? [];
  for (const a of adapters) {
    if (!existsSync(a) || !statSync(a).isDirectory())
      throw new MerglotError("eval.adapter", `${a}: no such adapter folder`);
  }
  if (kind === "engine")
    return EngineRunner.open({ model: o.model, adapters: adapters.map((path) => ({ path })) });
  const cache = o.cacheDir ?? defaultCacheDir();
  const loras = adapters.map((a) => ({ path: cachedLoraGguf(a, o.model, cache) }));
  return LlamaCppRunner.open({
    model: o.model,
    loras,
    exact: o.exact ?? false,
    threads: o.threads,
    sequences: o.sequences,
    gpu: o.gpu,
  });
}

/**
 * Token ids → text as the runner that `model` opens by default decodes them (an HF folder: its tokenizer, as
 * the engine runner; a GGUF: llama.cpp's detokenizer, vocabulary only). The server runner decodes served
 * generations with it, so a served model's text equals the in-process runner's.
 */
export async function localDetokenizer(model: string): Promise<(tokens: readonly number[]) => string> {
  if (existsSync(model) && statSync(model).isDirectory()) {
    const tokenizer = loadTokenizer(model);
    // tokenizers.js refuses an empty list; special tokens kept as text, as EngineRunner.detokenize
    return (tokens) => (tokens.length === 0 ? "" : tokenizer.decode([...tokens], false));
  }
  return openGgufDetokenizer(model);
}
