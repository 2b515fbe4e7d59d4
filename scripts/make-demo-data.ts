/**
 * Writes the demo's embedded data: five small "language adapters" (en, de, fr, ja, zh) for a tiny
 * llama-shaped model, and the demo recipe. Each language's factors are a shared task component plus a
 * language-specific one, the structure the study's language vectors show. Deterministic: running it again
 * rewrites byte-identical files.   Run: node dist/scripts/make-demo-data.js
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeAdapter } from "../src/formats/peft.js";
import { Rng } from "../src/tensor/rng.js";

const ROOT = "data/demo";
const LANGS = ["en", "de", "fr", "ja", "zh"];
const HIDDEN = 32;
const KV = 16;
const INTER = 64;
const LAYERS = 2;
const R = 4;
const SHAPES: Record<string, [number, number]> = {
  "self_attn.q_proj": [HIDDEN, HIDDEN],
  "self_attn.k_proj": [KV, HIDDEN],
  "self_attn.v_proj": [KV, HIDDEN],
  "self_attn.o_proj": [HIDDEN, HIDDEN],
  "mlp.gate_proj": [INTER, HIDDEN],
  "mlp.up_proj": [INTER, HIDDEN],
  "mlp.down_proj": [HIDDEN, INTER],
};

function normal(rng: Rng, n: number, scale: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = scale * rng.normal();
  return x;
}

const shared = new Rng(1234n);
const sharedFactors = new Map<string, { a: Float32Array; b: Float32Array }>();
for (let l = 0; l < LAYERS; l++) {
  for (const [name, [out, inF]] of Object.entries(SHAPES)) {
    sharedFactors.set(`model.layers.${l}.${name}`, {
      a: normal(shared, R * inF, 0.3),
      b: normal(shared, out * R, 0.05),
    });
  }
}

rmSync(join(ROOT, "adapters"), { recursive: true, force: true });
LANGS.forEach((lang, li) => {
  const rng = new Rng(BigInt(1000 + li));
  const tensors: { name: string; shape: number[]; data: Float32Array }[] = [];
  for (const [module, s] of sharedFactors) {
    const [out, inF] = SHAPES[module.split(".").slice(3).join(".")]!;
    const a = normal(rng, R * inF, 0.3).map((v, i) => 0.6 * s.a[i]! + 0.8 * v);
    const b = normal(rng, out * R, 0.05).map((v, i) => 0.6 * s.b[i]! + 0.8 * v);
    tensors.push({ name: `base_model.model.${module}.lora_A.weight`, shape: [R, inF], data: a });
    tensors.push({ name: `base_model.model.${module}.lora_B.weight`, shape: [out, R], data: b });
  }
  writeAdapter(join(ROOT, "adapters", lang), {
    config: {
      r: R,
      lora_alpha: 2 * R,
      target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
      base_model_name_or_path: "merglot/tiny-llama-demo",
      task_type: "CAUSAL_LM",
    },
    tensors,
    dtype: "BF16",
    force: true,
  });
});
mkdirSync(ROOT, { recursive: true });
writeFileSync(
  join(ROOT, "recipe.yaml"),
  `# The demo recipe: KnOTS-TIES over five language adapters (paths are relative to this file).
merge_method: knots_ties
models:
${LANGS.map((l) => `  - model: adapters/${l}`).join("\n")}
parameters:
  weight: 1.0
  density: 0.5
  density_scope: tensor
  sign_method: total
seed: 0
output:
  rank: exact
  dtype: float32
`,
);
console.log(`wrote ${LANGS.length} adapters and recipe.yaml under ${ROOT}`);
