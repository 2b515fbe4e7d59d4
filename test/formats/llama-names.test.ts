import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MerglotError } from "../../src/errors.js";
import {
  ggufToHfName,
  hfToGgufName,
  llamaCppArchFor,
  ropePermutationHeads,
  ropePermuteRows,
  ropeUnpermuteRows,
  usesRopePermutation,
} from "../../src/formats/llama-names.js";
import { naivePermute } from "../helpers/rope.js";

/** The expected table, written out from llama.cpp's tensor map (gguf-py/gguf/tensor_mapping.py). */
const TABLE: [string, string][] = [
  ["model.embed_tokens.weight", "token_embd.weight"],
  ["model.norm.weight", "output_norm.weight"],
  ["lm_head.weight", "output.weight"],
  ["model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"],
  ["model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight"],
  ["model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight"],
  ["model.layers.0.self_attn.o_proj.weight", "blk.0.attn_output.weight"],
  ["model.layers.17.mlp.gate_proj.weight", "blk.17.ffn_gate.weight"],
  ["model.layers.17.mlp.up_proj.weight", "blk.17.ffn_up.weight"],
  ["model.layers.17.mlp.down_proj.weight", "blk.17.ffn_down.weight"],
  ["model.layers.5.input_layernorm.weight", "blk.5.attn_norm.weight"],
  ["model.layers.5.post_attention_layernorm.weight", "blk.5.ffn_norm.weight"],
  // qwen2 attention biases
  ["model.layers.2.self_attn.q_proj.bias", "blk.2.attn_q.bias"],
  ["model.layers.2.self_attn.k_proj.bias", "blk.2.attn_k.bias"],
  ["model.layers.2.self_attn.v_proj.bias", "blk.2.attn_v.bias"],
  // module paths (no suffix), as PEFT names modules
  ["model.layers.31.self_attn.q_proj", "blk.31.attn_q"],
  ["model.layers.31.mlp.down_proj", "blk.31.ffn_down"],
  ["lm_head", "output"],
];

describe("HF <-> llama.cpp names", () => {
  test("maps every known name both ways", () => {
    for (const [hf, gg] of TABLE) {
      assert.equal(hfToGgufName(hf), gg, hf);
      assert.equal(ggufToHfName(gg), hf, gg);
    }
  });

  test("accepts the PEFT prefix", () => {
    assert.equal(hfToGgufName("base_model.model.model.layers.3.self_attn.q_proj"), "blk.3.attn_q");
    assert.equal(hfToGgufName("base_model.model.lm_head.weight"), "output.weight");
  });

  test("returns undefined for names without a counterpart", () => {
    for (const n of [
      "model.layers.3.self_attn.rotary_emb.inv_freq",
      "model.layers.x.self_attn.q_proj.weight",
      "transformer.h.0.attn.c_attn.weight",
      "model.layers.3.self_attn.q_proj.lora_A.weight",
      "",
    ]) {
      assert.equal(hfToGgufName(n), undefined, n);
    }
    for (const n of [
      "blk.0.attn_qkv.weight",
      "rope_freqs.weight",
      "blk.a.attn_q.weight",
      "token_embd.lora_a",
    ]) {
      assert.equal(ggufToHfName(n), undefined, n);
    }
  });

  test("architectures: llama and mistral are llama.cpp 'llama' (permuted), qwen2 is not permuted", () => {
    assert.equal(llamaCppArchFor("llama"), "llama");
    assert.equal(llamaCppArchFor("mistral"), "llama");
    assert.equal(llamaCppArchFor("MistralForCausalLM"), "llama");
    assert.equal(llamaCppArchFor("LlamaForCausalLM"), "llama");
    assert.equal(llamaCppArchFor("qwen2"), "qwen2");
    assert.equal(llamaCppArchFor("Qwen2ForCausalLM"), "qwen2");
    assert.throws(
      () => llamaCppArchFor("gpt2"),
      (e: unknown) => e instanceof MerglotError && /"gpt2"/.test(e.message),
    );
    assert.equal(usesRopePermutation("llama"), true);
    assert.equal(usesRopePermutation("qwen2"), false);
    assert.equal(ropePermutationHeads("model.layers.1.self_attn.q_proj", "llama", 32, 8), 32);
    assert.equal(ropePermutationHeads("base_model.model.model.layers.1.self_attn.k_proj", "llama", 32, 8), 8);
    assert.equal(ropePermutationHeads("model.layers.1.self_attn.k_proj.bias", "llama", 32, 8), 8);
    assert.equal(ropePermutationHeads("model.layers.1.self_attn.v_proj", "llama", 32, 8), null);
    assert.equal(ropePermutationHeads("model.layers.1.self_attn.q_proj", "qwen2", 32, 8), null);
  });
});

describe("RoPE q/k row permutation", () => {
  const cases: [number, number, number][] = [
    [8, 3, 1], // one head of 8
    [16, 5, 4], // 4 heads of 4 (q)
    [8, 5, 2], // GQA k: 2 kv heads of 4
    [24, 2, 3], // heads of 8
    [12, 1, 2], // a bias vector (one column)
  ];
  for (const [rows, cols, nHead] of cases) {
    test(`matches LlamaModel.permute for ${rows}×${cols}, ${nHead} heads, and inverts`, () => {
      const w = Float32Array.from({ length: rows * cols }, (_, i) => i * 1.5 - 7);
      const p = ropePermuteRows(w, rows, cols, nHead);
      assert.deepEqual(p, naivePermute(w, rows, cols, nHead));
      assert.deepEqual(ropeUnpermuteRows(p, rows, cols, nHead), w);
    });
  }

  test("a hand-derived case: one head of 4 rows → rows [0, 2, 1, 3]", () => {
    // head_dim 4, half 2: output row 2i+t is input row t·2+i → 0←0, 1←2, 2←1, 3←3
    const w = Float32Array.from([10, 11, 20, 21, 30, 31, 40, 41]);
    assert.deepEqual(Array.from(ropePermuteRows(w, 4, 2, 1)), [10, 11, 30, 31, 20, 21, 40, 41]);
  });

  test("rejects shapes that do not split into heads of even size", () => {
    const isErr = (re: RegExp) => (e: unknown) => e instanceof MerglotError && re.test(e.message);
    assert.throws(() => ropePermuteRows(new Float32Array(6), 6, 1, 2), isErr(/multiple of 4/));
    assert.throws(() => ropePermuteRows(new Float32Array(5), 8, 1, 2), isErr(/5 values, expected 8 × 1/));
    assert.throws(() => ropePermuteRows(new Float32Array(8), 8, 1, 0), isErr(/head count/));
  });
});
