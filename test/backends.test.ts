/**
 * The optional backends, tested where they are really absent: a bare install of the built package (its
 * package.json, dist/src and data copied into node_modules/merglot of a temporary project, next to links to
 * the core dependencies only), so module resolution from merglot's files finds none of the five optional
 * packages, exactly as in a consumer's `npm install merglot`. (scripts/pack-test.sh does the same with the
 * real tarball from the registry's packages.)
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tempDir } from "./helpers/fixtures.js";

interface Manifest {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
}
const repo = process.cwd();
const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as Manifest;

// The tested versions, written out here (not read from src/backends.ts) so that a change there shows.
const OPTIONAL: Record<string, string> = {
  "node-llama-cpp": "3.22.1",
  "@huggingface/transformers": "4.3.1",
  "onnxruntime-node": "1.30.0",
  kuromoji: "0.1.2",
  "jieba-wasm": "2.4.0",
};

test("package.json: the five backends are optional peers (range from the tested version), dev-installed, not dependencies", () => {
  assert.deepEqual(Object.keys(pkg.peerDependencies).sort(), Object.keys(OPTIONAL).sort());
  for (const [name, version] of Object.entries(OPTIONAL)) {
    assert.equal(pkg.dependencies[name], undefined, `${name} must not be a dependency`);
    assert.equal(pkg.devDependencies[name], version, `${name}: the repo tests with ${version}`);
    assert.ok(
      [`^${version}`, `~${version}`].includes(pkg.peerDependencies[name]),
      `${name}: peer range ${pkg.peerDependencies[name]}`,
    );
    assert.equal(pkg.peerDependenciesMeta[name]?.optional, true, `${name}: optional`);
  }
});

// --- the bare install -------------------------------------------------------------------------------
const tmp = tempDir("merglot-bare-");
after(() => tmp.cleanup());
const app = join(tmp.dir, "app");
const installed = join(app, "node_modules", "merglot");
mkdirSync(installed, { recursive: true });
writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
cpSync(join(repo, "package.json"), join(installed, "package.json"));
cpSync(join(repo, "dist", "src"), join(installed, "dist", "src"), { recursive: true });
cpSync(join(repo, "data"), join(installed, "data"), { recursive: true });
for (const dep of Object.keys(pkg.dependencies)) {
  const link = join(app, "node_modules", dep);
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(join(repo, "node_modules", dep), link, "dir");
}
const CLI = join(installed, "dist", "src", "cli", "main.js");
const env = { ...process.env, NODE_PATH: "" };
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd: app, env });
/** Runs an ES module in the app (so `import … from "merglot"` resolves as a consumer's would). */
function script(name: string, code: string) {
  const file = join(app, name);
  writeFileSync(file, code);
  return spawnSync(process.execPath, [file], { encoding: "utf8", cwd: app, env });
}

