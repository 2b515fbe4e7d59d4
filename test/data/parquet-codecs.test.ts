import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { asyncBufferFromFile, parquetMetadataAsync } from "hyparquet";
import { loadExamples } from "../../src/data/index.js";
import { datasetFixture } from "./helpers.js";

function parquetFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? parquetFiles(p) : n.endsWith(".parquet") ? [p] : [];
  });
}

async function codecs(file: string): Promise<Set<string>> {
  const md = await parquetMetadataAsync(await asyncBufferFromFile(file));
  return new Set(md.row_groups.flatMap((rg) => rg.columns.map((c) => c.meta_data!.codec)));
}

describe("Parquet codecs", () => {
  test("the fixtures hold every codec the hub's files use", async () => {
    const seen = new Set<string>();
    for (const f of parquetFiles(datasetFixture(""))) for (const c of await codecs(f)) seen.add(c);
    assert.deepEqual([...seen].sort(), ["BROTLI", "GZIP", "LZ4", "LZ4_RAW", "SNAPPY", "UNCOMPRESSED", "ZSTD"]);
  });

  test("brotli, Hadoop lz4 and lz4_raw files read back to the rows written", async () => {
    const dir = datasetFixture("tyqiangz-multilingual-sentiments/german");
    const expected: Record<string, [string, unknown[]]> = {
      train: [
        "BROTLI",
        [
          ["Ich liebe dieses Buch, jede Seite ist spannend.", "positive"],
          ["Der Zug fährt um acht Uhr ab.", "neutral"],
          ["Das Essen war kalt und fade.", "negative"],
        ],
      ],
      validation: ["LZ4", [["Sehr hilfreicher Kundendienst, vielen Dank, vielen Dank!", "positive"]]],
      test: [
        "LZ4_RAW",
        [
          ["Die Farbe ist blau, die Farbe ist blau, die Farbe ist blau.", "neutral"],
          ["Nie wieder bestelle ich hier.", "negative"],
        ],
      ],
    };
    for (const [split, [codec, rows]] of Object.entries(expected)) {
      const file = join(dir, `multilingual-sentiments-${split}.parquet`);
      assert.deepEqual([...(await codecs(file))], [codec]);
      const r = await loadExamples({ path: file, task: "sentiment", lang: "de", split });
      assert.deepEqual(
        r.examples.map((e) => [e.text, e.label]),
        rows,
      );
    }
  });

  test("gzip and zstd files read back to the rows written", async () => {
    const dir = datasetFixture("clapAI-MultiLingualSentiment/data");
    const val = join(dir, "validation-00000-of-00001.parquet");
    assert.deepEqual([...(await codecs(val))], ["GZIP"]);
    assert.deepEqual(
      (await loadExamples({ path: val, task: "sentiment", split: "validation" })).examples.map((e) => [e.lang, e.text]),
      [
        ["de", "Ganz okay, nichts Besonderes."],
        ["en", "I would not buy this again."],
      ],
    );
    const test_ = join(dir, "test-00000-of-00001.parquet");
    assert.deepEqual([...(await codecs(test_))], ["ZSTD"]);
    assert.equal((await loadExamples({ path: test_, task: "sentiment" })).examples.length, 3);
  });
});
