/**
 * Chat templates: a model's own Jinja template (tokenizer_config.json `chat_template`, a `chat_template.jinja`
 * file, or the GGUF's `tokenizer.chat_template`) applied to one user turn with `add_generation_prompt`, as
 * transformers' `apply_chat_template(..., tokenize=False)` does.
 *
 * The BOS rule: many templates start with `{{ bos_token }}`, and the runners (like HF's tokenizer with
 * `add_special_tokens`) put the BOS token in front of every prompt when the model wants one. So when the model's
 * tokenizer adds BOS itself, a leading BOS text is cut from the rendered prompt: BOS is never doubled.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { loadTokenizer } from "../engine/tokenizer.js";
import { MerglotError } from "../errors.js";
import { readJsonFile } from "../json-input.js";
import { GgufReader } from "../formats/gguf.js";

export interface ChatFormat {
  /** The Jinja source of the chat template. */
  template: string;
  /** Text of the BOS / EOS tokens (the template's `bos_token` / `eos_token`), "" when the model has none. */
  bosToken: string;
  eosToken: string;
  /** Whether the tokenizer (and so the runner) puts BOS in front of every prompt itself. */
  addsBos: boolean;
  /** Where the template came from (for messages). */
  source: string;
}

function readJson(path: string): Record<string, unknown> {
  const v = readJsonFile(path, { code: "chat.config" });
  return v !== null && typeof v === "object" ? (v as Record<string, unknown>) : {};
}

function tokenText(v: unknown): string {
  if (typeof v === "string") return v;
  if (v !== null && typeof v === "object" && typeof (v as { content?: unknown }).content === "string")
    return (v as { content: string }).content;
  return "";
}

/** `chat_template` may be one string or a list of named templates (the one named "default" is used). */
function pickTemplate(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    const named = v.find((x) => (x as { name?: unknown })?.name === "default") ?? v[0];
    const t = (named as { template?: unknown })?.template;
    return typeof t === "string" ? t : null;
  }
  return null;
}

/** The chat format of an HF model folder, or null when it has no chat template. */
export function chatFormatFromModelDir(dir: string): ChatFormat | null {
  const configPath = join(dir, "tokenizer_config.json");
  const config = existsSync(configPath) ? readJson(configPath) : {};
  let template = pickTemplate(config.chat_template);
  let source = configPath;
  const jinjaFile = join(dir, "chat_template.jinja");
  if (template === null && existsSync(jinjaFile)) {
    template = readFileSync(jinjaFile, "utf8");
    source = jinjaFile;
  }
  if (template === null) return null;
  // Whether BOS is added: ask the tokenizer's post-processor, as the engine runner does.
  const tok = loadTokenizer(dir);
  const withSpecial = tok.encode("a", true);
  const without = tok.encode("a", false);
  const addsBos = withSpecial.length > without.length && withSpecial[0] !== without[0];
  return {
    template,
    bosToken: tokenText(config.bos_token),
    eosToken: tokenText(config.eos_token),
    addsBos,
    source,
  };
}

/** The chat format stored in a GGUF file (llama.cpp's keys), or null when it has no chat template. */
export function chatFormatFromGguf(path: string): ChatFormat | null {
  const r = GgufReader.open(path);
  try {
    const template = r.getString("tokenizer.chat_template");
    if (template === undefined) return null;
    const tokens = r.getValue("tokenizer.ggml.tokens");
    const list = tokens?.type === "array" && tokens.itemType === "string" ? tokens.value : [];
    const textOf = (key: string): string => {
      const id = r.getNumber(key);
      return id === undefined ? "" : (list[id] ?? "");
    };
    const addBos = r.getValue("tokenizer.ggml.add_bos_token");
    const bosToken = textOf("tokenizer.ggml.bos_token_id");
    return {
      template,
      bosToken,
      eosToken: textOf("tokenizer.ggml.eos_token_id"),
      // llama.cpp adds BOS when the file says so (and, when it is silent, for SentencePiece-style vocabularies).
      addsBos:
        addBos?.type === "bool"
          ? addBos.value
          : bosToken !== "" && r.getString("tokenizer.ggml.model") === "llama",
      source: path,
    };
  } finally {
    r.close();
  }
}

/** The chat format of a model path: an HF folder or a GGUF file. */
export function chatFormatOf(modelPath: string): ChatFormat | null {
  return existsSync(modelPath) && statSync(modelPath).isDirectory()
    ? chatFormatFromModelDir(modelPath)
    : chatFormatFromGguf(modelPath);
}

const compiled = new Map<string, Template>();

/**
 * One user turn (after an optional system turn) through the chat template, with the assistant's turn opened
 * (`add_generation_prompt`), a leading BOS text removed when the tokenizer adds BOS itself.
 */
export function applyChatTemplate(chat: ChatFormat, user: string, system?: string): string {
  let t = compiled.get(chat.template);
  if (!t) {
    try {
      t = new Template(chat.template);
    } catch (e) {
      throw new MerglotError(
        "chat.template",
        `${chat.source}: invalid chat template (${(e as Error).message})`,
      );
    }
    compiled.set(chat.template, t);
  }
  const messages = [
    ...(system !== undefined ? [{ role: "system", content: system }] : []),
    { role: "user", content: user },
  ];
  let text: string;
  try {
    text = t.render({
      messages,
      add_generation_prompt: true,
      bos_token: chat.bosToken,
      eos_token: chat.eosToken,
    });
  } catch (e) {
    throw new MerglotError(
      "chat.template",
      `${chat.source}: the chat template failed (${(e as Error).message})`,
    );
  }
  if (chat.addsBos && chat.bosToken !== "" && text.startsWith(chat.bosToken))
    text = text.slice(chat.bosToken.length);
  return text;
}
