/**
 * Export of a LoRA adapter to llama.cpp's LoRA GGUF (what `convert_lora_to_gguf.py` writes and
 * `src/llama-adapter.cpp` loads).
 *
 * File layout llama.cpp expects: `general.type = "adapter"`, `adapter.type = "lora"`, `general.architecture`
 * equal to the base model's, one f32 `adapter.lora.alpha` for the whole file, and per targeted weight W a pair
 * `<W>.lora_a` with ne = [in, r] (PyTorch [r, in], i.e. PEFT's lora_A as is) and `<W>.lora_b` with
 * ne = [r, out] (PEFT's lora_B as is). llama.cpp adds scale·B·A with scale = alpha / r, where r = lora_b's
 * ne[0] — or scale = 1 when alpha is 0.
 *
 * PEFT's scaling s_m differs from alpha / r_m whenever a file has several ranks (rank_pattern), several alphas
 * (alpha_pattern) or rsLoRA (alpha / √r). We fold the difference into B: B' = (s_m · r_m / alpha) · B, so that
 * llama.cpp's alpha/r_m · B'·A equals s_m · B·A for every module. When every module has the same s·r (plain
 * PEFT adapters) the default alpha is that value and B is written unchanged, as the reference converter does.
 *
 * For llama-family architectures the rows of lora_B for q_proj/k_proj are permuted like the base weights
 * (see llama-names.ts). One module is in memory at a time.
 */
import type { OutputSlot } from "../output/slot.js";
import { MerglotError } from "../errors.js";
import { GgufWriter, type GgufTensorSpec, type GgufValue, type GgufWritableType } from "./gguf.js";
import { hfToGgufName, ropePermutationHeads, ropePermuteRows, type LlamaCppArch } from "./llama-names.js";

export interface GgufLoraModule {
  /** HF module path, with or without the PEFT prefix, e.g. `model.layers.3.self_attn.q_proj`. */
  hfName: string;
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** PEFT's effective scaling for this module (alpha/r, or alpha/√r with rsLoRA). */
  scaling: number;
}

export interface GgufLoraFactors {
  /** lora_A, row-major r × in. */
  a: Float32Array;
  /** lora_B, row-major out × r. */
  b: Float32Array;
}

export interface GgufLoraExportOptions {
  /** llama.cpp architecture of the base model (see `llamaCppArchFor`). */
  architecture: LlamaCppArch;
  /** Attention head counts of the base model (needed for the q/k permutation). */
  headCount: number;
  headCountKv: number;
  /** Module descriptors, written in this order (lora_a then lora_b for each). */
  modules: readonly GgufLoraModule[];
  /** Fetch one module's factors; called once per module, in order. */
  factors: (module: GgufLoraModule, index: number) => GgufLoraFactors;
  /** Tensor type in the file. Default F32 (like convert_lora_to_gguf.py). */
  dtype?: GgufWritableType;
  /** The file's `adapter.lora.alpha`. Default: scaling·rank of the first module. 0 means "scale 1". */
  alpha?: number;
  /** `general.name`. Default "merglot LoRA adapter". */
  name?: string;
}

export interface GgufLoraExportResult {
  /** The alpha written to the file (as stored, i.e. rounded to f32). */
  alpha: number;
  tensorCount: number;
  /** Modules whose B was rescaled to fold their scaling into the file's single alpha. */
  foldedModules: number;
}

/** llama_ftype values from llama.h, written as `general.file_type` like the reference converter does. */
const FILE_TYPE: Record<GgufWritableType, number> = { F32: 0, F16: 1, BF16: 32 };
/** GGML_QNT_VERSION, which gguf-py writes as `general.quantization_version`. */
const QUANTIZATION_VERSION = 2;

function fail(path: string, message: string): never {
  throw new MerglotError("gguf.lora", `${path}: ${message}`);
}

/** The scale llama.cpp applies to one module: alpha / rank in f32 arithmetic, or 1 when alpha is 0. */
export function llamaCppLoraScale(alpha: number, rank: number): number {
  const a = Math.fround(alpha);
  return a === 0 ? 1 : Math.fround(a / rank);
}

