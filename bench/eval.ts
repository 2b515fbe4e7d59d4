/**
 * bench/eval: greedy generation speed of the engine with and without its KV cache, and against llama.cpp, on
 * the same small random llama (hidden 512, 8 layers, GQA 8/4 heads, FFN 1408, ~24 M parameters): a 256-token
 * prompt, 128 new tokens, one sequence (and, for the cache, a batch of --batch sequences). Prints tokens/s and
 * the cache's speed-up over recomputation.
 * Recomputation re-runs the whole sequence per token, so that row alone takes a minute or more on 2 cores.
 *   node dist/bench/eval.js [--prompt 256] [--new 128] [--batch 4] [--threads N] [--no-llamacpp]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../src/engine/load.js";
import { generateBatch } from "../src/engine/score.js";
import { EngineRunner } from "../src/eval/runners/engine.js";
import { LlamaCppRunner } from "../src/eval/runners/llamacpp.js";
import type { Runner } from "../src/eval/runners/runner.js";
import { convertModelToGguf } from "../src/formats/convert.js";
import { DEFAULT_TINY, randomWeights, writeTinyModel, type TinyConfig } from "../test/parity/tiny-llama.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const CONFIG: TinyConfig = { ...DEFAULT_TINY, hidden: 512, layers: 8, heads: 8, kvHeads: 4, ffn: 1408 };
const PROMPT = Number(arg("--prompt") ?? 256);
const NEW = Number(arg("--new") ?? 128);
const BATCH = Number(arg("--batch") ?? 4);
// llama.cpp threads: 1 unless asked (its worker threads spin while waiting: on a shared machine 2 threads
// can be 60× slower than 1).
const THREADS = Number(arg("--threads") ?? 1);
const withLlamaCpp = !process.argv.includes("--no-llamacpp");

const dir = mkdtempSync(join(tmpdir(), "merglot-bench-eval-"));
const modelDir = join(dir, "model");
const gguf = join(dir, "model-f32.gguf");

// Deterministic prompts over ordinary token ids (2..100: the fixture tokenizer's non-special tokens).
let s = 4242;
const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s / 2 ** 32);
const prompts = Array.from({ length: BATCH }, () => [
  0,
  ...Array.from({ length: PROMPT - 1 }, () => 2 + Math.floor(rand() * 98)),
]);

function timed<T>(f: () => T): { value: T; seconds: number } {
  const t0 = performance.now();
  const value = f();
  return { value, seconds: (performance.now() - t0) / 1000 };
}

async function runnerTokensPerSecond(r: Runner): Promise<{ tokens: number; seconds: number }> {
  await r.generateTokens([{ prompt: prompts[0]!.slice(0, 8), maxTokens: 2 }]); // warm up
  const t0 = performance.now();
  const [g] = await r.generateTokens([{ prompt: prompts[0]!, maxTokens: NEW }]);
  return { tokens: g!.tokens.length, seconds: (performance.now() - t0) / 1000 };
}

try {
  const params = randomWeights(CONFIG, 1);
  writeTinyModel(modelDir, CONFIG, params);
  // room for prompt + new tokens in the model's declared context (llama.cpp sizes its context from it)
  const cfgPath = join(modelDir, "config.json");
  const cfg = JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown>;
  cfg.max_position_embeddings = Math.max(512, PROMPT + NEW);
  writeFileSync(cfgPath, JSON.stringify(cfg));
  let count = 0;
  for (const t of params.values()) count += t.data.length;
  console.log(
    `model: hidden ${CONFIG.hidden}, ${CONFIG.layers} layers, ${CONFIG.heads}/${CONFIG.kvHeads} heads, ffn ${CONFIG.ffn}, ` +
      `${(count / 1e6).toFixed(1)} M parameters (f32); prompt ${PROMPT} tokens, ${NEW} new tokens; ` +
      `load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
  );
  const model = loadModel(modelDir);
  generateBatch(model, [prompts[0]!.slice(0, 8)], 2); // warm up
  const cached = timed(() => generateBatch(model, [prompts[0]!], NEW, { stopTokens: [] }));
  const batched = timed(() => generateBatch(model, prompts, NEW, { stopTokens: [] }));
  const recomputed = timed(() =>
    generateBatch(model, [prompts[0]!], NEW, { stopTokens: [], kvCache: false }),
  );
  const same = cached.value[0]!.join(",") === recomputed.value[0]!.join(",");
  const rows: [string, number, number][] = [
    ["engine, recompute (no cache)", NEW, recomputed.seconds],
    ["engine, KV cache", NEW, cached.seconds],
    [`engine, KV cache, batch ${BATCH}`, NEW * BATCH, batched.seconds],
  ];
  if (withLlamaCpp) {
    convertModelToGguf(modelDir, gguf, { dtype: "F32", force: true });
    const engine = await EngineRunner.open({ model: modelDir });
    const e = await runnerTokensPerSecond(engine);
    await engine.close();
    rows.push(["engine runner (stops at EOS)", e.tokens, e.seconds]);
    for (const threads of [THREADS]) {
      const cpp = await LlamaCppRunner.open({ model: gguf, threads, contextSize: 1024, sequences: 1 });
      const c = await runnerTokensPerSecond(cpp);
      await cpp.close();
      rows.push([`llama.cpp default ×${threads} (stops at EOS)`, c.tokens, c.seconds]);
    }
  }
  console.log(
    `${"generation".padEnd(36)} ${"tokens".padStart(7)} ${"seconds".padStart(8)} ${"tokens/s".padStart(9)}`,
  );
  for (const [name, tokens, seconds] of rows) {
    console.log(
      `${name.padEnd(36)} ${String(tokens).padStart(7)} ${seconds.toFixed(3).padStart(8)} ${(tokens / seconds)
        .toFixed(1)
        .padStart(9)}`,
    );
  }
  console.log(
    `KV cache speed-up over recomputation: ${(recomputed.seconds / cached.seconds).toFixed(1)}× ` +
      `(same tokens: ${same ? "yes" : "NO"})`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
