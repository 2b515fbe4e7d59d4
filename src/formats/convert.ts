/**
 * Conversions to llama.cpp's GGUF: a PEFT LoRA adapter folder → LoRA GGUF, an HF model folder → base-model
 * GGUF. These are the library functions behind `merglot convert`; they decide where the base model's shape
 * comes from and check the adapter against it, and leave the file formats to gguf-lora.ts / gguf-model.ts.
 */
import { existsSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { MerglotError } from "../errors.js";
import { OWNERS } from "../output/owners.js";
import { checkOutput, openOutput, type OutputSlot, type OutputSpec } from "../output/slot.js";
import type { GgufWritableType } from "./gguf.js";
import { writeLoraGguf, type GgufLoraExportResult } from "./gguf-lora.js";
import {
  readLlamaConfig,
  writeModelGguf,
  type LlamaModelConfig,
  type ModelExportResult,
} from "./gguf-model.js";
import type { LlamaCppArch } from "./llama-names.js";
import { LoraAdapter, type LoraModule } from "./peft.js";

export type ConvertDType = GgufWritableType;

/** What the adapter export needs to know about the base model. */
export interface BaseShape {
  architecture: LlamaCppArch;
  headCount: number;
  headCountKv: number;
  /** When true, an adapter on lm_head cannot be applied (llama.cpp has no separate output tensor). */
  tieWordEmbeddings?: boolean;
  /** When given, every module's shape is checked against it. */
  config?: LlamaModelConfig;
}

export interface AdapterToGgufOptions {
  /**
   * The base model: its folder or its config.json. Default: the adapter's `base_model_name_or_path` when that
   * is a local folder with a config.json.
   */
  base?: string;
  /** The base's shape given directly (instead of `base`). */
  baseShape?: BaseShape;
  /** Tensor type in the file. Default F32 (as llama.cpp's convert_lora_to_gguf.py). */
  dtype?: ConvertDType;
  /** Replace an existing GGUF file at the output path. */
  force?: boolean;
  /** Replace whatever is at the output path (never an input). */
  replaceForeign?: boolean;
  /** More paths the output must not touch (the adapter and the base are always protected). */
  inputs?: readonly string[];
  /** `general.name`. */
  name?: string;
}

export interface AdapterToGgufResult extends GgufLoraExportResult {
  path: string;
  architecture: LlamaCppArch;
  modules: number;
  /** Where the base model's shape came from. */
  baseFrom: string;
}

/** Resolve the base config path from an option or the adapter's `base_model_name_or_path`. */
/**
 * The base model's config for an adapter: `base` when given, else its base_model_name_or_path when that is a
 * local folder (relative names resolve from the working folder, then from the adapter's folder).
 */
export function findBaseConfig(
  adapter: { path: string; config: { baseModel: string | null } },
  base: string | undefined,
  hint = "pass --base MODEL_DIR (or its config.json)",
): { config: LlamaModelConfig; from: string } {
  if (base !== undefined) return { config: readLlamaConfig(base), from: base };
  const named = adapter.config.baseModel;
  const candidates =
    named === null ? [] : isAbsolute(named) ? [named] : [resolve(named), resolve(adapter.path, named)];
  for (const c of candidates) {
    if (existsSync(c) && statSync(c).isDirectory() && existsSync(join(c, "config.json"))) {
      return { config: readLlamaConfig(c), from: c };
    }
  }
  throw new MerglotError(
    "convert.base",
    `${adapter.path}: the base model's config is needed for llama.cpp (architecture and head counts), and ` +
      (named === null
        ? `the adapter names no base_model_name_or_path`
        : `base_model_name_or_path "${named}" is not a local folder with a config.json`) +
      `; ${hint}`,
  );
}

/** The [out, in] shape config.json implies for a LoRA-targeted module, or undefined for other modules. */
export function moduleShape(c: LlamaModelConfig, name: string): [number, number] | undefined {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const kind = name.slice(name.lastIndexOf(".") + 1);
  const shapes: Record<string, [number, number]> = {
    q_proj: [q, c.hiddenSize],
    k_proj: [kv, c.hiddenSize],
    v_proj: [kv, c.hiddenSize],
    o_proj: [c.hiddenSize, q],
    gate_proj: [c.intermediateSize, c.hiddenSize],
    up_proj: [c.intermediateSize, c.hiddenSize],
    down_proj: [c.hiddenSize, c.intermediateSize],
    lm_head: [c.vocabSize, c.hiddenSize],
  };
  return shapes[kind];
}

function checkAgainstBase(adapter: LoraAdapter, base: BaseShape, from: string): void {
  for (const m of adapter.modules) {
    if (isLmHead(m) && base.tieWordEmbeddings) {
      throw new MerglotError(
        "convert.tied",
        `${adapter.path}: module "${m.name}" adapts lm_head, but the base model (${from}) ties its output to the ` +
          `token embeddings, so llama.cpp has no output tensor to apply it to`,
      );
    }
    const c = base.config;
    if (!c) continue;
    const layer = m.layer;
    if (layer !== null && layer >= c.numLayers) {
      throw new MerglotError(
        "convert.shape",
        `${adapter.path}: module "${m.name}" is beyond the base model's ${c.numLayers} layers`,
      );
    }
    const want = moduleShape(c, m.name);
    if (want && (want[0] !== m.outFeatures || want[1] !== m.inFeatures)) {
      throw new MerglotError(
        "convert.shape",
        `${adapter.path}: module "${m.name}" is ${m.outFeatures} × ${m.inFeatures} but the base model (${from}) ` +
          `has ${want[0]} × ${want[1]}`,
      );
    }
  }
}

function isLmHead(m: LoraModule): boolean {
  return m.name === "lm_head" || m.name.endsWith(".lm_head");
}

/** Convert the PEFT adapter folder `adapterDir` to a llama.cpp LoRA GGUF at `outPath`. */
export function convertAdapterToGguf(
  adapterDir: string,
  outPath: string,
  opts: AdapterToGgufOptions = {},
): AdapterToGgufResult {
  const outSpec: OutputSpec = {
    path: outPath,
    kind: "file",
    inputs: [adapterDir, ...(opts.base ? [opts.base] : []), ...(opts.inputs ?? [])],
    owner: OWNERS.convert,
    force: opts.force,
    replaceForeign: opts.replaceForeign,
  };
  checkOutput(outSpec);
  const adapter = LoraAdapter.open(adapterDir);
  let slot: OutputSlot | null = null;
  try {
    let shape: BaseShape;
    let from: string;
    if (opts.baseShape) {
      shape = opts.baseShape;
      from = "the given base shape";
    } else {
      const found = findBaseConfig(adapter, opts.base);
      from = found.from;
      shape = {
        architecture: found.config.arch,
        headCount: found.config.numHeads,
        headCountKv: found.config.numKvHeads,
        tieWordEmbeddings: found.config.tieWordEmbeddings,
        config: found.config,
      };
    }
    checkAgainstBase(adapter, shape, from);
    if (adapter.config.fanInFanOut) {
      throw new MerglotError(
        "convert.layout",
        `${adapter.path}: fan_in_fan_out adapters (GPT-2 Conv1D layout) cannot be applied to llama-architecture models`,
      );
    }
    slot = openOutput(outSpec);
    const result = writeLoraGguf(slot, {
      architecture: shape.architecture,
      headCount: shape.headCount,
      headCountKv: shape.headCountKv,
      modules: adapter.modules.map((m) => ({
        hfName: m.name,
        rank: m.rank,
        inFeatures: m.inFeatures,
        outFeatures: m.outFeatures,
        scaling: m.scaling,
      })),
      factors: (_m, i) => {
        const mod = adapter.modules[i]!;
        return { a: adapter.readA(mod), b: adapter.readB(mod) };
      },
      dtype: opts.dtype ?? "F32",
      name: opts.name,
    });
    return {
      ...result,
      path: outPath,
      architecture: shape.architecture,
      modules: adapter.modules.length,
      baseFrom: from,
    };
  } catch (e) {
    throw slot ? slot.fail(e) : e;
  } finally {
    adapter.close();
  }
}

export interface ModelToGgufOptions {
  /** Matrix type (1-D tensors stay F32). Default F16. */
  dtype?: ConvertDType;
  force?: boolean;
  replaceForeign?: boolean;
  name?: string;
  /** llama.cpp pre-tokenizer name for byte-level BPE tokenizers whose split pattern is not recognised. */
  tokenizerPre?: string;
}

/** Convert the HF model folder `modelDir` (llama, mistral, qwen2) to a llama.cpp GGUF at `outPath`. */
export function convertModelToGguf(
  modelDir: string,
  outPath: string,
  opts: ModelToGgufOptions = {},
): ModelExportResult {
  return writeModelGguf(modelDir, outPath, opts);
}

/** What kind of folder `path` is, for `merglot convert`. */
export function detectConvertInput(path: string): "adapter" | "model" {
  if (!existsSync(path)) throw new MerglotError("convert.input", `${path}: no such file or folder`);
  if (!statSync(path).isDirectory()) {
    throw new MerglotError("convert.input", `${path}: expected a PEFT adapter folder or an HF model folder`);
  }
  if (existsSync(join(path, "adapter_config.json"))) return "adapter";
  if (existsSync(join(path, "config.json"))) return "model";
  throw new MerglotError(
    "convert.input",
    `${path}: neither adapter_config.json (a PEFT adapter) nor config.json (an HF model) is in the folder`,
  );
}
