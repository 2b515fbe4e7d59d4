/**
 * Symmetric eigendecomposition A = V·diag(λ)·Vᵀ (float64, all eigenpairs).
 *
 * 1. Householder tridiagonalization A = Q·T·Qᵀ (LAPACK dsytd2 order, updating the upper triangle only);
 *    reflector k is kept in row k of the work array, starting at column k+1.
 * 2. Divide and conquer on T (tridiag.ts), its O(n³) part in native matrix products.
 * 3. Back-transformation by Q in compact-WY blocks on the native GEMM.
 * Backward stable: eigenvalues are accurate to ~ε·‖A‖ (absolute), eigenvectors to ~ε·‖A‖/gap.
 */
import { MerglotError } from "../errors.js";
import { applyBlock, blockT, makeReflector, withReflectorRows } from "./householder.js";
import { mat, powerOfTwoScale, type Mat } from "./matrix.js";
import { descendingOrder, signOfLargest } from "./rotations.js";
import { tridiagonalEig, tridiagonalQr } from "./tridiag.js";
import { growMemory, lazyInstance } from "./wasm.js";
import { scratchF64 } from "./workspace.js";

const NB = 32;

export interface SymEig {
  /** Eigenvalues, descending. */
  values: Float64Array;
  /** n × n, column j is the unit eigenvector of values[j]; its largest-magnitude entry is positive. */
  vectors: Mat;
}

/** Eigen-decomposition of a symmetric matrix. Only (A + Aᵀ)/2 is used, so tiny asymmetry is harmless. */
export function symEig(a: Mat): SymEig {
  if (a.rows !== a.cols) throw new RangeError(`symEig: matrix is ${a.rows} × ${a.cols}, not square`);
  const n = a.rows;
  const w = scratchF64("eig.w", n * n);
  w.fill(0);
  let scale = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const v = i === j ? a.data[i * n + i] : 0.5 * (a.data[i * n + j] + a.data[j * n + i]);
      w[i * n + j] = v;
      scale = Math.max(scale, Math.abs(v));
    }
  }
  if (!Number.isFinite(scale))
    throw new MerglotError("linalg.nonfinite", "symEig: the matrix has a NaN or infinite entry.");
  // Work on A/scale (a power of two: exact) so that nothing in the iterations can overflow or underflow.
  scale = powerOfTwoScale(scale);
  const inv = 1 / scale;
  for (let i = 0; i < n * n; i++) w[i] *= inv;

  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(0, n - 1));
  const taus = tridiagonalize(w, n, d, e);
  let t = tridiagonalEig(d, e, scratchF64("eig.zt", n * n)); // row j of t.zt: eigenvector j of T
  if (!allFinite(t.values) || !allFinite(t.zt)) {
    // Safety net: divide and conquer has no known failure here; QR iteration has no such failure mode.
    const zt = t.zt.fill(0);
    for (let i = 0; i < n; i++) zt[i * n + i] = 1;
    const values = d.slice();
    tridiagonalQr(values, e.slice(), zt, n);
    t = { values, zt };
  }
  backTransform(w, n, taus, t.zt);

  const order = descendingOrder(t.values);
  const values = Float64Array.from(order, (i) => t.values[i] * scale);
  const vectors = mat(n, n);
  order.forEach((src, j) => {
    const sign = signOfLargest(t.zt, n, src);
    for (let i = 0; i < n; i++) vectors.data[i * n + j] = sign * t.zt[src * n + i];
  });
  return { values, vectors };
}

/**
 * Reduces the symmetric matrix in `w` (upper triangle valid) to tridiagonal (d, e), leaving reflector
 * k in row k from column k+1 (β there, v[1..] after). Returns the τ's (n − 2 of them, or none).
 */
function tridiagonalize(w: Float64Array, n: number, d: Float64Array, e: Float64Array): Float64Array {
  const native = n >= WASM_MIN_N ? wasmTridiag(n) : null;
  if (native) {
    // the same loop on a copy of w in the kernel's memory (makeReflector works on the view as on w)
    native.w.set(w.subarray(0, n * n));
    const taus = tridiagonalizeWith(native.w, n, d, e, native.v, native.p, native.step);
    w.set(native.w);
    return taus;
  }
  return tridiagonalizeWith(w, n, d, e, new Float64Array(n), new Float64Array(n), null);
}

/** Below this order the JavaScript loop is as fast (the kernel's fixed costs: a copy in and out). */
const WASM_MIN_N = 32;

