/**
 * Hugging Face ↔ llama.cpp tensor names for the llama family (llama, mistral) and qwen2, and the q/k row
 * permutation llama.cpp's converter applies for RoPE.
 *
 * HF llama checkpoints rotate dimension i with i + d/2 of each head ("rotate half"); llama.cpp's llama
 * architecture rotates adjacent pairs (2i, 2i+1). `convert_hf_to_gguf.py` (LlamaModel.permute) therefore
 * reorders the rows of q_proj (with n_head) and k_proj (with n_head_kv) weights and biases. qwen2 uses
 * llama.cpp's NEOX rope, which matches HF directly, so its rows are left alone. A LoRA delta B·A has the rows
 * of B, so lora_B of q/k gets the same permutation and lora_A is unchanged.
 */
import { MerglotError } from "../errors.js";

/** PEFT saves module paths under this prefix. */
const PEFT_PREFIX = "base_model.model.";

/** llama.cpp architectures (`general.architecture`) this module knows the names of. */
export type LlamaCppArch = "llama" | "qwen2";

const ARCH_BY_HF: Record<string, LlamaCppArch> = {
  // config.json `model_type`
  llama: "llama",
  mistral: "llama",
  qwen2: "qwen2",
  // config.json `architectures[0]` (llama.cpp's converter maps MistralForCausalLM to its llama model class)
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
};

/** The llama.cpp architecture for an HF `model_type` or `architectures` entry; an unknown one is an error. */
export function llamaCppArchFor(hf: string): LlamaCppArch {
  const arch = ARCH_BY_HF[hf];
  if (!arch) {
    throw new MerglotError(
      "gguf.arch",
      `architecture "${hf}" is not supported for llama.cpp export (supported: ${Object.keys(ARCH_BY_HF).join(", ")})`,
    );
  }
  return arch;
}

/** Whether llama.cpp's converter permutes q/k rows for this architecture (llama yes, qwen2 no). */
export function usesRopePermutation(arch: LlamaCppArch): boolean {
  return arch === "llama";
}

const GLOBAL_HF_TO_GGUF: Record<string, string> = {
  "model.embed_tokens": "token_embd",
  "model.norm": "output_norm",
  lm_head: "output",
};
const LAYER_HF_TO_GGUF: Record<string, string> = {
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output",
  "mlp.gate_proj": "ffn_gate",
  "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
  input_layernorm: "attn_norm",
  post_attention_layernorm: "ffn_norm",
};
const GLOBAL_GGUF_TO_HF = invert(GLOBAL_HF_TO_GGUF);
const LAYER_GGUF_TO_HF = invert(LAYER_HF_TO_GGUF);

function invert(m: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [v, k]));
}

const SUFFIX_RE = /^(.*?)(\.weight|\.bias)?$/;
const HF_LAYER_RE = /^model\.layers\.(\d+)\.(.+)$/;
const GGUF_LAYER_RE = /^blk\.(\d+)\.(.+)$/;

/**
 * llama.cpp name of an HF tensor or module name, or undefined when it has none. Accepts the PEFT prefix
 * (`base_model.model.`), and names with or without a `.weight` / `.bias` suffix (kept as given):
 * `model.layers.3.self_attn.q_proj.weight` → `blk.3.attn_q.weight`, `model.layers.3.self_attn.q_proj` →
 * `blk.3.attn_q`.
 */
export function hfToGgufName(name: string): string | undefined {
  const bare = name.startsWith(PEFT_PREFIX) ? name.slice(PEFT_PREFIX.length) : name;
  const [, base, suffix = ""] = SUFFIX_RE.exec(bare)!;
  const global = GLOBAL_HF_TO_GGUF[base!];
  if (global !== undefined) return global + suffix;
  const m = HF_LAYER_RE.exec(base!);
  if (!m) return undefined;
  const part = LAYER_HF_TO_GGUF[m[2]!];
  if (part === undefined) return undefined;
  return `blk.${Number(m[1])}.${part}${suffix}`;
}

/** HF name (without the PEFT prefix) of a llama.cpp tensor or module name, or undefined when it has none. */
export function ggufToHfName(name: string): string | undefined {
  const [, base, suffix = ""] = SUFFIX_RE.exec(name)!;
  const global = GLOBAL_GGUF_TO_HF[base!];
  if (global !== undefined) return global + suffix;
  const m = GGUF_LAYER_RE.exec(base!);
  if (!m) return undefined;
  const part = LAYER_GGUF_TO_HF[m[2]!];
  if (part === undefined) return undefined;
  return `model.layers.${Number(m[1])}.${part}${suffix}`;
}

/** Which head count the RoPE permutation of an HF tensor/module uses, or null when it is not permuted. */
export function ropePermutationHeads(
  hfName: string,
  arch: LlamaCppArch,
  headCount: number,
  headCountKv: number,
): number | null {
  if (!usesRopePermutation(arch)) return null;
  const bare = SUFFIX_RE.exec(hfName)![1]!;
  if (bare.endsWith(".self_attn.q_proj")) return headCount;
  if (bare.endsWith(".self_attn.k_proj")) return headCountKv;
  return null;
}

function checkRopeShape(rows: number, cols: number, length: number, nHead: number): number {
  if (!Number.isInteger(nHead) || nHead <= 0) {
    throw new MerglotError("gguf.rope", `head count must be a positive integer, got ${nHead}`);
  }
  if (length !== rows * cols) {
    throw new MerglotError("gguf.rope", `data has ${length} values, expected ${rows} × ${cols}`);
  }
  if (rows % (2 * nHead) !== 0) {
    throw new MerglotError(
      "gguf.rope",
      `${rows} rows cannot be split into ${nHead} heads of an even size (rows must be a multiple of ${2 * nHead})`,
    );
  }
  return rows / nHead / 2;
}

/**
 * LlamaModel.permute: view the rows as [nHead, 2, half, ...], swap the middle axes, flatten again. Output row
 * h·d + 2i + t comes from input row h·d + t·half + i (d = rows / nHead, half = d / 2). Row-major data.
 */
export function ropePermuteRows(data: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  return moveRopeRows(data, rows, cols, nHead, false);
}

/** The inverse of `ropePermuteRows` (llama.cpp layout back to HF layout). */
export function ropeUnpermuteRows(
  data: Float32Array,
  rows: number,
  cols: number,
  nHead: number,
): Float32Array {
  return moveRopeRows(data, rows, cols, nHead, true);
}

/** Row h·d + 2i + t ↔ row h·d + t·half + i, in the direction asked for. */
function moveRopeRows(
  data: Float32Array,
  rows: number,
  cols: number,
  nHead: number,
  inverse: boolean,
): Float32Array {
  const half = checkRopeShape(rows, cols, data.length, nHead);
  const out = new Float32Array(data.length);
  for (let h = 0; h < nHead; h++) {
    const base = h * 2 * half;
    for (let i = 0; i < half; i++) {
      for (let t = 0; t < 2; t++) {
        const llama = (base + 2 * i + t) * cols;
        const hf = (base + t * half + i) * cols;
        const [src, dst] = inverse ? [llama, hf] : [hf, llama];
        out.set(data.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}
