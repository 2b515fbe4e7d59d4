/** Tiny offline tokenizers, written as real tokenizer.json files and loaded through tokenizers.js. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** An added special token entry of tokenizer.json. */
export const special = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

/**
 * A word-level tokenizer: ids 0..2 are <unk>, <s>, </s>, then `words` in order; whitespace pre-tokenizer;
 * the post-processor prepends <s>. Writes tokenizer.json and tokenizer_config.json into `dir`.
 */
export function writeWordTokenizer(dir: string, words: string[]): { vocab: Map<string, number> } {
  const vocab = new Map<string, number>([
    ["<unk>", 0],
    ["<s>", 1],
    ["</s>", 2],
  ]);
  for (const w of words) if (!vocab.has(w)) vocab.set(w, vocab.size);
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
    normalizer: null,
    pre_tokenizer: { type: "Whitespace" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: null,
    model: { type: "WordLevel", vocab: Object.fromEntries(vocab), unk_token: "<unk>" },
  };
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>", eos_token: "</s>" }));
  return { vocab };
}

/** GPT-2's byte → printable-character table. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out: string[] = new Array(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
}

/** A byte-level BPE: 256 byte tokens (ids 0..255) plus one token per merge, in order (ids 256…). */
export function writeByteBpeTokenizer(dir: string, merges: [string, string][]): void {
  const b2u = bytesToUnicode();
  const vocab: Record<string, number> = {};
  b2u.forEach((ch, i) => (vocab[ch] = i));
  let id = 256;
  for (const [a, b] of merges) vocab[a + b] = id++;
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
}
