import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { epochOrder, makeBatches } from "../../src/train/batching.js";
import { readPromptCompletionJsonl, readTextDocuments } from "../../src/train/data.js";

const ex = (ids: number[], scoreFrom: number) => ({ ids, scoreFrom });

describe("batching", () => {
  test("padding: one example per row, targets only on completion tokens, pads unscored", () => {
    const [b] = makeBatches([ex([1, 5, 6, 7], 2), ex([1, 8, 9], 2)], {
      batchSize: 2,
      seqLen: 16,
      mode: "padding",
    }).map((x) => x.batch);
    assert.equal(b.seq, 3);
    assert.deepEqual(Array.from(b.tokens), [1, 5, 6, 1, 8, 0]);
    // row 0 predicts 5 (prompt: unscored), 6, 7; row 1 predicts 8 (unscored), 9, then padding
    assert.deepEqual(Array.from(b.targets), [-1, 6, 7, -1, 9, -1]);
    assert.equal(b.segments, null);
  });

  test("packing: examples end to end with their own positions and segments; over-long examples are cut", () => {
    const batches = makeBatches([ex([1, 2, 3], 1), ex([4, 5, 6], 2), ex([7, 8, 9, 10, 11, 12, 13], 1)], {
      batchSize: 4,
      seqLen: 5,
      mode: "packing",
    });
    const [tb] = batches;
    const b = tb.batch;
    assert.equal(b.batch, 2);
    assert.equal(b.seq, 5);
    assert.deepEqual(Array.from(b.tokens), [1, 2, 4, 5, 0, 7, 8, 9, 10, 11]);
    assert.deepEqual(Array.from(b.positions.subarray(0, 4)), [0, 1, 0, 1]);
    assert.deepEqual(Array.from(b.segments!), [0, 0, 1, 1, -1, 0, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(b.targets), [2, 3, -1, 6, -1, 8, 9, 10, 11, 12]);
    assert.equal(tb.tokens, 9);
    assert.equal(tb.scored, 8);
  });

  test("epoch order is a seeded permutation that changes between epochs", () => {
    const a = epochOrder(20, 3, 0);
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.deepEqual(epochOrder(20, 3, 0), a);
    assert.notDeepEqual(epochOrder(20, 3, 1), a);
  });
});

describe("data files", () => {
  test("JSONL errors name the file and line", () => {
    const dir = mkdtempSync(join(tmpdir(), "merglot-data-"));
    try {
      const f = join(dir, "d.jsonl");
      writeFileSync(f, '{"prompt":"a","completion":"b"}\n\n{"prompt":"a"}\n');
      assert.throws(
        () => readPromptCompletionJsonl(f),
        /d\.jsonl:3: expected an object with string fields "prompt" and "completion"/,
      );
      writeFileSync(f, '{"prompt":"a","completion":"b"}\n{oops\n');
      assert.throws(() => readPromptCompletionJsonl(f), /d\.jsonl:2: not valid JSON/);
      const t = join(dir, "t.txt");
      writeFileSync(t, "one doc\nstill one\n\n\ntwo\n");
      assert.deepEqual(readTextDocuments(t), ["one doc\nstill one", "two"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
