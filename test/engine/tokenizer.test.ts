import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loadTokenizer } from "../../src/engine/tokenizer.js";
import { writeByteBpeTokenizer, writeWordTokenizer } from "./fixtures.js";

describe("tokenizer.json through tokenizers.js", () => {
  const dir = mkdtempSync(join(tmpdir(), "merglot-tok-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("word-level: ids, BOS from the post-processor, special ids from tokenizer_config.json", () => {
    const d = join(dir, "wl");
    mkdirSync(d);
    writeWordTokenizer(d, ["hello", "world", "="]);
    const t = loadTokenizer(d);
    assert.deepEqual(t.encode("hello world ="), [1, 3, 4, 5]);
    assert.deepEqual(t.encode("world hello", false), [4, 3]);
    assert.equal(t.eosTokenId, 2);
    assert.equal(t.bosTokenId, 1);
    assert.equal(t.decode([1, 3, 4], true), "hello world");
    assert.throws(() => t.encode("hello mars"), /token "mars" of the text has no id/);
  });

  test("byte-level BPE applies the merges in order and decodes back to the text", () => {
    const d = join(dir, "bpe");
    mkdirSync(d);
    writeByteBpeTokenizer(d, [
      ["h", "e"],
      ["l", "l"],
      ["he", "ll"],
      ["hell", "o"],
      ["Ġ", "w"],
    ]);
    const t = loadTokenizer(join(d, "tokenizer.json"));
    // "hello" → 259 (after he, ll, hell, hello = 256..259); " w" → 260; then bytes o r l d
    assert.deepEqual(t.encode("hello world"), [259, 260, 111, 114, 108, 100]);
    assert.equal(t.decode(t.encode("hello world")), "hello world");
  });

  test("a missing tokenizer.json is named", () => {
    assert.throws(() => loadTokenizer(join(dir, "nope")), /nope: tokenizer\.json not found/);
  });
});
