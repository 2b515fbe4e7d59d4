/**
 * Export of an HF llama-architecture model folder (llama, mistral, qwen2: `config.json`, `*.safetensors`,
 * `tokenizer.json` / `tokenizer.model`) to a llama.cpp base-model GGUF, as llama.cpp's `convert_hf_to_gguf.py`
 * writes it:
 *
 * - `general.*` and `<arch>.*` hyper-parameters from config.json (context, embedding, block count, feed
 *   forward, head counts, RoPE base / dimension / scaling, RMS-norm epsilon, vocab size);
 * - the tokenizer metadata (see gguf-vocab.ts);
 * - every weight under its llama.cpp name (llama-names.ts), q/k rows (weights and biases) permuted for RoPE
 *   on llama-family models, 1-D tensors in F32 and matrices in the requested type;
 * - for `rope_scaling.rope_type = llama3`, the `rope_freqs.weight` factors the converter computes.
 *
 * Tensors are streamed: one output tensor is assembled at a time from bounded reads of its source, so memory
 * stays at about one tensor's output bytes. The file is written to a temp name and renamed into place.
 */
import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { MerglotError } from "../errors.js";
import { OWNERS } from "../output/owners.js";
import { checkOutput, openOutput, type OutputSpec } from "../output/slot.js";
import { encodeFromFloat32, decodeToFloat32, type FloatDType } from "../tensor/dtypes.js";
import { GgufWriter, type GgufTensorSpec, type GgufValue, type GgufWritableType } from "./gguf.js";
import { readGgufVocab, vocabMetadata, type GgufVocab } from "./gguf-vocab.js";
import { hfToGgufName, llamaCppArchFor, type LlamaCppArch } from "./llama-names.js";
import { DTYPE_SIZE, SafetensorsReader, type StDType, type TensorEntry } from "./safetensors.js";
import { readJsonFile } from "../json-input.js";

// ---------------------------------------------------------------------------------------------------------
// config.json

/** RoPE scaling as config.json states it (`rope_scaling`, or `rope_parameters` in newer transformers). */
export type RopeScaling =
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number }
  | { type: "linear"; factor: number }
  | { type: "yarn"; factor: number; originalContext: number; raw: Record<string, unknown> };

/** The hyper-parameters of an HF llama-architecture model that llama.cpp and merglot need. */
export interface LlamaModelConfig {
  /** Path of the config.json this came from. */
  path: string;
  /** `model_type` (e.g. "llama", "mistral", "qwen2"). */
  modelType: string;
  /** llama.cpp `general.architecture`. */
  arch: LlamaCppArch;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Whether config.json gives `head_dim` explicitly (then written as key/value length). */
  explicitHeadDim: boolean;
  intermediateSize: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** config.json as read. */
  raw: Record<string, unknown>;
}

function configError(path: string, message: string): never {
  throw new MerglotError("model.config", `${path}: ${message}`);
}

function positiveInt(path: string, raw: Record<string, unknown>, field: string, fallback?: number): number {
  const v = raw[field] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    configError(path, `field "${field}" must be a positive integer, got ${JSON.stringify(raw[field])}`);
  }
  return v;
}

/** The config.json path of a model folder, or the path itself when it is a .json file. */
export function configPathOf(pathOrDir: string): string {
  if (existsSync(pathOrDir) && statSync(pathOrDir).isDirectory()) {
    const p = join(pathOrDir, "config.json");
    if (!existsSync(p))
      throw new MerglotError("model.missing", `${pathOrDir}: no config.json in the model folder`);
    return p;
  }
  if (!existsSync(pathOrDir))
    throw new MerglotError("model.missing", `${pathOrDir}: no such model folder or config file`);
  return pathOrDir;
}

/** Largest vocab_size accepted (real vocabularies stay under 300k): the vocabulary is padded to it before any
 *  weight is read, so an absurd value must be refused up front, not looped over. */
const MAX_VOCAB = 1 << 24;

function boundedVocab(path: string, n: number): number {
  if (n > MAX_VOCAB) configError(path, `vocab_size ${n} is more than the ${MAX_VOCAB} merglot accepts`);
  return n;
}