/** Write `modules` as a llama.cpp LoRA GGUF at `path` (atomically: temp file, then rename). */
export function writeLoraGguf(
  target: string | OutputSlot,
  opts: GgufLoraExportOptions,
): GgufLoraExportResult {
  const path = typeof target === "string" ? target : target.path;
  const dtype = opts.dtype ?? "F32";
  if (opts.modules.length === 0) fail(path, "the adapter has no modules to export");
  const ggufNames = checkModules(path, opts);

  const first = opts.modules[0]!;
  const alpha = Math.fround(opts.alpha ?? defaultAlpha(first));
  if (!Number.isFinite(alpha)) fail(path, `adapter.lora.alpha must be a finite number, got ${opts.alpha}`);

  const metadata: [string, GgufValue][] = [
    ["general.architecture", { type: "string", value: opts.architecture }],
    ["general.type", { type: "string", value: "adapter" }],
    ["general.name", { type: "string", value: opts.name ?? "merglot LoRA adapter" }],
    ["adapter.type", { type: "string", value: "lora" }],
    ["adapter.lora.alpha", { type: "f32", value: alpha }],
    ["general.file_type", { type: "u32", value: FILE_TYPE[dtype] }],
    ["general.quantization_version", { type: "u32", value: QUANTIZATION_VERSION }],
  ];
  const specs: GgufTensorSpec[] = [];
  opts.modules.forEach((m, i) => {
    specs.push({ name: `${ggufNames[i]}.lora_a`, type: dtype, shape: [m.rank, m.inFeatures] });
    specs.push({ name: `${ggufNames[i]}.lora_b`, type: dtype, shape: [m.outFeatures, m.rank] });
  });

  const writer = new GgufWriter(target, metadata, specs);
  let folded = 0;
  try {
    opts.modules.forEach((m, i) => {
      const { a, b } = opts.factors(m, i);
      if (a.length !== m.rank * m.inFeatures) {
        fail(
          path,
          `module "${m.hfName}": lora_A has ${a.length} values, expected ${m.rank} × ${m.inFeatures}`,
        );
      }
      if (b.length !== m.outFeatures * m.rank) {
        fail(
          path,
          `module "${m.hfName}": lora_B has ${b.length} values, expected ${m.outFeatures} × ${m.rank}`,
        );
      }
      // llama.cpp multiplies by its own f32 scale; fold whatever separates that from PEFT's scaling into B.
      // A factor within 2^-24 of 1 changes nothing an f32 file can store, so B is then written as is.
      const factor = m.scaling / llamaCppLoraScale(alpha, m.rank);
      let bOut = b;
      if (Math.abs(factor - 1) > 2 ** -24) {
        bOut = new Float32Array(b.length);
        for (let j = 0; j < b.length; j++) bOut[j] = b[j]! * factor;
        folded++;
      }
      const heads = ropePermutationHeads(m.hfName, opts.architecture, opts.headCount, opts.headCountKv);
      if (heads !== null) bOut = ropePermuteRows(bOut, m.outFeatures, m.rank, heads);
      writer.writeTensor(specs[2 * i]!.name, a);
      writer.writeTensor(specs[2 * i + 1]!.name, bOut);
    });
    writer.finish();
  } catch (e) {
    writer.abort();
    throw e;
  }
  return { alpha, tensorCount: specs.length, foldedModules: folded };
}

/** scaling·rank: the alpha for which llama.cpp's alpha/r equals PEFT's scaling without touching B. */
function defaultAlpha(m: GgufLoraModule): number {
  const a = m.scaling * m.rank;
  return Number.isFinite(a) && a !== 0 ? a : 1;
}

function checkModules(path: string, opts: GgufLoraExportOptions): string[] {
  const { headCount, headCountKv } = opts;
  if (opts.architecture !== "llama" && opts.architecture !== "qwen2") {
    fail(path, `architecture "${String(opts.architecture)}" is not supported (llama, qwen2)`);
  }
  if (!Number.isInteger(headCount) || headCount <= 0 || !Number.isInteger(headCountKv) || headCountKv <= 0) {
    fail(path, `head counts must be positive integers, got ${headCount} and ${headCountKv}`);
  }
  const seen = new Set<string>();
  return opts.modules.map((m) => {
    for (const [field, v] of [
      ["rank", m.rank],
      ["inFeatures", m.inFeatures],
      ["outFeatures", m.outFeatures],
    ] as const) {
      if (!Number.isSafeInteger(v) || v <= 0)
        fail(path, `module "${m.hfName}": ${field} must be a positive integer`);
    }
    if (!Number.isFinite(m.scaling)) fail(path, `module "${m.hfName}": scaling must be a finite number`);
    if (/\.(weight|bias)$/.test(m.hfName)) {
      fail(path, `module "${m.hfName}": give the module path, without a .weight/.bias suffix`);
    }
    const name = hfToGgufName(m.hfName);
    if (name === undefined) {
      fail(
        path,
        `module "${m.hfName}" has no llama.cpp tensor name (only attention/MLP projections and lm_head)`,
      );
    }
    if (name === "token_embd") {
      // PEFT stores embedding LoRA as lora_embedding_A/B with llama.cpp expecting them flipped; not handled.
      fail(path, `module "${m.hfName}": LoRA on the token embeddings cannot be exported to GGUF yet`);
    }
    if (name.endsWith("_norm")) fail(path, `module "${m.hfName}" is a norm, which LoRA does not target`);
    const full = `${name}.weight`;
    if (seen.has(full)) fail(path, `module "${m.hfName}" appears twice`);
    seen.add(full);
    const heads = ropePermutationHeads(m.hfName, opts.architecture, headCount, headCountKv);
    if (heads !== null && m.outFeatures % (2 * heads) !== 0) {
      fail(
        path,
        `module "${m.hfName}": ${m.outFeatures} output rows do not split into ${heads} heads of even size`,
      );
    }
    return full;
  });
}
