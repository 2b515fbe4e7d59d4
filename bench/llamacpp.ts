/**
 * bench/llamacpp: scoring throughput of llama.cpp (through LlamaCppRunner, exact and default modes) against
 * merglot's engine (EngineRunner) on the same small random llama (hidden 512, 8 layers, GQA 8/4 heads, FFN
 * 1408, ~24 M parameters), the same token requests (a 56-token context and an 8-token continuation each),
 * in one process so that both see the same machine. Prints tokens/s for each and the ratio to the engine.
 * llama.cpp runs with 1 thread and with --threads (default: all cores): its worker threads spin while they
 * wait, so on a loaded machine more threads can be much slower than one.
 *   node dist/bench/llamacpp.js [--requests N] [--threads N] [--keep DIR]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { EngineRunner } from "../src/eval/runners/engine.js";
import { LlamaCppRunner } from "../src/eval/runners/llamacpp.js";
import type { Runner, TokenScoreRequest } from "../src/eval/runners/runner.js";
import { convertModelToGguf } from "../src/formats/convert.js";
// The test fixture writes a complete HF folder (config, weights, tokenizer); the bench only makes it bigger.
import { DEFAULT_TINY, randomWeights, writeTinyModel, type TinyConfig } from "../test/parity/tiny-llama.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const CONFIG: TinyConfig = { ...DEFAULT_TINY, hidden: 512, layers: 8, heads: 8, kvHeads: 4, ffn: 1408 };
const REQUESTS = Number(arg("--requests") ?? 32);
const THREADS = Number(arg("--threads") ?? availableParallelism());
const CONTEXT = 56;
const CONTINUATION = 8;

const keep = arg("--keep");
const dir = keep ?? mkdtempSync(join(tmpdir(), "merglot-bench-llamacpp-"));
const modelDir = join(dir, "model");
const gguf = join(dir, "model-f32.gguf");

// Deterministic requests over ordinary token ids (2..100: the fixture tokenizer's non-special tokens).
let s = 12345;
const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s / 2 ** 32);
const requests: TokenScoreRequest[] = Array.from({ length: REQUESTS }, () => ({
  context: [0, ...Array.from({ length: CONTEXT - 1 }, () => 2 + Math.floor(rand() * 98))],
  continuation: Array.from({ length: CONTINUATION }, () => 2 + Math.floor(rand() * 98)),
}));
const tokens = requests.length * (CONTEXT + CONTINUATION);

async function measure(
  runner: Runner,
): Promise<{ seconds: number; tokensPerSecond: number; logProb: number }> {
  await runner.scoreTokens(requests.slice(0, 2)); // warm up (allocation, first-use costs)
  const t0 = performance.now();
  const out = await runner.scoreTokens(requests);
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, tokensPerSecond: tokens / seconds, logProb: out.reduce((a, r) => a + r.logProb, 0) };
}

try {
  const params = randomWeights(CONFIG, 1);
  writeTinyModel(modelDir, CONFIG, params);
  convertModelToGguf(modelDir, gguf, { dtype: "F32", force: true });
  let count = 0;
  for (const t of params.values()) count += t.data.length;
  console.log(
    `model: hidden ${CONFIG.hidden}, ${CONFIG.layers} layers, ${CONFIG.heads}/${CONFIG.kvHeads} heads, ffn ${CONFIG.ffn}, ` +
      `${(count / 1e6).toFixed(1)} M parameters (f32); ${REQUESTS} requests × ${CONTEXT + CONTINUATION} tokens; ` +
      `${THREADS} threads`,
  );

  const engine = await EngineRunner.open({ model: modelDir });
  const e = await measure(engine);
  await engine.close();
  const rows: [string, Awaited<ReturnType<typeof measure>>][] = [["engine (f32)", e]];
  for (const threads of [...new Set([1, THREADS])]) {
    for (const exact of [true, false]) {
      const cpp = await LlamaCppRunner.open({ model: gguf, exact, threads, contextSize: 128, sequences: 4 });
      rows.push([`llama.cpp ${exact ? "exact" : "default"} ×${threads}`, await measure(cpp)]);
      await cpp.close();
    }
  }
  console.log(
    `load average: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
  console.log(
    `${"runner".padEnd(24)} ${"seconds".padStart(8)} ${"tokens/s".padStart(10)} ${"× engine".padStart(9)}  Σ log-prob`,
  );
  for (const [name, r] of rows) {
    console.log(
      `${name.padEnd(24)} ${r.seconds.toFixed(3).padStart(8)} ${r.tokensPerSecond.toFixed(0).padStart(10)} ` +
        `${(r.tokensPerSecond / e.tokensPerSecond).toFixed(2).padStart(9)}  ${r.logProb.toFixed(3)}`,
    );
  }
} finally {
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
