/**
 * BERTScore embeddings from merglot's own engine: the residual stream of a chosen decoder layer of a local
 * HF-layout model (config.json + safetensors + tokenizer.json), so a merged or fine-tuned small model can
 * score without any other runtime. Tokens come from the model's tokenizer with its special tokens; the
 * sequence-start / -end markers are flagged special (zero idf weight), as bert_score does for [CLS] / [SEP].
 */
import { loadModel } from "../../../engine/load.js";
import { causalBatch, type LlamaModel } from "../../../engine/model.js";
import { loadTokenizer, type TextTokenizer } from "../../../engine/tokenizer.js";
import { MerglotError } from "../../../errors.js";
import type { EmbeddingProvider, TokenEmbeddings } from "./provider.js";

export interface EngineProviderOptions {
  /** Decoder layer whose output is used (0 = embeddings); default: the last layer. */
  layer?: number;
}

/** Wrap an already-loaded model and tokenizer (tests, callers that keep the model in memory). */
export function engineEmbeddingProvider(
  model: LlamaModel,
  tokenizer: TextTokenizer,
  opts: EngineProviderOptions & { name?: string } = {},
): EmbeddingProvider {
  const layers = model.config.numLayers;
  const layer = opts.layer ?? layers;
  if (!Number.isInteger(layer) || layer < 0 || layer > layers) {
    throw new MerglotError("bertscore.layer", `--layer ${layer}: the model has layers 0..${layers}`);
  }
  const H = model.config.hiddenSize;
  const special = new Set(
    [tokenizer.bosTokenId, tokenizer.eosTokenId].filter((x): x is number => x !== null),
  );
  return {
    name: opts.name ?? `engine:layer${layer}`,
    async embed(texts: string[]): Promise<TokenEmbeddings[]> {
      return texts.map((text) => {
        const ids = tokenizer.encode(text, true);
        if (ids.length === 0) return { tokens: [], vectors: [], special: [] };
        const hidden = model.hiddenStates(causalBatch([ids]), layer);
        return {
          tokens: ids.map((id) => tokenizer.decode([id])),
          vectors: ids.map((_, i) => Float32Array.from(hidden.subarray(i * H, (i + 1) * H))),
          special: ids.map((id) => special.has(id)),
        };
      });
    },
  };
}

/** Load a model folder and its tokenizer as a BERTScore embedding provider. */
export function loadEngineProvider(modelDir: string, opts: EngineProviderOptions = {}): EmbeddingProvider {
  const model = loadModel(modelDir);
  const tokenizer = loadTokenizer(modelDir);
  return engineEmbeddingProvider(model, tokenizer, { ...opts, name: `engine:${modelDir}` });
}
