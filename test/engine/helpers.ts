/** Shared fixtures for the engine tests: tiny configs, random models, finite differences. */
import assert from "node:assert/strict";
import { parseModelConfig, type ModelConfig } from "../../src/engine/config.js";
import type { Buf } from "../../src/engine/kernels.js";
import { LlamaModel, type DType } from "../../src/engine/model.js";
import { Rng } from "../../src/engine/rng.js";

export function tinyConfig(overrides: Record<string, unknown> = {}): ModelConfig {
  return parseModelConfig(
    {
      model_type: "llama",
      vocab_size: 11,
      hidden_size: 16,
      intermediate_size: 24,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      max_position_embeddings: 64,
      tie_word_embeddings: false,
      initializer_range: 0.3,
      ...overrides,
    },
    "test config.json",
  );
}

/** A random model; norms and biases are randomised too so that their gradients are not trivial. */
export function randomModel(config: ModelConfig, seed: number, dtype: DType = "f64"): LlamaModel {
  const m = new LlamaModel(config, dtype).initRandom(new Rng(seed));
  const rng = new Rng(seed, 1);
  for (const p of m.namedParameters()) {
    if (p.name.endsWith("norm.weight"))
      for (let i = 0; i < p.data.length; i++) p.data[i] = 1 + 0.2 * rng.normal();
    if (p.name.endsWith(".bias")) for (let i = 0; i < p.data.length; i++) p.data[i] = 0.1 * rng.normal();
  }
  return m;
}

/**
 * Compare analytic gradient entries with central differences f(x+h) − f(x−h) / 2h at `count` random
 * indices of `data` (float64 throughout).
 */
export function checkGradient(
  label: string,
  data: Buf,
  grad: Buf,
  loss: () => number,
  rng: Rng,
  opts: { count?: number; h?: number; rtol?: number; atol?: number } = {},
): void {
  const count = Math.min(opts.count ?? 4, data.length);
  const h = opts.h ?? 1e-6;
  const rtol = opts.rtol ?? 1e-5;
  const atol = opts.atol ?? 1e-8;
  const picks = new Set<number>();
  while (picks.size < count) picks.add(rng.int(data.length));
  for (const i of picks) {
    const x = data[i];
    data[i] = x + h;
    const up = loss();
    data[i] = x - h;
    const down = loss();
    data[i] = x;
    const numeric = (up - down) / (2 * h);
    const analytic = grad[i];
    const err = Math.abs(numeric - analytic);
    assert.ok(
      err <= atol + rtol * Math.max(Math.abs(numeric), Math.abs(analytic)),
      `${label}[${i}]: analytic ${analytic} vs numeric ${numeric} (|diff| ${err})`,
    );
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
