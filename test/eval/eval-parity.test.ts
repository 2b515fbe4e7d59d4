/**
 * The same evaluation through llama.cpp (exact mode, the model exported to GGUF, the adapter converted to a
 * LoRA GGUF on the fly) and through the engine: the same prompts, the same predictions, the same
 * generations, and choice log-probabilities within 1e-3, for a scored task (with the model's chat template),
 * a multiple-choice task with an adapter, and a generation task.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Example } from "../../src/data/example.js";
import { evaluate, type EvaluateResult } from "../../src/eval/evaluate.js";
import { convertModelToGguf } from "../../src/formats/convert.js";
import { writeTinyAdapter } from "../parity/tiny-llama.js";
import { BYTE_TINY, writeByteModel } from "../tasks/tiny-model.js";

const root = mkdtempSync(join(tmpdir(), "merglot-evalparity-"));
const modelDir = join(root, "model");
const gguf = join(root, "model.gguf");
const adapter = join(root, "adapter");
const cacheDir = join(root, "cache");
const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}<s>{{ m.role }}\n{{ m.content }}</s>\n{% endfor %}" +
  "{% if add_generation_prompt %}<s>assistant\n{% endif %}";

before(() => {
  writeByteModel(modelDir, 8, { chat_template: TEMPLATE });
  convertModelToGguf(modelDir, gguf, { dtype: "F32" });
  writeTinyAdapter(adapter, BYTE_TINY, {
    seed: 4,
    modules: ["q_proj", "v_proj", "down_proj"].map((m) => ({
      module: `model.layers.0.${m.startsWith("down") ? "mlp" : "self_attn"}.${m}`,
      rank: 4,
      alpha: 8,
    })),
  });
});
after(() => rmSync(root, { recursive: true, force: true }));

async function both(
  o: Omit<Parameters<typeof evaluate>[0], "model" | "runner">,
): Promise<[EvaluateResult, EvaluateResult]> {
  const e = await evaluate({ ...o, model: modelDir, runner: "engine" });
  const l = await evaluate({
    ...o,
    model: gguf,
    runner: "llamacpp",
    exact: true,
    threads: 1,
    batch: 2,
    cacheDir,
  });
  return [e, l];
}

function sameScores(e: EvaluateResult, l: EvaluateResult): void {
  assert.equal(e.samples.length, l.samples.length);
  e.samples.forEach((s, i) => {
    const t = l.samples[i]!;
    assert.equal(t.prompt, s.prompt);
    assert.equal(t.prediction, s.prediction, `prediction of ${s.id}`);
    s.choices!.forEach((c, k) => {
      assert.equal(t.choices![k]!.text, c.text);
      assert.ok(Math.abs(t.choices![k]!.logprob - c.logprob) < 1e-3, `${s.id} choice ${k}`);
    });
  });
  assert.deepEqual(l.metrics, e.metrics);
}

describe("llama.cpp and the engine agree", () => {
  test("sentiment through the model's chat template (taken from the GGUF on the llama.cpp side)", async () => {
    const rows: Example[] = ["good", "bad", "fine", "awful", "nice"].map((t, i) => ({
      id: `s${i}`,
      lang: "en",
      text: `it is ${t}`,
      label: ["positive", "negative", "neutral", "negative", "positive"][i]!,
    }));
    const [e, l] = await both({ task: "sentiment", lang: "en", examples: rows });
    assert.ok(e.samples[0]!.prompt.startsWith("<s>user\nIs the sentiment"), "the chat template was applied");
    assert.ok(!e.samples[0]!.prompt.startsWith("<s><s>"));
    sameScores(e, l);
  });

  test("reasoning with a PEFT adapter (converted to a LoRA GGUF once, into the cache)", async () => {
    const rows: Example[] = [
      {
        id: "r1",
        lang: "fr",
        question: "Où dort le chat ?",
        choices: ["lit", "mer", "lune", "four", "arbre"],
        answer: "A",
      },
      {
        id: "r2",
        lang: "fr",
        question: "Qu'est-ce qui vole ?",
        choices: ["poisson", "oiseau", "pierre", "vache", "eau"],
        answer: "B",
      },
    ];
    const [e, l] = await both({
      task: "reasoning",
      lang: "fr",
      examples: rows,
      adapters: [adapter],
      chatTemplate: false,
    });
    sameScores(e, l);
    const base = await evaluate({
      model: modelDir,
      task: "reasoning",
      lang: "fr",
      examples: rows,
      chatTemplate: false,
    });
    assert.notDeepEqual(
      base.samples.map((s) => s.choices!.map((c) => c.logprob)),
      e.samples.map((s) => s.choices!.map((c) => c.logprob)),
      "the adapter changes the scores",
    );
    assert.equal(readdirSync(join(cacheDir, "lora-gguf")).length, 1);
  });

  test("summarization: identical greedy generations", async () => {
    const rows: Example[] = [
      { id: "m1", lang: "ja", document: "猫がマットの上に座った。", summary: "猫が座った。" },
      { id: "m2", lang: "ja", document: "雨が一日中降った。", summary: "雨。" },
    ];
    const [e, l] = await both({ task: "summarization", lang: "ja", examples: rows });
    e.samples.forEach((s, i) =>
      assert.equal(l.samples[i]!.generation, s.generation, `generation of ${s.id}`),
    );
    assert.deepEqual(l.metrics, e.metrics);
  });
});
