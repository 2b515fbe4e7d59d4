import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { registerScore } from "../../src/cli/score.js";
import { MerglotError } from "../../src/errors.js";

const FIXTURE = fileURLToPath(new URL("../../../test/fixtures/tiny-encoder", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "merglot-score-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function jsonl(name: string, rows: unknown[]): string {
  const p = join(dir, name);
  writeFileSync(p, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return p;
}

/** Runs `merglot score ARGS` and returns what it printed. */
async function score(...args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  let out = "";
  registerScore(program, (text) => {
    out += text;
  });
  await program.parseAsync(["node", "merglot", "score", ...args]);
  return out;
}

const labels = (xs: string[]): { label: string }[] => xs.map((label) => ({ label }));
const refLabels = jsonl("ref-labels.jsonl", labels(["pos", "pos", "pos", "neu", "neg", "neg"]));
const predLabels = jsonl("pred-labels.jsonl", labels(["pos", "pos", "neu", "neu", "neu", "neg"]));

describe("merglot score", () => {
  test("f1 prints macro F1 (59/90) with its interval and the per-class table", async () => {
    const text = await score("--metric", "f1", "--pred", predLabels, "--ref", refLabels, "--samples", "200");
    assert.match(text, /^f1: macro f1 = 0\.6556 {2}\[/);
    assert.match(text, /neu: P 0\.3333 {2}R 1\.0000 {2}F1 0\.5000 {2}support 1/);
    const report = JSON.parse(
      await score("--metric", "f1", "--pred", predLabels, "--ref", refLabels, "--json", "--samples", "200"),
    );
    assert.ok(Math.abs(report.headline.value - 59 / 90) < 1e-12);
    assert.equal(report.count, 6);
    const micro = JSON.parse(
      await score("--metric", "f1", "--average", "micro", "--pred", predLabels, "--ref", refLabels, "--json"),
    );
    assert.ok(Math.abs(micro.headline.value - 4 / 6) < 1e-12);
  });

  test("--labels makes stray predictions wrong, not a class", async () => {
    const pred = jsonl("stray.jsonl", labels(["pos", "maybe", "neg"]));
    const ref = jsonl("stray-ref.jsonl", labels(["pos", "neg", "neg"]));
    const r = JSON.parse(
      await score("--metric", "f1", "--labels", "neg,pos", "--pred", pred, "--ref", ref, "--json"),
    );
    assert.deepEqual(r.details.labels, ["neg", "pos"]);
    assert.ok(Math.abs(r.headline.value - (2 / 3 + 1) / 2) < 1e-12);
  });

  test("ROUGE in both tokenizations", async () => {
    const ref = jsonl("ref-text.jsonl", [{ text: "我喜欢吃苹果。" }]);
    const pred = jsonl("pred-text.jsonl", [{ text: "我喜欢吃香蕉！" }]);
    const ml = JSON.parse(
      await score("--metric", "rouge1", "--lang", "zh", "--pred", pred, "--ref", ref, "--json"),
    );
    assert.ok(Math.abs(ml.headline.value - 3 / 4) < 1e-12);
    const rs = JSON.parse(
      await score("--metric", "rouge1", "--tokenizer", "rouge-score", "--pred", pred, "--ref", ref, "--json"),
    );
    assert.equal(rs.headline.value, 0);
    const en = await score(
      "--metric",
      "rouge",
      "--pred",
      jsonl("p.jsonl", [{ text: "The quick brown dog jumps on the log." }]),
      "--ref",
      jsonl("r.jsonl", [{ text: "The quick brown fox jumps over the lazy dog" }]),
      "--tokenizer",
      "rouge-score",
    );
    assert.match(en, /rouge1: P 0\.7500 {2}R 0\.6667 {2}F 0\.7059/);
    assert.match(en, /rouge2: .*F 0\.2667/);
    assert.match(en, /rougeL: .*F 0\.5882/);
  });

  test("multiple choice, hallucination and BERTScore from files", async () => {
    const mc = JSON.parse(
      await score(
        "--metric",
        "acc_norm",
        "--json",
        "--pred",
        jsonl("mc-pred.jsonl", [{ logprobs: [-4, -5] }, { logprobs: [-1, -3] }]),
        "--ref",
        jsonl("mc-ref.jsonl", [
          { choices: ["ab", "abcdefghij"], gold: 1 },
          { choices: ["a", "b"], gold: 1 },
        ]),
      ),
    );
    assert.equal(mc.headline.value, 0.5);
    assert.equal(mc.details.acc, 0);
    const h = JSON.parse(
      await score(
        "--metric",
        "hallucination",
        "--case-fold",
        "--json",
        "--pred",
        jsonl("h-pred.jsonl", [{ items: ["warsaw", "Paris"] }, { items: [] }]),
        "--ref",
        jsonl("h-ref.jsonl", [{ input: "Born in Warsaw." }, { input: "Nothing." }]),
      ),
    );
    assert.equal(h.headline.value, 1 / 2);
    assert.equal(h.details.items, 2);
    const b = JSON.parse(
      await score(
        "--metric",
        "bertscore",
        "--model",
        FIXTURE,
        "--json",
        "--baseline",
        "0.5,0.5,0.5",
        "--pred",
        jsonl("b-pred.jsonl", [{ text: "the cat sat" }]),
        "--ref",
        jsonl("b-ref.jsonl", [{ text: "the cat sat" }]),
      ),
    );
    assert.ok(Math.abs(b.headline.value - 1) < 1e-6); // (1 − 0.5) / (1 − 0.5)
    assert.equal(b.details.rescaled, true);
    // --rescale: bert_score's published baseline for --lang (German: bert-base-multilingual-cased, layer 9).
    const pair = [
      "--pred",
      jsonl("b2-pred.jsonl", [{ text: "der hund" }]),
      "--ref",
      jsonl("b2-ref.jsonl", [{ text: "die katze" }]),
    ];
    const raw = JSON.parse(await score("--metric", "bertscore", "--model", FIXTURE, "--json", ...pair));
    const scaled = JSON.parse(
      await score(
        "--metric",
        "bertscore",
        "--model",
        FIXTURE,
        "--json",
        "--rescale",
        "--lang",
        "de",
        ...pair,
      ),
    );
    assert.ok(Math.abs(scaled.headline.value - (raw.headline.value - 0.6147353) / (1 - 0.6147353)) < 1e-9);
    await assert.rejects(
      score("--metric", "bertscore", "--model", FIXTURE, "--rescale", "--lang", "ja", ...pair),
      /no published rescaling baseline for model bert-base-multilingual-cased, language ja/,
    );
  });

  test("--compare adds a paired test", async () => {
    const ref = jsonl("cmp-ref.jsonl", labels(Array.from({ length: 30 }, (_, i) => (i % 2 ? "a" : "b"))));
    const good = jsonl("cmp-good.jsonl", labels(Array.from({ length: 30 }, (_, i) => (i % 2 ? "a" : "b"))));
    const bad = jsonl("cmp-bad.jsonl", labels(Array.from({ length: 30 }, () => "a")));
    const r = JSON.parse(
      await score(
        "--metric",
        "accuracy",
        "--pred",
        good,
        "--ref",
        ref,
        "--compare",
        bad,
        "--json",
        "--paired-samples",
        "999",
      ),
    );
    assert.equal(r.comparison.delta, 0.5);
    assert.equal(r.comparison.significant, true);
    const text = await score(
      "--metric",
      "accuracy",
      "--pred",
      good,
      "--ref",
      ref,
      "--compare",
      good,
      "--test",
      "randomization",
      "--paired-samples",
      "99",
    );
    assert.match(text, /p = 1\.00 \(paired randomization, 99 samples\): not significant/);
  });

  test("bad input is a MerglotError naming the problem", async () => {
    await assert.rejects(
      score("--metric", "bleu", "--pred", predLabels, "--ref", refLabels),
      (e: unknown) => e instanceof MerglotError && /unknown metric "bleu"/.test(e.message),
    );
    const short = jsonl("short.jsonl", labels(["pos"]));
    await assert.rejects(
      score("--metric", "accuracy", "--pred", short, "--ref", refLabels),
      /short.jsonl has 1 records but .*ref-labels.jsonl has 6/,
    );
    const broken = join(dir, "broken.jsonl");
    writeFileSync(broken, '{"label": "pos"}\n{oops}\n');
    await assert.rejects(
      score("--metric", "accuracy", "--pred", broken, "--ref", refLabels),
      /broken.jsonl:2: not valid JSON/,
    );
    await assert.rejects(
      score("--metric", "f1", "--labels", "pos,neu", "--pred", predLabels, "--ref", refLabels),
      /reference 5 has label "neg"/,
    );
    await assert.rejects(
      score("--metric", "accuracy", "--samples", "0", "--pred", predLabels, "--ref", refLabels),
      /--samples: expected an integer ≥ 1/,
    );
    await assert.rejects(
      score("--metric", "rouge1", "--pred", predLabels, "--ref", refLabels),
      /pred-labels.jsonl:1: missing field "text"/,
    );
    await assert.rejects(
      score("--metric", "bertscore", "--pred", predLabels, "--ref", refLabels),
      /needs an embedding model \(--model DIR for transformers.js, or --engine-model DIR\)/,
    );
  });
});
