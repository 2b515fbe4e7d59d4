/**
 * The tokenizer metadata llama.cpp needs in a base-model GGUF, read from an HF model folder the way
 * llama.cpp's `convert_hf_to_gguf.py` (with gguf-py's `SpecialVocab`) reads it:
 *
 * - byte-level BPE (`tokenizer.json`, model BPE without byte_fallback: Llama 3, Qwen2, Mistral-Nemo, …) →
 *   `tokenizer.ggml.model = "gpt2"` with the tokens as the file spells them, their types, the merges and the
 *   pre-tokenizer name llama.cpp knows (recognised here from the pre-tokenizer's split pattern);
 * - SentencePiece (`tokenizer.model`, Llama 2, Mistral 7B, TinyLlama) → `"llama"` with pieces, scores and
 *   types from the model's protobuf; failing that a `tokenizer.json` BPE with byte_fallback, whose scores are
 *   derived from the merge ranks (the reference converter writes a constant -1000 there, which makes llama.cpp
 *   merge left to right instead of by priority);
 * - the special token ids, `add_bos/eos_token` and the chat template from `tokenizer_config.json`, the
 *   post-processor template and `config.json`.
 *
 * The vocabulary is padded to the model's `vocab_size` with `[PAD<i>]` tokens of type UNUSED, as the converter
 * does, so that token ids and embedding rows agree.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MerglotError } from "../errors.js";
import type { GgufValue } from "./gguf.js";
import { readJsonFile } from "../json-input.js";

/** llama.cpp's token types (`llama_token_type` / gguf-py `TokenType`). */
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

export interface GgufVocab {
  /** `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece). */
  model: "gpt2" | "llama";
  /** `tokenizer.ggml.pre`. */
  pre: string;
  tokens: string[];
  tokenTypes: number[];
  /** SentencePiece only. */
  scores?: number[];
  /** BPE only: "left right" strings in rank order. */
  merges?: string[];
  specialIds: Partial<Record<SpecialKind, number>>;
  addSpecial: Partial<Record<"bos" | "eos" | "sep", boolean>>;
  addSpacePrefix?: boolean;
  chatTemplate?: string;
  /** Where the vocabulary came from (for messages). */
  source: string;
}

type SpecialKind = "bos" | "eos" | "unk" | "sep" | "pad" | "cls" | "mask";
const SPECIAL_KINDS: readonly SpecialKind[] = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"];
/** gguf-py's key names (note llama.cpp's historical spelling "seperator"). */
const SPECIAL_KEY: Record<SpecialKind, string> = {
  bos: "tokenizer.ggml.bos_token_id",
  eos: "tokenizer.ggml.eos_token_id",
  unk: "tokenizer.ggml.unknown_token_id",
  sep: "tokenizer.ggml.seperator_token_id",
  pad: "tokenizer.ggml.padding_token_id",
  cls: "tokenizer.ggml.cls_token_id",
  mask: "tokenizer.ggml.mask_token_id",
};

/**
 * llama.cpp pre-tokenizer names by the split regex of the HF pre-tokenizer (exact pattern text). The converter
 * identifies them by hashing the tokenization of a probe text, which needs the full tokenizer; the pattern is
 * what that hash stands for.
 */
const PRE_BY_PATTERN: Record<string, string> = {
  // Llama 3 / 3.1 / 3.2
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    "llama-bpe",
  // Qwen2 / Qwen2.5
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    "qwen2",
  // GPT-2's own pattern, spelled out
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)": "gpt-2",
};

function fail(path: string, message: string, code = "model.tokenizer"): never {
  throw new MerglotError(code, `${path}: ${message}`);
}

function readJson(path: string): Record<string, unknown> {
  const v = readJsonFile(path, { code: "model.tokenizer", maxBytes: 512 * 1024 * 1024 });
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(path, "must contain a JSON object");
  return v as Record<string, unknown>;
}

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

export interface VocabOptions {
  /** The model's `vocab_size` (embedding rows); the vocabulary is padded to it. */
  vocabSize: number;
  /** `config.json` as read (for `bos_token_id`, … fallbacks). */
  config: Record<string, unknown>;
  /** Override the recognised `tokenizer.ggml.pre` (byte-level BPE only). */
  pre?: string;
}

