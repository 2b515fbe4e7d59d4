import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { registerData } from "../../src/cli/data.js";
import { clearSplitReads, loadExamples, splitReads, type Example } from "../../src/data/index.js";
import { datasetFixture, rejectsMerglot } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "merglot-data-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function data(...args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  let out = "";
  registerData(program, (t) => {
    out += t;
  });
  await program.parseAsync(["node", "merglot", "data", ...args]);
  return out;
}

const readJsonl = (p: string): Example[] =>
  readFileSync(p, "utf8")
    .split("\n")
    .filter((l) => l)
    .map((l) => JSON.parse(l) as Example);

describe("merglot data", () => {
  test("writes train/validation/test JSONL and a manifest; train loads them back unchanged", async () => {
    const out = join(dir, "sentiment", "de");
    const text = await data("--task", "sentiment", "--data", datasetFixture("tyqiangz-multilingual-sentiments"), "--lang", "de", "-o", out, "--sizes", "5,5,5");
    assert.match(text, /^wrote .*: train 3, validation 1, test 2 \(tyqiangz\/multilingual-sentiments, config german, seed 0\)\n$/);
    assert.deepEqual(readdirSync(out).sort(), ["data_manifest.json", "test.jsonl", "train.jsonl", "validation.jsonl"]);
    assert.deepEqual(readJsonl(join(out, "validation.jsonl")), [
      { id: "de-validation-0", lang: "de", text: "Sehr hilfreicher Kundendienst, vielen Dank, vielen Dank!", label: "positive" },
    ]);
    assert.deepEqual(
      readJsonl(join(out, "train.jsonl")).map((e) => e.id).sort(),
      ["de-train-0", "de-train-1", "de-train-2"],
    );
    const manifest = JSON.parse(readFileSync(join(out, "data_manifest.json"), "utf8"));
    assert.equal(manifest.schema, "tyqiangz/multilingual-sentiments");
    assert.deepEqual(manifest.splits.test.count, 2);
    const back = await loadExamples({ path: out, task: "sentiment", split: "train" });
    assert.deepEqual(back.examples, readJsonl(join(out, "train.jsonl")));
    assert.equal(back.source.sha256, manifest.splits.train.sha256);
  });

  test("same inputs and seed: byte-identical files; refuses to overwrite without --force", async () => {
    const src = datasetFixture("clapAI-MultiLingualSentiment");
    const a = join(dir, "a");
    const b = join(dir, "b");
    await data("--task", "sentiment", "--data", src, "--lang", "de", "-o", a, "--sizes", "2,1,1", "--seed", "4");
    await data("--task", "sentiment", "--data", src, "--lang", "de", "-o", b, "--sizes", "2,1,1", "--seed", "4");
    for (const f of ["train.jsonl", "validation.jsonl", "test.jsonl"]) assert.deepEqual(readFileSync(join(a, f)), readFileSync(join(b, f)));
    await rejectsMerglot(
      data("--task", "sentiment", "--data", src, "--lang", "de", "-o", a, "--sizes", "2,1,1"),
      "output.exists",
      /output already exists \(use --force/,
    );
    await data("--task", "sentiment", "--data", src, "--lang", "de", "-o", a, "--sizes", "1,1,1", "--force");
    assert.equal(readJsonl(join(a, "train.jsonl")).length, 1);
  });

  test("bad input writes nothing: empty split, unknown task, bad --sizes", async () => {
    const src = datasetFixture("clapAI-MultiLingualSentiment");
    const out = join(dir, "none");
    await rejectsMerglot(
      data("--task", "sentiment", "--data", src, "--lang", "en", "-o", out, "--sizes", "1,1,1"),
      "data.empty",
      /split "test" has no rows for language "en"/,
    );
    await rejectsMerglot(data("--task", "poetry", "--data", src, "--lang", "de", "-o", out), "data.task", /unknown task "poetry"/);
    await rejectsMerglot(data("--task", "sentiment", "--data", src, "--lang", "de", "-o", out, "--sizes", "1,0,1"), "cli.flag", /--sizes/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith(".")),
      [],
    );
  });

  test("a dataset with only a train split: test, validation and train carved from it, disjoint", async () => {
    clearSplitReads();
    const out = join(dir, "summ");
    const text = await data("--task", "summarization", "--data", datasetFixture("esdurmus-wiki_lingua"), "--lang", "en", "-o", out, "--sizes", "1,1,1");
    assert.match(text, /test, validation carved from train/);
    const ids = ["test", "validation", "train"].map((s) => readJsonl(join(out, `${s}.jsonl`)).map((e) => e.id));
    // ids are en-train-<article>-<section>: three articles, each within one split, each split non-empty.
    const articles = ids.map((x) => new Set(x.map((id) => id.split("-")[2])));
    assert.ok(articles.every((a) => a.size === 1));
    assert.deepEqual(articles.map((a) => [...a][0]).sort(), ["0", "1", "2"]);
    const all = ids.flat();
    assert.equal(new Set(all).size, all.length);
    for (const id of all) assert.ok(["en-train-0-0", "en-train-0-1", "en-train-1-0", "en-train-2-0"].includes(id), id);
    assert.deepEqual(splitReads().map((r) => [r.config, r.split]), [["english", "train"]]);
  });

  test("the split log shows which splits a preparation read", async () => {
    clearSplitReads();
    await data("--task", "reasoning", "--data", datasetFixture("yusuke1997-mCSQA"), "--lang", "ja", "-o", join(dir, "mc"), "--sizes", "1,1,1");
    assert.deepEqual(splitReads().map((r) => [r.config, r.split]), [
      ["ja", "train"],
      ["ja", "validation"],
      ["ja", "test"],
    ]);
  });

  test("one file of rows without a split name: all three splits carved from it", async () => {
    const src = join(dir, "reviews-de.jsonl");
    const labels = ["positive", "neutral", "negative"];
    writeFileSync(
      src,
      Array.from({ length: 9 }, (_, i) => JSON.stringify({ id: `r${i}`, text: `Bewertung ${i}`, label: labels[i % 3] })).join("\n") + "\n",
    );
    const out = join(dir, "one-file");
    await data("--task", "sentiment", "--data", src, "--lang", "de", "-o", out, "--sizes", "5,2,2");
    const ids = ["test", "validation", "train"].map((s) => readJsonl(join(out, `${s}.jsonl`)).map((e) => e.id));
    assert.deepEqual(ids.map((x) => x.length), [2, 2, 5]);
    assert.deepEqual(ids.flat().sort(), ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"]);
    assert.ok(readJsonl(join(out, "train.jsonl")).every((e) => e.lang === "de"));
  });
});
