#!/usr/bin/env node
// Writes test/fixtures/tiny-encoder: a tiny BERT-style text encoder that @huggingface/transformers can load
// offline (config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx), plus weights.json holding
// the same weights in plain JSON so that tests can recompute the forward pass independently.
//
// The ONNX file is encoded here by hand (a few protobuf fields of onnx.proto), so no Python, no network and
// no ONNX tooling is needed. The network, per token t of a sequence with attention mask m:
//   e_t   = word[input_id_t] + type[token_type_id_t]                       (H = 8)
//   ctx   = Σ_t m_t·e_t / Σ_t m_t                                           (masked mean over the sequence)
//   out_t = tanh(e_t·W1 + ctx·W2)                                          (output "last_hidden_state")
// so every token vector depends on its context, as a real encoder's do. Weights come from a fixed seed:
// running the script twice gives byte-identical files.
//
// Usage: node scripts/make-tiny-encoder.mjs [OUT_DIR]   (default: test/fixtures/tiny-encoder)
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const OUT = process.argv[2] ?? "test/fixtures/tiny-encoder";
const H = 8;
const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const WORDS = [
  ".",
  ",",
  "!",
  "?",
  "'",
  "the",
  "a",
  "cat",
  "dog",
  "sat",
  "on",
  "mat",
  "quick",
  "brown",
  "fox",
  "jump",
  "over",
  "lazy",
  "is",
  "and",
  "play",
  "run",
  "good",
  "bad",
  "movie",
  "film",
  "very",
  "not",
  "ich",
  "der",
  "die",
  "hund",
  "katze",
  "le",
  "chat",
  "chien",
  "est",
  "sur",
  "un",
  "une",
  "##s",
  "##ing",
  "##ed",
  "##er",
  "##ly",
  "我",
  "爱",
  "北",
  "京",
  "猫",
  "狗",
  "好",
  "の",
  "は",
];
const VOCAB = [...SPECIALS, ...new Set(WORDS)];

// ---- deterministic weights (xorshift32 → uniform in [-1, 1), rounded to float32) ----
let state = 0x2545f491;
function rand() {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return Math.fround((state / 0x100000000) * 2 - 1);
}
const matrix = (rows, cols, scale) =>
  Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.fround(rand() * scale)));
const weights = {
  word: matrix(VOCAB.length, H, 1),
  type: matrix(2, H, 0.1),
  w1: matrix(H, H, 0.6),
  w2: matrix(H, H, 0.4),
};

