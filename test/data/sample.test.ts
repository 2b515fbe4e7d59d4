import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadExamples } from "../../src/data/index.js";
import { mulberry32 } from "../helpers/rand.js";

const dir = mkdtempSync(join(tmpdir(), "merglot-data-sample-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const LABELS = ["positive", "neutral", "negative"];
const rows = Array.from({ length: 60 }, (_, i) => ({ id: `r${i}`, lang: "en", text: `review number ${i}`, label: LABELS[i % 3]! }));

function write(name: string, rs: object[]): string {
  const p = join(dir, name);
  writeFileSync(p, rs.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return p;
}

/**
 * The documented procedure, written out naively: key = SHA-256 of "merglot-sample-v1\n<seed>\n" + the
 * example without its id as JSON with sorted keys; take the n smallest keys, in key order.
 */
function reference(seed: number, n: number): string[] {
  const keyed = rows.map((r) => {
    const content = `{"label":${JSON.stringify(r.label)},"lang":"en","text":${JSON.stringify(r.text)}}`;
    return { id: r.id, key: createHash("sha256").update(`merglot-sample-v1\n${seed}\n${content}`).digest("hex") };
  });
  keyed.sort((a, b) => (a.key < b.key ? -1 : 1));
  return keyed.slice(0, n).map((k) => k.id);
}

describe("seeded selection (limit)", () => {
  const ordered = write("ordered.jsonl", rows);
  const rand = mulberry32(7);
  const shuffled = [...rows];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  const reordered = write("reordered.jsonl", shuffled);

  test("matches the documented procedure", async () => {
    for (const seed of [0, 1, 12345]) {
      const r = await loadExamples({ path: ordered, task: "sentiment", limit: 10, seed });
      assert.deepEqual(
        r.examples.map((e) => e.id),
        reference(seed, 10),
      );
    }
  });

  test("the same rows whatever the file order; larger limits extend smaller ones", async () => {
    const a = await loadExamples({ path: ordered, task: "sentiment", limit: 15, seed: 3 });
    const b = await loadExamples({ path: reordered, task: "sentiment", limit: 15, seed: 3 });
    assert.deepEqual(a.examples, b.examples);
    assert.equal(a.source.sha256, b.source.sha256);
    const small = await loadExamples({ path: ordered, task: "sentiment", limit: 5, seed: 3 });
    assert.deepEqual(small.examples, a.examples.slice(0, 5));
  });

  test("another seed, another selection; a limit above the row count gives every row", async () => {
    const s0 = await loadExamples({ path: ordered, task: "sentiment", limit: 10, seed: 0 });
    const s1 = await loadExamples({ path: ordered, task: "sentiment", limit: 10, seed: 1 });
    assert.notDeepEqual(s0.examples.map((e) => e.id).sort(), s1.examples.map((e) => e.id).sort());
    const all = await loadExamples({ path: ordered, task: "sentiment", limit: 1000 });
    assert.equal(all.examples.length, 60);
    assert.deepEqual(all.examples.map((e) => e.id), reference(0, 60));
  });

  test("streaming selection over more rows than it keeps (bounded memory) still matches", async () => {
    const many = Array.from({ length: 3000 }, (_, i) => ({ id: `m${i}`, lang: "en", text: `row ${i}`, label: "neutral" }));
    const p = write("many.jsonl", many);
    const keyOf = (r: { text: string }) =>
      createHash("sha256")
        .update(`merglot-sample-v1\n9\n{"label":"neutral","lang":"en","text":${JSON.stringify(r.text)}}`)
        .digest("hex");
    const expected = [...many].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1)).slice(0, 3).map((r) => r.id);
    const r = await loadExamples({ path: p, task: "sentiment", limit: 3, seed: 9 });
    assert.deepEqual(r.examples.map((e) => e.id), expected);
  });
});