/** Read the tokenizer of the HF model folder `dir`. */
export function readGgufVocab(dir: string, opts: VocabOptions): GgufVocab {
  const tokJsonPath = join(dir, "tokenizer.json");
  const spmPath = join(dir, "tokenizer.model");
  const tokConfigPath = join(dir, "tokenizer_config.json");
  const tokJson = existsSync(tokJsonPath) ? readJson(tokJsonPath) : undefined;
  const tokConfig = existsSync(tokConfigPath) ? readJson(tokConfigPath) : undefined;

  let vocab: GgufVocab;
  const model = asObject(tokJson?.model);
  const isByteLevelBpe = model?.type === "BPE" && model.byte_fallback !== true;
  if (existsSync(spmPath) && !isByteLevelBpe) {
    vocab = sentencePieceVocab(spmPath, dir, opts.vocabSize, tokConfig);
  } else if (tokJson && model?.type === "BPE") {
    vocab = isByteLevelBpe
      ? byteLevelBpeVocab(tokJsonPath, tokJson, opts)
      : byteFallbackBpeVocab(tokJsonPath, tokJson, opts.vocabSize);
  } else if (tokJson) {
    fail(
      tokJsonPath,
      `tokenizer model type ${JSON.stringify(model?.type)} is not supported for llama.cpp export ` +
        `(supported: BPE, or a SentencePiece tokenizer.model)`,
    );
  } else {
    fail(dir, "no tokenizer.json (or SentencePiece tokenizer.model) in the model folder", "model.missing");
  }

  const addedTokens = Array.isArray(tokJson?.added_tokens) ? (tokJson.added_tokens as unknown[]) : [];
  applySpecialTokens(vocab, tokJson, tokConfig, addedTokens, opts.config);
  if (tokConfig && typeof tokConfig.add_prefix_space === "boolean" && vocab.model === "llama") {
    vocab.addSpacePrefix = tokConfig.add_prefix_space;
  }
  if (tokConfig && typeof tokConfig.chat_template === "string") vocab.chatTemplate = tokConfig.chat_template;
  for (const kind of ["bos", "eos", "sep"] as const) {
    if (vocab.addSpecial[kind] && vocab.specialIds[kind] === undefined) {
      fail(
        tokConfigPath,
        `add_${kind}_token is true but no ${kind} token id could be found (llama.cpp refuses such a file)`,
      );
    }
  }
  return vocab;
}

