import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { makeAdapter, tempDir, writeRecipe } from "../helpers/fixtures.js";

const tmp = tempDir();
after(() => tmp.cleanup());
const CLI = join(process.cwd(), "dist/src/cli/main.js");
const run = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd: tmp.dir });

makeAdapter(join(tmp.dir, "adapters", "en"), { seed: 1 });
makeAdapter(join(tmp.dir, "adapters", "de"), { seed: 2 });

test("merge RECIPE -o OUT --json writes a PEFT folder with a manifest", () => {
  const recipe = writeRecipe(
    tmp.dir,
    "r.yaml",
    "merge_method: knots_ties\nmodels:\n  - model: adapters/en\n  - model: adapters/de\nparameters: { density: 0.5 }\n",
  );
  const r = run("merge", recipe, "-o", "out", "--json", "--threads", "2");
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { modules: number; method: string; rank: { max: number } };
  assert.equal(s.modules, 3);
  assert.equal(s.method, "knots_ties");
  const cfg = JSON.parse(readFileSync(join(tmp.dir, "out", "adapter_config.json"), "utf8")) as Record<
    string,
    unknown
  >;
  assert.equal(cfg.r, cfg.lora_alpha, "scaling 1");
  assert.deepEqual(cfg.target_modules, ["down_proj", "q_proj", "v_proj"]);
  assert.equal(cfg.base_model_name_or_path, "tiny/base");
  const manifest = JSON.parse(readFileSync(join(tmp.dir, "out", "merge_manifest.json"), "utf8")) as {
    inputs: { sha256: string }[];
    version: string;
    timings: Record<string, number>;
  };
  assert.equal(manifest.inputs.length, 2);
  assert.match(manifest.inputs[0]!.sha256, /^[0-9a-f]{64}$/);
  assert.ok(manifest.timings.merge_ms! >= 0);
});

test("errors: one line naming the problem, non-zero exit, no stack trace, nothing written", () => {
  const recipe = writeRecipe(
    tmp.dir,
    "bad.yaml",
    "merge_method: ties\nmodels:\n  - model: adapters/en\n    parameters: { density: 2 }\n",
  );
  const r = run("merge", recipe, "-o", "bad-out");
  assert.equal(r.status, 1);
  assert.match(
    r.stderr,
    /^merglot: .*bad\.yaml: models\[0\]\.parameters\.density: density must lie in \(0, 1\]\n$/,
  );
  assert.equal(existsSync(join(tmp.dir, "bad-out")), false);
  const again = run("merge", join(tmp.dir, "r.yaml"), "-o", "out");
  assert.equal(again.status, 1);
  assert.match(again.stderr, /out: output already exists \(use --force to overwrite\)/);
  assert.equal(run("merge", join(tmp.dir, "r.yaml"), "-o", "out", "--force").status, 0);
  const threads = run("merge", join(tmp.dir, "r.yaml"), "-o", "x", "--threads", "0");
  assert.equal(threads.status, 1);
  assert.match(threads.stderr, /--threads: expected a positive integer/);
  const dbg = run("merge", join(tmp.dir, "missing.yaml"), "-o", "x", "--debug");
  assert.equal(dbg.status, 1);
  assert.match(dbg.stderr, /missing\.yaml: recipe file not found/);
  assert.match(dbg.stderr, /at /, "--debug shows the stack");
});

test("demo runs on the embedded data and writes its summary", () => {
  const r = run("demo", "-o", "demo-out");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /language-vector cosine similarity/);
  assert.match(r.stdout, /knots_ties/);
  const s = JSON.parse(readFileSync(join(tmp.dir, "demo-out", "summary.json"), "utf8")) as {
    languages: string[];
    merges: { cosine: number[] }[];
  };
  assert.deepEqual(s.languages, ["en", "de", "fr", "ja", "zh"]);
  // task arithmetic of five vectors keeps a positive share of each one
  for (const c of s.merges[0]!.cosine) assert.ok(c > 0 && c <= 1);
  assert.equal(run("demo", "-o", "demo-out").status, 1, "refuses to overwrite without --force");
});
