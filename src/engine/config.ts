/**
 * The model configuration the engine understands, read from (and written as) a Hugging Face `config.json`.
 * Llama-architecture decoders: llama, mistral (without a sliding window shorter than the sequence) and
 * qwen2 (q/k/v biases). Everything else is refused with a message that names the field.
 */
import { MerglotError } from "../errors.js";

export type RopeScaling =
  | {
      type: "llama3";
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    }
  | { type: "linear"; factor: number };

export interface ModelConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (qwen2, llama with attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (llama attention_bias). */
  oBias: boolean;
  /** Biases on gate/up/down (llama mlp_bias). */
  mlpBias: boolean;
  /** Only positions within this window attend (mistral); null = unlimited. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  initializerRange: number;
}

const SUPPORTED_TYPES = new Set(["llama", "mistral", "qwen2"]);

type Raw = Record<string, unknown>;

function num(raw: Raw, key: string, path: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new MerglotError("config.field", `${path}: field "${key}" is missing`);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new MerglotError(
      "config.field",
      `${path}: field "${key}" must be a number, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function posInt(raw: Raw, key: string, path: string, fallback?: number): number {
  const v = num(raw, key, path, fallback);
  if (!Number.isInteger(v) || v <= 0) {
    throw new MerglotError("config.field", `${path}: field "${key}" must be a positive integer, got ${v}`);
  }
  return v;
}

function parseRopeScaling(raw: unknown, path: string): RopeScaling | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== "object")
    throw new MerglotError("config.field", `${path}: "rope_scaling" must be an object`);
  const r = raw as Raw;
  const type = (r.rope_type ?? r.type) as unknown;
  if (type === "default" || type === undefined) return null;
  if (type === "llama3") {
    return {
      type: "llama3",
      factor: num(r, "factor", `${path} rope_scaling`),
      lowFreqFactor: num(r, "low_freq_factor", `${path} rope_scaling`),
      highFreqFactor: num(r, "high_freq_factor", `${path} rope_scaling`),
      originalMaxPositionEmbeddings: posInt(r, "original_max_position_embeddings", `${path} rope_scaling`),
    };
  }
  if (type === "linear") return { type: "linear", factor: num(r, "factor", `${path} rope_scaling`) };
  throw new MerglotError(
    "config.rope",
    `${path}: rope_scaling type ${JSON.stringify(type)} is not supported (supported: default, linear, llama3)`,
  );
}

/** Parse an HF `config.json` object; `path` names the file in error messages. */
/** Most parameters the built-in engine holds (float32, plus gradients and optimiser state when training). */
export const MAX_ENGINE_PARAMETERS = 2 ** 33;
/** Largest single weight matrix, as for a safetensors read (src/formats/safetensors.ts). */
const MAX_MATRIX_ELEMENTS = 2 ** 30;

/**
 * Refuse a config whose sizes the engine cannot allocate, before anything is allocated: hidden_size 10^9 or
 * num_hidden_layers 10^9 is one clear line, not "Invalid typed array length" or an endless loop.
 */
function checkEngineSize(
  path: string,
  c: { vocab: number; hidden: number; ffn: number; layers: number; q: number; kv: number; tied: boolean },
): void {
  const matrices: [string, number][] = [
    ["embed_tokens (vocab_size × hidden_size)", c.vocab * c.hidden],
    ["q_proj (heads·head_dim × hidden_size)", c.q * c.hidden],
    ["mlp (intermediate_size × hidden_size)", c.ffn * c.hidden],
  ];
  for (const [what, n] of matrices) {
    if (n > MAX_MATRIX_ELEMENTS) {
      throw new MerglotError(
        "config.size",
        `${path}: ${what} would have ${n} elements; the built-in engine holds each weight in memory and accepts at most ${MAX_MATRIX_ELEMENTS}`,
      );
    }
  }
  const perLayer = c.hidden * (2 * c.q + 2 * c.kv) + 3 * c.hidden * c.ffn + 2 * c.hidden;
  const total = c.vocab * c.hidden * (c.tied ? 1 : 2) + c.layers * perLayer + c.hidden;
  if (total > MAX_ENGINE_PARAMETERS) {
    throw new MerglotError(
      "config.size",
      `${path}: the model would have ${total.toExponential(3)} parameters; the built-in engine holds them in ` +
        `memory as float32 and accepts at most ${MAX_ENGINE_PARAMETERS} (small models: use llama.cpp for large ones)`,
    );
  }
}

export function parseModelConfig(input: unknown, path: string): ModelConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new MerglotError("config.json", `${path}: expected a JSON object`);
  }
  const raw = input as Raw;
  const modelType = typeof raw.model_type === "string" ? raw.model_type : "llama";
  if (!SUPPORTED_TYPES.has(modelType)) {
    throw new MerglotError(
      "config.model_type",
      `${path}: model_type "${modelType}" is not supported (supported: ${[...SUPPORTED_TYPES].join(", ")})`,
    );
  }
  const act = raw.hidden_act ?? "silu";
  if (act !== "silu") {
    throw new MerglotError(
      "config.field",
      `${path}: hidden_act "${String(act)}" is not supported (only silu)`,
    );
  }
  const hiddenSize = posInt(raw, "hidden_size", path);
  const numHeads = posInt(raw, "num_attention_heads", path);
  const numKvHeads = posInt(raw, "num_key_value_heads", path, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new MerglotError(
      "config.field",
      `${path}: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`,
    );
  }
  const headDim = posInt(raw, "head_dim", path, Math.floor(hiddenSize / numHeads));
  if (headDim % 2 !== 0)
    throw new MerglotError("config.field", `${path}: head_dim (${headDim}) must be even for RoPE`);
  // transformers v5 moves rope settings into rope_parameters
  const ropeParams = (raw.rope_parameters ?? null) as Raw | null;
  const ropeTheta = num(ropeParams ?? raw, "rope_theta", path, 10000);
  const ropeScaling = parseRopeScaling(ropeParams ?? raw.rope_scaling, path);
  const attentionBias = raw.attention_bias === true;
  const eos = raw.eos_token_id;
  const eosTokenIds = Array.isArray(eos)
    ? eos.filter((x): x is number => typeof x === "number")
    : typeof eos === "number"
      ? [eos]
      : [];
  let slidingWindow: number | null = null;
  if (modelType === "mistral" && typeof raw.sliding_window === "number") slidingWindow = raw.sliding_window;
  if (modelType === "qwen2" && raw.use_sliding_window === true && typeof raw.sliding_window === "number") {
    slidingWindow = raw.sliding_window;
  }
  const vocabSize = posInt(raw, "vocab_size", path);
  const intermediateSize = posInt(raw, "intermediate_size", path);
  const numLayers = posInt(raw, "num_hidden_layers", path);
  checkEngineSize(path, {
    vocab: vocabSize,
    hidden: hiddenSize,
    ffn: intermediateSize,
    layers: numLayers,
    q: numHeads * headDim,
    kv: numKvHeads * headDim,
    tied: raw.tie_word_embeddings === true,
  });
  return {
    modelType,
    vocabSize,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: num(raw, "rms_norm_eps", path, 1e-6),
    ropeTheta,
    ropeScaling,
    maxPositionEmbeddings: posInt(raw, "max_position_embeddings", path, 2048),
    tieWordEmbeddings: raw.tie_word_embeddings === true,
    qkvBias: modelType === "qwen2" || attentionBias,
    oBias: attentionBias,
    mlpBias: raw.mlp_bias === true,
    slidingWindow,
    bosTokenId: typeof raw.bos_token_id === "number" ? raw.bos_token_id : null,
    eosTokenIds,
    initializerRange: num(raw, "initializer_range", path, 0.02),
  };
}

