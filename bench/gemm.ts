/**
 * bench/gemm: GFLOP/s of the GEMM kernels on the shapes the merge engine uses, and the cost of the
 * factorizations built on them. Times are CPU time of this (single-threaded) process, best of several
 * runs, so that other load on the machine distorts them less than wall time would.
 *   node dist/bench/gemm.js [--quick]
 *
 * Kernels: "js f64" (gemm-js.ts), "js f32" (the float32 entry point on the JS kernel: converts, computes
 * in float64, rounds), "ort f64" / "ort f32" (onnxruntime MLAS dgemm / sgemm, one intra-op thread).
 */
import { availableParallelism, cpus } from "node:os";
import { configureGemm, gemmBackendInfo, gemmF32, gemmF64, gram } from "../src/tensor/gemm.js";
import { mat, type Mat } from "../src/tensor/matrix.js";
import { qr, qrFactor } from "../src/tensor/qr.js";
import { Rng } from "../src/tensor/rng.js";
import { f32Operator, randomizedSvd } from "../src/tensor/rsvd.js";
import { svd } from "../src/tensor/svd.js";
import { symEig } from "../src/tensor/symeig.js";

const quick = process.argv.includes("--quick");

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Best CPU time (ms) of `fn` over `reps` runs after one warm-up run, capped by a time budget. */
function best(fn: () => unknown, reps: number, budgetMs = 4000): number {
  fn();
  let b = Infinity;
  const start = performance.now();
  for (let r = 0; r < reps && (r === 0 || performance.now() - start < budgetMs); r++) {
    const c = cpuMs();
    fn();
    b = Math.min(b, cpuMs() - c);
  }
  return b;
}

function randomF64(n: number, rng: Rng): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.nextFloat() - 0.5;
  return a;
}

function randomMat(rows: number, cols: number, rng: Rng): Mat {
  return mat(rows, cols, randomF64(rows * cols, rng));
}

const rng = new Rng(42);
console.log(
  `machine: ${cpus()[0]?.model ?? "?"}, ${availableParallelism()} cores; native: ${JSON.stringify(gemmBackendInfo())}`,
);

// ---- GEMM throughput ----
const shapes: { label: string; m: number; k: number; n: number; transA?: boolean }[] = [
  { label: "4096×320 · 320×320", m: 4096, k: 320, n: 320 },
  { label: "320×320 · 320×14336", m: 320, k: 320, n: 14336 },
  { label: "Gram 64×14336 · 14336×64", m: 64, k: 14336, n: 64, transA: true },
  { label: "1024×1024 · 1024×1024", m: 1024, k: 1024, n: 1024 },
];
const kernels = [
  { name: "js f64", backend: "js", f32: false },
  { name: "js f32", backend: "js", f32: true },
  { name: "ort f64", backend: "auto", f32: false },
  { name: "ort f32", backend: "auto", f32: true },
] as const;

const header = ["shape".padEnd(28), ...kernels.map((k) => k.name.padStart(9))].join(" ");
console.log(`\nGFLOP/s (CPU time, best of runs)\n${header}`);
for (const s of shapes) {
  const a64 = randomF64(s.m * s.k, rng);
  const b64 = randomF64(s.k * s.n, rng);
  const a32 = Float32Array.from(a64);
  const b32 = Float32Array.from(b64);
  const out64 = new Float64Array(s.m * s.n);
  const out32 = new Float32Array(s.m * s.n);
  const cells: string[] = [];
  for (const k of kernels) {
    if (k.backend === "auto" && gemmBackendInfo().backend !== "ort" && k.backend !== "auto") continue;
    configureGemm({ backend: k.backend });
    if (k.backend === "auto" && gemmBackendInfo().backend !== "ort") {
      cells.push("n/a".padStart(9));
      continue;
    }
    const reps = k.backend === "js" ? (quick ? 1 : 2) : quick ? 3 : 8;
    const ms = best(
      () =>
        k.f32
          ? gemmF32(s.m, s.n, s.k, a32, b32, { transA: s.transA, out: out32 })
          : gemmF64(s.m, s.n, s.k, a64, b64, { transA: s.transA, out: out64 }),
      reps,
    );
    cells.push(((2 * s.m * s.n * s.k) / ms / 1e6).toFixed(1).padStart(9));
  }
  console.log([s.label.padEnd(28), ...cells].join(" "));
}
configureGemm({ backend: "auto" });

// ---- factorizations (native GEMM where available) ----
console.log("\nfactorizations (ms, CPU time, best of runs)");
const report = (label: string, ms: number, extra = ""): void =>
  console.log(`${label.padEnd(44)} ${ms.toFixed(1).padStart(8)} ms ${extra}`);
const tall = randomMat(14336, 320, rng);
const mid = randomMat(4096, 320, rng);
const core = randomMat(320, 320, rng);
const sym = gram(randomMat(400, 320, rng));
const cases: [string, () => unknown, number][] = [
  ["gram 14336×320 (AᵀA, 1.47 Gflop)", () => gram(tall), 5],
  ["qr 4096×320 (explicit thin Q; CholeskyQR2)", () => qr(mid), 3],
  ["qr 14336×320 (explicit thin Q; CholeskyQR2)", () => qr(tall), 3],
  ["Householder qr 14336×320 (qrFactor + q())", () => qrFactor(tall).q(), 3],
  ["qr 14336×64", () => qr(randomMat(14336, 64, rng)), 3],
  ["svd 320×320", () => svd(core), 5],
  ["symEig 320×320", () => symEig(sym), 5],
];
for (const [label, fn, reps] of cases) report(label, best(fn, reps));
if (!quick) {
  const delta = new Float32Array(14336 * 4096);
  // A rank-96 test delta with a decaying spectrum, built in float32 without forming float64 copies.
  const left = randomF64(14336 * 96, rng);
  const right = randomF64(96 * 4096, rng);
  for (let t = 0; t < 96; t++) {
    const sigma = Math.exp(-t / 16);
    for (let i = 0; i < 14336; i++) left[i * 96 + t] *= sigma;
  }
  delta.set(gemmF32(14336, 4096, 96, Float32Array.from(left), Float32Array.from(right)));
  const op = f32Operator(delta, 14336, 4096);
  report(
    "randomizedSvd 14336×4096 f32, k=64, q=2",
    best(() => randomizedSvd(op, 64, { seed: 1 }), 2),
  );
}
