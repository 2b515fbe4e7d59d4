/**
 * A small random llama-architecture model written as an HF folder (config.json, model.safetensors,
 * tokenizer.json, tokenizer_config.json), and an independent float64 reference forward pass that follows the
 * HF definitions (RMSNorm, rotate-half RoPE with optional llama3 scaling, GQA causal attention, SwiGLU MLP).
 * Test-only: nothing here comes from the code under test.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeAdapter } from "../../src/formats/peft.js";
import { writeSafetensors, type StDType } from "../../src/formats/safetensors.js";
import { mulberry32, randn } from "../helpers/rand.js";

export interface TinyConfig {
  modelType: "llama" | "qwen2" | "mistral";
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  /** Embedding rows (≥ the tokenizer's size; extra rows become [PAD] tokens). */
  vocab: number;
  tie: boolean;
  eps: number;
  theta: number;
  llama3?: { factor: number; low: number; high: number; original: number };
}

export const DEFAULT_TINY: TinyConfig = {
  modelType: "llama",
  hidden: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ffn: 96,
  vocab: 104,
  tie: false,
  eps: 1e-5,
  theta: 10000,
};

export type Weights = Map<string, { shape: number[]; data: Float32Array }>;

// ---------------------------------------------------------------------------------------------------------
// Tokenizer: byte-level BPE over a tiny alphabet

/** GPT-2's bytes_to_unicode for the bytes used here: printable ASCII maps to itself, space → Ġ, \n → Ċ. */
const SPACE = "\u0120";
const NEWLINE = "\u010a";
export const SPECIAL_TOKENS = ["<|begin|>", "<|end|>"];
const BASE = [NEWLINE, SPACE, ..."abcdefghijklmnopqrstuvwxyz", ..."0123456789", ".", ",", "!", "?", "'"];
/** Merges in rank order; each result is a new token. */
export const MERGES: [string, string][] = [
  [SPACE, "t"],
  ["h", "e"],
  [SPACE + "t", "he"],
  [SPACE, "a"],
  [SPACE, "s"],
  ["a", "t"],
  ["o", "n"],
  [SPACE, "c"],
  [SPACE + "c", "at"],
  [SPACE, "d"],
  ["o", "g"],
  [SPACE + "d", "og"],
  [SPACE + "s", "at"],
  [SPACE, "o"],
  [SPACE + "o", "n"],
  [SPACE, "m"],
  [SPACE + "m", "at"],
  ["i", "n"],
  ["e", "r"],
  ["a", "n"],
  [SPACE + "a", "n"],
  [SPACE + "an", "d"],
  ["e", "n"],
  [SPACE, "i"],
  [SPACE + "i", "s"],
  [SPACE + "i", "n"],
  [SPACE, "l"],
  [SPACE + "l", "e"],
  [SPACE + "l", "a"],
  [SPACE, "u"],
  [SPACE + "u", "n"],
  ["d", "er"],
  [SPACE, "h"],
  ["u", "n"],
  ["un", "d"],
  [SPACE + "h", "und"],
  [SPACE, "k"],
  ["t", "z"],
  ["a", "tz"],
  [SPACE + "k", "atz"],
  [SPACE + "katz", "e"],
  ["c", "h"],
  [SPACE + "c", "h"],
  [SPACE + "ch", "at"],
  [SPACE + "d", "er"],
  [SPACE + "d", "i"],
  [SPACE + "di", "e"],
  ["a", "s"],
  [SPACE + "d", "as"],
  [SPACE, "e"],
  [SPACE + "e", "in"],
  ["t", "he"],
  [".", SPACE],
  ["e", "s"],
  [SPACE + "e", "s"],
];

/** The tokenizer's tokens in id order (specials, base alphabet, merge results). */
export function tinyVocab(): string[] {
  const tokens = [...SPECIAL_TOKENS, ...BASE];
  const have = new Set(tokens);
  for (const [a, b] of MERGES) {
    if (!have.has(a) || !have.has(b)) throw new Error(`fixture merge ${a} + ${b} uses an unknown token`);
    if (!have.has(a + b)) {
      tokens.push(a + b);
      have.add(a + b);
    }
  }
  return tokens;
}

