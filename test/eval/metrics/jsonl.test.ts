import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  checkAligned,
  goldField,
  labelField,
  readJsonl,
  stringField,
} from "../../../src/eval/metrics/jsonl.js";
import { MerglotError } from "../../../src/errors.js";

const dir = mkdtempSync(join(tmpdir(), "merglot-jsonl-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe("JSONL input", () => {
  test("one object per line; blank lines and CRLF are fine; line numbers are kept", () => {
    const p = file("ok.jsonl", '{"text": "a"}\r\n\n{"text": "b", "id": 2}\n');
    const rs = readJsonl(p);
    assert.deepEqual(
      rs.map((r) => [r.line, stringField(r, "text")]),
      [
        [1, "a"],
        [3, "b"],
      ],
    );
  });

  test("errors name the file and line", () => {
    const bad = file("bad.jsonl", '{"text": "a"}\n{"text": \n');
    assert.throws(
      () => readJsonl(bad),
      (e: unknown) => e instanceof MerglotError && e.message.startsWith(`${bad}:2: not valid JSON`),
    );
    const arr = file("arr.jsonl", "[1, 2]\n");
    assert.throws(() => readJsonl(arr), new RegExp(`${arr}:1: expected a JSON object`));
    assert.throws(() => readJsonl(file("empty.jsonl", "\n\n")), /no records/);
    const rec = readJsonl(file("fields.jsonl", '{"label": true, "gold": -1}\n'))[0];
    assert.throws(() => stringField(rec, "text"), /fields.jsonl:1: missing field "text"/);
    assert.throws(() => labelField(rec, "label"), /field "label" must be a string or a number/);
    assert.throws(() => goldField(rec, "gold"), /must be a choice index/);
  });

  test("files must pair up, and ids, where both sides have them, must match", () => {
    const a = readJsonl(file("a.jsonl", '{"id": 1, "text": "x"}\n{"id": 2, "text": "y"}\n'));
    const b = readJsonl(file("b.jsonl", '{"id": 1, "text": "x"}\n{"id": 3, "text": "y"}\n'));
    const c = readJsonl(file("c.jsonl", '{"text": "x"}\n'));
    assert.throws(() => checkAligned(a, b), /record 2: .*a.jsonl:2 has id 2 but .*b.jsonl:2 has id 3/);
    assert.throws(() => checkAligned(a, c), /has 2 records but .* has 1/);
  });
});
