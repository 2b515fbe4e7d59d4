import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GgufReader } from "../../src/formats/gguf.js";
import { readLlamaConfig, writeModelGguf } from "../../src/formats/gguf-model.js";
import { readSentencePieceModel } from "../../src/formats/gguf-vocab.js";
import { writeSafetensors } from "../../src/formats/safetensors.js";
import {
  DEFAULT_TINY,
  MERGES,
  hfConfig,
  randomWeights,
  tinyVocab,
  writeTinyModel,
  type TinyConfig,
} from "../parity/tiny-llama.js";
import { naivePermute } from "../helpers/rope.js";
import { expectMerglotError } from "../helpers/fixtures.js";

const root = mkdtempSync(join(tmpdir(), "merglot-gguf-model-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (name = "m") => join(root, `${name}-${n++}`);

/** Write a tiny model folder and return it with its weights. */
function tinyModel(c: TinyConfig = DEFAULT_TINY, seed = 1, dtype: "F32" | "BF16" = "F32") {
  const dir = fresh(c.modelType);
  const weights = randomWeights(c, seed);
  writeTinyModel(dir, c, weights, dtype);
  return { dir, weights };
}

describe("base-model GGUF export", () => {
  test("llama: hyper-parameters, names, shapes, and q/k rows permuted as llama.cpp's converter does", () => {
    const { dir, weights } = tinyModel();
    const out = fresh("out") + ".gguf";
    const res = writeModelGguf(dir, out, { dtype: "F32" });
    assert.equal(res.architecture, "llama");
    const r = GgufReader.open(out);
    try {
      const num = (k: string) => r.getNumber(k);
      assert.equal(r.getString("general.architecture"), "llama");
      assert.equal(r.getString("general.type"), "model");
      assert.equal(num("llama.block_count"), 2);
      assert.equal(num("llama.context_length"), 256);
      assert.equal(num("llama.embedding_length"), 64);
      assert.equal(num("llama.feed_forward_length"), 96);
      assert.equal(num("llama.attention.head_count"), 4);
      assert.equal(num("llama.attention.head_count_kv"), 2);
      assert.equal(num("llama.rope.dimension_count"), 16);
      assert.equal(num("llama.vocab_size"), 104);
      assert.equal(num("llama.rope.freq_base"), 10000);
      assert.equal(num("llama.attention.layer_norm_rms_epsilon"), Math.fround(1e-5));
      assert.equal(num("general.file_type"), 0);

      // 2 layers × 9 tensors + embeddings + final norm + head
      assert.equal(r.tensors.length, 21);
      assert.deepEqual(r.get("token_embd.weight")!.ne, [64, 104]);
      assert.deepEqual(r.get("output.weight")!.ne, [64, 104]);
      assert.deepEqual(r.get("blk.1.attn_k.weight")!.ne, [64, 32]);
      assert.deepEqual(r.get("blk.0.ffn_down.weight")!.ne, [96, 64]);
      assert.equal(r.get("blk.0.attn_norm.weight")!.type, "F32");

      for (let l = 0; l < 2; l++) {
        const q = weights.get(`model.layers.${l}.self_attn.q_proj.weight`)!.data;
        const k = weights.get(`model.layers.${l}.self_attn.k_proj.weight`)!.data;
        assert.deepEqual(r.readFloat32(`blk.${l}.attn_q.weight`), naivePermute(q, 64, 64, 4));
        assert.deepEqual(r.readFloat32(`blk.${l}.attn_k.weight`), naivePermute(k, 32, 64, 2));
        // v is not rotated, so not permuted
        assert.deepEqual(
          r.readFloat32(`blk.${l}.attn_v.weight`),
          weights.get(`model.layers.${l}.self_attn.v_proj.weight`)!.data,
        );
      }
      assert.deepEqual(r.readFloat32("token_embd.weight"), weights.get("model.embed_tokens.weight")!.data);
      assert.deepEqual(r.readFloat32("output_norm.weight"), weights.get("model.norm.weight")!.data);
    } finally {
      r.close();
    }
  });

  test("qwen2: biases kept, rows not permuted (llama.cpp uses NEOX RoPE for qwen2)", () => {
    const { dir, weights } = tinyModel({ ...DEFAULT_TINY, modelType: "qwen2" });
    const out = fresh("out") + ".gguf";
    writeModelGguf(dir, out, { dtype: "F32" });
    const r = GgufReader.open(out);
    try {
      assert.equal(r.getString("general.architecture"), "qwen2");
      assert.equal(r.getNumber("qwen2.attention.head_count_kv"), 2);
      assert.deepEqual(
        r.readFloat32("blk.0.attn_q.weight"),
        weights.get("model.layers.0.self_attn.q_proj.weight")!.data,
      );
      assert.deepEqual(
        r.readFloat32("blk.1.attn_k.bias"),
        weights.get("model.layers.1.self_attn.k_proj.bias")!.data,
      );
      assert.equal(r.get("blk.1.attn_k.bias")!.type, "F32");
    } finally {
      r.close();
    }
  });

  test("llama q/k biases are permuted like their rows", () => {
    const c = DEFAULT_TINY;
    const dir = fresh("bias");
    const weights = randomWeights(c, 5);
    const qb = Float32Array.from({ length: 64 }, (_, i) => i);
    weights.set("model.layers.0.self_attn.q_proj.bias", { shape: [64], data: qb });
    writeTinyModel(dir, c, weights);
    const out = fresh("out") + ".gguf";
    writeModelGguf(dir, out, { dtype: "F32" });
    const r = GgufReader.open(out);
    try {
      assert.deepEqual(r.readFloat32("blk.0.attn_q.bias"), naivePermute(qb, 64, 1, 4));
    } finally {
      r.close();
    }
  });

  test("F16 and BF16 outputs: matrices converted, 1-D tensors stay F32; a BF16 source is copied exactly", () => {
    const { dir, weights } = tinyModel(DEFAULT_TINY, 2, "BF16");
    for (const dtype of ["F16", "BF16"] as const) {
      const out = fresh("out") + ".gguf";
      const res = writeModelGguf(dir, out, { dtype });
      assert.equal(res.dtype, dtype);
      const r = GgufReader.open(out);
      try {
        assert.equal(r.getNumber("general.file_type"), dtype === "F16" ? 1 : 32);
        assert.equal(r.get("blk.0.ffn_up.weight")!.type, dtype);
        assert.equal(r.get("output_norm.weight")!.type, "F32");
        const src = weights.get("model.layers.0.mlp.up_proj.weight")!.data;
        const got = r.readFloat32("blk.0.ffn_up.weight");
        // the source went through bf16 on disk: truncate our float32 copy to bf16 by rounding to nearest even
        const bf = new Float32Array(1);
        const bits = new Uint32Array(bf.buffer);
        for (let i = 0; i < src.length; i++) {
          bf[0] = src[i]!;
          const b = bits[0]!;
          bits[0] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16;
          const want = bf[0]!;
          if (dtype === "BF16") assert.equal(got[i], want);
          else
            assert.ok(
              Math.abs(got[i]! - want) <= Math.abs(want) * 2 ** -11 + 2 ** -24,
              `${got[i]} vs ${want}`,
            );
        }
      } finally {
        r.close();
      }
    }
  });

  test("tied embeddings: no output tensor, llama.cpp falls back to token_embd", () => {
    const { dir } = tinyModel({ ...DEFAULT_TINY, tie: true });
    const out = fresh("out") + ".gguf";
    writeModelGguf(dir, out, { dtype: "F32" });
    const r = GgufReader.open(out);
    try {
      assert.equal(r.get("output.weight"), undefined);
      assert.equal(r.tensors.length, 20);
    } finally {
      r.close();
    }
  });

  test("llama3 rope scaling writes rope_freqs.weight with the converter's factors", () => {
    const c: TinyConfig = { ...DEFAULT_TINY, llama3: { factor: 8, low: 1, high: 4, original: 32 } };
    const { dir } = tinyModel(c);
    const out = fresh("out") + ".gguf";
    writeModelGguf(dir, out, { dtype: "F32" });
    const r = GgufReader.open(out);
    try {
      const f = r.readFloat32("rope_freqs.weight");
      assert.equal(f.length, 8);
      // head dim 16, base 1e4: wavelength of pair i is 2π·1e4^(i/8); short (< 32/4) keep 1, long (> 32/1)
      // get the factor 8, pair 1 (wavelength 19.87) is interpolated: 1 / ((1 − s)/8 + s), s = (32/λ − 1)/3.
      const lambda1 = 2 * Math.PI * Math.pow(1e4, 1 / 8);
      const s = (32 / lambda1 - 1) / 3;
      assert.equal(f[0], 1);
      assert.ok(Math.abs(f[1]! - 1 / ((1 - s) / 8 + s)) < 1e-5, `${f[1]}`);
      for (let i = 2; i < 8; i++) assert.equal(f[i], 8);
      assert.equal(r.getValue("llama.rope.scaling.type"), undefined);
    } finally {
      r.close();
    }
  });

  test("linear rope scaling becomes rope.scaling.type/factor", () => {
    const dir = fresh("linear");
    const c = DEFAULT_TINY;
    writeTinyModel(dir, c, randomWeights(c, 3));
    const cfg = { ...hfConfig(c), rope_scaling: { rope_type: "linear", factor: 2 } };
    writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
    const out = fresh("out") + ".gguf";
    writeModelGguf(dir, out, { dtype: "F32" });
    const r = GgufReader.open(out);
    try {
      assert.equal(r.getString("llama.rope.scaling.type"), "linear");
      assert.equal(r.getNumber("llama.rope.scaling.factor"), 2);
    } finally {
      r.close();
    }
  });

  test("byte-level BPE tokenizer: tokens padded to vocab_size, types, merges, special ids, add_bos", () => {
    const { dir } = tinyModel();
    const out = fresh("out") + ".gguf";
    const res = writeModelGguf(dir, out, { dtype: "F32" });
    assert.deepEqual(res.tokenizer, { model: "gpt2", pre: "gpt-2", tokens: 104 });
    const r = GgufReader.open(out);
    try {
      const vocab = tinyVocab();
      const tokens = r.getValue("tokenizer.ggml.tokens");
      assert.ok(tokens?.type === "array");
      const expected = [
        ...vocab,
        ...Array.from({ length: 104 - vocab.length }, (_, i) => `[PAD${vocab.length + i}]`),
      ];
      assert.deepEqual(tokens.value, expected);
      const types = r.getValue("tokenizer.ggml.token_type");
      assert.ok(types?.type === "array" && types.itemType === "i32");
      // specials are CONTROL (3), the tokenizer's tokens NORMAL (1), the padding UNUSED (5)
      assert.deepEqual(
        types.value,
        expected.map((t, i) => (i < 2 ? 3 : t.startsWith("[PAD") ? 5 : 1)),
      );
      const merges = r.getValue("tokenizer.ggml.merges");
      assert.ok(merges?.type === "array");
      assert.deepEqual(
        merges.value,
        MERGES.map(([a, b]) => `${a} ${b}`),
      );
      assert.equal(r.getNumber("tokenizer.ggml.bos_token_id"), 0);
      assert.equal(r.getNumber("tokenizer.ggml.eos_token_id"), 1);
      assert.deepEqual(r.getValue("tokenizer.ggml.add_bos_token"), { type: "bool", value: true });
      assert.deepEqual(r.getValue("tokenizer.ggml.add_eos_token"), { type: "bool", value: false });
      assert.equal(r.getValue("tokenizer.ggml.scores"), undefined);
    } finally {
      r.close();
    }
  });

  test("pre-tokenizer names: Llama 3 and Qwen2 split patterns are recognised, an unknown one is refused", () => {
    const { dir } = tinyModel();
    const tok = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")) as Record<string, unknown>;
    const split = (pattern: string) => ({
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    });
    const cases: [string, string][] = [
      [
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        "llama-bpe",
      ],
      [
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        "qwen2",
      ],
    ];
    for (const [pattern, pre] of cases) {
      writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ ...tok, pre_tokenizer: split(pattern) }));
      const res = writeModelGguf(dir, fresh("out") + ".gguf", { dtype: "F32" });
      assert.equal(res.tokenizer.pre, pre);
    }
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ ...tok, pre_tokenizer: split("\\w+|\\s") }));
    expectMerglotError(
      () => writeModelGguf(dir, fresh("out") + ".gguf"),
      "model.tokenizer",
      /tokenizer\.json: the pre-tokenizer pattern "\\\\w\+\|\\\\s"/,
    );
    const res = writeModelGguf(dir, fresh("out") + ".gguf", { tokenizerPre: "gpt-2" });
    assert.equal(res.tokenizer.pre, "gpt-2");
  });

  test("SentencePiece tokenizer.model: pieces, scores and types read from the protobuf", () => {
    const { dir } = tinyModel();
    rmSync(join(dir, "tokenizer.json"));
    // sentencepiece_model.proto: ModelProto.pieces = 1 { piece = 1, score = 2 (float), type = 3 }
    const pieces: [string, number, number][] = [
      ["<unk>", 0, 2],
      ["<s>", 0, 3],
      ["</s>", 0, 3],
      ["<0x41>", 0, 6],
      ["▁t", -1.5, 1],
      ["he", -2.25, 1],
      ["▁the", -3, 1],
      ["<user>", 0, 4],
    ];
    const bytes = encodeModelProto(pieces);
    writeFileSync(join(dir, "tokenizer.model"), bytes);
    assert.deepEqual(
      readSentencePieceModel(bytes, "x").map((p) => [p.piece, p.score, p.type]),
      pieces,
    );
    const out = fresh("out") + ".gguf";
    const res = writeModelGguf(dir, out, { dtype: "F32" });
    assert.deepEqual(res.tokenizer, { model: "llama", pre: "default", tokens: 104 });
    const r = GgufReader.open(out);
    try {
      const tokens = r.getValue("tokenizer.ggml.tokens");
      const scores = r.getValue("tokenizer.ggml.scores");
      const types = r.getValue("tokenizer.ggml.token_type");
      assert.ok(tokens?.type === "array" && scores?.type === "array" && types?.type === "array");
      assert.deepEqual(tokens.value.slice(0, 9), [...pieces.map((p) => p[0]), "[PAD8]"]);
      assert.deepEqual(scores.value.slice(0, 9), [0, 0, 0, 0, -1.5, -2.25, -3, 0, -10000]);
      // user-defined pieces stay NORMAL in the reference converter (it only asks IsUnknown/IsControl/IsUnused/IsByte)
      assert.deepEqual(types.value.slice(0, 9), [2, 3, 3, 6, 1, 1, 1, 1, 5]);
      // tokenizer_config names <|begin|>/<|end|>, which this vocabulary lacks: ids come from config.json
      assert.equal(r.getNumber("tokenizer.ggml.bos_token_id"), 0);
    } finally {
      r.close();
    }
  });

  test("SentencePiece-style tokenizer.json (byte fallback): scores follow merge ranks, byte tokens typed BYTE", () => {
    const { dir } = tinyModel();
    const vocab: Record<string, number> = {
      "<unk>": 0,
      "<s>": 1,
      "</s>": 2,
      "<0x0A>": 3,
      "▁": 4,
      t: 5,
      h: 6,
      e: 7,
      "▁t": 8,
      he: 9,
      "▁the": 10,
    };
    const tok = {
      version: "1.0",
      added_tokens: [
        { id: 0, content: "<unk>", special: true },
        { id: 1, content: "<s>", special: true },
        { id: 2, content: "</s>", special: true },
      ],
      normalizer: null,
      pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false },
      decoder: { type: "Sequence", decoders: [] },
      model: { type: "BPE", byte_fallback: true, unk_token: "<unk>", vocab, merges: ["▁ t", "h e", "▁t he"] },
    };
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tok));
    writeFileSync(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({ bos_token: "<s>", eos_token: "</s>", add_bos_token: true }),
    );
    const out = fresh("out") + ".gguf";
    writeModelGguf(dir, out, { dtype: "F32" });
    const r = GgufReader.open(out);
    try {
      assert.equal(r.getString("tokenizer.ggml.model"), "llama");
      const scores = r.getValue("tokenizer.ggml.scores");
      const types = r.getValue("tokenizer.ggml.token_type");
      assert.ok(scores?.type === "array" && types?.type === "array");
      // merge ranks 0, 1, 2 → scores 0, −1, −2 for "▁t", "he", "▁the"
      assert.deepEqual(scores.value.slice(8, 11), [-0, -1, -2]);
      assert.deepEqual(types.value.slice(0, 5), [3, 3, 3, 6, 1]);
      assert.equal(r.getNumber("tokenizer.ggml.bos_token_id"), 1);
      assert.equal(r.getNumber("tokenizer.ggml.eos_token_id"), 2);
    } finally {
      r.close();
    }
  });

  test("sharded weights (model.safetensors.index.json) are read shard by shard", () => {
    const { dir, weights } = tinyModel();
    rmSync(join(dir, "model.safetensors"));
    const names = [...weights.keys()];
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const map: Record<string, string> = {};
    shards.forEach((list, s) => {
      const file = `model-0000${s + 1}-of-00002.safetensors`;
      writeSafetensors(
        join(dir, file),
        list.map((name) => ({
          name,
          dtype: "F32" as const,
          shape: weights.get(name)!.shape,
          data: weights.get(name)!.data,
        })),
      );
      for (const name of list) map[name] = file;
    });
    writeFileSync(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: map }),
    );
    const out = fresh("out") + ".gguf";
    const res = writeModelGguf(dir, out, { dtype: "F32" });
    assert.equal(res.tensorCount, 21);
    const r = GgufReader.open(out);
    try {
      assert.deepEqual(r.readFloat32("output.weight"), weights.get("lm_head.weight")!.data);
    } finally {
      r.close();
    }
  });

  test("same inputs give byte-identical files", () => {
    const { dir } = tinyModel();
    const a = fresh("a") + ".gguf";
    const b = fresh("b") + ".gguf";
    writeModelGguf(dir, a, { dtype: "F16", name: "tiny" });
    writeModelGguf(dir, b, { dtype: "F16", name: "tiny" });
    assert.ok(readFileSync(a).equals(readFileSync(b)));
  });
});