export function tokenizerJson(): Record<string, unknown> {
  const tokens = tinyVocab();
  const special = (id: number) => ({
    id,
    content: SPECIAL_TOKENS[id],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0), special(1)],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<|begin|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<|begin|>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<|begin|>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<|begin|>": { id: "<|begin|>", ids: [0], tokens: ["<|begin|>"] } },
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
      merges: MERGES.map(([a, b]) => [a, b]),
    },
  };
}

export const TOKENIZER_CONFIG = {
  add_bos_token: true,
  add_eos_token: false,
  bos_token: "<|begin|>",
  eos_token: "<|end|>",
  model_max_length: 256,
  tokenizer_class: "PreTrainedTokenizerFast",
};

// ---------------------------------------------------------------------------------------------------------
// Weights and folder

export function hfConfig(c: TinyConfig): Record<string, unknown> {
  const arch = { llama: "LlamaForCausalLM", qwen2: "Qwen2ForCausalLM", mistral: "MistralForCausalLM" }[
    c.modelType
  ];
  return {
    architectures: [arch],
    model_type: c.modelType,
    hidden_size: c.hidden,
    intermediate_size: c.ffn,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads,
    hidden_act: "silu",
    max_position_embeddings: 256,
    rms_norm_eps: c.eps,
    rope_theta: c.theta,
    rope_scaling: c.llama3
      ? {
          rope_type: "llama3",
          factor: c.llama3.factor,
          low_freq_factor: c.llama3.low,
          high_freq_factor: c.llama3.high,
          original_max_position_embeddings: c.llama3.original,
        }
      : null,
    tie_word_embeddings: c.tie,
    vocab_size: c.vocab,
    bos_token_id: 0,
    eos_token_id: 1,
    torch_dtype: "float32",
  };
}

