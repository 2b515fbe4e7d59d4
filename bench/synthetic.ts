/**
 * Synthetic adapters with real Llama-3.1-8B shapes for the benchmarks (values are random, shapes are real):
 * hidden 4096, intermediate 14336, 32 layers, 32 heads / 8 KV heads (k/v out = 1024), all 7 linear modules.
 */
import { AdapterWriter, adapterConfigJson, factorNames } from "../src/formats/peft.js";
import type { TensorSpec } from "../src/formats/safetensors.js";

export interface LlamaShape {
  layers: number;
  hidden: number;
  intermediate: number;
  kvDim: number;
}

export const LLAMA_8B: LlamaShape = { layers: 32, hidden: 4096, intermediate: 14336, kvDim: 1024 };

export function moduleShapes(s: LlamaShape): { name: string; out: number; in: number }[] {
  const per: [string, number, number][] = [
    ["self_attn.q_proj", s.hidden, s.hidden],
    ["self_attn.k_proj", s.kvDim, s.hidden],
    ["self_attn.v_proj", s.kvDim, s.hidden],
    ["self_attn.o_proj", s.hidden, s.hidden],
    ["mlp.gate_proj", s.intermediate, s.hidden],
    ["mlp.up_proj", s.intermediate, s.hidden],
    ["mlp.down_proj", s.hidden, s.intermediate],
  ];
  const out: { name: string; out: number; in: number }[] = [];
  for (let l = 0; l < s.layers; l++)
    for (const [n, o, i] of per) out.push({ name: `model.layers.${l}.${n}`, out: o, in: i });
  return out;
}

/** Uniform values in [-scale, scale) from a xorshift32 stream (fast enough for GB-sized files). */
function fill(x: Float32Array, state: { s: number }, scale: number): void {
  let s = state.s;
  for (let i = 0; i < x.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    x[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  state.s = s;
}

export function writeSyntheticAdapter(
  dir: string,
  opts: { seed: number; shape?: LlamaShape; r?: number; dtype?: "BF16" | "F16" | "F32"; base?: string },
): void {
  const shape = opts.shape ?? LLAMA_8B;
  const r = opts.r ?? 64;
  const dtype = opts.dtype ?? "BF16";
  const mods = moduleShapes(shape);
  const specs: TensorSpec[] = mods.flatMap((m) => {
    const n = factorNames(m.name);
    return [
      { name: n.a, dtype, shape: [r, m.in] },
      { name: n.b, dtype, shape: [m.out, r] },
    ];
  });
  const config = adapterConfigJson({
    r,
    lora_alpha: 2 * r,
    target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    base_model_name_or_path: opts.base ?? "meta-llama/Llama-3.1-8B",
  });
  const w = new AdapterWriter(dir, config, specs, true);
  const state = { s: (opts.seed * 2654435761) >>> 0 || 1 };
  try {
    for (const m of mods) {
      const n = factorNames(m.name);
      const a = new Float32Array(r * m.in);
      fill(a, state, 1 / Math.sqrt(m.in));
      w.writeTensor(n.a, a);
      const b = new Float32Array(m.out * r);
      fill(b, state, 0.01);
      w.writeTensor(n.b, b);
    }
    w.finish();
  } catch (e) {
    w.abort();
    throw e;
  }
}
