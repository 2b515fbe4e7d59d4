/**
 * bench/train: training throughput (tokens/s, forward + backward + loss, LoRA r=16 on every linear module,
 * base frozen) for a ~10M- and a ~100M-parameter llama config, float32, random tokens. When Debian's
 * python3-torch is importable, bench/train_torch.py measures PyTorch on CPU with the same config, batch and
 * sequence length in the same run, and the ratio is printed. Both sides: two warm-up steps, then the median
 * of the timed steps (11 for 10m, 3 for 100m; --steps).
 *
 * Both sides: two warm-up steps, then the median step time of --steps timed steps (11 for 10m, 3 for 100m); the
 * two alternate --rounds times (3) and each side's figure is the median over its rounds.
 *
 * Usage: node dist/bench/train.js [--only 10m|100m] [--steps N] [--rounds R] [--batch B] [--seq T] [--json]
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseModelConfig } from "../src/engine/config.js";
import { gemmStats } from "../src/engine/kernels.js";
import { attachLora } from "../src/engine/lora.js";
import { LlamaModel, type TokenBatch } from "../src/engine/model.js";
import { ortStatus } from "../src/tensor/ort.js";
import { Rng } from "../src/engine/rng.js";

interface BenchConfig {
  name: string;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kv_heads: number;
  vocab: number;
}

const CONFIGS: BenchConfig[] = [
  { name: "10m", hidden: 256, intermediate: 1024, layers: 8, heads: 8, kv_heads: 4, vocab: 8192 },
  { name: "100m", hidden: 768, intermediate: 2048, layers: 12, heads: 12, kv_heads: 4, vocab: 32000 },
];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function randomBatch(batch: number, seq: number, vocab: number, rng: Rng): TokenBatch {
  const n = batch * seq;
  const b: TokenBatch = {
    batch,
    seq,
    tokens: new Int32Array(n),
    positions: new Int32Array(n),
    segments: null,
    targets: new Int32Array(n),
  };
  for (let i = 0; i < n; i++) {
    b.tokens[i] = rng.int(vocab);
    b.targets[i] = rng.int(vocab);
    b.positions[i] = i % seq;
  }
  return b;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Builds the model once; each call of the returned function times `steps` steps (after two warm-ups the first time). */
function merglotRunner(c: BenchConfig, batch: number, seq: number, r: number) {
  const config = parseModelConfig(
    {
      vocab_size: c.vocab,
      hidden_size: c.hidden,
      intermediate_size: c.intermediate,
      num_hidden_layers: c.layers,
      num_attention_heads: c.heads,
      num_key_value_heads: c.kv_heads,
      tie_word_embeddings: true,
      max_position_embeddings: seq,
    },
    `${c.name} config`,
  );
  const model = new LlamaModel(config).initRandom(new Rng(0));
  attachLora(model, { r, alpha: 2 * r, targets: ["all-linear"] }, new Rng(1));
  const params = model.namedParameters().reduce((a, p) => a + p.data.length, 0);
  const b = randomBatch(batch, seq, c.vocab, new Rng(2));
  const step = () => {
    model.zeroGradients();
    return model.forwardBackward(b, { lossScale: 1 / (batch * seq) }).loss;
  };
  step(); // warm-up: allocations, native sessions, JIT
  step();
  return {
    params,
    /** Median seconds per step over `steps` timed steps, and the GEMM rate over them. */
    measure(steps: number) {
      const macs0 = gemmStats.nativeMacs + gemmStats.jsMacs;
      const times: number[] = [];
      for (let s = 0; s < steps; s++) {
        const t0 = process.hrtime.bigint();
        step();
        times.push(Number(process.hrtime.bigint() - t0) / 1e9);
      }
      const total = times.reduce((a, x) => a + x, 0);
      const macs = gemmStats.nativeMacs + gemmStats.jsMacs - macs0;
      return { sPerStep: median(times), gemmGflops: (2 * macs) / total / 1e9 };
    },
  };
}

