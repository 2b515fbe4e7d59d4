import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Command } from "commander";
import { registerPretrain } from "../../src/cli/pretrain.js";
import { registerTrain } from "../../src/cli/train.js";
import { parseModelConfig } from "../../src/engine/config.js";
import { saveModel } from "../../src/engine/load.js";
import { LlamaModel } from "../../src/engine/model.js";
import { Rng } from "../../src/engine/rng.js";
import { writeWordTokenizer } from "../engine/fixtures.js";

async function run(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerTrain(program);
  registerPretrain(program);
  let out = "";
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => {
    out += s;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(["node", "merglot", ...args]);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

test("merglot train and merglot pretrain write their folders; bad flags are named; --resume continues", async () => {
  const dir = mkdtempSync(join(tmpdir(), "merglot-cli-"));
  try {
    const words = ["x", "y", "z", "->"];
    const cfg = {
      vocab_size: 8,
      hidden_size: 16,
      intermediate_size: 32,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      tie_word_embeddings: true,
      initializer_range: 0.3,
    };
    const base = join(dir, "base");
    saveModel(new LlamaModel(parseModelConfig(cfg, "c")).initRandom(new Rng(1)), base);
    writeWordTokenizer(base, words);
    const data = join(dir, "d.jsonl");
    writeFileSync(
      data,
      ['{"prompt":"x ->","completion":"y"}', '{"prompt":"y ->","completion":"z"}'].join("\n"),
    );
    const out = join(dir, "ad");
    const common = [
      "--base",
      base,
      "--data",
      data,
      "-o",
      out,
      "--r",
      "2",
      "--epochs",
      "4",
      "--batch",
      "1",
      "--json",
    ];
    const summary = JSON.parse(
      await run(["train", ...common, "--targets", "q_proj,v_proj", "--checkpoint-every", "2"]),
    );
    assert.equal(summary.steps, 8);
    assert.ok(existsSync(join(out, "adapter_model.safetensors")));
    assert.deepEqual(JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8")).target_modules, [
      "q_proj",
      "v_proj",
    ]);
    assert.ok(existsSync(join(`${out}.checkpoints`, "checkpoint-step-8")));
    // resuming a finished run changes nothing and needs --force for the existing output
    const again = JSON.parse(
      await run(["train", ...common, "--targets", "q_proj,v_proj", "--resume", "--force"]),
    );
    assert.equal(again.steps, 8);
    await assert.rejects(
      run(["train", ...common, "--lr", "abc", "--force"]),
      /--lr: expected a number, got "abc"/,
    );
    await assert.rejects(
      run(["train", ...common, "--targets", "qq_proj", "--force"]),
      /unknown LoRA target module "qq_proj"/,
    );
    await assert.rejects(run(["train", ...common]), /already exists/);
    // pretrain
    writeFileSync(join(base, "corpus.txt"), "x -> y\n\ny -> z\n\nz -> x\n");
    const model = join(dir, "model");
    const p = JSON.parse(
      await run([
        "pretrain",
        "--config",
        join(base, "config.json"),
        "--data",
        join(base, "corpus.txt"),
        "-o",
        model,
        "--epochs",
        "2",
        "--seq-len",
        "8",
        "--json",
      ]),
    );
    assert.ok(p.steps >= 1);
    for (const f of [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
      "training_log.json",
    ]) {
      assert.ok(existsSync(join(model, f)), f);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
