/**
 * Tokenizers come from the model's own `tokenizer.json` (+ optional `tokenizer_config.json`), run by
 * Hugging Face's tokenizers.js (@huggingface/tokenizers): no hand-written BPE, no network.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { MerglotError } from "../errors.js";
import { readJsonFile } from "../json-input.js";

/** tokenizer.json of large vocabularies is tens of MB; far above that is not a tokenizer. */
const MAX_TOKENIZER_BYTES = 512 * 1024 * 1024;

export interface TextTokenizer {
  /** Token ids of `text`; `addSpecialTokens` applies the tokenizer's post-processor (e.g. a BOS token). */
  encode(text: string, addSpecialTokens?: boolean): number[];
  decode(ids: number[], skipSpecialTokens?: boolean): string;
  tokenToId(token: string): number | undefined;
  /** The end-of-sequence token id from tokenizer_config.json's eos_token, when it names one. */
  readonly eosTokenId: number | null;
  readonly bosTokenId: number | null;
}

function readJson(path: string): unknown {
  return readJsonFile(path, { code: "tokenizer.json", maxBytes: MAX_TOKENIZER_BYTES });
}

function tokenName(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return null;
}

/** Load from a model folder (tokenizer.json inside) or a tokenizer.json path. */
export function loadTokenizer(path: string): TextTokenizer {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, "tokenizer.json") : path;
  if (!existsSync(file)) throw new MerglotError("tokenizer.missing", `${file}: tokenizer.json not found`);
  const configPath = join(file, "..", "tokenizer_config.json");
  const json = readJson(file);
  const config = existsSync(configPath) ? (readJson(configPath) as Record<string, unknown>) : {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json as object, config);
  } catch (e) {
    throw new MerglotError("tokenizer.json", `${file}: cannot build the tokenizer (${(e as Error).message})`);
  }
  const idOf = (v: unknown): number | null => {
    const name = tokenName(v);
    return name === null ? null : (tok.token_to_id(name) ?? null);
  };
  return {
    encode: (text, addSpecialTokens = true) => {
      const enc = tok.encode(text, { add_special_tokens: addSpecialTokens });
      const bad = (enc.ids as unknown[]).findIndex((id) => typeof id !== "number");
      if (bad >= 0) {
        // tokenizers.js yields no id for a word-level token missing from the vocabulary when unk is unusable
        throw new MerglotError(
          "tokenizer.unknown",
          `${file}: token "${enc.tokens[bad]}" of the text has no id in the vocabulary`,
        );
      }
      return enc.ids;
    },
    decode: (ids, skipSpecialTokens = false) => tok.decode(ids, { skip_special_tokens: skipSpecialTokens }),
    tokenToId: (t) => tok.token_to_id(t),
    eosTokenId: idOf(config.eos_token),
    bosTokenId: idOf(config.bos_token),
  };
}