// ---- minimal protobuf writer (wire types 0: varint, 2: length-delimited) ----
function varint(n) {
  let v = BigInt(n);
  const out = [];
  if (v < 0n) v += 1n << 64n; // negative int64 as two's complement
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
const key = (field, wire) => varint((field << 3) | wire);
const fInt = (field, n) => Buffer.concat([key(field, 0), varint(n)]);
const fBytes = (field, bytes) => Buffer.concat([key(field, 2), varint(bytes.length), bytes]);
const fStr = (field, s) => fBytes(field, Buffer.from(s, "utf8"));
const fMsg = (field, parts) => fBytes(field, Buffer.concat(parts));

const FLOAT = 1;
const INT64 = 7;
function tensor(name, dims, dataType, values) {
  const raw =
    dataType === FLOAT
      ? Buffer.from(new Float32Array(values.flat()).buffer)
      : Buffer.from(new BigInt64Array(values.map(BigInt)).buffer);
  return [...dims.map((d) => fInt(1, d)), fInt(2, dataType), fStr(8, name), fBytes(9, raw)];
}
function valueInfo(name, elemType, dims) {
  const shape = dims.map((d) => fMsg(1, [typeof d === "string" ? fStr(2, d) : fInt(1, d)]));
  return [fStr(1, name), fMsg(2, [fMsg(1, [fInt(1, elemType), fMsg(2, shape)])])];
}
function node(op, inputs, outputs, attrs = []) {
  return [
    ...inputs.map((i) => fStr(1, i)),
    ...outputs.map((o) => fStr(2, o)),
    fStr(3, `${op}_${outputs[0]}`),
    fStr(4, op),
    ...attrs,
  ];
}
const intAttr = (name, v) => fMsg(5, [fStr(1, name), fInt(3, v), fInt(20, 2)]);

const nodes = [
  node("Gather", ["word_embeddings", "input_ids"], ["word"]),
  node("Gather", ["type_embeddings", "token_type_ids"], ["type"]),
  node("Add", ["word", "type"], ["emb"]),
  node("Cast", ["attention_mask"], ["maskf"], [intAttr("to", FLOAT)]),
  node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
  node("Mul", ["emb", "mask3"], ["masked"]),
  node("ReduceSum", ["masked", "axis1"], ["sum"], [intAttr("keepdims", 1)]),
  node("ReduceSum", ["mask3", "axis1"], ["count"], [intAttr("keepdims", 1)]),
  node("Div", ["sum", "count"], ["ctx"]),
  node("MatMul", ["emb", "w1"], ["h1"]),
  node("MatMul", ["ctx", "w2"], ["h2"]),
  node("Add", ["h1", "h2"], ["pre"]),
  node("Tanh", ["pre"], ["last_hidden_state"]),
];
const graph = [
  ...nodes.map((n) => fMsg(1, n)),
  fStr(2, "tiny_encoder"),
  fMsg(5, tensor("word_embeddings", [VOCAB.length, H], FLOAT, weights.word)),
  fMsg(5, tensor("type_embeddings", [2, H], FLOAT, weights.type)),
  fMsg(5, tensor("w1", [H, H], FLOAT, weights.w1)),
  fMsg(5, tensor("w2", [H, H], FLOAT, weights.w2)),
  fMsg(5, tensor("axis1", [1], INT64, [1])),
  fMsg(5, tensor("axis2", [1], INT64, [2])),
  fMsg(11, valueInfo("input_ids", INT64, ["batch", "sequence"])),
  fMsg(11, valueInfo("attention_mask", INT64, ["batch", "sequence"])),
  fMsg(11, valueInfo("token_type_ids", INT64, ["batch", "sequence"])),
  fMsg(12, valueInfo("last_hidden_state", FLOAT, ["batch", "sequence", H])),
];
const model = Buffer.concat([
  fInt(1, 8), // ir_version 8
  fStr(2, "merglot make-tiny-encoder"),
  fMsg(7, graph),
  fMsg(8, [fStr(1, ""), fInt(2, 13)]), // default domain, opset 13
]);

// ---- tokenizer (BERT WordPiece, lowercasing, CJK characters split) and config ----
const added = SPECIALS.map((content, id) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
}));
const tokenizer = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: added,
  normalizer: {
    type: "BertNormalizer",
    clean_text: true,
    handle_chinese_chars: true,
    strip_accents: null,
    lowercase: true,
  },
  pre_tokenizer: { type: "BertPreTokenizer" },
  post_processor: {
    type: "TemplateProcessing",
    single: [
      { SpecialToken: { id: "[CLS]", type_id: 0 } },
      { Sequence: { id: "A", type_id: 0 } },
      { SpecialToken: { id: "[SEP]", type_id: 0 } },
    ],
    pair: [
      { SpecialToken: { id: "[CLS]", type_id: 0 } },
      { Sequence: { id: "A", type_id: 0 } },
      { SpecialToken: { id: "[SEP]", type_id: 0 } },
      { Sequence: { id: "B", type_id: 1 } },
      { SpecialToken: { id: "[SEP]", type_id: 1 } },
    ],
    special_tokens: {
      "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] },
      "[SEP]": { id: "[SEP]", ids: [3], tokens: ["[SEP]"] },
    },
  },
  decoder: { type: "WordPiece", prefix: "##", cleanup: true },
  model: {
    type: "WordPiece",
    unk_token: "[UNK]",
    continuing_subword_prefix: "##",
    max_input_chars_per_word: 100,
    vocab: Object.fromEntries(VOCAB.map((t, i) => [t, i])),
  },
};
const tokenizerConfig = {
  tokenizer_class: "BertTokenizer",
  do_lower_case: true,
  cls_token: "[CLS]",
  sep_token: "[SEP]",
  pad_token: "[PAD]",
  unk_token: "[UNK]",
  mask_token: "[MASK]",
  model_max_length: 64,
};
const config = {
  model_type: "bert",
  architectures: ["BertModel"],
  hidden_size: H,
  num_hidden_layers: 1,
  num_attention_heads: 1,
  intermediate_size: H,
  vocab_size: VOCAB.length,
  type_vocab_size: 2,
  max_position_embeddings: 64,
};

mkdirSync(join(OUT, "onnx"), { recursive: true });
const json = (x) => JSON.stringify(x, null, 1) + "\n";
writeFileSync(join(OUT, "onnx", "model.onnx"), model);
writeFileSync(join(OUT, "tokenizer.json"), json(tokenizer));
writeFileSync(join(OUT, "tokenizer_config.json"), json(tokenizerConfig));
writeFileSync(join(OUT, "config.json"), json(config));
writeFileSync(join(OUT, "weights.json"), json({ hidden: H, vocab: VOCAB, ...weights }));
console.log(`wrote ${OUT} (vocab ${VOCAB.length}, hidden ${H}, model.onnx ${model.length} bytes)`);
