/**
 * Dense kernels on row-major typed arrays. The engine runs in float32 (training, scoring) or float64
 * (gradient checks), so every kernel takes either; a process that only trains sees only Float32Array and
 * V8 keeps the loops monomorphic.
 *
 * gemm() is the one entry point for matrix products: large float32 products go to ONNX Runtime (tensor/ort.ts),
 * everything else to the register-blocked JS loops below.
 */
import { ONNX_FLOAT, type OnnxNode, type OnnxValue } from "../tensor/onnx.js";
import { ortBatchedMatMul, ortGemm, ortRunGraph, ortSwitchedOff } from "../tensor/ort.js";

export type Buf = Float32Array | Float64Array;

/** MERGLOT_KERNELS=js keeps every product in JavaScript (read once, like the thread count). */
const NATIVE_ALLOWED = !ortSwitchedOff("engine");

/** Below this many multiply-adds a JS loop beats the fixed cost of a native call (~30 µs). */
const NATIVE_MIN_WORK = 1 << 17;

let scratch = new Float32Array(0);
function scratchOf(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(Math.max(n, scratch.length * 2));
  return scratch.subarray(0, n);
}

// ------------------------------------------------------------------ native element-wise kernels (float32)
//
// Softmax, log-sum-exp and sigmoid cost one exponential per element; V8 calls a scalar exp (~9 ns here), MLAS
// evaluates it vectorised on every intra-op thread. On the 10M-parameter training benchmark these three were
// ~29% of a step in JavaScript. Float32 only: the float64 engine (gradient checks) and MERGLOT_KERNELS=js keep
// the JavaScript loops in layers.ts, which stay the reference the native results are tested against.

/** Below this many elements the JS loop beats the fixed cost of a native call. */
const NATIVE_MIN_ELEMENTS = 1 << 14;

let elemScratch = new Float32Array(0);
/** Kernel-owned float32 scratch of n elements, valid until the next call that takes it. */
export function elementScratch(n: number): Float32Array {
  if (elemScratch.length < n) elemScratch = new Float32Array(Math.max(n, elemScratch.length * 2));
  return elemScratch.subarray(0, n);
}

/** Whether element-wise work on `x` (n elements) goes to ONNX Runtime. */
export function nativeElementwise(x: Buf, n: number): x is Float32Array {
  return NATIVE_ALLOWED && n >= NATIVE_MIN_ELEMENTS && x instanceof Float32Array;
}

const f32 = (name: string, dims: string[]): OnnxValue => ({ name, elemType: ONNX_FLOAT, dims });

/**
 * Row-wise softmax and log-sum-exp of x [rows × cols]: probs[r] = softmax(x[r]) and lse[r] = log Σ_c exp(x[r,c])
 * (both max-shifted by ONNX Runtime). Returns false, writing nothing, when the addon is unavailable.
 */
export function softmaxLseNative(
  x: Float32Array,
  rows: number,
  cols: number,
  probs: Float32Array,
  lse: Float32Array,
): boolean {
  return ortRunGraph(
    "engine",
    "softmax+lse",
    () => {
      const nodes: OnnxNode[] = [
        { op: "Softmax", inputs: ["X"], outputs: ["P"], attrs: { axis: 1 } },
        { op: "ReduceLogSumExp", inputs: ["X"], outputs: ["L"], attrs: { axes: [1], keepdims: 0 } },
      ];
      return { nodes, inputs: [f32("X", ["R", "C"])], outputs: [f32("P", ["R", "C"]), f32("L", ["R"])] };
    },
    [{ name: "X", data: x.subarray(0, rows * cols), dims: [rows, cols] }],
    [
      { name: "P", data: probs.subarray(0, rows * cols), dims: [rows, cols] },
      { name: "L", data: lse.subarray(0, rows), dims: [rows] },
    ],
  );
}

/** out[r] = softmax(x[r]) for rows of x [rows × cols]; −∞ entries get probability 0. False when unavailable. */
export function softmaxRowsNative(x: Float32Array, rows: number, cols: number, out: Float32Array): boolean {
  const n = rows * cols;
  return ortRunGraph(
    "engine",
    "softmax",
    () => ({
      nodes: [{ op: "Softmax", inputs: ["X"], outputs: ["P"], attrs: { axis: 1 } }],
      inputs: [f32("X", ["R", "C"])],
      outputs: [f32("P", ["R", "C"])],
    }),
    [{ name: "X", data: x.subarray(0, n), dims: [rows, cols] }],
    [{ name: "P", data: out.subarray(0, n), dims: [rows, cols] }],
  );
}

