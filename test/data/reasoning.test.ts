import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { loadExamples } from "../../src/data/index.js";
import { datasetFixture, rejectsMerglot } from "./helpers.js";

const MCSQA = datasetFixture("yusuke1997-mCSQA");
const dir = mkdtempSync(join(tmpdir(), "merglot-data-mcsqa-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const utf8 = { type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" } as const;
const list = (name: string) => [
  { name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 },
  { name: "list", repetition_type: "REPEATED", num_children: 1 },
  { name: "element", ...utf8 },
];

/** One mCSQA-shaped Parquet file with the given choice lists. */
function mcsqaFile(name: string, labels: string[], texts: string[], answerKey: string): string {
  const buf = parquetWriteBuffer({
    columnData: [
      { name: "id", data: ["q1"] },
      { name: "question", data: ["Which?"] },
      { name: "choices", data: [{ label: labels, text: texts }] },
      { name: "answerKey", data: [answerKey] },
    ],
    schema: [
      { name: "schema", num_children: 4 },
      { name: "id", ...utf8 },
      { name: "question", ...utf8 },
      { name: "choices", repetition_type: "OPTIONAL", num_children: 2 },
      ...list("label"),
      ...list("text"),
      { name: "answerKey", ...utf8 },
    ] as never,
  });
  const p = join(dir, name);
  writeFileSync(p, new Uint8Array(buf));
  return p;
}

describe("yusuke1997/mCSQA (README configs en/de/ja, choices {label[], text[]})", () => {
  test("de test: ids kept, five choices, answerKey as the letter of its position", async () => {
    const r = await loadExamples({ path: MCSQA, task: "reasoning", lang: "de" });
    assert.equal(r.source.schema, "yusuke1997/mCSQA");
    assert.equal(r.source.config, "de");
    assert.deepEqual(r.examples, [
      {
        id: "d6c7d8",
        lang: "de",
        question: "Was braucht eine Pflanze zum Wachsen?",
        choices: ["Lärm", "Plastik", "Dunkelheit", "Sand", "Wasser"],
        answer: "E",
      },
      { id: "d9e0f1", lang: "de", question: "Wo landet ein Flugzeug?", choices: ["Hafen", "Flughafen", "Keller", "Küche", "Wald"], answer: "B" },
    ]);
  });

  test("ja train", async () => {
    const r = await loadExamples({ path: MCSQA, task: "reasoning", lang: "ja", split: "train" });
    assert.deepEqual(r.examples, [
      { id: "j1a2b3", lang: "ja", question: "雨の日に使うものは何ですか？", choices: ["傘", "扇子", "枕", "鍋", "鏡"], answer: "A" },
    ]);
  });

  test("a choice list of the wrong length, and an answer key outside the labels", async () => {
    const four = mcsqaFile("four.parquet", ["A", "B", "C", "D"], ["a", "b", "c", "d"], "A");
    await rejectsMerglot(
      loadExamples({ path: four, task: "reasoning", lang: "en" }),
      "data.choices",
      /four\.parquet row 0 field "choices\.text": 4 choices, expected 5/,
    );
    const badKey = mcsqaFile("key.parquet", ["A", "B", "C", "D", "E"], ["a", "b", "c", "d", "e"], "F");
    await rejectsMerglot(
      loadExamples({ path: badKey, task: "reasoning", lang: "en" }),
      "data.label",
      /key\.parquet row 0 field "answerKey": answer "F" is outside the choice labels \(A, B, C, D, E\)/,
    );
  });

  test("a corrupt Parquet file is named", async () => {
    mkdirSync(join(dir, "snap", "en"), { recursive: true });
    const good = join(MCSQA, "en", "test-00000-of-00001.parquet");
    const bytes = readFileSync(good);
    // Truncated: the footer is gone.
    const cut = join(dir, "cut.parquet");
    writeFileSync(cut, bytes.subarray(0, bytes.length - 20));
    await rejectsMerglot(loadExamples({ path: cut, task: "reasoning", lang: "en" }), "data.parquet", /cut\.parquet: not a readable Parquet file/);
    // Footer intact, page bytes damaged (after the 4-byte magic, inside the first column chunk).
    const bent = Buffer.from(bytes);
    for (let i = 8; i < 40; i++) bent[i] = 0xff;
    const damaged = join(dir, "snap", "en", "test-00000-of-00001.parquet");
    writeFileSync(damaged, bent);
    copyFileSync(join(MCSQA, "en", "train-00000-of-00001.parquet"), join(dir, "snap", "en", "train-00000-of-00001.parquet"));
    await rejectsMerglot(
      loadExamples({ path: join(dir, "snap"), task: "reasoning", lang: "en" }),
      "data.parquet",
      /test-00000-of-00001\.parquet: not a readable Parquet file/,
    );
  });
});
