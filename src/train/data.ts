/**
 * Training data: JSONL of {"prompt", "completion"} for adapters (loss on completion tokens only) and plain
 * text or JSONL of {"text"} for pre-training (loss on every token). Examples become token id lists with the
 * index where scoring starts.
 */
import { MerglotError } from "../errors.js";
import { MAX_TEXT_FILE_BYTES, parseJsonText, readTextFileBounded } from "../json-input.js";
import type { TextTokenizer } from "../engine/tokenizer.js";

export interface Example {
  ids: number[];
  /** Targets ids[t] with t ≥ scoreFrom are scored (predicted from position t − 1). */
  scoreFrom: number;
}

export interface PromptCompletion {
  prompt: string;
  completion: string;
}

/** Parse a JSONL file of {"prompt", "completion"} objects; errors name the file and line. */
export function readPromptCompletionJsonl(path: string): PromptCompletion[] {
  const out: PromptCompletion[] = [];
  readTextFileBounded(path, MAX_TEXT_FILE_BYTES, "data.read")
    .split("\n")
    .forEach((line, i) => {
      if (line.trim() === "") return;
      const obj = parseJsonText(line, `${path}:${i + 1}`, { code: "data.json", multiline: false });
      const o = obj as Record<string, unknown>;
      if (
        typeof o !== "object" ||
        o === null ||
        typeof o.prompt !== "string" ||
        typeof o.completion !== "string"
      ) {
        throw new MerglotError(
          "data.field",
          `${path}:${i + 1}: expected an object with string fields "prompt" and "completion"`,
        );
      }
      out.push({ prompt: o.prompt, completion: o.completion });
    });
  if (out.length === 0) throw new MerglotError("data.empty", `${path}: no examples`);
  return out;
}

/** Documents of a pre-training corpus: JSONL {"text"} lines, or plain text split at blank lines. */
export function readTextDocuments(path: string): string[] {
  const raw = readTextFileBounded(path, MAX_TEXT_FILE_BYTES, "data.read");
  let docs: string[];
  if (path.endsWith(".jsonl")) {
    docs = [];
    raw.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      const o = parseJsonText(line, `${path}:${i + 1}`, { code: "data.json", multiline: false });
      const text = (o as { text?: unknown })?.text;
      if (typeof text !== "string")
        throw new MerglotError(
          "data.field",
          `${path}:${i + 1}: expected an object with a string field "text"`,
        );
      docs.push(text);
    });
  } else {
    docs = raw
      .split(/\n\s*\n/)
      .map((d) => d.trim())
      .filter((d) => d.length > 0);
  }
  if (docs.length === 0) throw new MerglotError("data.empty", `${path}: no text`);
  return docs;
}

/**
 * Tokenise prompt/completion pairs: prompt with the tokenizer's special tokens (e.g. BOS), completion
 * without, then EOS when the tokenizer or model names one. Only completion tokens are scored.
 */
export function tokenizePairs(
  pairs: PromptCompletion[],
  tok: TextTokenizer,
  eosTokenId: number | null,
): Example[] {
  return pairs.map((p) => {
    const prompt = tok.encode(p.prompt, true);
    const completion = tok.encode(p.completion, false);
    if (eosTokenId !== null) completion.push(eosTokenId);
    return { ids: [...prompt, ...completion], scoreFrom: Math.max(1, prompt.length) };
  });
}

/** Tokenise documents for pre-training: every token after the first is scored. */
export function tokenizeDocuments(docs: string[], tok: TextTokenizer, eosTokenId: number | null): Example[] {
  return docs.map((d) => {
    const ids = tok.encode(d, true);
    if (eosTokenId !== null) ids.push(eosTokenId);
    return { ids, scoreFrom: 1 };
  });
}
