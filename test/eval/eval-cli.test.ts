/**
 * `merglot eval` and `merglot train --task` from the command line: the output files, --json, and bad input
 * (unknown task, label outside the label set, a choice list of the wrong length, an adapter for a different
 * base): each one clear line, exit 1, nothing written. And train/eval prompt identity: the prompts an
 * adapter is trained on are exactly the prompts evaluation gives the model, token for token.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Example } from "../../src/data/example.js";
import { EngineRunner } from "../../src/eval/runners/engine.js";
import { evaluate } from "../../src/eval/evaluate.js";
import { loadTokenizer } from "../../src/engine/tokenizer.js";
import { convertModelToGguf } from "../../src/formats/convert.js";
import { chatFormatFromModelDir } from "../../src/tasks/chat.js";
import { loadTask } from "../../src/tasks/load.js";
import { taskTrainingPairs } from "../../src/train/task-data.js";
import { DEFAULT_TINY, randomWeights, writeTinyAdapter, writeTinyModel } from "../parity/tiny-llama.js";
import { BYTE_TINY, writeByteModel } from "../tasks/tiny-model.js";

const CLI = join(process.cwd(), "dist/src/cli/main.js");
const root = mkdtempSync(join(tmpdir(), "merglot-evalcli-"));
const run = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd: root });
const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}<s>{{ m.role }}\n{{ m.content }}</s>\n{% endfor %}" +
  "{% if add_generation_prompt %}<s>assistant\n{% endif %}";

const sentiment: Example[] = [
  { id: "a", lang: "en", text: "lovely", label: "positive" },
  { id: "b", lang: "en", text: "meh", label: "neutral" },
  { id: "c", lang: "de", text: "schlecht", label: "negative" },
];
const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

before(() => {
  writeByteModel(join(root, "model"), 13, { chat_template: TEMPLATE });
  writeFileSync(join(root, "sent.jsonl"), jsonl(sentiment));
  writeFileSync(join(root, "train.jsonl"), jsonl(sentiment));
  // An adapter for another base (hidden size 64, not 32).
  writeTinyModel(join(root, "other"), DEFAULT_TINY, randomWeights(DEFAULT_TINY, 1));
  writeTinyAdapter(join(root, "other-adapter"), DEFAULT_TINY, {
    seed: 2,
    modules: [{ module: "model.layers.0.self_attn.q_proj", rank: 2, alpha: 4 }],
  });
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Exit 1, one `merglot:` line matching `pattern`, and no output folder. */
function refused(r: ReturnType<typeof run>, pattern: RegExp, out: string): void {
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^merglot: /);
  assert.match(lines[0]!, pattern);
  assert.equal(existsSync(join(root, out)), false);
}