/** Read and validate the config.json of a llama / mistral / qwen2 model (a folder or the file itself). */
export function readLlamaConfig(pathOrDir: string): LlamaModelConfig {
  const path = configPathOf(pathOrDir);
  const parsed = readJsonFile(path, { code: "model.config" });
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    configError(path, "must contain a JSON object");
  const raw = parsed as Record<string, unknown>;
  return parseLlamaConfig(raw, path);
}

/** Validate a parsed config.json object (see `readLlamaConfig`). */
export function parseLlamaConfig(raw: Record<string, unknown>, path: string): LlamaModelConfig {
  const archs = Array.isArray(raw.architectures)
    ? raw.architectures.filter((a) => typeof a === "string")
    : [];
  const modelType = typeof raw.model_type === "string" ? raw.model_type : undefined;
  const hf = modelType ?? (archs[0] as string | undefined);
  if (hf === undefined)
    configError(path, `has neither "model_type" nor "architectures"; cannot tell the architecture`);
  let arch: LlamaCppArch;
  try {
    arch = llamaCppArchFor(hf);
  } catch (e) {
    if (e instanceof MerglotError) throw new MerglotError(e.code, `${path}: ${e.message}`);
    throw e;
  }
  const hiddenSize = positiveInt(path, raw, "hidden_size");
  const numHeads = positiveInt(path, raw, "num_attention_heads");
  const numKvHeads = positiveInt(path, raw, "num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    configError(
      path,
      `num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`,
    );
  }
  const explicitHeadDim = raw.head_dim !== undefined && raw.head_dim !== null;
  if (!explicitHeadDim && hiddenSize % numHeads !== 0) {
    configError(
      path,
      `hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${numHeads}) and no head_dim is given`,
    );
  }
  const headDim = explicitHeadDim ? positiveInt(path, raw, "head_dim") : hiddenSize / numHeads;
  if (headDim % 2 !== 0) configError(path, `the head dimension ${headDim} must be even for RoPE`);
  const ropeParams = (raw.rope_parameters ?? raw.rope_scaling ?? null) as Record<string, unknown> | null;
  const ropeTheta = raw.rope_theta ?? ropeParams?.rope_theta ?? 10000;
  if (typeof ropeTheta !== "number" || !(ropeTheta > 0)) {
    configError(path, `field "rope_theta" must be a positive number, got ${JSON.stringify(ropeTheta)}`);
  }
  // llama.cpp's llama and qwen2 graphs hard-code SwiGLU; another activation would load and compute nonsense.
  const act = raw.hidden_act ?? "silu";
  if (act !== "silu")
    configError(path, `hidden_act "${String(act)}" is not supported (llama.cpp's ${arch} uses silu)`);
  const tie = raw.tie_word_embeddings ?? false;
  if (typeof tie !== "boolean") configError(path, `field "tie_word_embeddings" must be true or false`);
  const eps = raw.rms_norm_eps ?? 1e-6;
  if (typeof eps !== "number" || !(eps > 0))
    configError(path, `field "rms_norm_eps" must be a positive number`);
  return {
    path,
    modelType: hf,
    arch,
    hiddenSize,
    numLayers: positiveInt(path, raw, "num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    explicitHeadDim,
    intermediateSize: positiveInt(path, raw, "intermediate_size"),
    vocabSize: boundedVocab(path, positiveInt(path, raw, "vocab_size")),
    maxPositionEmbeddings: positiveInt(path, raw, "max_position_embeddings", 2048),
    rmsNormEps: eps,
    ropeTheta,
    ropeScaling: parseRopeScaling(path, ropeParams),
    tieWordEmbeddings: tie,
    raw,
  };
}

