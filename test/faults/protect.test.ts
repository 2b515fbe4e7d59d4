/**
 * Data loss: `--force` (and even `--force-replace-foreign`) never replaces an input, a folder holding an
 * input, the current folder or one above it; `--force` replaces only what the same command wrote.
 * Every case runs the real CLI and proves the inputs byte-identical afterwards.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { tempDir } from "../helpers/fixtures.js";
import { cli, debris, lines, smallMergeSetup, treeHash } from "./helpers.js";

const tmp = tempDir("merglot-faults-");
after(() => tmp.cleanup());
const dir = tmp.dir;
smallMergeSetup(dir);
const inputs = () => treeHash(join(dir, "a"));
const before = inputs();

function refused(args: string[], why: RegExp): void {
  const r = cli(dir, ...args);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(lines(r.stderr).length, 1, r.stderr);
  assert.match(r.stderr, why);
  assert.deepEqual(inputs(), before, "the input adapters are byte-identical");
  assert.deepEqual(debris(dir), []);
}

describe("merge never replaces its inputs or the folders above the work", () => {
  test("the issue's reproduction: -o a --force with a/en, a/de as inputs", () => {
    refused(
      ["merge", "r.yaml", "-o", "a", "--force"],
      /^merglot: a: refusing to write the output there: it contains an input \(.*a\/en\)$/m,
    );
    refused(["merge", "r.yaml", "-o", "a", "--force-replace-foreign"], /it contains an input/);
  });

  test("an input itself, and a path inside an input", () => {
    refused(["merge", "r.yaml", "-o", "a/en", "--force"], /a\/en: refusing .*: it is an input/);
    refused(["merge", "r.yaml", "-o", "a/de", "--force-replace-foreign"], /it is an input/);
    refused(["merge", "r.yaml", "-o", "a/en/merged", "--force"], /it lies inside an input/);
    refused(["merge", "r.yaml", "-o", "r.yaml", "--force-replace-foreign"], /it is an input \(.*r\.yaml\)/);
  });

  test("symlinks are resolved on both sides", () => {
    symlinkSync("a/en", join(dir, "link-to-en"));
    symlinkSync("a", join(dir, "link-to-a"));
    refused(["merge", "r.yaml", "-o", "link-to-en", "--force-replace-foreign"], /it is an input/);
    refused(["merge", "r.yaml", "-o", "link-to-a", "--force-replace-foreign"], /it contains an input/);
    refused(["merge", "r.yaml", "-o", "link-to-a/en", "--force"], /it is an input/);
    // the recipe names its inputs through a symlinked folder; the real folder is protected all the same
    writeFileSync(
      join(dir, "via-link.yaml"),
      "merge_method: ties\nmodels: [{model: link-to-a/en}, {model: link-to-a/de}]\n",
    );
    refused(["merge", "via-link.yaml", "-o", "a", "--force-replace-foreign"], /it contains an input/);
  });

  test("the current folder, a folder above it, the root", () => {
    refused(
      ["merge", "r.yaml", "-o", ".", "--force"],
      /^merglot: \.: refusing .*: it is the current folder$/m,
    );
    refused(["merge", "r.yaml", "-o", "..", "--force-replace-foreign"], /it contains the current folder/);
    refused(["merge", "r.yaml", "-o", "/", "--force-replace-foreign"], /it is the root folder/);
  });
});

describe("--force replaces only merglot's own outputs", () => {
  test("a folder merglot did not write needs --force-replace-foreign", () => {
    const foreign = join(dir, "photos");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "holiday.jpg"), "precious");
    const old = treeHash(foreign);
    for (const flags of [[], ["--force"]]) {
      const r = cli(dir, "merge", "r.yaml", "-o", "photos", ...flags);
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr,
        "merglot: photos: already exists and is not a merglot merge output (no merge_manifest.json); " +
          "pass --force-replace-foreign to replace it\n",
      );
      assert.deepEqual(treeHash(foreign), old);
    }
    const r = cli(dir, "merge", "r.yaml", "-o", "photos", "--force-replace-foreign");
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(join(foreign, "merge_manifest.json"), "utf8").includes('"tool": "merglot"'));
    assert.deepEqual(debris(dir), []);
  });

  test("a merge output is replaced by --force, and only with it", () => {
    assert.equal(cli(dir, "merge", "r.yaml", "-o", "out").code, 0);
    const r = cli(dir, "merge", "r.yaml", "-o", "out");
    assert.equal(r.stderr, "merglot: out: output already exists (use --force to overwrite)\n");
    assert.equal(cli(dir, "merge", "r.yaml", "-o", "out", "--force").code, 0);
    assert.deepEqual(debris(dir), []);
    assert.deepEqual(inputs(), before);
  });

  test("convert, train and demo follow the same rules", () => {
    // convert: the output may not be the adapter; an existing non-GGUF file needs the stronger flag
    refused(["convert", "a/en", "--to", "gguf", "-o", "a/en", "--force"], /it is an input/);
    writeFileSync(join(dir, "notes.gguf"), "my notes");
    const c = cli(dir, "convert", "a/en", "--to", "gguf", "-o", "notes.gguf", "--force");
    assert.equal(c.code, 1);
    assert.match(
      c.stderr,
      /^merglot: notes\.gguf: already exists and is not a merglot convert output \(not a GGUF file\)/,
    );
    assert.equal(readFileSync(join(dir, "notes.gguf"), "utf8"), "my notes");
    // train: the base model, the data and the checkpoint folder are inputs (checked before training)
    refused(
      ["train", "--base", "a", "--data", "r.yaml", "-o", "a", "--force-replace-foreign"],
      /it is an input/,
    );
    refused(
      [
        "train",
        "--base",
        "a/en",
        "--data",
        "r.yaml",
        "-o",
        "t",
        "--checkpoint-dir",
        "t/ck",
        "--checkpoint-every",
        "1",
      ],
      /^merglot: t: refusing .*: it contains an input \(t\/ck\)$/m,
    );
    // demo: an existing folder that is not a study folder is not a demo output
    const d = cli(dir, "demo", "-o", "photos");
    assert.equal(d.code, 1);
    assert.match(d.stderr, /not a merglot demo output \(no study\.lock\.json\)/);
  });
});

describe("output problems are found before the work", () => {
  test("output.format gguf without a usable base config: one line naming the recipe, nothing written", () => {
    writeFileSync(
      join(dir, "g.yaml"),
      "merge_method: ties\nmodels: [{model: a/en}, {model: a/de}]\noutput: {format: gguf}\n",
    );
    const r = cli(dir, "merge", "g.yaml", "-o", "g.gguf");
    assert.equal(r.code, 1);
    assert.equal(lines(r.stderr).length, 1, r.stderr);
    assert.match(
      r.stderr,
      /^merglot: .*g\.yaml: output\.base: output\.format gguf needs the base model's config\.json .*set output\.base to the base model folder/,
    );
    assert.doesNotMatch(r.stderr, /\.tmp-/);
    assert.deepEqual(debris(dir), []);
    assert.equal(readdirSync(dir).includes("g.gguf"), false);
  });
});
