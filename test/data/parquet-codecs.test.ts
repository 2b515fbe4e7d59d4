import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asyncBufferFromFile, parquetMetadataAsync } from "hyparquet";
import { parquetWriteBuffer } from "hyparquet-writer";
import { loadExamples } from "../../src/data/index.js";
import { datasetFixture, rejectsMerglot } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "merglot-data-pq-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

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

  test("a string column that is not UTF-8 is refused, not replaced with U+FFFD", async () => {
    const utf8 = { type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" } as const;
    const buf = parquetWriteBuffer({
      columnData: [
        { name: "text", data: [new Uint8Array(Buffer.from("d\xe9j\xe0 vu", "latin1"))] },
        { name: "label", data: [new Uint8Array(Buffer.from("neutral"))] },
        { name: "lang", data: [new Uint8Array(Buffer.from("fr"))] },
      ],
      schema: [
        { name: "schema", num_children: 3 },
        { name: "text", ...utf8 },
        { name: "label", ...utf8 },
        { name: "lang", ...utf8 },
      ] as never,
    });
    const p = join(tmp, "latin1.parquet");
    writeFileSync(p, new Uint8Array(buf));
    await rejectsMerglot(
      loadExamples({ path: p, task: "sentiment" }),
      "data.encoding",
      /latin1\.parquet: a text value in rows 0\.\.0 is not valid UTF-8/,
    );
  });
});
