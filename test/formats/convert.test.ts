import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Command } from "commander";
import { registerConvert } from "../../src/cli/convert.js";
import { convertAdapterToGguf, convertModelToGguf, detectConvertInput } from "../../src/formats/convert.js";
import { GgufReader } from "../../src/formats/gguf.js";
import {
  DEFAULT_TINY,
  hfConfig,
  randomWeights,
  writeTinyAdapter,
  writeTinyModel,
  type TinyLoraModule,
} from "../parity/tiny-llama.js";
import { naivePermute } from "../helpers/rope.js";
import { expectMerglotError } from "../helpers/fixtures.js";

const root = mkdtempSync(join(tmpdir(), "merglot-convert-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => join(root, `${name}-${n++}`);

const base = fresh("base");
writeTinyModel(base, DEFAULT_TINY, randomWeights(DEFAULT_TINY, 1));

const MODULES: TinyLoraModule[] = [
  { module: "model.layers.0.self_attn.q_proj", rank: 4, alpha: 8 },
  { module: "model.layers.0.self_attn.k_proj", rank: 4, alpha: 8 },
  { module: "model.layers.1.mlp.down_proj", rank: 2, alpha: 4 },
];

function adapter(opts: { base?: string; modules?: TinyLoraModule[] } = {}): string {
  const dir = fresh("adapter");
  writeTinyAdapter(dir, DEFAULT_TINY, { seed: n, modules: opts.modules ?? MODULES, base: opts.base });
  return dir;
}

describe("convertAdapterToGguf", () => {
  test("with --base: llama architecture, head counts from config.json, q/k lora_b permuted", () => {
    const dir = fresh("adapter");
    const mods = writeTinyAdapter(dir, DEFAULT_TINY, { seed: 3, modules: MODULES });
    const out = fresh("lora") + ".gguf";
    const res = convertAdapterToGguf(dir, out, { base });
    assert.equal(res.architecture, "llama");
    assert.equal(res.modules, 3);
    assert.equal(res.baseFrom, base);
    // scalings 8/4, 8/4 and (alpha_pattern) 4/2; the file's alpha is 2·4 = 8, so llama.cpp would scale
    // down_proj by 8/2 = 4 where PEFT uses 2: its B is folded ×½
    assert.equal(res.alpha, 8);
    assert.equal(res.foldedModules, 1);
    const r = GgufReader.open(out);
    try {
      assert.equal(r.getString("general.architecture"), "llama");
      assert.equal(r.getString("general.type"), "adapter");
      assert.deepEqual(r.readFloat32("blk.0.attn_q.weight.lora_a"), mods[0]!.a);
      assert.deepEqual(r.readFloat32("blk.0.attn_q.weight.lora_b"), naivePermute(mods[0]!.b, 64, 4, 4));
      assert.deepEqual(r.readFloat32("blk.0.attn_k.weight.lora_b"), naivePermute(mods[1]!.b, 32, 4, 2));
      const down = r.readFloat32("blk.1.ffn_down.weight.lora_b");
      mods[2]!.b.forEach((v, i) => assert.equal(down[i], v / 2));
    } finally {
      r.close();
    }
  });

  test("the base config may be given as the config.json path", () => {
    const res = convertAdapterToGguf(adapter(), fresh("lora") + ".gguf", {
      base: join(base, "config.json"),
      dtype: "F16",
    });
    assert.equal(res.architecture, "llama");
    assert.equal(res.tensorCount, 6);
  });

  test("without --base: base_model_name_or_path as an absolute folder, or relative to the adapter", () => {
    assert.equal(convertAdapterToGguf(adapter({ base }), fresh("lora") + ".gguf").baseFrom, base);
    const dir = fresh("adapter");
    writeTinyAdapter(dir, DEFAULT_TINY, { seed: 4, modules: MODULES, base: relative(dir, base) });
    const res = convertAdapterToGguf(dir, fresh("lora") + ".gguf");
    assert.equal(res.architecture, "llama");
  });

  test("without a usable base the error says how to give one", () => {
    expectMerglotError(
      () => convertAdapterToGguf(adapter({ base: "meta-llama/Llama-3.1-8B" }), fresh("lora") + ".gguf"),
      "convert.base",
      /base_model_name_or_path "meta-llama\/Llama-3\.1-8B" is not a local folder with a config\.json; pass --base/,
    );
    expectMerglotError(
      () => convertAdapterToGguf(adapter(), fresh("lora") + ".gguf"),
      "convert.base",
      /names no base_model_name_or_path/,
    );
  });

  test("an adapter on lm_head of a tied-embedding base is refused", () => {
    const tied = fresh("tied");
    writeTinyModel(tied, { ...DEFAULT_TINY, tie: true }, randomWeights({ ...DEFAULT_TINY, tie: true }, 2));
    const dir = adapter({ modules: [...MODULES, { module: "lm_head", rank: 4, alpha: 8 }] });
    expectMerglotError(
      () => convertAdapterToGguf(dir, fresh("lora") + ".gguf", { base: tied }),
      "convert.tied",
      /module "lm_head" adapts lm_head, but the base model .* ties its output to the token embeddings/,
    );
    // the same adapter is fine on an untied base
    assert.equal(convertAdapterToGguf(dir, fresh("lora") + ".gguf", { base }).modules, 4);
  });

  test("module shapes are checked against the base", () => {
    const other = fresh("other");
    const wide = { ...DEFAULT_TINY, ffn: 128 };
    writeTinyModel(other, wide, randomWeights(wide, 2));
    expectMerglotError(
      () => convertAdapterToGguf(adapter(), fresh("lora") + ".gguf", { base: other }),
      "convert.shape",
      /module "model\.layers\.1\.mlp\.down_proj" is 64 × 96 but the base model .* has 64 × 128/,
    );
  });

  test("an existing output is refused unless forced; force replaces only a GGUF file", () => {
    const out = fresh("lora") + ".gguf";
    writeFileSync(out, "old");
    expectMerglotError(
      () => convertAdapterToGguf(adapter(), out, { base, force: true }),
      "output.foreign",
      /already exists and is not a merglot convert output \(not a GGUF file\); pass --force-replace-foreign/,
    );
    assert.equal(readFileSync(out, "utf8"), "old");
    convertAdapterToGguf(adapter(), out, { base, replaceForeign: true });
    assert.equal(readFileSync(out).subarray(0, 4).toString(), "GGUF");
    expectMerglotError(
      () => convertAdapterToGguf(adapter(), out, { base }),
      "output.exists",
      /already exists \(use --force to overwrite\)/,
    );
    convertAdapterToGguf(adapter(), out, { base, force: true });
    assert.equal(readFileSync(out).subarray(0, 4).toString(), "GGUF");
  });
});

describe("convertModelToGguf and input detection", () => {
  test("a model folder converts with the default F16", () => {
    const res = convertModelToGguf(base, fresh("model") + ".gguf");
    assert.equal(res.dtype, "F16");
    assert.equal(res.tensorCount, 21);
  });

  test("detectConvertInput tells adapters from models and names other paths", () => {
    assert.equal(detectConvertInput(base), "model");
    assert.equal(detectConvertInput(adapter()), "adapter");
    expectMerglotError(
      () => detectConvertInput(join(root, "nope")),
      "convert.input",
      /no such file or folder/,
    );
    const empty = fresh("empty");
    writeFileSync(empty, "");
    expectMerglotError(
      () => detectConvertInput(empty),
      "convert.input",
      /expected a PEFT adapter folder or an HF model folder/,
    );
  });
});

describe("merglot convert (CLI)", () => {
  async function run(args: string[]): Promise<string> {
    const program = new Command().exitOverride();
    registerConvert(program);
    const chunks: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => {
      chunks.push(String(s));
      return true;
    }) as typeof process.stdout.write;
    try {
      await program.parseAsync(["node", "merglot", "convert", ...args]);
    } finally {
      process.stdout.write = write;
    }
    return chunks.join("");
  }

  test("adapter and model conversions print one summary line each", async () => {
    const out = fresh("cli-lora") + ".gguf";
    const line = await run([adapter(), "--to", "gguf", "-o", out, "--base", base, "--dtype", "bf16"]);
    assert.match(
      line,
      /^converted adapter .* \(3 modules, llama\) → .*: 6 tensors, alpha 8, 1 modules' scaling folded into lora_b in \d+\.\d\d s\n$/,
    );
    const r = GgufReader.open(out);
    try {
      assert.equal(r.get("blk.0.attn_q.weight.lora_a")!.type, "BF16");
    } finally {
      r.close();
    }
    const modelOut = fresh("cli-model") + ".gguf";
    const json = JSON.parse(
      await run([base, "--to", "gguf", "-o", modelOut, "--dtype", "f32", "--json"]),
    ) as Record<string, unknown>;
    assert.equal(json.kind, "model");
    assert.equal(json.dtype, "F32");
    assert.ok(existsSync(modelOut));
  });

  test("bad flags are clear errors", async () => {
    await assert.rejects(
      run([base, "--to", "onnx", "-o", fresh("x")]),
      /--to: only "gguf" is supported, got "onnx"/,
    );
    await assert.rejects(
      run([base, "--to", "gguf", "-o", fresh("x"), "--dtype", "q8"]),
      /--dtype: expected f32, f16 or bf16, got "q8"/,
    );
    await assert.rejects(
      run([base, "--to", "gguf", "-o", fresh("x"), "--base", base]),
      /--base applies to adapters/,
    );
  });

  test("a model whose config names an unsupported architecture fails with the file named", async () => {
    const dir = fresh("gpt2");
    writeTinyModel(dir, DEFAULT_TINY, randomWeights(DEFAULT_TINY, 1));
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({ ...hfConfig(DEFAULT_TINY), model_type: "gpt_neox" }),
    );
    await assert.rejects(
      run([dir, "--to", "gguf", "-o", fresh("x")]),
      /config\.json: architecture "gpt_neox" is not supported/,
    );
  });
});
