import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describeDataset, loadExamples } from "../../src/data/index.js";
import { globToRegExp } from "../../src/data/glob.js";
import { inferSplits, splitFromName } from "../../src/data/layout.js";
import { datasetFixture, rejectsMerglot } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "merglot-data-layout-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function tree(root: string, files: Record<string, string>): string {
  for (const [rel, text] of Object.entries(files)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
  return root;
}

const row = (text: string, label = "neutral", lang = "en") => JSON.stringify({ text, label, lang }) + "\n";
const obj = (m: Map<string, string[]>) => Object.fromEntries(m);

describe("split resolution as the hub does it", () => {
  test("keyword rule: delimited by non-word characters, synonyms map to the three splits", () => {
    assert.equal(splitFromName("train.csv"), "train");
    assert.equal(splitFromName("my_train_file.csv"), "train");
    assert.equal(splitFromName("train1.csv"), "train");
    assert.equal(splitFromName("trainfile.csv"), undefined);
    assert.equal(splitFromName("dev.jsonl"), "validation");
    assert.equal(splitFromName("valid"), "validation");
    assert.equal(splitFromName("multilingual-sentiments-test.parquet"), "test");
    assert.equal(splitFromName("eval.tsv"), "test");
    assert.equal(splitFromName("contest.csv"), undefined);
  });

  test("rules in order: one folder down, shards, keywords in folders then names, else train", () => {
    assert.deepEqual(obj(inferSplits(["train/0000.parquet", "test/0000.parquet", "partial-test/0000.parquet"])), {
      train: ["train/0000.parquet"],
      test: ["test/0000.parquet"],
      "partial-test": ["partial-test/0000.parquet"],
    });
    assert.deepEqual(
      obj(inferSplits(["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/random-00000-of-00001.parquet", "notes.csv"])),
      { train: ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"], random: ["data/random-00000-of-00001.parquet"] },
    );
    assert.deepEqual(obj(inferSplits(["data/training/a.csv", "data/eval/b.csv", "data/x.csv"])), {
      train: ["data/training/a.csv"],
      test: ["data/eval/b.csv"],
    });
    assert.deepEqual(obj(inferSplits(["a_train.csv", "b-dev.csv", "c.csv"])), { train: ["a_train.csv"], validation: ["b-dev.csv"] });
    assert.deepEqual(obj(inferSplits(["data.csv", "more.csv"])), { train: ["data.csv", "more.csv"] });
  });

  test("glob patterns of data_files", () => {
    assert.ok(globToRegExp("data/train-*").test("data/train-00000-of-00003.parquet"));
    assert.ok(!globToRegExp("data/train-*").test("data/sub/train-0.parquet"));
    assert.ok(globToRegExp("**/test/*.parquet").test("a/b/test/0000.parquet"));
    assert.ok(globToRegExp("**/test/*.parquet").test("test/0000.parquet"));
    assert.ok(globToRegExp("en/[tv]*.jsonl").test("en/valid.jsonl"));
    assert.ok(!globToRegExp("en/[!tv]*.jsonl").test("en/valid.jsonl"));
    assert.ok(globToRegExp("x?.csv").test("x1.csv") && !globToRegExp("x?.csv").test("x/.csv"));
  });

  test("README data_files in all its forms, data_dir, and the default config", async () => {
    const root = tree(join(dir, "card"), {
      "README.md":
        "---\nconfigs:\n" +
        "  - config_name: one\n    data_files: one/all.jsonl\n" +
        "  - config_name: list\n    data_files:\n      - two/a.jsonl\n      - two/b.jsonl\n" +
        "  - config_name: map\n    default: true\n    data_files:\n      train: three/tr-*.jsonl\n      test: [three/te.jsonl]\n" +
        "  - config_name: dir\n    data_dir: four\n---\n# card\n",
      "one/all.jsonl": row("one"),
      "two/a.jsonl": row("a"),
      "two/b.jsonl": row("b"),
      "three/tr-1.jsonl": row("t1"),
      "three/tr-2.jsonl": row("t2"),
      "three/te.jsonl": row("te"),
      "four/test.jsonl": row("four-test"),
      "four/train.jsonl": row("four-train"),
      ".hidden/test.jsonl": row("never"),
    });
    assert.deepEqual(describeDataset(root), {
      configs: { one: ["train"], list: ["train"], map: ["test", "train"], dir: ["test", "train"] },
      defaultConfig: "map",
    });
    const texts = async (o: { config?: string; split?: string }) =>
      (await loadExamples({ path: root, task: "sentiment", ...o })).examples.map((e) => e.text);
    assert.deepEqual(await texts({ config: "list", split: "train" }), ["a", "b"]);
    assert.deepEqual(await texts({ split: "train" }), ["t1", "t2"]); // the default config
    assert.deepEqual(await texts({ config: "dir" }), ["four-test"]);
  });

  test("a README without configs falls back to folders; hidden and metadata files are not data", async () => {
    const root = tree(join(dir, "plain"), {
      "README.md": "---\nlicense: mit\n---\n",
      "dataset_infos.json": "{}",
      "test.jsonl": row("x"),
      ".cache/test.jsonl": row("never"),
      "__pycache__/test.jsonl": row("never"),
    });
    assert.deepEqual(describeDataset(root).configs, { default: ["test"] });
    const r = await loadExamples({ path: root, task: "sentiment" });
    assert.deepEqual(r.examples, [{ id: "en-test-0", lang: "en", text: "x", label: "neutral" }]);
  });

  test("a folder-named config whose language differs from the one asked for is refused", async () => {
    const root = tree(join(dir, "onelang"), { "german/test.jsonl": JSON.stringify({ text: "x", label: "neutral" }) + "\n" });
    await rejectsMerglot(loadExamples({ path: root, task: "sentiment", lang: "fr" }), "data.config", /config "german" holds language "de", not "fr"/);
    const ok = await loadExamples({ path: root, task: "sentiment", lang: "de" });
    assert.deepEqual(ok.examples, [{ id: "de-test-0", lang: "de", text: "x", label: "neutral" }]);
  });
});

describe("a folder of per-split files in JSONL, CSV and TSV", () => {
  const CANON = datasetFixture("canonical-folder");
  test("each split from its own file and format; CSV quoting and embedded newlines", async () => {
    const load = async (split: string) => (await loadExamples({ path: CANON, task: "sentiment", split })).examples;
    assert.deepEqual(await load("train"), [
      { id: "s1", lang: "fr", text: "Un service impeccable.", label: "positive" },
      { id: "s2", lang: "fr", text: "La chambre était sale.", label: "negative" },
    ]);
    assert.deepEqual(await load("validation"), [
      { id: "v1", lang: "fr", text: "Correct, sans plus.", label: "neutral" },
      { id: "v2", lang: "fr", text: "Deux lignes:\nbien reçu.", label: "positive" },
    ]);
    assert.deepEqual(await load("test"), [
      { id: "t1", lang: "fr", text: "Le train partait à midi.", label: "neutral" },
      { id: "t2", lang: "fr", text: "Quel désastre !", label: "negative" },
    ]);
  });

  test("column mapping for a custom layout, and a custom task through it", async () => {
    const p = tree(join(dir, "custom"), {
      "reviews.csv": "review_body,stars_label,language\n\"Bon, mais cher.\",neutral,fr\nTop!,positive,fr\n",
    }) + "/reviews.csv";
    const r = await loadExamples({ path: p, task: "sentiment", columns: { text: "review_body", label: "stars_label", lang: "language" } });
    assert.deepEqual(r.examples, [
      { id: "fr-test-0", lang: "fr", text: "Bon, mais cher.", label: "neutral" },
      { id: "fr-test-1", lang: "fr", text: "Top!", label: "positive" },
    ]);
    const custom = await loadExamples({ path: p, task: "tone", lang: "fr", columns: { sentence: "review_body" } });
    assert.deepEqual(custom.examples, [
      { id: "fr-test-0", lang: "fr", sentence: "Bon, mais cher." },
      { id: "fr-test-1", lang: "fr", sentence: "Top!" },
    ]);
    // a custom task's file with its own id and lang columns keeps them through the mapping
    const own = tree(join(dir, "custom-ids"), {
      "t.jsonl": '{"id":"r-17","lang":"de","body":"Gut."}\n{"id":"r-18","lang":"fr","body":"Bien."}\n',
    }) + "/t.jsonl";
    const mine = await loadExamples({ path: own, task: "tone", lang: "de", columns: { sentence: "body" } });
    assert.deepEqual(mine.examples, [{ id: "r-17", lang: "de", sentence: "Gut." }]);
    await rejectsMerglot(
      loadExamples({ path: p, task: "sentiment", columns: { text: "body" } }),
      "data.column",
      /reviews\.csv line 2: missing column "body" \(mapped to text; columns found: review_body, stars_label, language\)/,
    );
  });

  test("a CSV row with the wrong number of fields, and a non-UTF-8 CSV", async () => {
    const bad = tree(join(dir, "badcsv"), { "test.csv": "text,label,lang\nok,neutral,en\nextra,neutral,en,oops\n" });
    await rejectsMerglot(loadExamples({ path: bad, task: "sentiment" }), "data.csv", /test\.csv line 3: not valid CSV/);
    const p = join(dir, "latin.tsv");
    writeFileSync(p, Buffer.from("text\tlabel\tlang\nd\xe9j\xe0 vu\tneutral\tfr\n", "latin1"));
    await rejectsMerglot(loadExamples({ path: p, task: "sentiment" }), "data.encoding", /latin\.tsv: not valid UTF-8/);
  });
});