describe("base-model GGUF export errors", () => {
  test("an unsupported architecture is named with the config path", () => {
    const { dir } = tinyModel();
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({ ...hfConfig(DEFAULT_TINY), model_type: "gpt2", architectures: ["GPT2LMHeadModel"] }),
    );
    expectMerglotError(
      () => writeModelGguf(dir, fresh("out") + ".gguf"),
      "gguf.arch",
      /config\.json: architecture "gpt2" is not supported/,
    );
  });

  test("a missing config.json or tokenizer is reported", () => {
    const { dir } = tinyModel();
    rmSync(join(dir, "tokenizer.json"));
    expectMerglotError(
      () => writeModelGguf(dir, fresh("out") + ".gguf"),
      "model.missing",
      /no tokenizer\.json \(or SentencePiece tokenizer\.model\)/,
    );
    rmSync(join(dir, "config.json"));
    expectMerglotError(
      () => writeModelGguf(dir, fresh("out") + ".gguf"),
      "model.missing",
      /no config\.json in the model folder/,
    );
  });

  test("an existing output is refused unless forced; nothing partial is left behind", () => {
    const { dir } = tinyModel();
    const out = join(root, `exists-${n++}.gguf`);
    writeFileSync(out, "old");
    expectMerglotError(
      () => writeModelGguf(dir, out, { force: true }),
      "output.foreign",
      /already exists and is not a merglot convert output/,
    );
    assert.equal(readFileSync(out, "utf8"), "old");
    writeModelGguf(dir, out, { replaceForeign: true });
    expectMerglotError(
      () => writeModelGguf(dir, out),
      "output.exists",
      /already exists \(use --force to overwrite\)/,
    );
    writeModelGguf(dir, out, { force: true });
    assert.equal(readFileSync(out).subarray(0, 4).toString(), "GGUF");
    assert.equal(readdirSync(root).filter((f) => f.includes(".tmp-")).length, 0);
  });

  test("a tensor whose shape disagrees with config.json is named", () => {
    const { dir, weights } = tinyModel();
    weights.set("model.layers.1.mlp.up_proj.weight", { shape: [95, 64], data: new Float32Array(95 * 64) });
    writeTinyModel(dir, DEFAULT_TINY, weights);
    expectMerglotError(
      () => writeModelGguf(dir, fresh("out") + ".gguf"),
      "model.tensor",
      /tensor "model\.layers\.1\.mlp\.up_proj\.weight" has shape \[95, 64\] but .*config\.json implies \[96, 64\]/,
    );
  });

  test("an unknown tensor, and an untied model without lm_head, are refused", () => {
    const { dir, weights } = tinyModel();
    weights.set("model.layers.0.mlp.extra.weight", { shape: [2, 2], data: new Float32Array(4) });
    writeTinyModel(dir, DEFAULT_TINY, weights);
    expectMerglotError(
      () => writeModelGguf(dir, fresh("out") + ".gguf"),
      "model.tensor",
      /"model\.layers\.0\.mlp\.extra\.weight" has no llama\.cpp counterpart/,
    );
    weights.delete("model.layers.0.mlp.extra.weight");
    weights.delete("lm_head.weight");
    writeTinyModel(dir, DEFAULT_TINY, weights);
    expectMerglotError(
      () => writeModelGguf(dir, fresh("out") + ".gguf"),
      "model.tensor",
      /tie_word_embeddings is false but the weights have no lm_head\.weight/,
    );
  });

  test("config validation names the field", () => {
    const { dir: model } = tinyModel();
    writeFileSync(
      join(model, "config.json"),
      JSON.stringify({ ...hfConfig(DEFAULT_TINY), num_key_value_heads: 3 }),
    );
    expectMerglotError(
      () => readLlamaConfig(model),
      "model.config",
      /num_attention_heads \(4\) is not a multiple of num_key_value_heads \(3\)/,
    );
    writeFileSync(
      join(model, "config.json"),
      JSON.stringify({ ...hfConfig(DEFAULT_TINY), rope_scaling: { rope_type: "dynamic", factor: 2 } }),
    );
    expectMerglotError(
      () => readLlamaConfig(model),
      "model.config",
      /rope scaling type "dynamic" is not supported/,
    );
    writeFileSync(
      join(model, "config.json"),
      JSON.stringify({ ...hfConfig(DEFAULT_TINY), hidden_act: "gelu" }),
    );
    expectMerglotError(() => readLlamaConfig(model), "model.config", /hidden_act "gelu" is not supported/);
  });
});

/** A protobuf encoder for the few ModelProto fields used above (independent of the reader under test). */
function encodeModelProto(pieces: [string, number, number][]): Uint8Array {
  const out: number[] = [];
  const varint = (buf: number[], v: number) => {
    while (v >= 0x80) {
      buf.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    buf.push(v);
  };
  for (const [piece, score, type] of pieces) {
    const msg: number[] = [];
    const text = [...Buffer.from(piece, "utf8")];
    msg.push(0x0a); // field 1, length-delimited
    varint(msg, text.length);
    msg.push(...text);
    msg.push(0x15); // field 2, fixed32
    const f = Buffer.alloc(4);
    f.writeFloatLE(score);
    msg.push(...f);
    msg.push(0x18); // field 3, varint
    varint(msg, type);
    out.push(0x0a);
    varint(out, msg.length);
    out.push(...msg);
  }
  // a trainer_spec (field 2) to be skipped
  out.push(0x12, 0x02, 0x08, 0x01);
  return Uint8Array.from(out);
}