/** out = σ(x) = 1 / (1 + e^−x) for n elements. False when unavailable. */
export function sigmoidNative(x: Float32Array, n: number, out: Float32Array): boolean {
  return ortRunGraph(
    "engine",
    "sigmoid",
    () => ({
      nodes: [{ op: "Sigmoid", inputs: ["X"], outputs: ["Y"] }],
      inputs: [f32("X", ["N"])],
      outputs: [f32("Y", ["N"])],
    }),
    [{ name: "X", data: x.subarray(0, n), dims: [n] }],
    [{ name: "Y", data: out.subarray(0, n), dims: [n] }],
  );
}

/** Count of multiply-adds by path, for benchmarks and tests. */
export const gemmStats = { nativeMacs: 0, jsMacs: 0 };

/**
 * C[M×N] (+)= op(A)·op(B). op(A) is A [M×K], or Aᵀ with A stored [K×M] when transA; op(B) is B [K×N], or Bᵀ
 * with B stored [N×K] when transB. With `accumulate` the product is added to C, otherwise C is overwritten.
 */
export function gemm(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  A: Buf,
  B: Buf,
  C: Buf,
  accumulate: boolean,
): void {
  if (M === 0 || N === 0) return;
  if (K === 0) {
    if (!accumulate) C.fill(0, 0, M * N);
    return;
  }
  const work = M * N * K;
  if (
    NATIVE_ALLOWED &&
    work >= NATIVE_MIN_WORK &&
    A instanceof Float32Array &&
    B instanceof Float32Array &&
    C instanceof Float32Array
  ) {
    if (!accumulate) {
      if (native(transA, transB, M, N, K, A, B, C)) {
        gemmStats.nativeMacs += work;
        return;
      }
    } else {
      const tmp = scratchOf(M * N);
      if (native(transA, transB, M, N, K, A, B, tmp)) {
        gemmStats.nativeMacs += work;
        for (let i = 0; i < M * N; i++) C[i] += tmp[i];
        return;
      }
    }
  }
  gemmStats.jsMacs += work;
  if (!accumulate) C.fill(0, 0, M * N);
  if (!transA && transB) gemmNT(M, N, K, A, B, C);
  else if (!transA && !transB) gemmNN(M, N, K, A, B, C);
  else if (transA && !transB) gemmTN(M, N, K, A, B, C);
  else gemmTT(M, N, K, A, B, C);
}

function native(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
): boolean {
  return ortGemm("engine", { m, n, k, a, b, transA, transB, alpha: 1, beta: 0, c: undefined, out });
}

/**
 * Batched C[b] = op(A[b])·op(B[b]) for b < batch (overwrites C); matrices are stored back to back with the
 * same shapes as in gemm(). Large float32 batches go to ONNX Runtime in one call.
 */
export function batchedGemm(
  transA: boolean,
  transB: boolean,
  batch: number,
  M: number,
  N: number,
  K: number,
  A: Buf,
  B: Buf,
  C: Buf,
): void {
  const work = batch * M * N * K;
  if (
    NATIVE_ALLOWED &&
    work >= NATIVE_MIN_WORK &&
    A instanceof Float32Array &&
    B instanceof Float32Array &&
    C instanceof Float32Array
  ) {
    if (ortBatchedMatMul("engine", transA, transB, batch, M, N, K, A, B, C)) {
      gemmStats.nativeMacs += work;
      return;
    }
  }
  for (let b = 0; b < batch; b++) {
    gemm(
      transA,
      transB,
      M,
      N,
      K,
      A.subarray(b * M * K, (b + 1) * M * K),
      B.subarray(b * N * K, (b + 1) * N * K),
      C.subarray(b * M * N, (b + 1) * M * N),
      false,
    );
  }
}