interface TridiagKernel {
  memory: WebAssembly.Memory;
  tridiagStep(w: number, n: number, k: number, L: number, v: number, p: number, tau: number): void;
}
const tridiagKernel = lazyInstance<TridiagKernel>("symeig");

/** Views of w (n × n), v and p in the WebAssembly kernel's memory and its step, or null when unavailable. */
function wasmTridiag(n: number): {
  w: Float64Array;
  v: Float64Array;
  p: Float64Array;
  step: (k: number, L: number, tau: number) => void;
} | null {
  const k = tridiagKernel();
  if (k === null || !growMemory(k.memory, 8 * (n * n + 2 * n))) return null;
  const buf = k.memory.buffer;
  const pOff = 8 * (n * n + n);
  return {
    w: new Float64Array(buf, 0, n * n),
    v: new Float64Array(buf, 8 * n * n, n),
    p: new Float64Array(buf, pOff, n),
    step: (kk, L, tau) => k.tridiagStep(0, n, kk, L, 8 * n * n, pOff, tau),
  };
}

/**
 * The tridiagonalization loop on w, with v and p as work vectors; `step` (the WebAssembly kernel, same bits) or
 * the JavaScript below does the symmetric product and the rank-2 update of step k.
 */
function tridiagonalizeWith(
  w: Float64Array,
  n: number,
  d: Float64Array,
  e: Float64Array,
  v: Float64Array,
  p: Float64Array,
  step: ((k: number, L: number, tau: number) => void) | null,
): Float64Array {
  const taus = new Float64Array(Math.max(0, n - 2));
  for (let k = 0; k < n - 2; k++) {
    const row = k * n;
    const L = n - k - 1; // size of the trailing block A22 = w[k+1.., k+1..]
    const tau = makeReflector(w, row + k + 1, L);
    taus[k] = tau;
    d[k] = w[row + k];
    e[k] = w[row + k + 1];
    if (tau === 0) continue;
    v[0] = 1;
    for (let t = 1; t < L; t++) v[t] = w[row + k + 1 + t];
    if (step) {
      step(k, L, tau);
      continue;
    }
    // p = τ·A22·v with A22 read from its upper triangle (symmetric matrix–vector product).
    p.fill(0, 0, L);
    for (let i = 0; i < L; i++) {
      const ri = (k + 1 + i) * n + k + 1;
      const vi = v[i];
      let acc = w[ri + i] * vi;
      for (let j = i + 1; j < L; j++) {
        const aij = w[ri + j];
        acc += aij * v[j];
        p[j] += aij * vi;
      }
      p[i] += acc;
    }
    let pv = 0;
    for (let i = 0; i < L; i++) {
      p[i] *= tau;
      pv += p[i] * v[i];
    }
    // w = p − (τ/2)(pᵀv)·v, then A22 ← A22 − v·wᵀ − w·vᵀ (upper triangle).
    const kk = 0.5 * tau * pv;
    for (let i = 0; i < L; i++) p[i] -= kk * v[i];
    for (let i = 0; i < L; i++) {
      const ri = (k + 1 + i) * n + k + 1;
      const vi = v[i];
      const wi = p[i];
      for (let j = i; j < L; j++) w[ri + j] -= vi * p[j] + wi * v[j];
    }
  }
  if (n >= 2) {
    d[n - 2] = w[(n - 2) * n + n - 2];
    e[n - 2] = w[(n - 2) * n + n - 1];
  }
  if (n >= 1) d[n - 1] = w[(n - 1) * n + n - 1];
  return taus;
}

/** Vectors (rows of `zt`) ← Q·x, Q = H_0⋯H_{n−3} from `tridiagonalize`, in blocks of NB reflectors. */
function backTransform(w: Float64Array, n: number, taus: Float64Array, zt: Float64Array): void {
  const count = taus.length;
  const starts: number[] = [];
  for (let j0 = 0; j0 < count; j0 += NB) starts.push(j0);
  for (let bi = starts.length - 1; bi >= 0; bi--) {
    const j0 = starts[bi];
    const b = Math.min(NB, count - j0);
    withReflectorRows(w, n, j0, b, 1, (v) => {
      const t = blockT(v, b, n, taus.subarray(j0, j0 + b));
      applyBlock(v, t, b, n, zt, 0, n, true);
    });
  }
}

function allFinite(x: Float64Array): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return false;
  return true;
}