describe("merglot eval", () => {
  test("writes metrics.json and samples.jsonl; --json prints metrics.json; a re-run is served from the cache", () => {
    const args = [
      "eval",
      "--model",
      "model",
      "--task",
      "sentiment",
      "--lang",
      "en",
      "--data",
      "sent.jsonl",
      "-o",
      "out",
    ];
    const r = run(...args, "--json");
    assert.equal(r.status, 0, r.stderr);
    const printed = JSON.parse(r.stdout);
    const written = JSON.parse(readFileSync(join(root, "out", "metrics.json"), "utf8"));
    assert.deepEqual(printed, written);
    assert.equal(written.count, 2, "only the English rows");
    assert.equal(written.task, "sentiment");
    const samples = readFileSync(join(root, "out", "samples.jsonl"), "utf8")
      .trim()
      .split("\n");
    assert.equal(samples.length, 2);
    const again = run(...args);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /\[cached\]/);
  });

  test("unknown task", () => {
    refused(
      run(
        "eval",
        "--model",
        "model",
        "--task",
        "sentimnt",
        "--lang",
        "en",
        "--data",
        "sent.jsonl",
        "-o",
        "o1",
      ),
      /unknown task "sentimnt" \(built-in: extraction, reasoning, sentiment, summarization/,
      "o1",
    );
  });

  test("a label outside the label set", () => {
    writeFileSync(join(root, "badlabel.jsonl"), jsonl([{ id: "x", lang: "en", text: "hm", label: "mixed" }]));
    refused(
      run(
        "eval",
        "--model",
        "model",
        "--task",
        "sentiment",
        "--lang",
        "en",
        "--data",
        "badlabel.jsonl",
        "-o",
        "o2",
      ),
      // the loader checks the canonical label set (evaluate() checks it again for examples from elsewhere)
      /badlabel\.jsonl line 1 field "label": label "mixed" is outside the label set \(positive, neutral, negative\)/,
      "o2",
    );
  });

  test("a choice list of the wrong length", () => {
    writeFileSync(
      join(root, "short.jsonl"),
      jsonl([{ id: "q", lang: "en", question: "?", choices: ["a", "b", "c", "d"], answer: "A" }]),
    );
    refused(
      run(
        "eval",
        "--model",
        "model",
        "--task",
        "reasoning",
        "--lang",
        "en",
        "--data",
        "short.jsonl",
        "-o",
        "o3",
      ),
      /short\.jsonl line 1 field "choices": 4 choices, expected 5/,
      "o3",
    );
  });

  test("an adapter for a different base", () => {
    refused(
      run(
        "eval",
        "--model",
        "model",
        "--adapter",
        "other-adapter",
        "--task",
        "sentiment",
        "--lang",
        "en",
        "--data",
        "sent.jsonl",
        "-o",
        "o4",
      ),
      /other-adapter: module "model\.layers\.0\.self_attn\.q_proj" is 64×64 in the adapter but 32×32 in the model/,
      "o4",
    );
    // the same through llama.cpp: the on-the-fly conversion checks the adapter against the GGUF's shape
    convertModelToGguf(join(root, "model"), join(root, "model.gguf"), { dtype: "F32" });
    refused(
      run(
        "eval",
        "--model",
        "model.gguf",
        "--adapter",
        "other-adapter",
        "--task",
        "sentiment",
        "--lang",
        "en",
        "--data",
        "sent.jsonl",
        "-o",
        "o5",
      ),
      /other-adapter: module "model\.layers\.0\.self_attn\.q_proj" is 64 × 64 but the base model .* has 32 × 32/,
      "o5",
    );
  });
});

describe("train/eval prompt identity", () => {
  test("taskTrainingPairs renders exactly the prompts evaluate() gives the model, and the gold continuations", async () => {
    const dir = join(root, "model");
    const task = loadTask("sentiment");
    const chat = chatFormatFromModelDir(dir);
    assert.ok(chat, "the model has a chat template");
    const pairs = taskTrainingPairs(task, sentiment, { chat });
    for (const lang of ["en", "de"]) {
      const rows = sentiment.filter((r) => r.lang === lang);
      const r = await evaluate({ model: dir, task, lang, examples: rows });
      rows.forEach((row, i) => {
        const pair = pairs[sentiment.indexOf(row)]!;
        assert.equal(pair.prompt, r.samples[i]!.prompt);
        const gold = r.samples[i]!.choices!.find((c, k) => task.definition.labels![k] === row.label)!;
        assert.equal(pair.completion, gold.text);
      });
    }
    // Token level: training tokenizes the prompt with the tokenizer's special tokens, evaluation puts the
    // runner's BOS in front of the prompt's tokens: the same ids, one BOS.
    const tok = loadTokenizer(dir);
    const runner = await EngineRunner.open({ model: dir });
    try {
      for (const p of pairs) {
        const trained = tok.encode(p.prompt, true);
        assert.deepEqual(trained, runner.encodePrompt(p.prompt));
        assert.equal(
          trained.filter((t) => t === runner.bos).length,
          3,
          "BOS once, plus the template's two role markers",
        );
      }
    } finally {
      await runner.close();
    }
  });

  test("merglot train --task trains on the rendered rows; the adapter evaluates with merglot eval", () => {
    const t = run(
      "train",
      "--base",
      "model",
      "--task",
      "sentiment",
      "--data",
      "train.jsonl",
      "-o",
      "adapter",
      "--epochs",
      "2",
      "--r",
      "2",
      "--lr",
      "0.01",
      "--json",
    );
    assert.equal(t.status, 0, t.stderr);
    assert.equal(JSON.parse(t.stdout).steps > 0, true);
    const e = run(
      "eval",
      "--model",
      "model",
      "--adapter",
      "adapter",
      "--task",
      "sentiment",
      "--lang",
      "de",
      "--data",
      "sent.jsonl",
      "--json",
    );
    assert.equal(e.status, 0, e.stderr);
    assert.deepEqual(JSON.parse(e.stdout).adapters, ["adapter"]);
    assert.equal(BYTE_TINY.hidden, 32);
  });
});
