/**
 * A tiny random llama whose byte-level BPE tokenizer covers every byte (so the built-in tasks' prompts in
 * any language tokenize), written as an HF folder: <s> (BOS, added by the post-processor) and </s> (EOS)
 * follow the byte tokens and merges. Test-only.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bytesToUnicode, special } from "../engine/fixtures.js";
import { randomWeights, writeTinyModel, type TinyConfig, type Weights } from "../parity/tiny-llama.js";

const G = "\u0120"; // the byte-level form of a space
const MERGES: [string, string][] = [
  [G, "t"],
  ["h", "e"],
  [G + "t", "he"],
  ["e", "n"],
  ["i", "n"],
  [G, "a"],
  ["e", "r"],
  ["o", "n"],
];

export const BYTE_TINY: TinyConfig = {
  modelType: "llama",
  hidden: 32,
  layers: 1,
  heads: 4,
  kvHeads: 2,
  ffn: 48,
  vocab: 268,
  tie: false,
  eps: 1e-5,
  theta: 10000,
};

export const BOS_ID = 256 + MERGES.length;
export const EOS_ID = BOS_ID + 1;

export function byteTokenizerJson(): Record<string, unknown> {
  const b2u = bytesToUnicode();
  const vocab: Record<string, number> = {};
  b2u.forEach((ch, i) => (vocab[ch] = i));
  let id = 256;
  for (const [a, b] of MERGES) vocab[a + b] = id++;
  vocab["<s>"] = BOS_ID;
  vocab["</s>"] = EOS_ID;
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(BOS_ID, "<s>"), special(EOS_ID, "</s>")],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [],
      special_tokens: { "<s>": { id: "<s>", ids: [BOS_ID], tokens: ["<s>"] } },
    },
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
      merges: MERGES.map(([a, b]) => [a, b]),
    },
  };
}

/** Write the model folder; returns its weights (for the float64 reference forward). */
export function writeByteModel(
  dir: string,
  seed: number,
  extraTokenizerConfig: Record<string, unknown> = {},
): Weights {
  const weights = randomWeights(BYTE_TINY, seed);
  writeTinyModel(dir, BYTE_TINY, weights);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(byteTokenizerJson()));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify(
      { add_bos_token: true, bos_token: "<s>", eos_token: "</s>", ...extraTokenizerConfig },
      null,
      2,
    ),
  );
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  config.bos_token_id = BOS_ID;
  config.eos_token_id = EOS_ID;
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  return weights;
}
