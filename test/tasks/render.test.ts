/**
 * Task files and prompt rendering: the real chat templates of Llama-3.1-Instruct and Qwen2.5-Instruct (copied
 * verbatim from the models' tokenizer_config.json into test/fixtures/chat-templates) against hand-written
 * expected strings, the BOS rule, the strict task schema, per-language prompts, and answer parsing.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseChoice, splitItems } from "../../src/tasks/answers.js";
import {
  applyChatTemplate,
  chatFormatFromGguf,
  chatFormatFromModelDir,
  type ChatFormat,
} from "../../src/tasks/chat.js";
import { builtinTaskNames, loadTask, parseTask } from "../../src/tasks/load.js";
import { renderExample, renderPrompt } from "../../src/tasks/render.js";
import { convertModelToGguf } from "../../src/formats/convert.js";
import { expectMerglotError } from "../helpers/fixtures.js";
import { writeByteModel } from "./tiny-model.js";

const FIX = join(process.cwd(), "test/fixtures/chat-templates");
const llama: ChatFormat = {
  template: readFileSync(join(FIX, "llama-3.1-instruct.jinja"), "utf8"),
  bosToken: "<|begin_of_text|>",
  eosToken: "<|eot_id|>",
  addsBos: false,
  source: "llama-3.1-instruct",
};
const qwen: ChatFormat = {
  template: readFileSync(join(FIX, "qwen2.5-instruct.jinja"), "utf8"),
  bosToken: "",
  eosToken: "<|im_end|>",
  addsBos: false,
  source: "qwen2.5-instruct",
};
const root = mkdtempSync(join(tmpdir(), "merglot-tasks-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("chat templates of real models", () => {
  test("Llama-3.1-Instruct: default system header with its dates, user turn trimmed, assistant header opened", () => {
    assert.equal(
      applyChatTemplate(llama, "  Classify: good  "),
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nClassify: good<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  test("Llama-3.1-Instruct with a system message, when the tokenizer adds BOS: BOS is not doubled", () => {
    assert.equal(
      applyChatTemplate({ ...llama, addsBos: true }, "Hallo", "Antworte kurz."),
      "<|start_header_id|>system<|end_header_id|>\n\n" +
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nAntworte kurz.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHallo<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  test("Qwen2.5-Instruct: its default system prompt, the user turn as given, assistant turn opened", () => {
    assert.equal(
      applyChatTemplate(qwen, "文本：很好\n情感："),
      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
        "<|im_start|>user\n文本：很好\n情感：<|im_end|>\n<|im_start|>assistant\n",
    );
    assert.equal(
      applyChatTemplate(qwen, "x", "Be brief."),
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  test("a task prompt through a chat template: the template wraps doc_to_text; choices lose the delimiter", () => {
    const task = loadTask("sentiment");
    const r = renderExample(
      task,
      { id: "1", lang: "fr", text: "Super", label: "positive" },
      { lang: "fr", chat: qwen },
    );
    assert.equal(
      r.prompt,
      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
        "<|im_start|>user\nLe sentiment du texte suivant est-il positif, neutre ou négatif ?\nTexte : Super\nSentiment :" +
        "<|im_end|>\n<|im_start|>assistant\n",
    );
    assert.deepEqual(r.continuations, ["positif", "neutre", "négatif"]);
    assert.equal(r.completion, "positif");
  });

  test("the chat format comes from tokenizer_config.json and from the GGUF, with the BOS rule of the tokenizer", () => {
    const dir = join(root, "chat-model");
    const template =
      "{{ bos_token }}{% for m in messages %}<s>{{ m.role }}\n{{ m.content }}</s>\n{% endfor %}" +
      "{% if add_generation_prompt %}<s>assistant\n{% endif %}";
    writeByteModel(dir, 3, { chat_template: template });
    const hf = chatFormatFromModelDir(dir)!;
    assert.equal(hf.addsBos, true, "the tokenizer's post-processor adds <s>");
    assert.equal(
      applyChatTemplate(hf, "hi"),
      "<s>user\nhi</s>\n<s>assistant\n",
      "one BOS, the template's, cut",
    );
    const gguf = join(root, "chat-model.gguf");
    convertModelToGguf(dir, gguf, { dtype: "F32" });
    const g = chatFormatFromGguf(gguf)!;
    assert.equal(g.template, template);
    assert.equal(g.bosToken, "<s>");
    assert.equal(g.addsBos, true);
    assert.equal(chatFormatFromModelDir(join(root, "chat-model-none")) ?? null, null);
  });
});

describe("task files", () => {
  test("the four built-in tasks load and render in en, de, fr, ja, zh", () => {
    assert.deepEqual(builtinTaskNames(), ["extraction", "reasoning", "sentiment", "summarization"]);
    const ex = {
      id: "1",
      lang: "en",
      text: "t",
      label: "neutral",
      question: "q",
      choices: ["a", "b", "c", "d", "e"],
      answer: "E",
      document: "d",
      summary: "s",
    };
    for (const name of builtinTaskNames()) {
      const t = loadTask(name);
      for (const lang of ["en", "de", "fr", "ja", "zh"]) {
        const p = renderPrompt(t, { ...ex, lang }, { lang, chat: null });
        assert.ok(p.length > 0 && !p.includes("{{"), `${name}/${lang}`);
      }
    }
    assert.equal(
      renderPrompt(loadTask("sentiment"), { ...ex, lang: "zh" }, { lang: "zh", chat: null }),
      "以下文本的情感是积极、中性还是消极？\n文本：t\n情感：",
    );
  });

  test("a language without a prompt is an error that says how to add one", () => {
    expectMerglotError(
      () =>
        renderPrompt(
          loadTask("sentiment"),
          { id: "1", lang: "es", text: "t", label: "neutral" },
          { lang: "es", chat: null },
        ),
      "task.lang",
      /task sentiment has no prompt for language "es" \(it has en, de, fr, ja, zh\); copy .*sentiment\.yaml, add prompts\.es/,
    );
  });

  test("a custom task: strict keys, column mapping, per-language choices", () => {
    const yaml = (extra: string) =>
      `task: stance\noutput_type: multiple_choice\nfields: {claim: string, verdict: string}\ncolumns: {claim: body}\n` +
      `labels: [yes, no]\ndoc_to_target: "{{ verdict }}"\nmetrics: [accuracy, macro_f1]\n` +
      `prompts:\n  en: {doc_to_text: "Claim: {{ claim }}\\nTrue?", doc_to_choice: [yes, no]}\n` +
      `  es: {doc_to_text: "Afirmación: {{ claim }}\\n¿Cierto?", doc_to_choice: ["sí", "no"]}\n${extra}`;
    const t = parseTask(yaml(""), "stance.yaml");
    const r = renderExample(
      t,
      { id: "7", lang: "es", body: "El cielo es azul", verdict: "yes" },
      { lang: "es", chat: null },
    );
    assert.equal(r.prompt, "Afirmación: El cielo es azul\n¿Cierto?");
    assert.deepEqual(r.continuations, [" sí", " no"]);
    assert.equal(r.goldIndex, 0);
    expectMerglotError(
      () => parseTask(yaml("metric: [acc]\n"), "stance.yaml"),
      "task.field",
      /stance\.yaml: unknown field "metric" in \(top level\)/,
    );
    expectMerglotError(
      () =>
        parseTask(yaml("").replace("doc_to_choice: [yes, no]", "doc_to_choise: [yes, no]"), "stance.yaml"),
      "task.field",
      /unknown field "doc_to_choise" in prompts\.en/,
    );
    expectMerglotError(
      () => parseTask(yaml("").replace("metrics: [accuracy, macro_f1]", "metrics: [rouge1]"), "s.yaml"),
      "task.field",
      /metrics: rouge1 need output_type generate_until/,
    );
    expectMerglotError(
      () =>
        renderExample(
          t,
          { id: "8", lang: "en", text: "x", verdict: "no" },
          { lang: "en", chat: null, where: "d.jsonl" },
        ),
      "data.field",
      /d\.jsonl: example 8: missing column "body" \(columns found: id, lang, text, verdict\)/,
    );
    expectMerglotError(() => loadTask("nope"), "task.unknown", /unknown task "nope"/);
    expectMerglotError(() => loadTask("./missing.yaml"), "task.missing", /missing\.yaml: no such task file/);
  });
});

describe("answers", () => {
  test("choices named by a generated answer", () => {
    const c = ["positive", "neutral", "negative"];
    assert.equal(parseChoice(" Positive.", c), 0);
    assert.equal(parseChoice("\n\nnegative, clearly", c), 2);
    assert.equal(parseChoice('"neutral"', c), 1);
    assert.equal(parseChoice("negatively", c), null);
    assert.equal(parseChoice("I think so", c), null);
    assert.equal(parseChoice("", c), null);
    assert.equal(parseChoice("ネガティブです。", ["ポジティブ", "ニュートラル", "ネガティブ"]), 2);
    assert.equal(parseChoice("positif", ["positif", "neutre", "négatif"], c), 0);
    assert.equal(
      parseChoice("negative", ["positif", "neutre", "négatif"], c),
      2,
      "the label names count too",
    );
  });

  test("items one per line, list markers removed", () => {
    assert.deepEqual(splitItems("- Apple\n* Paris\n\n• Tokyo\n1. Berlin\n2) Rome\n  plain  "), [
      "Apple",
      "Paris",
      "Tokyo",
      "Berlin",
      "Rome",
      "plain",
    ]);
  });
});
