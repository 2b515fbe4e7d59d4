/**
 * `output.format: gguf`: the merged adapter is written as a llama.cpp LoRA GGUF whose effect
 * (llama.cpp scale = alpha / rank, q/k rows un-permuted) equals the PEFT output of the same merge.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import { GgufReader } from "../../src/formats/gguf.js";
import { llamaCppLoraScale } from "../../src/formats/gguf-lora.js";
import { ropeUnpermuteRows } from "../../src/formats/llama-names.js";
import { makeAdapter, readDeltas, tempDir, writeRecipe } from "../helpers/fixtures.js";
import { matmul, relErr } from "../helpers/reference.js";

const tmp = tempDir();
after(() => tmp.cleanup());
// a tiny llama: hidden 8, 2 heads of 4, 1 KV head (k/v out 4), intermediate 10
const MODULES = [
  { name: "model.layers.0.self_attn.q_proj", out: 8, in: 8, rank: 2 },
  { name: "model.layers.0.self_attn.v_proj", out: 4, in: 8, rank: 2 },
  { name: "model.layers.1.mlp.down_proj", out: 8, in: 10, rank: 2 },
];
const base = join(tmp.dir, "base");
makeAdapter(join(tmp.dir, "en"), { seed: 1, modules: MODULES, base });
makeAdapter(join(tmp.dir, "de"), { seed: 2, modules: MODULES, base, useRslora: true });
{
  mkdirSync(base);
  writeFileSync(
    join(base, "config.json"),
    JSON.stringify({
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      hidden_size: 8,
      intermediate_size: 10,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      num_hidden_layers: 2,
      vocab_size: 16,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      max_position_embeddings: 64,
      tie_word_embeddings: false,
    }),
  );
}

test("a recipe with output.format: gguf writes a llama.cpp LoRA equal to the PEFT merge", async () => {
  const body =
    "merge_method: knots_ties\nmodels:\n  - model: en\n  - model: de\nparameters: { density: 0.6 }\n";
  await merge(writeRecipe(tmp.dir, "peft.yaml", `${body}output: { dtype: float32 }\n`), {
    output: join(tmp.dir, "peft-out"),
    threads: 1,
  });
  const out = join(tmp.dir, "merged.gguf");
  await merge(
    writeRecipe(tmp.dir, "gguf.yaml", `${body}output: { format: gguf, base: base, dtype: float32 }\n`),
    { output: out, threads: 1 },
  );
  assert.ok(existsSync(`${out}.merge_manifest.json`));
  assert.equal(
    readdirSync(tmp.dir).filter((f) => f.includes(".tmp-")).length,
    0,
    "the intermediate PEFT folder is removed",
  );
  const ref = readDeltas(join(tmp.dir, "peft-out"));
  const g = GgufReader.open(out);
  try {
    assert.equal(g.getString("general.type"), "adapter");
    assert.equal(g.getString("general.architecture"), "llama");
    const alpha = g.getNumber("adapter.lora.alpha")!;
    const names: Record<string, string> = {
      q_proj: "blk.0.attn_q",
      v_proj: "blk.0.attn_v",
      down_proj: "blk.1.ffn_down",
    };
    for (const m of MODULES) {
      const kind = m.name.slice(m.name.lastIndexOf(".") + 1);
      const tn = names[kind]!;
      const a = g.readFloat32(`${tn}.weight.lora_a`);
      let b = g.readFloat32(`${tn}.weight.lora_b`);
      const rank = a.length / m.in;
      if (kind === "q_proj") b = ropeUnpermuteRows(b, m.out, rank, 2);
      const d = matmul(b, a, m.out, rank, m.in).map((v) => v * llamaCppLoraScale(alpha, rank));
      assert.ok(relErr(d, ref.get(m.name)!.d) < 1e-5, `${m.name}: ${relErr(d, ref.get(m.name)!.d)}`);
    }
  } finally {
    g.close();
  }
});