/** The HF `config.json` object for a config (what `pretrain` writes next to the weights). */
export function toHfConfig(c: ModelConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architectures: [
      c.modelType === "qwen2"
        ? "Qwen2ForCausalLM"
        : c.modelType === "mistral"
          ? "MistralForCausalLM"
          : "LlamaForCausalLM",
    ],
    model_type: c.modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    hidden_act: "silu",
    max_position_embeddings: c.maxPositionEmbeddings,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling:
      c.ropeScaling === null
        ? null
        : c.ropeScaling.type === "linear"
          ? { rope_type: "linear", factor: c.ropeScaling.factor }
          : {
              rope_type: "llama3",
              factor: c.ropeScaling.factor,
              low_freq_factor: c.ropeScaling.lowFreqFactor,
              high_freq_factor: c.ropeScaling.highFreqFactor,
              original_max_position_embeddings: c.ropeScaling.originalMaxPositionEmbeddings,
            },
    tie_word_embeddings: c.tieWordEmbeddings,
    initializer_range: c.initializerRange,
    torch_dtype: "float32",
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds.length ? c.eosTokenIds : null,
  };
  if (c.modelType === "llama") {
    out.attention_bias = c.oBias;
    out.mlp_bias = c.mlpBias;
  }
  if (c.slidingWindow !== null) out.sliding_window = c.slidingWindow;
  return out;
}
