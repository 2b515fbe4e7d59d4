/**
 * bench/inspect: `merglot inspect` (with ‖ΔW‖_F per module) on a synthetic Llama-3.1-8B-shaped r=64 bf16
 * adapter (~336 MB), against a plain sequential read of the same file, each in its own child process so
 * that peak RSS is the tool's own; also `--no-norms` (headers only), each child's CPU time (less distorted by
 * other load than wall time), and the arithmetic the norms need at this machine's measured GEMM rate.
 * Targets (issue 14): throughput ≥ 0.3 × the plain read (≥ 0.8 with --no-norms), peak RSS < 200 MB.
 *   node dist/bench/inspect.js [--keep DIR]
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inspectPath } from "../src/inspect/inspect.js";
import { gemmF32 } from "../src/tensor/gemm.js";
import { writeSyntheticAdapter } from "./synthetic.js";

const self = fileURLToPath(import.meta.url);

interface ChildResult {
  ms: number;
  cpuMs: number;
  maxRssMb: number;
}

function child(mode: string, path: string): ChildResult {
  const r = spawnSync(process.execPath, [self, "--child", mode, path], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`child ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as ChildResult;
}

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
}

/** Best-of-3 single-thread float32 GEMM rate (GFLOP/s) on the norms' shape: 64 × 64 Grams over 4096. */
function gemmRate(): number {
  const a = new Float32Array(64 * 4096).map((_, i) => Math.sin(i));
  const out = new Float32Array(64 * 64);
  gemmF32(64, 64, 4096, a, a, { transB: true, out });
  let best = Infinity;
  for (let t = 0; t < 3; t++) {
    const c = process.cpuUsage();
    for (let k = 0; k < 200; k++) gemmF32(64, 64, 4096, a, a, { transB: true, out });
    const u = process.cpuUsage(c);
    best = Math.min(best, (u.user + u.system) / 1000);
  }
  return (200 * 2 * 64 * 64 * 4096) / (best / 1000) / 1e9;
}

if (process.argv[2] === "--child") {
  const [mode, path] = process.argv.slice(3) as [string, string];
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  if (mode === "plain") {
    const fd = openSync(join(path, "adapter_model.safetensors"), "r");
    const buf = Buffer.allocUnsafe(8 << 20);
    let sum = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      sum += buf[n - 1]!;
    }
    closeSync(fd);
    if (sum < 0) console.log(sum);
  } else {
    const r = inspectPath(path, { norms: mode === "inspect" });
    if (r.modules!.length !== 224) throw new Error(`expected 224 modules, got ${r.modules!.length}`);
  }
  const ms = performance.now() - t0;
  const u = process.cpuUsage(c0);
  const cpuMs = (u.user + u.system) / 1000;
  console.log(JSON.stringify({ ms, cpuMs, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
} else {
  const keep = process.argv.indexOf("--keep");
  const dir = keep > 0 ? process.argv[keep + 1]! : mkdtempSync(join(tmpdir(), "merglot-bench-inspect-"));
  const adapter = join(dir, "llama8b-r64");
  if (!existsSync(adapter)) {
    const t = performance.now();
    writeSyntheticAdapter(adapter, { seed: 1 });
    console.log(`generated ${adapter} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const bytes = statSync(join(adapter, "adapter_model.safetensors")).size;
  const mb = bytes / 1e6;
  child("plain", adapter); // warm the page cache so both runs read from memory
  const plain = child("plain", adapter);
  const insp = child("inspect", adapter);
  const noNorms = child("headers", adapter);
  const plain2 = child("plain", adapter);
  const plainMs = Math.min(plain.ms, plain2.ms);
  const plainCpu = Math.min(plain.cpuMs, plain2.cpuMs);
  console.log(`file: ${mb.toFixed(1)} MB (224 modules, r=64, bf16); load ${load()}`);
  const line = (label: string, r: ChildResult, ms: number) =>
    console.log(
      `${label.padEnd(24)}${ms.toFixed(0).padStart(6)} ms, ${(mb / (ms / 1000)).toFixed(0).padStart(5)} MB/s, ` +
        `CPU ${r.cpuMs.toFixed(0).padStart(5)} ms, peak RSS ${r.maxRssMb.toFixed(0)} MB`,
    );
  line("plain sequential read:", plain, plainMs);
  line("merglot inspect:", insp, insp.ms);
  line("inspect --no-norms:", noNorms, noNorms.ms);
  console.log(
    `ratio inspect / plain read throughput: ${(plainMs / insp.ms).toFixed(2)} wall, ${(plainCpu / insp.cpuMs).toFixed(2)} CPU ` +
      `(target ≥ 0.3); --no-norms: ${(plainMs / noNorms.ms).toFixed(2)} wall (target ≥ 0.8); peak RSS target < 200 MB`,
  );
  // the machine's limit for the norms: ‖s·B·A‖_F from the two r × r Grams costs 2r²(in + out) flops
  const flop = 2 * 64 * 64 * 32 * (6 * 4096 + 14336 + 2 * 4096 + 2 * 1024 + 2 * 14336 + 4096);
  const rate = gemmRate();
  console.log(
    `norms: ${(flop / 1e9).toFixed(1)} GFLOP of Grams; float32 GEMM here ${rate.toFixed(0)} GFLOP/s (1 thread, ` +
      `load ${load()}) → ≥ ${((flop / rate / 1e9) * 1000).toFixed(0)} ms of arithmetic besides the read and the bf16 decode`,
  );
  if (keep < 0) rmSync(dir, { recursive: true, force: true });
}