function jsonl(name: string, rows: object[]): string {
  const p = join(app, name);
  writeFileSync(p, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return p;
}
const textRows = [{ text: "the cat sat on the mat" }, { text: "a dog ran" }];

test("bare install: the five backends really are absent", () => {
  const r = script(
    "resolve.mjs",
    `import { createRequire } from "node:module";
const require = createRequire(${JSON.stringify(join(installed, "dist", "src", "backends.js"))});
for (const name of ${JSON.stringify(Object.keys(OPTIONAL))}) {
  try { require.resolve(name + "/package.json"); console.log("present " + name); } catch { console.log("absent " + name); }
}`,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(
    r.stdout.trim().split("\n"),
    Object.keys(OPTIONAL).map((n) => `absent ${n}`),
  );
});

test("without backends: --version, merge of the demo adapters, inspect and score work", () => {
  const v = cli("--version");
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout.trim(), pkg.version);

  const m = cli("merge", join(installed, "data", "demo", "recipe.yaml"), "-o", "merged", "--json");
  assert.equal(m.status, 0, m.stderr);
  assert.equal((JSON.parse(m.stdout) as { method: string }).method, "knots_ties");
  assert.ok(existsSync(join(app, "merged", "adapter_model.safetensors")));

  const i = cli("inspect", join(app, "merged"));
  assert.equal(i.status, 0, i.stderr);
  assert.match(i.stdout, /^adapter +.*merged\nbase +merglot\/tiny-llama-demo\n/);

  const pred = jsonl("pred.jsonl", [{ label: "pos" }, { label: "neg" }, { label: "pos" }]);
  const ref = jsonl("ref.jsonl", [{ label: "pos" }, { label: "pos" }, { label: "pos" }]);
  const s = cli("score", "--metric", "accuracy", "--pred", pred, "--ref", ref, "--json");
  assert.equal(s.status, 0, s.stderr);
  assert.equal((JSON.parse(s.stdout) as { headline: { value: number } }).headline.value, 2 / 3);

  // English ROUGE needs no segmenter: identical texts score 1.
  const t = jsonl("texts.jsonl", textRows);
  const r = cli("score", "--metric", "rouge1", "--pred", t, "--ref", t, "--lang", "en", "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { headline: { value: number } }).headline.value, 1);
});

const HINT = "(add -g if merglot is installed globally)";

test("without jieba-wasm / kuromoji: Chinese and Japanese ROUGE say which package to install", () => {
  const t = jsonl("texts.jsonl", textRows);
  const zh = cli("score", "--metric", "rouge1", "--pred", t, "--ref", t, "--lang", "zh");
  assert.equal(zh.status, 1);
  assert.equal(zh.stdout, "");
  assert.equal(
    zh.stderr,
    "merglot: Chinese ROUGE with the multilingual tokenizer (jieba word segmentation) needs the optional " +
      "package jieba-wasm, which is not installed; install it next to merglot with: npm install " +
      `jieba-wasm@2.4.0 ${HINT}\n`,
  );
  const ja = cli("score", "--metric", "rouge1", "--pred", t, "--ref", t, "--lang", "ja");
  assert.equal(ja.status, 1);
  assert.equal(
    ja.stderr,
    "merglot: Japanese ROUGE with the multilingual tokenizer (kuromoji word segmentation) needs the optional " +
      `package kuromoji, which is not installed; install it next to merglot with: npm install kuromoji@0.1.2 ${HINT}\n`,
  );
  // The rouge-score tokenizer needs neither.
  const plain = cli(
    "score",
    "--metric",
    "rouge1",
    "--pred",
    t,
    "--ref",
    t,
    "--lang",
    "ja",
    "--tokenizer",
    "rouge-score",
  );
  assert.equal(plain.status, 0, plain.stderr);
});

test("without @huggingface/transformers: BERTScore with --model says which package to install", () => {
  const t = jsonl("texts.jsonl", textRows);
  const r = cli(
    "score",
    "--metric",
    "bertscore",
    "--pred",
    t,
    "--ref",
    t,
    "--lang",
    "en",
    "--model",
    join(app, "no-model"),
  );
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "");
  assert.equal(
    r.stderr,
    "merglot: BERTScore with a transformers.js model needs the optional package @huggingface/transformers, " +
      "which is not installed; install it next to merglot with: npm install @huggingface/transformers@4.3.1 " +
      `--onnxruntime-node-install=skip ${HINT}\n`,
  );
});

test("without node-llama-cpp: the library's LlamaCppRunner rejects with one MerglotError", () => {
  const r = script(
    "llama.mjs",
    `import { LlamaCppRunner, MerglotError } from "merglot";
try { await LlamaCppRunner.open({ model: "model.gguf" }); console.log("opened"); }
catch (e) { console.log(JSON.stringify({ merglot: e instanceof MerglotError, code: e.code, message: e.message })); }`,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    merglot: true,
    code: "backend.missing",
    message:
      "the llama.cpp runner needs the optional package node-llama-cpp, which is not installed; install it " +
      `next to merglot with: npm install node-llama-cpp@3.22.1 ${HINT}`,
  });
});

test("without onnxruntime-node: products fall back to JavaScript (same values), forcing the native kernel says why", () => {
  const gemm = join(installed, "dist", "src", "tensor", "gemm.js");
  const r = script(
    "gemm.mjs",
    `import { configureGemm, gemmBackendInfo, gemmF64 } from ${JSON.stringify(gemm)};
const m = 40, k = 50, n = 30; // above the native threshold, so only the missing package keeps it in JS
const a = Float64Array.from({ length: m * k }, (_, i) => ((i * 7) % 13) - 6);
const b = Float64Array.from({ length: k * n }, (_, i) => ((i * 5) % 11) - 5);
let maxErr = 0;
const y = gemmF64(m, n, k, a, b);
for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
  let s = 0; for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
  maxErr = Math.max(maxErr, Math.abs(s - y[i * n + j]));
}
let forced = null;
try { configureGemm({ backend: "ort" }); } catch (e) { forced = { name: e.name, message: e.message }; }
console.log(JSON.stringify({ info: gemmBackendInfo(), maxErr, forced }));`,
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    info: { backend: string; reason: string };
    maxErr: number;
    forced: { name: string; message: string };
  };
  const why =
    "the native matrix kernel needs the optional package onnxruntime-node, which is not installed; install " +
    `it next to merglot with: npm install onnxruntime-node@1.30.0 --onnxruntime-node-install=skip ${HINT}`;
  assert.equal(out.info.backend, "js");
  assert.equal(out.info.reason, `onnxruntime unavailable: ${why}`);
  assert.equal(out.maxErr, 0, "small integers: the product is exact");
  assert.deepEqual(out.forced, { name: "MerglotError", message: `configureGemm: ${why}` });
});

test("a backend that is present but cannot load is reported as broken, not as missing", () => {
  // A kuromoji whose own dependency is missing: the import fails with "Cannot find module" for another name.
  const fake = join(app, "node_modules", "kuromoji");
  mkdirSync(fake, { recursive: true });
  writeFileSync(
    join(fake, "package.json"),
    JSON.stringify({ name: "kuromoji", version: "0.1.2", main: "index.js" }),
  );
  writeFileSync(join(fake, "index.js"), 'module.exports = require("kuromoji-missing-dependency");\n');
  const t = jsonl("texts.jsonl", textRows);
  const r = cli("score", "--metric", "rouge1", "--pred", t, "--ref", t, "--lang", "ja");
  assert.equal(r.status, 1);
  assert.equal(
    r.stderr,
    "merglot: Japanese ROUGE with the multilingual tokenizer (kuromoji word segmentation): the optional package " +
      "kuromoji is installed but cannot be loaded (Cannot find module 'kuromoji-missing-dependency'); reinstall " +
      "it with: npm install kuromoji@0.1.2\n",
  );
});