function parseRopeScaling(path: string, p: Record<string, unknown> | null): RopeScaling | null {
  if (p === null || typeof p !== "object") return null;
  const type = String(p.rope_type ?? p.type ?? "default").toLowerCase();
  const num = (field: string, fallback?: number): number => {
    const v = p[field] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      configError(path, `rope scaling field "${field}" must be a number, got ${JSON.stringify(p[field])}`);
    }
    return v;
  };
  switch (type) {
    case "default":
      return null;
    case "llama3":
      return {
        type: "llama3",
        factor: num("factor", 8),
        lowFreqFactor: num("low_freq_factor", 1),
        highFreqFactor: num("high_freq_factor", 4),
        originalContext: num("original_max_position_embeddings", 8192),
      };
    case "linear":
      return { type: "linear", factor: num("factor") };
    case "yarn":
      return {
        type: "yarn",
        factor: num("factor"),
        originalContext: num("original_max_position_embeddings"),
        raw: p,
      };
    default:
      configError(
        path,
        `rope scaling type "${type}" is not supported for llama.cpp export (supported: llama3, linear, yarn)`,
      );
  }
}

/**
 * llama.cpp's per-dimension RoPE frequency divisors for Llama 3 scaling (`rope_freqs.weight`), computed as
 * `LlamaModel.generate_extra_tensors` does: θ_i = base^(-2i/d) in float32; wavelengths shorter than
 * original/high_freq_factor keep factor 1, longer than original/low_freq_factor get `factor`, and the band in
 * between is interpolated smoothly. llama.cpp divides θ_i by the stored value.
 */