/** Random weights in HF layout (row-major [out, in]). */
export function randomWeights(c: TinyConfig, seed: number): Weights {
  const rand = mulberry32(seed);
  const hd = c.hidden / c.heads;
  const w: Weights = new Map();
  const mat = (name: string, rows: number, cols: number, scale: number) =>
    w.set(name, { shape: [rows, cols], data: randn(rand, rows * cols, scale) });
  const norm = (name: string, n: number) => {
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = 1 + 0.2 * (rand() - 0.5);
    w.set(name, { shape: [n], data: d });
  };
  const bias = (name: string, n: number) => w.set(name, { shape: [n], data: randn(rand, n, 0.1) });
  mat("model.embed_tokens.weight", c.vocab, c.hidden, 1);
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`;
    norm(p + "input_layernorm.weight", c.hidden);
    const s = 1 / Math.sqrt(c.hidden);
    mat(p + "self_attn.q_proj.weight", c.heads * hd, c.hidden, s);
    mat(p + "self_attn.k_proj.weight", c.kvHeads * hd, c.hidden, s);
    mat(p + "self_attn.v_proj.weight", c.kvHeads * hd, c.hidden, s);
    if (c.modelType === "qwen2") {
      bias(p + "self_attn.q_proj.bias", c.heads * hd);
      bias(p + "self_attn.k_proj.bias", c.kvHeads * hd);
      bias(p + "self_attn.v_proj.bias", c.kvHeads * hd);
    }
    mat(p + "self_attn.o_proj.weight", c.hidden, c.heads * hd, s);
    norm(p + "post_attention_layernorm.weight", c.hidden);
    mat(p + "mlp.gate_proj.weight", c.ffn, c.hidden, s);
    mat(p + "mlp.up_proj.weight", c.ffn, c.hidden, s);
    mat(p + "mlp.down_proj.weight", c.hidden, c.ffn, 1 / Math.sqrt(c.ffn));
  }
  norm("model.norm.weight", c.hidden);
  if (!c.tie) mat("lm_head.weight", c.vocab, c.hidden, 1 / Math.sqrt(c.hidden));
  return w;
}

/** Write an HF model folder for `c` and `weights`. */
export function writeTinyModel(dir: string, c: TinyConfig, weights: Weights, dtype: StDType = "F32"): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(hfConfig(c), null, 2));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson()));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(TOKENIZER_CONFIG, null, 2));
  writeSafetensors(
    join(dir, "model.safetensors"),
    [...weights].map(([name, t]) => ({ name, dtype, shape: t.shape, data: t.data })),
    { format: "pt" },
  );
}

/** Weights with `s · B·A` added to each listed module's weight (a LoRA applied densely, in float64). */
export function withDeltas(
  weights: Weights,
  deltas: { module: string; a: Float32Array; b: Float32Array; rank: number; scaling: number }[],
): Weights {
  const out: Weights = new Map(
    [...weights].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]),
  );
  for (const d of deltas) {
    const t = out.get(`${d.module}.weight`);
    if (!t) throw new Error(`no weight for ${d.module}`);
    const [rows, cols] = t.shape as [number, number];
    const acc = Float64Array.from(exactWeights.get(t) ?? t.data);
    for (let i = 0; i < rows; i++)
      for (let k = 0; k < d.rank; k++) {
        const bik = d.scaling * d.b[i * d.rank + k]!;
        for (let j = 0; j < cols; j++) acc[i * cols + j]! += bik * d.a[k * cols + j]!;
      }
    // The float64 sum stays in a side table for the reference; `data` holds it rounded, for writing files.
    exactWeights.set(t, acc);
    t.data = Float32Array.from(acc);
  }
  return out;
}
const exactWeights = new WeakMap<object, Float64Array>();

// ---------------------------------------------------------------------------------------------------------
// Reference forward (float64)

/** HF inverse frequencies, with llama3 scaling as transformers' `_compute_llama3_parameters` defines it. */
function inverseFrequencies(c: TinyConfig): Float64Array {
  const hd = c.hidden / c.heads;
  const inv = new Float64Array(hd / 2);
  for (let i = 0; i < hd / 2; i++) inv[i] = 1 / Math.pow(c.theta, (2 * i) / hd);
  const s = c.llama3;
  if (!s) return inv;
  const lowWavelen = s.original / s.low;
  const highWavelen = s.original / s.high;
  for (let i = 0; i < inv.length; i++) {
    const wavelen = (2 * Math.PI) / inv[i]!;
    if (wavelen > lowWavelen) inv[i] = inv[i]! / s.factor;
    else if (wavelen >= highWavelen) {
      const smooth = (s.original / wavelen - s.low) / (s.high - s.low);
      inv[i] = (1 - smooth) * (inv[i]! / s.factor) + smooth * inv[i]!;
    }
  }
  return inv;
}

/** Log-softmax rows for every position of `tokens`: row t is the distribution of token t + 1. */
export function referenceLogProbs(
  c: TinyConfig,
  weights: Weights,
  tokens: readonly number[],
): Float64Array[] {
  const get = (name: string): ArrayLike<number> => {
    const t = weights.get(name);
    if (!t) throw new Error(`missing ${name}`);
    return exactWeights.get(t) ?? t.data;
  };
  const opt = (name: string) => (weights.has(name) ? get(name) : undefined);
  const hd = c.hidden / c.heads;
  const group = c.heads / c.kvHeads;
  const inv = inverseFrequencies(c);
  const matvec = (w: ArrayLike<number>, x: Float64Array, rows: number, bias?: ArrayLike<number>) => {
    const cols = x.length;
    const y = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      let acc = bias ? bias[i]! : 0;
      for (let j = 0; j < cols; j++) acc += w[i * cols + j]! * x[j]!;
      y[i] = acc;
    }
    return y;
  };
  const rms = (x: Float64Array, g: ArrayLike<number>) => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const r = 1 / Math.sqrt(ss / x.length + c.eps);
    return x.map((v, i) => v * r * g[i]!);
  };
  const rope = (v: Float64Array, pos: number, nHeads: number) => {
    const o = Float64Array.from(v);
    for (let h = 0; h < nHeads; h++)
      for (let i = 0; i < hd / 2; i++) {
        const th = pos * inv[i]!;
        const x1 = v[h * hd + i]!;
        const x2 = v[h * hd + i + hd / 2]!;
        o[h * hd + i] = x1 * Math.cos(th) - x2 * Math.sin(th);
        o[h * hd + i + hd / 2] = x2 * Math.cos(th) + x1 * Math.sin(th);
      }
    return o;
  };
  const emb = get("model.embed_tokens.weight");
  let xs = tokens.map((t) => Float64Array.from({ length: c.hidden }, (_, j) => emb[t * c.hidden + j]!));
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`;
    const hs = xs.map((x) => rms(x, get(p + "input_layernorm.weight")));
    const qs = hs.map((h, t) =>
      rope(
        matvec(get(p + "self_attn.q_proj.weight"), h, c.heads * hd, opt(p + "self_attn.q_proj.bias")),
        t,
        c.heads,
      ),
    );
    const ks = hs.map((h, t) =>
      rope(
        matvec(get(p + "self_attn.k_proj.weight"), h, c.kvHeads * hd, opt(p + "self_attn.k_proj.bias")),
        t,
        c.kvHeads,
      ),
    );
    const vs = hs.map((h) =>
      matvec(get(p + "self_attn.v_proj.weight"), h, c.kvHeads * hd, opt(p + "self_attn.v_proj.bias")),
    );
    xs = xs.map((x, t) => {
      const att = new Float64Array(c.heads * hd);
      for (let h = 0; h < c.heads; h++) {
        const kh = Math.floor(h / group);
        const scores = [];
        for (let u = 0; u <= t; u++) {
          let d = 0;
          for (let i = 0; i < hd; i++) d += qs[t]![h * hd + i]! * ks[u]![kh * hd + i]!;
          scores.push(d / Math.sqrt(hd));
        }
        const mx = Math.max(...scores);
        const ex = scores.map((s) => Math.exp(s - mx));
        const z = ex.reduce((a, b) => a + b, 0);
        for (let u = 0; u <= t; u++)
          for (let i = 0; i < hd; i++) att[h * hd + i]! += (ex[u]! / z) * vs[u]![kh * hd + i]!;
      }
      const o = matvec(get(p + "self_attn.o_proj.weight"), att, c.hidden);
      const x1 = x.map((v, i) => v + o[i]!);
      const h2 = rms(x1, get(p + "post_attention_layernorm.weight"));
      const g = matvec(get(p + "mlp.gate_proj.weight"), h2, c.ffn);
      const u = matvec(get(p + "mlp.up_proj.weight"), h2, c.ffn);
      const act = g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]!);
      const dn = matvec(get(p + "mlp.down_proj.weight"), act, c.hidden);
      return x1.map((v, i) => v + dn[i]!);
    });
  }
  const head = c.tie ? emb : get("lm_head.weight");
  return xs.map((x) => {
    const logits = matvec(head, rms(x, get("model.norm.weight")), c.vocab);
    let mx = -Infinity;
    for (const v of logits) mx = Math.max(mx, v);
    let z = 0;
    for (const v of logits) z += Math.exp(v - mx);
    const lse = mx + Math.log(z);
    return logits.map((v) => v - lse);
  });
}

