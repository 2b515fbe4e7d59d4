/**
 * bench/ties-kernels: the element-wise TIES operators on one module's real KnOTS task tensors (five synthetic
 * Llama-3.1-8B-shaped r = 64 adapters), the operator composition (trim, elect, disjoint mean over whole
 * tensors: the engine before the fused kernel) against the fused kernel (src/merge/fused.ts) and its WebAssembly
 * SIMD form (wasm/ties.ts, inputs copied in or already in place), in the same
 * process on the same data, alternating, after warm-up; checks both give the same bits. Also prints the
 * machine's own yardsticks measured in this run: memory bandwidth (a large copy), a plain JS sum over the
 * same tensors, and float32 / float64 GEMM GFLOP/s. Times are CPU time of this process (less distorted by
 * other load than wall time); the load average is printed with them.
 *   node dist/bench/ties-kernels.js [--module q_proj|k_proj|gate_proj|down_proj] [--reps N] [--patterns]
 * --patterns: also time the old disjoint mean alone on the real tensors and on synthetic values with
 * predictable and unpredictable sign / zero patterns (issue 14: why 10 ns on some data and 2.4 ns on other).
 */
import { loadavg } from "node:os";
import { fusedDisjointMerge } from "../src/merge/fused.js";
import {
  applyThreshold,
  applyThresholdRange,
  disjointMean,
  electSign,
  trimThreshold,
  type TrimThreshold,
} from "../src/merge/operators.js";
import { scratchBuffers } from "../src/merge/compute.js";
import { inputSlots, tiesMergeWasm, tiesWasmStatus } from "../src/merge/ties-wasm.js";
import { knotsBasis } from "../src/merge/spaces/knots.js";
import type { ModuleJob } from "../src/merge/spaces/types.js";
import { gemmF32, gemmF64 } from "../src/tensor/gemm.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const SHAPES: Record<string, [number, number]> = {
  q_proj: [4096, 4096],
  k_proj: [1024, 4096],
  gate_proj: [14336, 4096],
  down_proj: [4096, 14336],
};
const moduleName = arg("--module") ?? "q_proj";
const [OUT, IN] = SHAPES[moduleName] ?? SHAPES.q_proj!;
const REPS = Number(arg("--reps") ?? 5);
const N = 5;
const R = 64;
const DENSITY = 0.5;

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function timed(fn: () => unknown): number {
  const c = cpuMs();
  fn();
  return cpuMs() - c;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
}

