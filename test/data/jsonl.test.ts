import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clearSplitReads, loadExamples, splitReads } from "../../src/data/index.js";
import { rejectsMerglot } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "merglot-data-jsonl-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe("canonical JSONL", () => {
  test("rows become examples; ids default to <lang>-<split>-<row>; lang filters rows", async () => {
    const p = write(
      "mixed.jsonl",
      [
        '{"text":"Super Film!","label":"positive","lang":"de"}',
        "",
        '{"id":"x7","text":"Bad.","label":"Negative","lang":"en"}',
        '{"text":"Geht so.","label":"neutral","lang":"de"}',
      ].join("\r\n") + "\r\n",
    );
    const all = await loadExamples({ path: p, task: "sentiment" });
    assert.deepEqual(all.examples, [
      { id: "de-test-0", lang: "de", text: "Super Film!", label: "positive" },
      { id: "x7", lang: "en", text: "Bad.", label: "negative" },
      { id: "de-test-2", lang: "de", text: "Geht so.", label: "neutral" },
    ]);
    const de = await loadExamples({ path: p, task: "sentiment", lang: "de" });
    assert.deepEqual(
      de.examples.map((e) => e.id),
      ["de-test-0", "de-test-2"],
    );
    // The hash is over the canonical JSONL of the rows used, computed here independently.
    const jsonl =
      '{"id":"de-test-0","lang":"de","text":"Super Film!","label":"positive"}\n' +
      '{"id":"de-test-2","lang":"de","text":"Geht so.","label":"neutral"}\n';
    assert.equal(de.source.sha256, createHash("sha256").update(jsonl).digest("hex"));
    assert.equal(de.source.schema, "canonical");
    assert.deepEqual(de.source.files, [p]);
  });

  test("rows without a lang take the caller's; without either it is an error", async () => {
    const p = write("nolang.jsonl", '{"document":"Ein langer Text.","summary":"Kurz."}\n');
    const r = await loadExamples({ path: p, task: "summarization", lang: "de" });
    assert.deepEqual(r.examples, [{ id: "de-test-0", lang: "de", document: "Ein langer Text.", summary: "Kurz." }]);
    await rejectsMerglot(loadExamples({ path: p, task: "summarization" }), "data.lang", /nolang\.jsonl.*--lang/);
  });

  test("the split log records every split opened, and the listener hears it", async () => {
    clearSplitReads();
    const p = write("train.jsonl", '{"text":"ok","label":"neutral","lang":"en"}\n');
    const heard: string[] = [];
    await loadExamples({ path: p, task: "sentiment", split: "train", onSplitRead: (r) => heard.push(r.split) });
    assert.deepEqual(heard, ["train"]);
    assert.deepEqual(splitReads(), [{ path: p, config: undefined, split: "train", files: [p] }]);
    // A file named for the train split is never taken as the test split.
    await rejectsMerglot(loadExamples({ path: p, task: "sentiment" }), "data.split", /"train" split, not "test"/);
    assert.equal(splitReads().length, 1);
  });
});

describe("bad input", () => {
  test("unknown task", async () => {
    const p = write("t.jsonl", '{"text":"a","label":"positive","lang":"en"}\n');
    await rejectsMerglot(loadExamples({ path: p, task: "poetry" }), "data.task", /unknown task "poetry".*sentiment/);
  });

  test("missing column is named, with the columns found", async () => {
    const p = write("m.jsonl", '{"review":"a","stars":3,"lang":"en"}\n');
    await rejectsMerglot(
      loadExamples({ path: p, task: "sentiment" }),
      "data.column",
      /m\.jsonl: missing column "text" for task sentiment \(columns found: review, stars, lang;/,
    );
  });

  test("label outside the label set names file, line and field", async () => {
    const p = write("l.jsonl", '{"text":"a","label":"positive","lang":"en"}\n{"text":"b","label":"great","lang":"en"}\n');
    await rejectsMerglot(
      loadExamples({ path: p, task: "sentiment" }),
      "data.label",
      /l\.jsonl line 2 field "label": label "great" is outside the label set \(positive, neutral, negative\)/,
    );
  });

  test("a choice list of the wrong length", async () => {
    const p = write("c.jsonl", '{"question":"q?","choices":["a","b","c","d"],"answer":"A","lang":"en"}\n');
    await rejectsMerglot(
      loadExamples({ path: p, task: "reasoning" }),
      "data.choices",
      /c\.jsonl line 1 field "choices": 4 choices, expected 5/,
    );
  });

  test("an empty split", async () => {
    const p = write("e.jsonl", "\n\n");
    await rejectsMerglot(loadExamples({ path: p, task: "sentiment", lang: "en" }), "data.empty", /e\.jsonl: split "test" has no rows/);
    const q = write("f.jsonl", '{"text":"a","label":"positive","lang":"en"}\n');
    await rejectsMerglot(loadExamples({ path: q, task: "sentiment", lang: "ja" }), "data.empty", /no rows for language "ja"/);
  });

  test("a non-UTF-8 file", async () => {
    const p = write("latin1.jsonl", Buffer.from('{"text":"caf\xe9","label":"positive","lang":"fr"}\n', "latin1"));
    await rejectsMerglot(loadExamples({ path: p, task: "sentiment" }), "data.encoding", /latin1\.jsonl: not valid UTF-8/);
  });

  test("a line that is not JSON, and control characters never reach the message raw", async () => {
    const p = write("bad.jsonl", '{"text":"a","label":"positive","lang":"en"}\n{"text": oops\n');
    await rejectsMerglot(loadExamples({ path: p, task: "sentiment" }), "data.json", /bad\.jsonl line 2: not valid JSON/);
    const q = write("ctl.jsonl", '{"text":"a","label":"pos\\u001b[31m","lang":"en"}\n');
    await rejectsMerglot(loadExamples({ path: q, task: "sentiment" }), "data.label", /label "pos\\u001b\[31m"/);
  });
});