export function llama3RopeFactors(
  headDim: number,
  base: number,
  s: Extract<RopeScaling, { type: "llama3" }>,
): Float32Array {
  const out = new Float32Array(headDim / 2);
  const lowWavelen = s.originalContext / s.lowFreqFactor;
  const highWavelen = s.originalContext / s.highFreqFactor;
  for (let i = 0; i < headDim / 2; i++) {
    const freq = Math.fround(1 / Math.fround(Math.pow(base, Math.fround((2 * i) / headDim))));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

/** The `general.*` (except tokenizer) and `<arch>.*` keys for a model config. */
export function modelMetadata(
  c: LlamaModelConfig,
  name: string,
  dtype: GgufWritableType,
): [string, GgufValue][] {
  const a = c.arch;
  const u32 = (value: number): GgufValue => ({ type: "u32", value });
  const f32 = (value: number): GgufValue => ({ type: "f32", value });
  const out: [string, GgufValue][] = [
    ["general.architecture", { type: "string", value: a }],
    ["general.type", { type: "string", value: "model" }],
    ["general.name", { type: "string", value: name }],
    [`${a}.block_count`, u32(c.numLayers)],
    [`${a}.context_length`, u32(c.maxPositionEmbeddings)],
    [`${a}.embedding_length`, u32(c.hiddenSize)],
    [`${a}.feed_forward_length`, u32(c.intermediateSize)],
    [`${a}.attention.head_count`, u32(c.numHeads)],
    [`${a}.attention.head_count_kv`, u32(c.numKvHeads)],
  ];
  const rs = c.ropeScaling;
  if (rs?.type === "linear") {
    out.push(
      [`${a}.rope.scaling.type`, { type: "string", value: "linear" }],
      [`${a}.rope.scaling.factor`, f32(rs.factor)],
    );
  } else if (rs?.type === "yarn") {
    out.push(
      [`${a}.rope.scaling.type`, { type: "string", value: "yarn" }],
      [`${a}.rope.scaling.factor`, f32(rs.factor)],
      [`${a}.rope.scaling.original_context_length`, u32(rs.originalContext)],
    );
    const extra: [string, string[]][] = [
      ["rope.scaling.yarn_ext_factor", ["extrapolation_factor"]],
      ["rope.scaling.yarn_attn_factor", ["attention_factor", "attn_factor"]],
      ["rope.scaling.yarn_beta_fast", ["beta_fast"]],
      ["rope.scaling.yarn_beta_slow", ["beta_slow"]],
    ];
    for (const [key, fields] of extra) {
      const v = fields.map((f) => rs.raw[f]).find((x) => typeof x === "number");
      if (typeof v === "number") out.push([`${a}.${key}`, f32(v)]);
    }
  }
  out.push(
    [`${a}.rope.freq_base`, f32(c.ropeTheta)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(c.rmsNormEps)],
  );
  if (c.explicitHeadDim)
    out.push([`${a}.attention.key_length`, u32(c.headDim)], [`${a}.attention.value_length`, u32(c.headDim)]);
  out.push(
    ["general.file_type", u32(FILE_TYPE[dtype])],
    [`${a}.vocab_size`, u32(c.vocabSize)],
    [`${a}.rope.dimension_count`, u32(c.headDim)],
    ["general.quantization_version", u32(2)],
  );
  return out;
}

/** llama_ftype values (llama.h): what most of the file's matrices are stored as. */
const FILE_TYPE: Record<GgufWritableType, number> = { F32: 0, F16: 1, BF16: 32 };

// ---------------------------------------------------------------------------------------------------------
// Weights

/** Where one source tensor lives. */
interface SourceTensor {
  file: string;
  reader: SafetensorsReader;
  entry: TensorEntry;
}

/** One tensor of the output, with what it is made from. */
interface PlannedTensor {
  spec: GgufTensorSpec;
  /** Absent for generated tensors (rope_freqs). */
  source?: SourceTensor;
  generated?: Float32Array;
  /** Head count for the q/k RoPE row permutation, or null. */
  permuteHeads: number | null;
}

/** The safetensors files of a model folder: the index's shards, or `model.safetensors`, or every `*.safetensors`. */
function weightFiles(dir: string): string[] {
  const index = join(dir, "model.safetensors.index.json");
  if (existsSync(index)) {
    const parsedIndex = readJsonFile(index, { code: "model.weights" });
    const map: unknown =
      typeof parsedIndex === "object" && parsedIndex !== null
        ? (parsedIndex as { weight_map?: unknown }).weight_map
        : undefined;
    if (typeof map !== "object" || map === null)
      throw new MerglotError("model.weights", `${index}: no "weight_map" object`);
    const files = [...new Set(Object.values(map as Record<string, unknown>).map(String))].sort();
    for (const f of files) {
      if (!existsSync(join(dir, f)))
        throw new MerglotError("model.weights", `${index}: shard "${f}" is missing from the folder`);
    }
    return files.map((f) => join(dir, f));
  }
  if (existsSync(join(dir, "model.safetensors"))) return [join(dir, "model.safetensors")];
  const all = readdirSync(dir)
    .filter((f) => f.endsWith(".safetensors"))
    .sort();
  if (all.length === 0) {
    const hint = existsSync(join(dir, "pytorch_model.bin"))
      ? " (pytorch_model.bin pickles are not read; save the model with safe_serialization=True)"
      : "";
    throw new MerglotError("model.missing", `${dir}: no *.safetensors weights in the model folder${hint}`);
  }
  return all.map((f) => join(dir, f));
}

const FLOAT_SOURCE = new Set<StDType>(["F32", "F16", "BF16", "F64"]);
/** Tensors HF checkpoints carry that llama.cpp computes itself. */
const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

/** Canonical output order: embeddings, then layer by layer, then the final norm and head. */
function orderKey(gguf: string): [number, number, string] {
  const m = /^blk\.(\d+)\.(\w+)\.(weight|bias)$/.exec(gguf);
  const parts = [
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
  ];
  if (m) return [1, Number(m[1]) * 100 + parts.indexOf(m[2]!) * 2 + (m[3] === "bias" ? 1 : 0), gguf];
  const globals = ["token_embd.weight", "output_norm.weight", "output.weight", "rope_freqs.weight"];
  const g = globals.indexOf(gguf);
  return g === 0 ? [0, 0, gguf] : [2, g, gguf];
}

/** The weights every decoder layer of a llama-family model has (biases, where an architecture has them, vary). */
const LAYER_WEIGHTS = [
  "input_layernorm.weight",
  "self_attn.q_proj.weight",
  "self_attn.k_proj.weight",
  "self_attn.v_proj.weight",
  "self_attn.o_proj.weight",
  "post_attention_layernorm.weight",
  "mlp.gate_proj.weight",
  "mlp.up_proj.weight",
  "mlp.down_proj.weight",
];

function planTensors(
  c: LlamaModelConfig,
  readers: { file: string; reader: SafetensorsReader }[],
  dtype: GgufWritableType,
): PlannedTensor[] {
  const planned: PlannedTensor[] = [];
  const seen = new Map<string, string>();
  for (const { file, reader } of readers) {
    for (const entry of reader.tensors) {
      const name = entry.name;
      if (IGNORED.test(name)) continue;
      if (name === "lm_head.weight" && c.tieWordEmbeddings) continue; // llama.cpp reuses token_embd
      const gguf = hfToGgufName(name);
      if (gguf === undefined || !/\.(weight|bias)$/.test(gguf)) {
        throw new MerglotError(
          "model.tensor",
          `${file}: tensor "${name}" has no llama.cpp counterpart for architecture ${c.arch} (unsupported model variant?)`,
        );
      }
      if (seen.has(gguf))
        throw new MerglotError("model.tensor", `${file}: tensor "${name}" also appears in ${seen.get(gguf)}`);
      seen.set(gguf, file);
      if (!FLOAT_SOURCE.has(entry.dtype)) {
        throw new MerglotError(
          "model.tensor",
          `${file}: tensor "${name}" has dtype ${entry.dtype}; quantized checkpoints are not supported`,
        );
      }
      checkShape(c, file, name, entry.shape);
      // 1-D tensors (norms, biases) stay F32 as in the reference converter; matrices take the requested type.
      const type: GgufWritableType = entry.shape.length === 1 ? "F32" : dtype;
      let permuteHeads: number | null = null;
      if (c.arch === "llama" && /\.self_attn\.q_proj\.(weight|bias)$/.test(name)) permuteHeads = c.numHeads;
      if (c.arch === "llama" && /\.self_attn\.k_proj\.(weight|bias)$/.test(name)) permuteHeads = c.numKvHeads;
      planned.push({
        spec: { name: gguf, type, shape: entry.shape.slice() },
        source: { file, reader, entry },
        permuteHeads,
      });
    }
  }
  for (const required of ["token_embd.weight", "output_norm.weight"]) {
    if (!seen.has(required))
      throw new MerglotError(
        "model.tensor",
        `${readers[0]!.file}: the model has no ${required === "token_embd.weight" ? "model.embed_tokens.weight" : "model.norm.weight"}`,
      );
  }
  // Every layer config.json declares must be complete: llama.cpp refuses a GGUF whose block_count promises a
  // tensor the file lacks, so a config with more layers than the weights is refused here, naming the tensor.
  for (let layer = 0; layer < c.numLayers; layer++) {
    for (const part of LAYER_WEIGHTS) {
      const hf = `model.layers.${layer}.${part}`;
      if (!seen.has(hfToGgufName(hf)!)) {
        throw new MerglotError(
          "model.tensor",
          `${c.path}: num_hidden_layers = ${c.numLayers} but the weights have no "${hf}"`,
        );
      }
    }
  }
  if (!c.tieWordEmbeddings && !seen.has("output.weight")) {
    throw new MerglotError(
      "model.tensor",
      `${c.path}: tie_word_embeddings is false but the weights have no lm_head.weight`,
    );
  }
  if (c.ropeScaling?.type === "llama3") {
    const data = llama3RopeFactors(c.headDim, c.ropeTheta, c.ropeScaling);
    planned.push({
      spec: { name: "rope_freqs.weight", type: "F32", shape: [data.length] },
      generated: data,
      permuteHeads: null,
    });
  }
  planned.sort((x, y) => {
    const a = orderKey(x.spec.name);
    const b = orderKey(y.spec.name);
    return a[0] - b[0] || a[1] - b[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0);
  });
  return planned;
}

/** The shape config.json implies for an HF tensor, so that a mismatched config fails here, not in llama.cpp. */
function expectedShape(c: LlamaModelConfig, name: string): number[] | undefined {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const h = c.hiddenSize;
  const table: [RegExp, number[]][] = [
    [/^model\.embed_tokens\.weight$/, [c.vocabSize, h]],
    [/^lm_head\.weight$/, [c.vocabSize, h]],
    [/^model\.norm\.weight$/, [h]],
    [/\.(input_layernorm|post_attention_layernorm)\.weight$/, [h]],
    [/\.self_attn\.q_proj\.weight$/, [q, h]],
    [/\.self_attn\.(k|v)_proj\.weight$/, [kv, h]],
    [/\.self_attn\.q_proj\.bias$/, [q]],
    [/\.self_attn\.(k|v)_proj\.bias$/, [kv]],
    [/\.self_attn\.o_proj\.weight$/, [h, q]],
    [/\.mlp\.(gate|up)_proj\.weight$/, [c.intermediateSize, h]],
    [/\.mlp\.down_proj\.weight$/, [h, c.intermediateSize]],
  ];
  return table.find(([re]) => re.test(name))?.[1];
}

function checkShape(c: LlamaModelConfig, file: string, name: string, shape: number[]): void {
  const want = expectedShape(c, name);
  if (want && (want.length !== shape.length || want.some((d, i) => d !== shape[i]))) {
    throw new MerglotError(
      "model.tensor",
      `${file}: tensor "${name}" has shape [${shape.join(", ")}] but ${c.path} implies [${want.join(", ")}]`,
    );
  }
  const layer = /^model\.layers\.(\d+)\./.exec(name);
  if (layer && Number(layer[1]) >= c.numLayers) {
    throw new MerglotError(
      "model.tensor",
      `${file}: tensor "${name}" is beyond num_hidden_layers = ${c.numLayers}`,
    );
  }
}

/** Bytes of the source read per step when converting a tensor. */
const CHUNK_BYTES = 1 << 22;

/**
 * The output bytes of one planned tensor, assembled from bounded reads: rows in blocks (one RoPE head per
 * block when permuting), decoded to float32 only when the type changes.
 */
function encodeTensor(t: PlannedTensor, fd: number): Uint8Array {
  if (t.generated) return encodeFromFloat32(t.generated, t.spec.type);
  const { entry, reader } = t.source!;
  const srcType = entry.dtype as FloatDType;
  const srcSize = DTYPE_SIZE[entry.dtype];
  const outType = t.spec.type;
  const outSize = outType === "F32" ? 4 : 2;
  const rows = entry.shape.length === 1 ? 1 : entry.shape[0]!;
  const cols = entry.shape.length === 1 ? entry.shape[0]! : entry.shape.slice(1).reduce((a, b) => a * b, 1);
  const out = new Uint8Array(rows * cols * outSize);
  // A 1-D tensor (bias) permutes its elements like rows of width 1.
  const permRows = entry.shape.length === 1 && t.permuteHeads !== null ? cols : rows;
  const permCols = entry.shape.length === 1 && t.permuteHeads !== null ? 1 : cols;
  const block =
    t.permuteHeads !== null
      ? permRows / t.permuteHeads
      : Math.max(1, Math.floor(CHUNK_BYTES / (permCols * srcSize)));
  if (t.permuteHeads !== null && permRows % (2 * t.permuteHeads) !== 0) {
    throw new MerglotError(
      "model.tensor",
      `${t.source!.file}: tensor "${entry.name}" has ${permRows} rows, not a multiple of 2 × ${t.permuteHeads} heads`,
    );
  }
  const rowBytes = permCols * srcSize;
  const src = new Uint8Array(block * rowBytes);
  const ordered = new Uint8Array(block * rowBytes);
  const f32 = srcType === outType ? undefined : new Float32Array(block * permCols);
  for (let r0 = 0; r0 < permRows; r0 += block) {
    const n = Math.min(block, permRows - r0);
    const bytes = src.subarray(0, n * rowBytes);
    readAt(fd, bytes, reader.dataStart + entry.begin + r0 * rowBytes, t.source!.file, entry.name);
    let rowsIn = bytes;
    if (t.permuteHeads !== null) {
      // LlamaModel.permute within one head: output row 2i + j comes from input row j·half + i.
      const half = n / 2;
      for (let i = 0; i < half; i++) {
        for (let j = 0; j < 2; j++) {
          const from = (j * half + i) * rowBytes;
          ordered.set(bytes.subarray(from, from + rowBytes), (2 * i + j) * rowBytes);
        }
      }
      rowsIn = ordered.subarray(0, n * rowBytes);
    }
    const dst = out.subarray(r0 * permCols * outSize, (r0 + n) * permCols * outSize);
    if (!f32) dst.set(rowsIn);
    else encodeFromFloat32(decodeToFloat32(rowsIn, srcType, f32.subarray(0, n * permCols)), outType, dst);
  }
  return out;
}

function readAt(fd: number, dst: Uint8Array, position: number, file: string, name: string): void {
  let done = 0;
  while (done < dst.length) {
    const n = readSync(fd, dst, done, dst.length - done, position + done);
    if (n === 0)
      throw new MerglotError("model.weights", `${file}: file is truncated inside tensor "${name}"`);
    done += n;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Export

export interface ModelExportOptions {
  /** Matrix type in the file (1-D tensors are always F32). Default F16, as the reference converter. */
  dtype?: GgufWritableType;
  /** Replace an existing GGUF file at the output path. */
  force?: boolean;
  /** Replace whatever is at the output path (never the model folder). */
  replaceForeign?: boolean;
  /** `general.name`; default: the folder's name. */
  name?: string;
  /** llama.cpp pre-tokenizer name, for byte-level BPE tokenizers whose pattern is not recognised. */
  tokenizerPre?: string;
}

export interface ModelExportResult {
  path: string;
  architecture: LlamaCppArch;
  dtype: GgufWritableType;
  tensorCount: number;
  tokenizer: { model: GgufVocab["model"]; pre: string; tokens: number };
  bytes: number;
}

/** Write the HF model folder `dir` as a llama.cpp GGUF at `outPath`. */
export function writeModelGguf(
  dir: string,
  outPath: string,
  opts: ModelExportOptions = {},
): ModelExportResult {
  const dtype = opts.dtype ?? "F16";
  if (!["F32", "F16", "BF16"].includes(dtype)) {
    throw new MerglotError("convert.dtype", `dtype "${String(dtype)}" is not supported (F32, F16, BF16)`);
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new MerglotError("model.missing", `${dir}: not a model folder`);
  const outSpec: OutputSpec = {
    path: outPath,
    kind: "file",
    inputs: [dir],
    owner: OWNERS.convert,
    force: opts.force,
    replaceForeign: opts.replaceForeign,
  };
  checkOutput(outSpec);
  const config = readLlamaConfig(dir);
  const vocab = readGgufVocab(dir, {
    vocabSize: config.vocabSize,
    config: config.raw,
    pre: opts.tokenizerPre,
  });
  const files = weightFiles(dir);
  const readers = files.map((file) => ({ file, reader: SafetensorsReader.open(file) }));
  const fds: number[] = [];
  try {
    const plan = planTensors(config, readers, dtype);
    const fdOf = new Map(
      readers.map(({ file }) => {
        const fd = openSync(file, "r");
        fds.push(fd);
        return [file, fd] as const;
      }),
    );
    const name = opts.name ?? basename(resolve(dir));
    const metadata = [...modelMetadata(config, name, dtype), ...vocabMetadata(vocab)];
    const slot = openOutput(outSpec);
    let writer: GgufWriter | null = null;
    try {
      writer = new GgufWriter(
        slot,
        metadata,
        plan.map((p) => p.spec),
      );
      for (const t of plan)
        writer.writeTensor(t.spec.name, encodeTensor(t, t.source ? fdOf.get(t.source.file)! : -1));
      writer.finish();
    } catch (e) {
      writer?.abort();
      throw slot.fail(e);
    }
    return {
      path: outPath,
      architecture: config.arch,
      dtype,
      tensorCount: plan.length,
      tokenizer: { model: vocab.model, pre: vocab.pre, tokens: vocab.tokens.length },
      bytes: statSync(outPath).size,
    };
  } finally {
    for (const fd of fds) closeSync(fd);
    for (const { reader } of readers) reader.close();
  }
}