/** Uniform values in [-scale, scale) (xorshift32), as bench/synthetic.ts. */
function fill(x: Float32Array, state: { s: number }, scale: number): void {
  let s = state.s;
  for (let i = 0; i < x.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    x[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  state.s = s;
}

// --- yardsticks measured in this run
function yardsticks(): void {
  const big = new Float32Array(1 << 24); // 64 MB
  const dst = new Float32Array(big.length);
  big.fill(1);
  dst.fill(0);
  const copyMs = Math.min(...[0, 1, 2].map(() => timed(() => dst.set(big))));
  const gb = (2 * big.byteLength) / 1e9; // read + write
  const st = { s: 7 };
  const a32 = new Float32Array(1024 * 1024);
  const b32 = new Float32Array(1024 * 1024);
  fill(a32, st, 1);
  fill(b32, st, 1);
  const a64 = Float64Array.from(a32);
  const b64 = Float64Array.from(b32);
  const o32 = new Float32Array(1024 * 1024);
  const o64 = new Float64Array(1024 * 1024);
  gemmF32(1024, 1024, 1024, a32, b32, { out: o32 });
  gemmF64(1024, 1024, 1024, a64, b64, { out: o64 });
  const g32 = Math.min(
    ...[0, 1, 2].map(() => timed(() => gemmF32(1024, 1024, 1024, a32, b32, { out: o32 }))),
  );
  const g64 = Math.min(
    ...[0, 1, 2].map(() => timed(() => gemmF64(1024, 1024, 1024, a64, b64, { out: o64 }))),
  );
  const flop = 2 * 1024 ** 3;
  console.log(
    `machine (this run, load ${load()}): copy ${(gb / (copyMs / 1000)).toFixed(1)} GB/s (read+write), ` +
      `GEMM 1024³ f32 ${(flop / g32 / 1e6).toFixed(1)} GFLOP/s, f64 ${(flop / g64 / 1e6).toFixed(1)} GFLOP/s (1 thread)`,
  );
}

// --- the data: one module's KnOTS task tensors
function job(): ModuleJob {
  const st = { s: 12345 };
  const inputs = Array.from({ length: N }, (_, i) => {
    const a = new Float32Array(R * IN);
    fill(a, st, 1 / Math.sqrt(IN));
    const b = new Float32Array(OUT * R);
    fill(b, st, 0.01);
    return { index: i, a, b, rank: R, scaling: 2, weight: 1, density: DENSITY };
  });
  return { name: moduleName, out: OUT, in: IN, inputs, targetRank: N * R };
}

yardsticks();
const basis = knotsBasis(job(), scratchBuffers);
const tasks = basis.tasks.map((t) => Float32Array.from(t));
const n = tasks[0]!.length;
const entries = n * N;
const weights = tasks.map(() => 1);
const thresholds = tasks.map((x) => trimThreshold(x, DENSITY));
console.log(
  `module ${moduleName}: ${N} task tensors of ${basis.u.cols} × ${IN} (${(entries / 1e6).toFixed(1)}M entry-adapters), density ${DENSITY}`,
);

// plain JS sum over the same tensors (the floor of any JS pass over them)
function plainSum(xs: readonly Float32Array[]): number {
  let s0 = 0;
  let s1 = 0;
  for (const x of xs) {
    const m = x.length & ~1;
    for (let j = 0; j < m; j += 2) {
      s0 += x[j]!;
      s1 += x[j + 1]!;
    }
  }
  return s0 + s1;
}

const kept = tasks.map((x) => new Float32Array(x.length));
const gamma = new Float32Array(n);
const sum = new Float64Array(n);
const outA = new Float32Array(n);
const outB = new Float32Array(n);

/** The engine's path before the fused kernel: trim every tensor, elect, disjoint mean. */
function composed(): Float32Array {
  tasks.forEach((x, i) => applyThreshold(x, { ...thresholds[i]! }, kept[i]!));
  electSign(kept, "total", gamma, sum);
  return disjointMean(kept, weights, gamma, outA);
}

function fused(): Float32Array {
  const ts: TrimThreshold[] = thresholds.map((t) => ({ ...t }));
  const bits = tasks.map((x) => new Uint32Array(x.buffer, x.byteOffset, x.length));
  const outBits = new Map<Float32Array, Uint32Array>();
  return fusedDisjointMerge(
    tasks,
    (i, _x, from, len, out) => {
      let ob = outBits.get(out);
      if (!ob) outBits.set(out, (ob = new Uint32Array(out.buffer, out.byteOffset, out.length)));
      applyThresholdRange(bits[i]!, from, len, ts[i]!, ob);
    },
    weights,
    "total",
    outB,
  );
}

/** The WebAssembly SIMD kernel (wasm/ties.ts), inputs copied into its memory as the KnOTS space does. */
const outC = new Float32Array(n);
const hasSimd = tiesWasmStatus().available;
function simd(xs: readonly Float32Array[] = tasks): Float32Array {
  const ts: TrimThreshold[] = thresholds.map((t) => ({ ...t }));
  // without the kernel (MERGLOT_WASM=js) its rows are skipped: the fused kernel stands in so the loop runs
  return hasSimd && tiesMergeWasm(xs, ts, weights, "total", outC) ? outC : fused();
}
/** The same with the inputs already in the kernel's memory, as the delta space forms them (no copy). */
const slots = inputSlots(N, n);
tasks.forEach((x, i) => slots?.[i]!.set(x));
const simdInPlace = () => simd(slots ?? tasks);

// warm-up: enough calls for the optimizing compiler to settle on every kernel
for (let w = 0; w < 3; w++) {
  composed();
  fused();
  simd();
  simdInPlace();
  plainSum(tasks);
}
const a = composed();
const b = fused();
for (let j = 0; j < n; j++) {
  if (!Object.is(a[j], b[j])) throw new Error(`fused and composed differ at ${j}: ${a[j]} vs ${b[j]}`);
}
for (const [label, c] of [
  ["SIMD", simd()],
  ["SIMD in place", simdInPlace()],
] as const) {
  for (let j = 0; j < n; j++)
    if (!Object.is(a[j], c[j])) throw new Error(`${label} and composed differ at ${j}: ${a[j]} vs ${c[j]}`);
}
const tW: number[] = [];
const tP: number[] = [];
const tC: number[] = [];
const tF: number[] = [];
const tS: number[] = [];
const tT: number[] = [];
for (let r = 0; r < REPS; r++) {
  tC.push(timed(composed));
  tF.push(timed(fused));
  tW.push(timed(simd));
  tP.push(timed(simdInPlace));
  tS.push(timed(() => plainSum(tasks)));
  tT.push(timed(() => tasks.map((x) => trimThreshold(x, DENSITY))));
}
const ns = (ms: number) => ((ms * 1e6) / entries).toFixed(2);
console.log(`load ${load()}; CPU time per entry-adapter, median of ${REPS}, same data, alternating:`);
console.log(`  plain JS sum (yardstick)            ${ns(median(tS))} ns`);
console.log(
  `  trim threshold (radix select)       ${ns(median(tT))} ns  (${tiesWasmStatus().available ? "WebAssembly" : "JavaScript"} histograms; not in the figures below)`,
);
console.log(`  composed: trim, elect, disjoint     ${ns(median(tC))} ns`);
console.log(`  fused (src/merge/fused.ts)          ${ns(median(tF))} ns`);
if (hasSimd) {
  console.log(`  SIMD (wasm/ties.ts), inputs copied  ${ns(median(tW))} ns`);
  console.log(`  SIMD, inputs in place (delta space) ${ns(median(tP))} ns`);
} else console.log(`  SIMD: not run (${tiesWasmStatus().reason})`);
console.log(
  `  ratio composed / fused              ${(median(tC) / median(tF)).toFixed(2)}×  (same bits: checked)`,
);
if (hasSimd)
  console.log(
    `  ratio fused / SIMD in place         ${(median(tF) / median(tP)).toFixed(2)}×  (same bits: checked)`,
  );

if (process.argv.includes("--patterns")) {
  // disjointMean alone (the composed path's Math.sign form) on the real trimmed tensors and on synthetic
  // values whose sign / zero pattern makes its branches predictable or not (issue 14's 10 ns vs 2.4 ns)
  composed();
  const st = { s: 99 };
  const make = (signs: boolean, zeros: boolean) =>
    tasks.map(() => {
      const u = new Float32Array(n);
      const z = new Float32Array(n);
      fill(u, st, 1);
      fill(z, st, 1);
      return Float32Array.from(u, (v, j) => {
        const m = Math.abs(v) + 0.1;
        if (zeros && z[j]! < 0) return 0;
        return signs && v < 0 ? -m : m;
      });
    });
  const sets: [string, Float32Array[]][] = [
    ["real trimmed KnOTS tensors", kept],
    ["positive, no zeros", make(false, false)],
    ["positive, random zeros", make(false, true)],
    ["random signs, no zeros", make(true, false)],
    ["random signs and zeros", make(true, true)],
  ];
  const gammas = sets.map(([, xs]) => electSign(xs, "total", new Float32Array(n), new Float64Array(n)));
  const o = new Float32Array(n);
  for (let w = 0; w < 3; w++) sets.forEach(([, xs], k) => disjointMean(xs, weights, gammas[k]!, o));
  const times = sets.map(() => [] as number[]);
  for (let r = 0; r < REPS; r++)
    sets.forEach(([, xs], k) => times[k]!.push(timed(() => disjointMean(xs, weights, gammas[k]!, o))));
  console.log(`disjointMean alone (Math.sign form), load ${load()}:`);
  sets.forEach(([label], k) => console.log(`  ${label.padEnd(36)}${ns(median(times[k]!))} ns`));
}
