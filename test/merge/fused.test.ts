/**
 * The fused TIES kernels (JavaScript: src/merge/fused.ts; WebAssembly SIMD: wasm/ties.ts) give the same bits as the definitions: a naive TIES written
 * here from the paper's steps (sort-based trim, lower flat index first among equal magnitudes; elected
 * sign; disjoint mean in float64), and the operator composition (ties / dare_ties run without the range
 * operators). Lengths straddle the kernel's block size; data has ties, zeros, −0, and opposite signs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeBinder } from "../../src/merge/binder.js";
import { BLOCK } from "../../src/merge/fused.js";
import { freshBuffers, resolveMethod, type MethodContext } from "../../src/merge/methods.js";
import type { SignMethod } from "../../src/merge/operators.js";
import type { ModuleJob } from "../../src/merge/spaces/types.js";
import { tiesWasmStatus } from "../../src/merge/ties-wasm.js";

/** Deterministic test data: magnitudes from a small set (many exact ties), random signs, some zeros. */
function tensor(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  const levels = [0, 0.25, 0.5, 1, 1.5, 3, 7.25];
  return Float32Array.from({ length: n }, () => {
    const u = next();
    if (u < 0.05) return -0;
    const mag = u < 0.5 ? levels[Math.floor(next() * levels.length)]! : next() * 4;
    return next() < 0.5 ? -mag : mag;
  });
}

/** trim by the definition: sort indices by |x| descending, then by index; keep the first floor(ρN). */
function naiveTrim(x: Float32Array, density: number): Float32Array {
  const k = Math.floor(density * x.length);
  const order = [...x.keys()].sort((a, b) => Math.abs(x[b]!) - Math.abs(x[a]!) || a - b);
  const out = new Float32Array(x.length);
  for (const i of order.slice(0, k)) out[i] = x[i]!;
  return out;
}

function naiveTies(
  xs: Float32Array[],
  densities: number[],
  weights: number[],
  signMethod: SignMethod,
): Float32Array {
  const kept = xs.map((x, i) => naiveTrim(x, densities[i]!));
  const n = xs[0]!.length;
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (const k of kept) s += signMethod === "total" ? k[j]! : Math.sign(k[j]!);
    const gamma = s < 0 ? -1 : 1;
    let num = 0;
    let cnt = 0;
    kept.forEach((k, i) => {
      const v = k[j]!;
      if (v !== 0 && Math.sign(v) === gamma) {
        num += weights[i]! * v;
        cnt++;
      }
    });
    out[j] = num / Math.max(1, cnt);
  }
  return out;
}

function job(xs: Float32Array[], densities: number[], weights: number[]): ModuleJob {
  const inputs = xs.map((x, i) => ({
    index: i,
    a: x,
    b: new Float32Array(0),
    rank: 1,
    scaling: 1,
    weight: weights[i]!,
    density: densities[i]!,
  }));
  return { name: "m", out: 1, in: xs[0]!.length, inputs, targetRank: 1 };
}

/**
 * The three ways a method runs: the engine's default (the WebAssembly SIMD kernel when the binder gives the
 * thresholds), the JavaScript fused kernel (range operators only), and the plain composition (neither).
 */
type Kernel = "wasm" | "js" | "composed";

/** Runs a method as the engine does, or with the JavaScript fused kernel, or composed. */
function run(
  name: "ties" | "dare_ties",
  xs: Float32Array[],
  densities: number[],
  weights: number[],
  signMethod: SignMethod,
  opts: { kernel: Kernel; chunks: number },
): Float32Array {
  const method = resolveMethod(name)!.method;
  const j = job(xs, densities, weights);
  const bound = makeBinder({ seed: 7, rescale: true }).bind(j, "t", (i) => xs[i]!, freshBuffers, 1);
  const ctx: MethodContext = {
    ...bound,
    weights,
    signMethod,
    params: {
      epsilon: 0,
      gamma: 0,
      select_topk: 1,
      t: 0.5,
      max_iter: 10,
      tol: 1e-5,
      common_space_fraction: 0.8,
    },
    buffers: freshBuffers,
  };
  if (opts.kernel !== "wasm") delete ctx.trimThreshold;
  if (opts.kernel === "composed") {
    delete ctx.trimRange;
    delete ctx.dropRange;
  }
  const n = xs[0]!.length;
  const out = new Float32Array(n);
  const step = Math.ceil(n / opts.chunks);
  for (let from = 0; from < n; from += step) {
    const to = Math.min(n, from + step);
    out.set(
      method.run(
        xs.map((x) => x.subarray(from, to)),
        ctx,
      ),
      from,
    );
  }
  return out;
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length);
  for (let j = 0; j < a.length; j++) {
    if (!Object.is(a[j], b[j])) assert.fail(`${what}: entry ${j} is ${a[j]}, expected ${b[j]}`);
  }
}

const CASES = [
  { n: 1, m: 1 },
  { n: 7, m: 3 },
  { n: BLOCK, m: 5 },
  { n: BLOCK + 1, m: 2 },
  { n: 3 * BLOCK - 5, m: 5 },
];

test("the WebAssembly SIMD kernel is built and loads (else the next test would only check the JavaScript one)", () => {
  const s = tiesWasmStatus();
  assert.ok(s.available, s.reason ?? "");
});

test("ties (SIMD, JavaScript fused, composed) = naive TIES by the definition, bit for bit (whole and in row chunks)", () => {
  for (const { n, m } of CASES) {
    const xs = Array.from({ length: m }, (_, i) => tensor(n, 100 * n + i));
    const densities = xs.map((_, i) => [0.5, 0.2, 1, 0.75, 0.33][i]!);
    const weights = xs.map((_, i) => [1, 0.5, 2, -1, 0.3][i]!);
    for (const signMethod of ["total", "frequency"] as const) {
      const expected = naiveTies(xs, densities, weights, signMethod);
      for (const chunks of [1, 3]) {
        const what = `n=${n} m=${m} ${signMethod} chunks=${chunks}`;
        for (const kernel of ["wasm", "js", "composed"] as const)
          sameBits(
            run("ties", xs, densities, weights, signMethod, { kernel, chunks }),
            expected,
            `${what} ${kernel}`,
          );
      }
    }
  }
});

test("fused dare_ties = the composed drop, elect and disjoint mean, bit for bit", () => {
  for (const { n, m } of CASES) {
    const xs = Array.from({ length: m }, (_, i) => tensor(n, 7 * n + i));
    const densities = xs.map((_, i) => [0.5, 0.9, 0.1, 1, 0.3][i]!);
    const weights = xs.map((_, i) => [1, 2, 0.5, 1, -0.25][i]!);
    for (const chunks of [1, 2]) {
      const fused = run("dare_ties", xs, densities, weights, "total", { kernel: "js", chunks });
      const composed = run("dare_ties", xs, densities, weights, "total", { kernel: "composed", chunks });
      sameBits(fused, composed, `n=${n} m=${m} chunks=${chunks}`);
      // and the result is a TIES of some drop: each output is 0 or a weighted mean of agreeing inputs
      assert.ok(fused.some((v) => v !== 0) || n < 8);
    }
  }
});
