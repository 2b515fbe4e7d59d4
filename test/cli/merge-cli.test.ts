import { test, after } from "node:test";
import { DEMO_DIR } from "../../src/workflow/demo.js";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
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

// The demo itself (the whole study, minutes) runs in .ci/run as `npm run demo`; here: its plan is the study's.
test("the demo study plans every language, task, baseline, merge and ablation", () => {
  const r = run("study", "run", join(DEMO_DIR, "study.yaml"), "-o", "demo-plan", "--dry-run");
  assert.equal(r.status, 0, r.stderr);
  const ids = r.stdout
    .split("\n")
    .filter((l) => /^\s+(run|cached)\s/.test(l))
    .map((l) => l.trim().split(/\s+/)[1]!);
  for (const task of ["sentiment", "reasoning"])
    for (const lang of ["en", "de", "fr", "ja", "zh"]) {
      assert.ok(ids.includes(`train/${task}/${lang}`), `train/${task}/${lang}`);
      assert.ok(ids.includes(`evaluate/${task}/${lang}/combined`), `evaluate/${task}/${lang}/combined`);
      for (const m of ["ties", "knots_ties", "dare_ties", "knots_dare_ties"])
        for (const d of ["1", "0.5"])
          assert.ok(
            ids.includes(`evaluate/${task}/${lang}/merged/${m}/w1-d${d}`),
            `${task} ${lang} ${m} d${d}`,
          );
    }
  assert.ok(
    ids.includes("train/sentiment/combined/update"),
    "the update ablation retrains the combined adapter",
  );
  assert.ok(ids.some((id) => id.startsWith("merge/sentiment/cluster/east_asian/")));
  assert.ok(ids.includes("analyse/similarity/reasoning"));
});

test("a corrupt or missing WebAssembly kernel: a warning naming the file, and the same merged bytes", () => {
  // a copy of the built tree (inside dist/, so the packages still resolve), whose kernel files are damaged
  const root = join(process.cwd(), "dist", `.kernel-test-${process.pid}`);
  after(() => rmSync(root, { recursive: true, force: true }));
  cpSync(join(process.cwd(), "dist", "src"), join(root, "dist", "src"), { recursive: true });
  copyFileSync(join(process.cwd(), "package.json"), join(root, "package.json"));
  const wasm = join(root, "dist", "src", "wasm");
  const recipe = writeRecipe(
    tmp.dir,
    "w.yaml",
    "merge_method: knots_ties\nmodels:\n  - model: adapters/en\n  - model: adapters/de\nparameters: { density: 0.5 }\n",
  );
  const runWith = (main: string, out: string, env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [main, "merge", recipe, "-o", out], {
      encoding: "utf8",
      cwd: tmp.dir,
      env: { ...process.env, ...env },
    });
  const bytes = (out: string) => readFileSync(join(tmp.dir, out, "adapter_model.safetensors"));
  const good = runWith(CLI, "w-good");
  assert.equal(good.status, 0, good.stderr);
  assert.doesNotMatch(good.stderr, /WebAssembly/);

  const copied = join(root, "dist", "src", "cli", "main.js");
  writeFileSync(join(wasm, "ties.wasm"), "not a module");
  const corrupt = runWith(copied, "w-corrupt");
  assert.equal(corrupt.status, 0, corrupt.stderr);
  const file = join(wasm, "ties.wasm").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  assert.match(
    corrupt.stderr,
    new RegExp(`^merglot: warning: WebAssembly kernel ${file} not usable \\(.+\\): reinstall merglot`, "m"),
  );
  assert.deepEqual(bytes("w-corrupt"), bytes("w-good"));

  unlinkSync(join(wasm, "ties.wasm"));
  const missing = runWith(copied, "w-missing");
  assert.equal(missing.status, 0, missing.stderr);
  assert.match(missing.stderr, new RegExp(`warning: WebAssembly kernel ${file} not usable \\(missing\\)`));
  assert.deepEqual(bytes("w-missing"), bytes("w-good"));

  // switched off on purpose: no warning
  const off = runWith(copied, "w-off", { MERGLOT_WASM: "js" });
  assert.equal(off.status, 0, off.stderr);
  assert.doesNotMatch(off.stderr, /WebAssembly/);
});