/** Greedy continuation of `prompt` under the reference: argmax (lowest id on ties), `n` tokens. */
export function referenceGreedy(
  c: TinyConfig,
  weights: Weights,
  prompt: readonly number[],
  n: number,
): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const rows = referenceLogProbs(c, weights, seq);
    const last = rows[rows.length - 1]!;
    let best = 0;
    for (let j = 1; j < last.length; j++) if (last[j]! > last[best]!) best = j;
    out.push(best);
    seq.push(best);
  }
  return out;
}

/** Max |a − b| over equal-shaped row lists. */
export function maxAbsDiff(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): number {
  if (a.length !== b.length) throw new Error(`row counts differ: ${a.length} vs ${b.length}`);
  let m = 0;
  a.forEach((row, t) => {
    const other = b[t]!;
    if (row.length !== other.length) throw new Error(`row ${t} lengths differ`);
    for (let i = 0; i < row.length; i++) m = Math.max(m, Math.abs(row[i]! - other[i]!));
  });
  return m;
}

// ---------------------------------------------------------------------------------------------------------
// Adapters

export interface TinyLoraModule {
  /** HF module path, e.g. `model.layers.0.self_attn.q_proj`. */
  module: string;
  rank: number;
  /** lora_alpha for this module (written as alpha_pattern when it differs from the adapter's). */
  alpha: number;
}