/** The GGUF metadata entries for a vocabulary, in the converter's order. */
export function vocabMetadata(v: GgufVocab): [string, GgufValue][] {
  const out: [string, GgufValue][] = [
    ["tokenizer.ggml.model", { type: "string", value: v.model }],
    ["tokenizer.ggml.pre", { type: "string", value: v.pre }],
    ["tokenizer.ggml.tokens", { type: "array", itemType: "string", value: v.tokens }],
  ];
  if (v.scores) out.push(["tokenizer.ggml.scores", { type: "array", itemType: "f32", value: v.scores }]);
  out.push(["tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: v.tokenTypes }]);
  if (v.merges) out.push(["tokenizer.ggml.merges", { type: "array", itemType: "string", value: v.merges }]);
  for (const kind of SPECIAL_KINDS) {
    const id = v.specialIds[kind];
    if (id !== undefined) out.push([SPECIAL_KEY[kind], { type: "u32", value: id }]);
  }
  for (const kind of ["bos", "eos", "sep"] as const) {
    const add = v.addSpecial[kind];
    if (add !== undefined) out.push([`tokenizer.ggml.add_${kind}_token`, { type: "bool", value: add }]);
  }
  if (v.addSpacePrefix !== undefined) {
    out.push(["tokenizer.ggml.add_space_prefix", { type: "bool", value: v.addSpacePrefix }]);
  }
  if (v.chatTemplate !== undefined)
    out.push(["tokenizer.chat_template", { type: "string", value: v.chatTemplate }]);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Byte-level BPE (tokenizer.json)

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

function parseAddedTokens(path: string, raw: unknown[]): AddedToken[] {
  return raw.map((t, i) => {
    const o = asObject(t);
    if (!o || !Number.isInteger(o.id) || typeof o.content !== "string") {
      fail(path, `added_tokens[${i}] must have an integer "id" and a string "content"`);
    }
    return { id: o.id as number, content: o.content, special: o.special === true };
  });
}

/** The converter's `does_token_look_special`: added tokens that are control tokens though not marked so. */
function looksSpecial(text: string): boolean {
  return (
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].includes(text) ||
    (text.startsWith("<|") && text.endsWith("|>")) ||
    (text.startsWith("<｜") && text.endsWith("｜>")) ||
    (text.startsWith("<unused") && text.endsWith(">"))
  );
}

/** id → token for the model vocab plus added tokens, checked against the embedding size. */
function vocabById(
  path: string,
  model: Record<string, unknown>,
  added: AddedToken[],
  vocabSize: number,
): Map<number, string> {
  const vocab = asObject(model.vocab);
  if (!vocab) fail(path, `model.vocab must be an object of token → id`);
  const byId = new Map<number, string>();
  for (const [tok, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0)
      fail(path, `model.vocab["${tok}"] must be a non-negative integer`);
    byId.set(id as number, tok);
  }
  for (const t of added) byId.set(t.id, t.content);
  for (const id of byId.keys()) {
    if (id >= vocabSize) {
      fail(path, `token id ${id} ("${byId.get(id)}") is outside the model's vocab_size ${vocabSize}`);
    }
  }
  return byId;
}

function parseMerges(path: string, model: Record<string, unknown>): string[] {
  const merges = model.merges;
  if (!Array.isArray(merges)) fail(path, `model.merges must be a list`);
  return merges.map((m, i) => {
    if (typeof m === "string") return m;
    // transformers ≥ 4.45 writes pairs so that parts may contain spaces; llama.cpp wants "a b" with a space
    // inside a part spelled as U+0120, as gguf-py's SpecialVocab does.
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
      return m.map((p: string) => p.replaceAll(" ", "\u0120")).join(" ");
    }
    fail(path, `model.merges[${i}] must be "a b" or ["a", "b"]`);
  });
}

/** The split pattern of a byte-level pre-tokenizer, or "gpt2" for ByteLevel's built-in regex. */
function splitPattern(pre: unknown): string | undefined {
  const o = asObject(pre);
  if (!o) return undefined;
  if (o.type === "Sequence" && Array.isArray(o.pretokenizers)) {
    for (const p of o.pretokenizers) {
      const found = splitPattern(p);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (o.type === "Split") {
    const pattern = asObject(o.pattern);
    if (typeof pattern?.Regex === "string") return pattern.Regex;
    if (typeof pattern?.String === "string") return pattern.String;
  }
  if (o.type === "ByteLevel" && o.use_regex !== false) return "gpt2";
  return undefined;
}

function byteLevelBpeVocab(path: string, tok: Record<string, unknown>, opts: VocabOptions): GgufVocab {
  const model = asObject(tok.model)!;
  const added = parseAddedTokens(path, Array.isArray(tok.added_tokens) ? tok.added_tokens : []);
  const byId = vocabById(path, model, added, opts.vocabSize);
  const addedById = new Map(added.map((t) => [t.id, t]));

  let pre = opts.pre;
  if (pre === undefined) {
    const pattern = splitPattern(tok.pre_tokenizer);
    pre = pattern === "gpt2" ? "gpt-2" : pattern !== undefined ? PRE_BY_PATTERN[pattern] : undefined;
    if (pre === undefined) {
      fail(
        path,
        `the pre-tokenizer ${pattern === undefined ? "(none found)" : `pattern ${JSON.stringify(pattern)}`} ` +
          `is not one llama.cpp is known to implement (known: Llama 3, Qwen2, GPT-2); pass the llama.cpp ` +
          `pre-tokenizer name explicitly if you know it`,
      );
    }
  }

  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < opts.vocabSize; i++) {
    const text = byId.get(i);
    if (text === undefined) {
      tokens.push(`[PAD${i}]`);
      types.push(TokenType.UNUSED);
      continue;
    }
    const a = addedById.get(i);
    if (!a) {
      tokens.push(text);
      types.push(TokenType.NORMAL);
    } else if (a.special || looksSpecial(text)) {
      tokens.push(text);
      types.push(TokenType.CONTROL);
    } else {
      tokens.push(text.replaceAll("\u2581", " "));
      types.push(TokenType.USER_DEFINED);
    }
  }
  return {
    model: "gpt2",
    pre,
    tokens,
    tokenTypes: types,
    merges: parseMerges(path, model),
    specialIds: {},
    addSpecial: {},
    source: path,
  };
}

// ---------------------------------------------------------------------------------------------------------
// SentencePiece-style BPE with byte fallback, from tokenizer.json

const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;

function byteFallbackBpeVocab(path: string, tok: Record<string, unknown>, vocabSize: number): GgufVocab {
  const model = asObject(tok.model)!;
  const added = parseAddedTokens(path, Array.isArray(tok.added_tokens) ? tok.added_tokens : []);
  const byId = vocabById(path, model, added, vocabSize);
  const addedById = new Map(added.map((t) => [t.id, t]));
  const merges = parseMerges(path, model);
  // llama.cpp's SentencePiece tokenizer merges the adjacent pair whose concatenation has the highest score;
  // HF's BPE merges the pair of lowest rank. Scoring a token by minus the rank of the merge that forms it
  // makes the two pick the same merges.
  const rankOf = new Map<string, number>();
  merges.forEach((m, r) => {
    const joined = m.replace(" ", "");
    if (!rankOf.has(joined)) rankOf.set(joined, r);
  });
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const unk = typeof model.unk_token === "string" ? model.unk_token : undefined;
  for (let i = 0; i < vocabSize; i++) {
    const text = byId.get(i);
    if (text === undefined) {
      tokens.push(`[PAD${i}]`);
      scores.push(-1000);
      types.push(TokenType.UNUSED);
      continue;
    }
    const a = addedById.get(i);
    tokens.push(a && !a.special && !looksSpecial(text) ? text.replaceAll("\u2581", " ") : text);
    if (a) {
      scores.push(-1000);
      types.push(a.special || looksSpecial(text) ? TokenType.CONTROL : TokenType.USER_DEFINED);
    } else if (BYTE_TOKEN.test(text)) {
      scores.push(0);
      types.push(TokenType.BYTE);
    } else {
      // Tokens no merge forms (single characters) are never looked up as a pair; order them last anyway.
      scores.push(-(rankOf.get(text) ?? merges.length + i));
      types.push(text === unk ? TokenType.UNKNOWN : TokenType.NORMAL);
    }
  }
  return {
    model: "llama",
    pre: "default",
    tokens,
    tokenTypes: types,
    scores,
    specialIds: {},
    addSpecial: {},
    source: path,
  };
}

// ---------------------------------------------------------------------------------------------------------
// SentencePiece model protobuf (tokenizer.model)

/** One piece of a SentencePiece ModelProto: `piece` (1), `score` (2, float) and `type` (3, enum). */
export interface SentencePiece {
  piece: string;
  score: number;
  /** sentencepiece_model.proto Type: NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6. */
  type: number;
}

/** Minimal protobuf reader: enough for ModelProto.pieces; other fields are skipped by wire type. */
class ProtoReader {
  pos = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly path: string,
  ) {}
  get done(): boolean {
    return this.pos >= this.bytes.length;
  }
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.bytes.length) fail(this.path, "truncated protobuf (inside a varint)");
      const b = this.bytes[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    fail(this.path, "invalid protobuf varint");
  }
  take(n: number): Uint8Array {
    if (n > this.bytes.length - this.pos) fail(this.path, "truncated protobuf (field runs past the end)");
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.take(8);
    else if (wire === 2) this.take(this.varint());
    else if (wire === 5) this.take(4);
    else fail(this.path, `unsupported protobuf wire type ${wire}`);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The pieces of a SentencePiece `tokenizer.model`, in id order. */
export function readSentencePieceModel(bytes: Uint8Array, path: string): SentencePiece[] {
  const top = new ProtoReader(bytes, path);
  const pieces: SentencePiece[] = [];
  while (!top.done) {
    const key = top.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field !== 1 || wire !== 2) {
      top.skip(wire);
      continue;
    }
    const msg = new ProtoReader(top.take(top.varint()), path);
    const p: SentencePiece = { piece: "", score: 0, type: 1 };
    while (!msg.done) {
      const k = msg.varint();
      const f = Math.floor(k / 8);
      const w = k & 7;
      if (f === 1 && w === 2) {
        try {
          p.piece = utf8.decode(msg.take(msg.varint()));
        } catch (e) {
          if (e instanceof MerglotError) throw e;
          fail(path, `piece ${pieces.length} is not valid UTF-8`);
        }
      } else if (f === 2 && w === 5) {
        const b = msg.take(4);
        p.score = new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
      } else if (f === 3 && w === 0) {
        p.type = msg.varint();
      } else {
        msg.skip(w);
      }
    }
    pieces.push(p);
  }
  if (pieces.length === 0) fail(path, "no pieces found; is this a SentencePiece model?");
  return pieces;
}

function sentencePieceVocab(
  path: string,
  dir: string,
  vocabSize: number,
  tokConfig: Record<string, unknown> | undefined,
): GgufVocab {
  const pieces = readSentencePieceModel(readFileSync(path), path);
  if (pieces.length > vocabSize) {
    fail(path, `${pieces.length} pieces but the model's vocab_size is ${vocabSize}`);
  }
  const tokens = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const scores = new Array<number>(vocabSize).fill(-10000);
  const types = new Array<number>(vocabSize).fill(TokenType.UNUSED);
  pieces.forEach((p, i) => {
    tokens[i] = p.piece;
    scores[i] = p.score;
    // The converter asks sentencepiece IsUnknown/IsControl/IsUnused/IsByte; USER_DEFINED pieces stay NORMAL.
    types[i] = [2, 3, 5, 6].includes(p.type) ? p.type : TokenType.NORMAL;
  });
  const addedJson = join(dir, "added_tokens.json");
  if (existsSync(addedJson)) {
    for (const [text, id] of Object.entries(readJson(addedJson))) {
      if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= vocabSize) continue;
      tokens[id as number] = text;
      scores[id as number] = -1000;
      types[id as number] = TokenType.USER_DEFINED;
    }
  }
  const decoder = asObject(tokConfig?.added_tokens_decoder);
  for (const [key, value] of Object.entries(decoder ?? {})) {
    const id = Number(key);
    const o = asObject(value);
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize || typeof o?.content !== "string") continue;
    const special = o.special === true || looksSpecial(o.content);
    tokens[id] = special ? o.content : o.content.replaceAll("\u2581", " ");
    scores[id] = -1000;
    types[id] = special ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  return {
    model: "llama",
    pre: "default",
    tokens,
    tokenTypes: types,
    scores,
    specialIds: {},
    addSpecial: {},
    source: path,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Special tokens (gguf-py SpecialVocab, for the decoder-only cases this exporter handles)

function tokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  const o = asObject(v);
  return typeof o?.content === "string" ? o.content : undefined;
}

function applySpecialTokens(
  vocab: GgufVocab,
  tokJson: Record<string, unknown> | undefined,
  tokConfig: Record<string, unknown> | undefined,
  addedTokens: unknown[],
  config: Record<string, unknown>,
): void {
  const n = vocab.tokens.length;
  const set = (kind: SpecialKind, id: unknown) => {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= n) return;
    if (vocab.specialIds[kind] === undefined) vocab.specialIds[kind] = id as number;
  };
  const idOfContent = (content: string | undefined): number | undefined => {
    if (content === undefined) return undefined;
    for (const t of addedTokens) {
      const o = asObject(t);
      if (o?.content === content && Number.isInteger(o.id)) return o.id as number;
    }
    return undefined;
  };
  const contents: Partial<Record<SpecialKind, string>> = {};
  for (const kind of SPECIAL_KINDS) contents[kind] = tokenContent(tokConfig?.[`${kind}_token`]);

  // A post-processor template like "<bos> $A" says whether the tokenizer adds BOS (and EOS) itself.
  const post = asObject(tokJson?.post_processor);
  const processors = post ? (Array.isArray(post.processors) ? post.processors : [post]) : [];
  for (const proc of processors.map(asObject)) {
    if (proc?.type !== "TemplateProcessing" || !Array.isArray(proc.single) || proc.single.length < 2)
      continue;
    const first = tokenContent(asObject(asObject(proc.single[0])?.SpecialToken)?.id);
    const last = tokenContent(asObject(asObject(proc.single[proc.single.length - 1])?.SpecialToken)?.id);
    if (first !== undefined) {
      if (!tokConfig) contents.bos = first;
      vocab.addSpecial.bos = first === contents.bos;
    }
    if (last !== undefined) {
      if (!tokConfig) contents.eos = last;
      vocab.addSpecial.eos = last === contents.eos;
    }
  }
  if (tokConfig) {
    for (const kind of ["bos", "eos", "sep"] as const) {
      const add = tokConfig[`add_${kind}_token`];
      if (typeof add === "boolean") vocab.addSpecial[kind] = add;
    }
    for (const kind of SPECIAL_KINDS) set(kind, idOfContent(contents[kind]));
  } else {
    // Without tokenizer_config.json only the post-processor names tokens (SpecialVocab does the same).
    for (const kind of ["bos", "eos"] as const) set(kind, idOfContent(contents[kind]));
  }
  // config.json fills what the tokenizer files left unset.
  for (const kind of SPECIAL_KINDS) set(kind, config[`${kind}_token_id`]);
}
