/**
 * Sizes are checked before anything is allocated: a sparse file whose header declares a 128 GiB tensor, an
 * adapter of rank 100,000, a model config promising more layers than its weights hold.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
  ftruncateSync,
} from "node:fs";
import { join } from "node:path";
import { writeAdapter } from "../../src/formats/peft.js";
import { DEFAULT_TINY, randomWeights, writeTinyModel } from "../parity/tiny-llama.js";
import { makeAdapter, tempDir, writeRecipe } from "../helpers/fixtures.js";
import { mulberry32, randn } from "../helpers/rand.js";
import { assertOneClearLine, listTree, runCli } from "./inputs-cli.js";

const tmp = tempDir("merglot-sizes-");
after(() => tmp.cleanup());

/** An adapter folder whose weights file is sparse: the header declares lora_A [16, 2^31] F32 (128 GiB). */
function sparseAdapter(dir: string): void {
  mkdirSync(dir);
  const bytesA = 16 * 2 ** 31 * 4;
  const prefix = "base_model.model.model.layers.0.self_attn.q_proj";
  const header = JSON.stringify({
    [`${prefix}.lora_A.weight`]: { dtype: "F32", shape: [16, 2 ** 31], data_offsets: [0, bytesA] },
    [`${prefix}.lora_B.weight`]: { dtype: "F32", shape: [8, 16], data_offsets: [bytesA, bytesA + 512] },
  });
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  const fd = openSync(join(dir, "adapter_model.safetensors"), "w");
  writeSync(fd, Buffer.concat([len, Buffer.from(header)]));
  ftruncateSync(fd, 8 + header.length + bytesA + 512); // a hole: no disk space used
  closeSync(fd);
  writeFileSync(
    join(dir, "adapter_config.json"),
    JSON.stringify({ r: 16, lora_alpha: 16, target_modules: ["q_proj"] }),
  );
}

test("a sparse file declaring a 128 GiB tensor: one clear line from inspect and merge, nothing written", () => {
  const dir = join(tmp.dir, "sparse");
  sparseAdapter(dir);
  assert.equal(statSync(join(dir, "adapter_model.safetensors")).size > 2 ** 37, true);
  const tooLarge =
    /lora_A\.weight" \[16, 2147483648\] of F32 has 34359738368 elements; .*accepts at most 1073741824/;
  assertOneClearLine(runCli(tmp.dir, "inspect", dir), tooLarge);
  assertOneClearLine(runCli(tmp.dir, "inspect", dir, "--no-norms"), tooLarge);
  makeAdapter(join(tmp.dir, "small"), { seed: 1 });
  const recipe = writeRecipe(
    tmp.dir,
    "r.yaml",
    "merge_method: ties\nmodels:\n  - model: small\n  - model: sparse\n",
  );
  const before = listTree(tmp.dir);
  assertOneClearLine(runCli(tmp.dir, "merge", recipe, "-o", "out"), tooLarge);
  assert.deepEqual(listTree(tmp.dir), before);
});

test("an adapter of rank 100,000 on an 8 × 8 module: inspect works in bounded memory and is exact", () => {
  const r = 100_000;
  const rand = mulberry32(7);
  const a = randn(rand, r * 8, 0.1);
  const b = randn(rand, 8 * r, 0.1);
  writeAdapter(join(tmp.dir, "wide-rank"), {
    config: { r, lora_alpha: 2 * r, target_modules: ["q_proj"], base_model_name_or_path: null },
    tensors: [
      { name: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", shape: [r, 8], data: a },
      { name: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", shape: [8, r], data: b },
    ],
  });
  const out = runCli(tmp.dir, "inspect", "wide-rank", "--json");
  assert.equal(out.status, 0, out.stderr);
  const norm = (JSON.parse(out.stdout) as { modules: { deltaNorm: number }[] }).modules[0]!.deltaNorm;
  // naive reference: ‖s·B·A‖_F with s = α/r = 2, in double precision
  let sum = 0;
  for (let i = 0; i < 8; i++) {
    for (let j = 0; j < 8; j++) {
      let d = 0;
      for (let k = 0; k < r; k++) d += b[i * r + k]! * a[k * 8 + j]!;
      sum += (2 * d) ** 2;
    }
  }
  const want = Math.sqrt(sum);
  assert.ok(Math.abs(norm - want) <= 1e-4 * want, `${norm} vs ${want}`);
});

test("convert: a config with more layers than the weights is refused naming the missing tensor", () => {
  const dir = join(tmp.dir, "short-model");
  writeTinyModel(dir, DEFAULT_TINY, randomWeights(DEFAULT_TINY, 1));
  const cfgPath = join(dir, "config.json");
  const cfg = JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown>;
  writeFileSync(cfgPath, JSON.stringify({ ...cfg, num_hidden_layers: DEFAULT_TINY.layers + 1 }));
  const before = listTree(tmp.dir);
  assertOneClearLine(
    runCli(tmp.dir, "convert", dir, "--to", "gguf", "-o", "short.gguf"),
    /config\.json: num_hidden_layers = 3 but the weights have no "model\.layers\.2\.input_layernorm\.weight"/,
  );
  assert.deepEqual(listTree(tmp.dir), before);
});

test("pretrain and convert: a config.json with absurd sizes is one clear line before any allocation", () => {
  const dir = join(tmp.dir, "tiny-for-config");
  writeTinyModel(dir, DEFAULT_TINY, randomWeights(DEFAULT_TINY, 1));
  const base = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(tmp.dir, "corpus.txt"), "one document\n\nanother document\n");
  const pretrain = (name: string, patch: Record<string, unknown>) => {
    writeFileSync(join(tmp.dir, name), JSON.stringify({ ...base, ...patch }));
    return runCli(
      tmp.dir,
      "pretrain",
      "--config",
      name,
      "--tokenizer",
      join(dir, "tokenizer.json"),
      "--data",
      "corpus.txt",
      "-o",
      "pt",
    );
  };
  // 10^9 × 64 = 6.4e10 elements in one matrix
  assertOneClearLine(
    pretrain("wide.json", { vocab_size: 1e9 }),
    /wide\.json: embed_tokens \(vocab_size × hidden_size\) would have 64000000000 elements/,
  );
  // 10^9 layers of a 64-wide model: far over 2^33 parameters in total
  assertOneClearLine(
    pretrain("deep.json", { num_hidden_layers: 1e9 }),
    /deep\.json: the model would have .* parameters; .* accepts at most 8589934592/,
  );
  // convert pads the vocabulary to vocab_size before reading weights: bounded first
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...base, vocab_size: 2 ** 40 }));
  assertOneClearLine(
    runCli(tmp.dir, "convert", dir, "--to", "gguf", "-o", "v.gguf"),
    /config\.json: vocab_size 1099511627776 is more than the 16777216/,
  );
});