export interface TinyLora {
  module: string;
  rank: number;
  a: Float32Array;
  b: Float32Array;
  /** PEFT's scaling for the module: alpha/r, or alpha/√r with rsLoRA. */
  scaling: number;
}

/** [out, in] of a module of the tiny model. */
export function moduleShape(c: TinyConfig, module: string): [number, number] {
  const hd = c.hidden / c.heads;
  const kind = module.slice(module.lastIndexOf(".") + 1);
  const shapes: Record<string, [number, number]> = {
    q_proj: [c.heads * hd, c.hidden],
    k_proj: [c.kvHeads * hd, c.hidden],
    v_proj: [c.kvHeads * hd, c.hidden],
    o_proj: [c.hidden, c.heads * hd],
    gate_proj: [c.ffn, c.hidden],
    up_proj: [c.ffn, c.hidden],
    down_proj: [c.hidden, c.ffn],
    lm_head: [c.vocab, c.hidden],
  };
  return shapes[kind]!;
}

/**
 * Write a PEFT adapter folder for the tiny model. The first module's rank and alpha are the adapter's `r` and
 * `lora_alpha`; other modules' differing values go into rank_pattern / alpha_pattern under their full names.
 */
export function writeTinyAdapter(
  dir: string,
  c: TinyConfig,
  opts: { seed: number; modules: TinyLoraModule[]; useRslora?: boolean; base?: string; scale?: number },
): TinyLora[] {
  const rand = mulberry32(opts.seed);
  const r0 = opts.modules[0]!.rank;
  const alpha0 = opts.modules[0]!.alpha;
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  const mods = opts.modules.map((m) => {
    const [out, inF] = moduleShape(c, m.module);
    if (m.rank !== r0) rankPattern[m.module] = m.rank;
    if (m.alpha !== alpha0) alphaPattern[m.module] = m.alpha;
    return {
      module: m.module,
      rank: m.rank,
      a: randn(rand, m.rank * inF, ((opts.scale ?? 0.3) / Math.sqrt(inF)) * 4),
      b: randn(rand, out * m.rank, opts.scale ?? 0.3),
      scaling: opts.useRslora ? m.alpha / Math.sqrt(m.rank) : m.alpha / m.rank,
      shape: [out, inF] as [number, number],
    };
  });
  writeAdapter(dir, {
    config: {
      r: r0,
      lora_alpha: alpha0,
      target_modules: [...new Set(opts.modules.map((m) => m.module.slice(m.module.lastIndexOf(".") + 1)))],
      base_model_name_or_path: opts.base ?? null,
      use_rslora: opts.useRslora ?? false,
      rank_pattern: rankPattern,
      alpha_pattern: alphaPattern,
    },
    tensors: mods.flatMap((m) => [
      { name: `base_model.model.${m.module}.lora_A.weight`, shape: [m.rank, m.shape[1]], data: m.a },
      { name: `base_model.model.${m.module}.lora_B.weight`, shape: [m.shape[0], m.rank], data: m.b },
    ]),
  });
  return mods.map(({ module, rank, a, b, scaling }) => ({ module, rank, a, b, scaling }));
}
