/**
 * An EmbeddingProvider backed by transformers.js (`@huggingface/transformers`) over a local model folder
 * (config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx), strictly offline: remote loading
 * is switched off before anything is loaded, so a missing file is an error here, never a download.
 *
 * Tokenisation follows bert_score's `sent_encode`: the text is stripped, special tokens are added, long
 * texts are truncated to the model's maximum length, and byte-level BPE models of the GPT-2 / RoBERTa
 * family get a leading space (`add_prefix_space=True`). The vectors are the model output named
 * `outputName` (default `last_hidden_state`). bert_score reads a fixed intermediate layer (17 of
 * roberta-large, 9 of bert-base-multilingual-cased) by cutting the encoder after that layer, so export the
 * ONNX model with `num_hidden_layers` set to that layer to reproduce its numbers.
 *
 * transformers.js keeps its settings in one process-wide `env` object; this provider sets
 * `allowRemoteModels = false` there and leaves it so.
 */
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { importBackend } from "../../../backends.js";
import { MerglotError } from "../../../errors.js";
import type { EmbeddingProvider, TokenEmbeddings } from "./provider.js";
import { readJsonFile } from "../../../json-input.js";

export interface TransformersProviderOptions {
  /** The local model folder. */
  modelDir: string;
  /** Name of the model output holding the token vectors (default "last_hidden_state"). */
  outputName?: string;
  /** Texts per forward pass (default 16). */
  batchSize?: number;
  /** Prepend a space before tokenising (default: true for gpt2/roberta/bart/longformer, as bert_score). */
  addPrefixSpace?: boolean;
  /** Truncation length in tokens (default: the tokenizer's model_max_length, at most 512). */
  maxLength?: number;
}

const PREFIX_SPACE_MODELS = new Set(["gpt2", "roberta", "bart", "longformer"]);

interface TensorLike {
  dims: number[];
  data: ArrayLike<number>;
  tolist(): unknown;
}
type TokenizerLike = ((texts: string[], options: Record<string, unknown>) => Record<string, TensorLike>) & {
  config: Record<string, unknown>;
  model_max_length: number;
  get_vocab(): Map<string, number> | Record<string, number>;
  convert_tokens_to_ids(token: string): number | undefined;
};
type ModelLike = ((inputs: Record<string, TensorLike>) => Promise<Record<string, TensorLike>>) & {
  dispose?: () => Promise<unknown>;
};

function tokenName(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  return null;
}

export async function loadTransformersProvider(
  options: TransformersProviderOptions,
): Promise<EmbeddingProvider> {
  // An optional peer dependency (backends.ts), loaded first so that its absence is reported before any
  // question about the model folder.
  const tf = await importBackend<typeof import("@huggingface/transformers")>("@huggingface/transformers");
  const dir = resolve(options.modelDir);
  for (const file of ["config.json", "tokenizer.json", "tokenizer_config.json", join("onnx", "model.onnx")]) {
    if (!existsSync(join(dir, file))) {
      throw new MerglotError(
        "metrics.model",
        `${join(dir, file)}: missing; a transformers.js model folder needs config.json, tokenizer.json, ` +
          "tokenizer_config.json and onnx/model.onnx (models are never downloaded)",
      );
    }
  }
  const parsedConfig = readJsonFile(join(dir, "config.json"), { code: "metrics.model" });
  const config = (typeof parsedConfig === "object" && parsedConfig !== null ? parsedConfig : {}) as {
    model_type?: unknown;
  };
  const outputName = options.outputName ?? "last_hidden_state";
  const batchSize = options.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new MerglotError(
      "metrics.option",
      `bertscore: batch size must be a positive integer, got ${batchSize}`,
    );
  }

  tf.env.allowRemoteModels = false;
  tf.env.allowLocalModels = true;
  tf.env.localModelPath = dirname(dir);
  const id = basename(dir);
  const tokenizer = (await tf.AutoTokenizer.from_pretrained(id, {
    local_files_only: true,
  })) as unknown as TokenizerLike;
  const model = (await tf.AutoModel.from_pretrained(id, {
    local_files_only: true,
    dtype: "fp32",
    device: "cpu",
  })) as unknown as ModelLike;

  const vocab = tokenizer.get_vocab();
  const idToToken = new Map<number, string>();
  for (const [t, i] of vocab instanceof Map ? vocab.entries() : Object.entries(vocab)) idToToken.set(i, t);
  // bert_score zeroes the weights of cls_token_id and sep_token_id; models without them use bos/eos.
  const specialIds = new Set<number>();
  for (const [primary, fallback] of [
    ["cls_token", "bos_token"],
    ["sep_token", "eos_token"],
  ]) {
    const name = tokenName(tokenizer.config[primary]) ?? tokenName(tokenizer.config[fallback]);
    const tid = name === null ? undefined : tokenizer.convert_tokens_to_ids(name);
    if (typeof tid === "number") specialIds.add(tid);
  }
  const modelType = typeof config.model_type === "string" ? config.model_type : "";
  const prefixSpace = options.addPrefixSpace ?? PREFIX_SPACE_MODELS.has(modelType);
  const maxLength = options.maxLength ?? Math.min(tokenizer.model_max_length, 512);

  async function embedBatch(texts: string[]): Promise<TokenEmbeddings[]> {
    const prepared = texts.map((t) => {
      const s = t.trim();
      return prefixSpace && s !== "" ? ` ${s}` : s;
    });
    const enc = tokenizer(prepared, { padding: true, truncation: true, max_length: maxLength });
    const out = await model(enc);
    const hidden = out[outputName];
    if (!hidden) {
      throw new MerglotError(
        "metrics.model",
        `${dir}: the model has no output named "${outputName}" (outputs: ${Object.keys(out).join(", ")})`,
      );
    }
    const [batch, seq, width] = hidden.dims;
    const ids = (enc.input_ids.tolist() as (number | bigint)[][]).map((row) => row.map(Number));
    const mask = (enc.attention_mask.tolist() as (number | bigint)[][]).map((row) => row.map(Number));
    const result: TokenEmbeddings[] = [];
    for (let b = 0; b < batch; b++) {
      const tokens: string[] = [];
      const vectors: Float32Array[] = [];
      const special: boolean[] = [];
      for (let s = 0; s < seq; s++) {
        if (mask[b][s] === 0) continue;
        const tid = ids[b][s];
        tokens.push(idToToken.get(tid) ?? `<id ${tid}>`);
        special.push(specialIds.has(tid));
        const start = (b * seq + s) * width;
        vectors.push(Float32Array.from({ length: width }, (_, k) => hidden.data[start + k]));
      }
      result.push({ tokens, vectors, special });
    }
    return result;
  }

  return {
    name: `transformers.js:${dir}`,
    async embed(texts: string[]): Promise<TokenEmbeddings[]> {
      const out: TokenEmbeddings[] = [];
      for (let i = 0; i < texts.length; i += batchSize)
        out.push(...(await embedBatch(texts.slice(i, i + batchSize))));
      return out;
    },
  };
}
