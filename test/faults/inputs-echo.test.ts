/**
 * Messages never echo file contents: a config, data or predictions file that is a symlink to a secret
 * non-JSON file (as /etc/shadow would be) gives an error naming the file and a position, never its bytes.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_TINY, randomWeights, writeTinyModel } from "../parity/tiny-llama.js";
import { makeAdapter, tempDir, writeRecipe } from "../helpers/fixtures.js";
import { assertOneClearLine, listTree, runCli } from "./inputs-cli.js";

const tmp = tempDir("merglot-echo-");
after(() => tmp.cleanup());

const SECRET = join(tmp.dir, "secret");
writeFileSync(SECRET, "root:$6$TOPSECRET$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n");
/** Nothing of the secret may appear: not its first bytes, not the quoted snippet Node's JSON.parse makes. */
function assertNoEcho(stderr: string): void {
  for (const piece of ["root", "TOPSECRET", "$6$", "daemon", "19000"]) {
    assert.ok(!stderr.includes(piece), `message echoes "${piece}": ${stderr}`);
  }
}

test("adapter_config.json symlinked to a secret file: inspect and merge name the file and position only", () => {
  const dir = join(tmp.dir, "adapter");
  makeAdapter(dir, { seed: 1 });
  const cfg = join(dir, "adapter_config.json");
  // replace the config by a symlink to the secret
  unlinkSync(cfg);
  symlinkSync(SECRET, cfg);
  const r = runCli(tmp.dir, "inspect", dir);
  assertOneClearLine(
    r,
    /adapter\/adapter_config\.json: not valid JSON \(unexpected character at line 1, column 1\)/,
  );
  assertNoEcho(r.stderr);
  makeAdapter(join(tmp.dir, "other"), { seed: 2 });
  const recipe = writeRecipe(
    tmp.dir,
    "r.yaml",
    "merge_method: ties\nmodels:\n  - model: other\n  - model: adapter\n",
  );
  const before = listTree(tmp.dir);
  const m = runCli(tmp.dir, "merge", recipe, "-o", "out");
  assertOneClearLine(m, /adapter_config\.json: not valid JSON/);
  assertNoEcho(m.stderr);
  assert.deepEqual(listTree(tmp.dir), before);
  if (existsSync("/etc/passwd")) {
    unlinkSync(cfg);
    symlinkSync("/etc/passwd", cfg);
    const p = runCli(tmp.dir, "inspect", dir);
    assertOneClearLine(p, /adapter_config\.json: not valid JSON \(.* at line 1, column \d+\)/);
    assert.ok(!p.stderr.includes("root"), p.stderr);
  }
});

test("a safetensors header that is not JSON is not quoted", () => {
  const file = join(tmp.dir, "bad.safetensors");
  // `{`, the quoted key (24 characters), `:` and a space: the bare word starts at column 28
  const header = '{"root:$6$TOPSECRET$hash": daemon}';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(file, Buffer.concat([len, Buffer.from(header)]));
  const r = runCli(tmp.dir, "inspect", file);
  assertOneClearLine(
    r,
    /bad\.safetensors: header: not valid JSON \(unexpected character at line 1, column 28\)/,
  );
  assertNoEcho(r.stderr);
});

test("model config.json, training data and predictions symlinked to a secret: no echo", () => {
  const model = join(tmp.dir, "model");
  writeTinyModel(model, DEFAULT_TINY, randomWeights(DEFAULT_TINY, 1));
  const data = join(tmp.dir, "data.jsonl");
  symlinkSync(SECRET, data);
  const train = runCli(tmp.dir, "train", "--base", model, "--data", data, "-o", "trained", "--epochs", "1");
  assertOneClearLine(train, /data\.jsonl:1: not valid JSON \(unexpected character at column 1\)/);
  assertNoEcho(train.stderr);
  const ref = join(tmp.dir, "ref.jsonl");
  writeFileSync(ref, '{"label": "a"}\n{"label": "b"}\n');
  const score = runCli(tmp.dir, "score", "--metric", "accuracy", "--pred", data, "--ref", ref);
  assertOneClearLine(score, /data\.jsonl:1: not valid JSON/);
  assertNoEcho(score.stderr);
  const linked = join(tmp.dir, "model-linked");
  mkdirSync(linked);
  for (const f of ["tokenizer.json", "tokenizer_config.json", "model.safetensors"])
    copyFileSync(join(model, f), join(linked, f));
  symlinkSync(SECRET, join(linked, "config.json"));
  const conv = runCli(tmp.dir, "convert", linked, "--to", "gguf", "-o", "m.gguf");
  assertOneClearLine(conv, /config\.json: not valid JSON \(unexpected character at line 1, column 1\)/);
  assertNoEcho(conv.stderr);
  assert.equal(existsSync(join(tmp.dir, "m.gguf")), false);
});
