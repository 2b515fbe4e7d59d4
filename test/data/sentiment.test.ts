import { after, describe, test } from "node:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { describeDataset, loadExamples } from "../../src/data/index.js";
import { datasetFixture, rejectsMerglot } from "./helpers.js";

const CLAP = datasetFixture("clapAI-MultiLingualSentiment");
const TYQ = datasetFixture("tyqiangz-multilingual-sentiments");
const tmp = mkdtempSync(join(tmpdir(), "merglot-data-sent-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe("clapAI/MultiLingualSentiment (README configs, data/<split>-00000-of-00001.parquet)", () => {
  test("one config; the language column selects rows; labels lower-cased", async () => {
    assert.deepEqual(describeDataset(CLAP), { configs: { default: ["test", "train", "validation"] }, defaultConfig: undefined });
    const de = await loadExamples({ path: CLAP, task: "sentiment", lang: "de", split: "train" });
    assert.equal(de.source.schema, "clapAI/MultiLingualSentiment");
    assert.deepEqual(de.examples, [
      { id: "de-train-1", lang: "de", text: "Das Paket kam zwei Wochen zu spät und war beschädigt.", label: "negative" },
      { id: "de-train-5", lang: "de", text: "Die Lieferung erfolgte am Montag.", label: "neutral" },
      { id: "de-train-6", lang: "de", text: "Ein wunderbarer Abend, danke!", label: "positive" },
    ]);
  });

  test("without a language every row comes, each with its own; default split is test", async () => {
    const all = await loadExamples({ path: CLAP, task: "sentiment" });
    assert.deepEqual(all.examples, [
      { id: "de-test-0", lang: "de", text: "Tolles Hotel, sehr freundliches Personal!", label: "positive" },
      { id: "fr-test-1", lang: "fr", text: "Le film était ennuyeux.", label: "negative" },
      { id: "ja-test-2", lang: "ja", text: "普通の品質です。", label: "neutral" },
    ]);
    const val = await loadExamples({ path: CLAP, task: "sentiment", lang: "en", split: "validation" });
    assert.deepEqual(val.examples, [{ id: "en-validation-1", lang: "en", text: "I would not buy this again.", label: "negative" }]);
  });

  test("a language column holding full names selects by code too", async () => {
    const p = join(tmp, "test.jsonl");
    const row = (text: string, language: string) => ({ text, label: "Neutral", source: "s", domain: "d", language });
    writeFileSync(p, [row("Heute.", "German"), row("Today.", "english")].map((r) => JSON.stringify(r)).join("\n") + "\n");
    const r = await loadExamples({ path: p, task: "sentiment", lang: "de" });
    assert.deepEqual(r.examples, [{ id: "de-test-0", lang: "de", text: "Heute.", label: "neutral" }]);
  });

  test("a language with no rows is an empty split", async () => {
    await rejectsMerglot(
      loadExamples({ path: CLAP, task: "sentiment", lang: "ko" }),
      "data.empty",
      /split "test" has no rows for language "ko"/,
    );
  });
});

describe("tyqiangz/multilingual-sentiments (configs by language name, label ids)", () => {
  test("lang de picks config german; ids 0/1/2 are positive/neutral/negative", async () => {
    const r = await loadExamples({ path: TYQ, task: "sentiment", lang: "de", split: "train" });
    assert.equal(r.source.schema, "tyqiangz/multilingual-sentiments");
    assert.equal(r.source.config, "german");
    assert.deepEqual(r.examples, [
      { id: "de-train-0", lang: "de", text: "Ich liebe dieses Buch, jede Seite ist spannend.", label: "positive" },
      { id: "de-train-1", lang: "de", text: "Der Zug fährt um acht Uhr ab.", label: "neutral" },
      { id: "de-train-2", lang: "de", text: "Das Essen war kalt und fade.", label: "negative" },
    ]);
  });

  test("an explicit config gives its language to the rows", async () => {
    const r = await loadExamples({ path: TYQ, task: "sentiment", config: "japanese" });
    assert.deepEqual(r.examples, [{ id: "ja-test-0", lang: "ja", text: "二度と行きません。", label: "negative" }]);
  });

  test("unknown config and unknown split list what there is", async () => {
    await rejectsMerglot(
      loadExamples({ path: TYQ, task: "sentiment", config: "klingon" }),
      "data.config",
      /no config "klingon" \(available: english, german, japanese\)/,
    );
    await rejectsMerglot(
      loadExamples({ path: TYQ, task: "sentiment", lang: "fr" }),
      "data.config",
      /no config for language "fr".*\(available: english, german, japanese\)/,
    );
    await rejectsMerglot(
      loadExamples({ path: TYQ, task: "sentiment", lang: "de", split: "dev" }),
      "data.split",
      /no split "dev" of config "german" \(available: test, train, validation\)/,
    );
  });
});