/** C += A·Bᵀ: dot products along contiguous rows, 2×4 register block. */
function gemmNT(M: number, N: number, K: number, A: Buf, B: Buf, C: Buf): void {
  let i = 0;
  for (; i + 1 < M; i += 2) {
    const a0 = i * K;
    const a1 = a0 + K;
    let j = 0;
    for (; j + 3 < N; j += 4) {
      const b0 = j * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0; // prettier-ignore
      for (let k = 0; k < K; k++) {
        const x0 = A[a0 + k];
        const x1 = A[a1 + k];
        const w0 = B[b0 + k];
        const w1 = B[b1 + k];
        const w2 = B[b2 + k];
        const w3 = B[b3 + k];
        c00 += x0 * w0;
        c01 += x0 * w1;
        c02 += x0 * w2;
        c03 += x0 * w3;
        c10 += x1 * w0;
        c11 += x1 * w1;
        c12 += x1 * w2;
        c13 += x1 * w3;
      }
      const o0 = i * N + j;
      const o1 = o0 + N;
      C[o0] += c00;
      C[o0 + 1] += c01;
      C[o0 + 2] += c02;
      C[o0 + 3] += c03;
      C[o1] += c10;
      C[o1 + 1] += c11;
      C[o1 + 2] += c12;
      C[o1 + 3] += c13;
    }
    for (; j < N; j++) {
      const b0 = j * K;
      let c0 = 0;
      let c1 = 0;
      for (let k = 0; k < K; k++) {
        c0 += A[a0 + k] * B[b0 + k];
        c1 += A[a1 + k] * B[b0 + k];
      }
      C[i * N + j] += c0;
      C[(i + 1) * N + j] += c1;
    }
  }
  for (; i < M; i++) {
    const a0 = i * K;
    for (let j = 0; j < N; j++) {
      const b0 = j * K;
      let c = 0;
      for (let k = 0; k < K; k++) c += A[a0 + k] * B[b0 + k];
      C[i * N + j] += c;
    }
  }
}

/** C += A·B: row axpys, two rows of A per pass over B. */
function gemmNN(M: number, N: number, K: number, A: Buf, B: Buf, C: Buf): void {
  let i = 0;
  for (; i + 1 < M; i += 2) {
    const c0 = i * N;
    const c1 = c0 + N;
    for (let k = 0; k < K; k++) {
      const x0 = A[i * K + k];
      const x1 = A[(i + 1) * K + k];
      if (x0 === 0 && x1 === 0) continue;
      const b = k * N;
      for (let j = 0; j < N; j++) {
        const w = B[b + j];
        C[c0 + j] += x0 * w;
        C[c1 + j] += x1 * w;
      }
    }
  }
  for (; i < M; i++) {
    const c0 = i * N;
    for (let k = 0; k < K; k++) {
      const x0 = A[i * K + k];
      if (x0 === 0) continue;
      const b = k * N;
      for (let j = 0; j < N; j++) C[c0 + j] += x0 * B[b + j];
    }
  }
}

/** C += Aᵀ·B with A stored [K×M]: rank-1 updates, two k at a time. */
function gemmTN(M: number, N: number, K: number, A: Buf, B: Buf, C: Buf): void {
  let k = 0;
  for (; k + 1 < K; k += 2) {
    const b0 = k * N;
    const b1 = b0 + N;
    for (let i = 0; i < M; i++) {
      const x0 = A[k * M + i];
      const x1 = A[(k + 1) * M + i];
      if (x0 === 0 && x1 === 0) continue;
      const c = i * N;
      for (let j = 0; j < N; j++) C[c + j] += x0 * B[b0 + j] + x1 * B[b1 + j];
    }
  }
  for (; k < K; k++) {
    const b0 = k * N;
    for (let i = 0; i < M; i++) {
      const x0 = A[k * M + i];
      if (x0 === 0) continue;
      const c = i * N;
      for (let j = 0; j < N; j++) C[c + j] += x0 * B[b0 + j];
    }
  }
}

/** C += Aᵀ·Bᵀ (not used on hot paths). */
function gemmTT(M: number, N: number, K: number, A: Buf, B: Buf, C: Buf): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let c = 0;
      for (let k = 0; k < K; k++) c += A[k * M + i] * B[j * K + k];
      C[i * N + j] += c;
    }
  }
}

/** y += x (same length). */
export function addInto(y: Buf, x: Buf, n = y.length): void {
  for (let i = 0; i < n; i++) y[i] += x[i];
}

/** Sum over rows: out[c] += Σ_r x[r·cols + c] (bias gradients). */
export function addColumnSums(out: Buf, x: Buf, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[c] += x[o + c];
  }
}

/** x[r, :] += bias for every row. */
export function addBias(x: Buf, bias: Buf, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) x[o + c] += bias[c];
  }
}