function benchTorch(c: BenchConfig, batch: number, seq: number, r: number, steps: number) {
  const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const probe = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" });
  if (probe.status !== 0) return null;
  const here = dirname(fileURLToPath(import.meta.url));
  // the script sits next to this file in the source tree (bench/), and dist/bench/ when compiled
  const script = [join(here, "train_torch.py"), join(here, "..", "..", "bench", "train_torch.py")].find((p) =>
    existsSync(p),
  );
  if (script === undefined) return null;
  let best: { tokens_per_s: number; threads: number; torch: string } | null = null;
  // PyTorch's best of 1 thread and all cores (its OpenMP pool can lose to one thread on small VMs)
  for (const threads of [...new Set([1, availableParallelism()])]) {
    const cfg = { ...c, batch, seq, r, steps, threads };
    const res = spawnSync(python, [script, JSON.stringify(cfg)], {
      encoding: "utf8",
      env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads) },
    });
    if (res.status !== 0) {
      process.stderr.write(`bench/train_torch.py failed: ${res.stderr}\n`);
      continue;
    }
    const out = JSON.parse(res.stdout.trim().split("\n").at(-1)!) as {
      tokens_per_s: number;
      threads: number;
      torch: string;
    };
    if (best === null || out.tokens_per_s > best.tokens_per_s) best = out;
  }
  return best;
}

function main(): void {
  const only = arg("only", "");
  const batch = Number(arg("batch", "4"));
  const seq = Number(arg("seq", "128"));
  const r = 16;
  const kernels = ortStatus();
  const results = [];
  for (const c of CONFIGS) {
    if (only && c.name !== only) continue;
    const steps = Number(arg("steps", c.name === "10m" ? "11" : "3"));
    const rounds = Number(arg("rounds", "3"));
    // merglot and PyTorch alternate, `rounds` times each, and each side's figure is the median of its rounds:
    // on a shared VM a slow period then lands on both sides instead of deciding the ratio
    const runner = merglotRunner(c, batch, seq, r);
    const ms: { sPerStep: number; gemmGflops: number }[] = [];
    const ts: NonNullable<ReturnType<typeof benchTorch>>[] = [];
    for (let k = 0; k < rounds; k++) {
      ms.push(runner.measure(steps));
      const tr = benchTorch(c, batch, seq, r, steps);
      if (tr !== null) ts.push(tr);
    }
    const mSec = median(ms.map((x) => x.sPerStep));
    const m = {
      params: runner.params,
      sPerStep: mSec,
      tokensPerS: (batch * seq) / mSec,
      gemmGflops: median(ms.map((x) => x.gemmGflops)),
    };
    const t = ts.length === 0 ? null : ts.sort((a, b) => a.tokens_per_s - b.tokens_per_s)[ts.length >> 1]!;
    const row = {
      config: c.name,
      params: m.params,
      batch,
      seq,
      r,
      merglotTokensPerS: Math.round(m.tokensPerS),
      merglotGemmGflops: Math.round(m.gemmGflops),
      torchTokensPerS: t === null ? null : Math.round(t.tokens_per_s),
      torchThreads: t?.threads ?? null,
      ratio: t === null ? null : Number((m.tokensPerS / t.tokens_per_s).toFixed(2)),
    };
    results.push(row);
    if (!process.argv.includes("--json")) {
      process.stdout.write(
        `${c.name} (${(m.params / 1e6).toFixed(1)}M params, batch ${batch}×${seq}, LoRA r=${r} all-linear): ` +
          `merglot ${row.merglotTokensPerS} tokens/s (${m.sPerStep.toFixed(2)} s/step)` +
          (t === null
            ? ", PyTorch not installed"
            : `, PyTorch ${t.torch} ${row.torchTokensPerS} tokens/s (${t.threads} thr), ratio ${row.ratio}×`) +
          "\n",
      );
    }
  }
  const info = {
    kernels: kernels.available ? `onnxruntime-node (${kernels.threads} threads)` : `js (${kernels.reason})`,
    results,
  };
  if (process.argv.includes("--json")) process.stdout.write(JSON.stringify(info, null, 2) + "\n");
  else process.stdout.write(`kernels: ${info.kernels}\n`);
}

main();
