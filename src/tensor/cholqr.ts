/**
 * CholeskyQR2 (Fukaya, Nakatsukasa, Yanagisawa & Yamamoto 2014; Yamamoto et al. 2015): for a tall
 * m × n matrix A, R₁ = chol(AᵀA), Q₁ = A·R₁⁻¹, then once more on Q₁: R₂ = chol(Q₁ᵀQ₁), Q = Q₁·R₂⁻¹,
 * R = R₂·R₁. The second pass repairs the orthogonality the first loses, giving ‖QᵀQ − I‖ and
 * ‖A − QR‖/‖A‖ of O(ε) as long as κ₂(A) ≲ ε^(-1/2) ≈ 10⁸.
 *
 * Why here: all the O(mn²) work is two Gram products and two products by an n × n matrix — the shapes
 * the native GEMM runs fastest, with outputs written row-chunk by row-chunk — instead of Householder's
 * many thin block updates. It declines (returns undefined) unless the first Cholesky factor certifies
 * κ(A) ≤ 10⁶ (via ‖R₁‖_F·‖R₁⁻¹‖_F ≥ κ₂), leaving ill-conditioned and rank-deficient input to Householder.
 */
import { gemmF64, gram } from "./gemm.js";
import { mat, type Mat } from "./matrix.js";
import { scratchF64 } from "./workspace.js";

/** Upper bound accepted for ‖R₁‖_F·‖R₁⁻¹‖_F (≥ κ₂(A)); well inside CholeskyQR2's safe range. */
const MAX_CONDITION = 1e6;

export function cholQr2(a: Mat, qOut?: Float64Array): { q: Mat; r: Mat } | undefined {
  const m = a.rows;
  const n = a.cols;
  const l1 = cholesky(gram(a).data, n);
  if (l1 === undefined) return undefined;
  const l1inv = invertLower(l1, n);
  if (frobenius(l1, n) * frobenius(l1inv, n) > MAX_CONDITION) return undefined;
  // Q₁ = A·R₁⁻¹ = A·(L₁⁻¹)ᵀ
  const q1 = gemmF64(m, n, n, a.data, l1inv, { transB: true, out: scratchF64("cholqr.q1", m * n) });
  const l2 = cholesky(gram(mat(m, n, q1)).data, n);
  if (l2 === undefined) return undefined;
  const q = gemmF64(m, n, n, q1, invertLower(l2, n), { transB: true, out: qOut });
  // R = R₂·R₁ = L₂ᵀ·L₁ᵀ, upper triangular (the products below the diagonal are exact zeros).
  const r = gemmF64(n, n, n, l2, l1, { transA: true, transB: true });
  for (let i = 1; i < n; i++) r.fill(0, i * n, i * n + i);
  return { q: mat(m, n, q), r: mat(n, n, r) };
}

/** Blocks up to this size are factored / inverted by scalar loops; larger ones recurse with products. */
const BASE = 48;

/**
 * Lower-triangular L with L·Lᵀ = G (row-major n × n, only its lower triangle read), or undefined when a
 * pivot is not positive. Near-singular G passes here and is caught by the caller's condition check.
 * Recursive: L₁₁ = chol(G₁₁), L₂₁ = G₂₁·L₁₁⁻ᵀ, L₂₂ = chol(G₂₂ − L₂₁·L₂₁ᵀ), the products on the native GEMM.
 */
export function cholesky(g: Float64Array, n: number): Float64Array | undefined {
  if (n <= BASE) return choleskyBase(g, n);
  const n1 = n >> 1;
  const n2 = n - n1;
  const l11 = cholesky(sub(g, n, 0, n1, 0, n1), n1);
  if (l11 === undefined) return undefined;
  const l21 = gemmF64(n2, n1, n1, sub(g, n, n1, n, 0, n1), invertLower(l11, n1), { transB: true });
  const g22 = sub(g, n, n1, n, n1, n);
  gemmF64(n2, n2, n1, l21, l21, { transB: true, alpha: -1, beta: 1, c: g22, out: g22 });
  const l22 = cholesky(g22, n2);
  if (l22 === undefined) return undefined;
  const l = new Float64Array(n * n);
  put(l, n, 0, 0, l11, n1, n1);
  put(l, n, n1, 0, l21, n2, n1);
  put(l, n, n1, n1, l22, n2, n2);
  return l;
}

function choleskyBase(g: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = g[ri + j];
      for (let k = 0; k < j; k++) s -= l[ri + k] * l[rj + k];
      if (i === j) {
        if (!(s > 0)) return undefined;
        l[ri + i] = Math.sqrt(s);
      } else {
        l[ri + j] = s / l[rj + j];
      }
    }
  }
  return l;
}

/**
 * L⁻¹ of a nonsingular lower-triangular row-major L. Recursive: X₁₁ = L₁₁⁻¹, X₂₂ = L₂₂⁻¹,
 * X₂₁ = −X₂₂·L₂₁·X₁₁; small blocks row by row, X[i,:] = (e_i − Σ_{k<i} L[i,k]·X[k,:]) / L[i,i].
 */
export function invertLower(l: Float64Array, n: number): Float64Array {
  if (n <= BASE) return invertLowerBase(l, n);
  const n1 = n >> 1;
  const n2 = n - n1;
  const x11 = invertLower(sub(l, n, 0, n1, 0, n1), n1);
  const x22 = invertLower(sub(l, n, n1, n, n1, n), n2);
  const t = gemmF64(n2, n1, n1, sub(l, n, n1, n, 0, n1), x11);
  const x21 = gemmF64(n2, n1, n2, x22, t, { alpha: -1 });
  const x = new Float64Array(n * n);
  put(x, n, 0, 0, x11, n1, n1);
  put(x, n, n1, 0, x21, n2, n1);
  put(x, n, n1, n1, x22, n2, n2);
  return x;
}

function invertLowerBase(l: Float64Array, n: number): Float64Array {
  const x = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let k = 0; k < i; k++) {
      const f = l[ri + k];
      if (f === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= k; j++) x[ri + j] -= f * x[rk + j];
    }
    x[ri + i] += 1;
    const inv = 1 / l[ri + i];
    for (let j = 0; j <= i; j++) x[ri + j] *= inv;
  }
  return x;
}

/** Copy of rows [r0, r1) × columns [c0, c1) of a row-major matrix with n columns. */
function sub(a: Float64Array, n: number, r0: number, r1: number, c0: number, c1: number): Float64Array {
  const w = c1 - c0;
  const out = new Float64Array((r1 - r0) * w);
  for (let r = r0; r < r1; r++) out.set(a.subarray(r * n + c0, r * n + c1), (r - r0) * w);
  return out;
}

/** Writes the rows × cols block b into a (n columns) at (r0, c0). */
function put(
  a: Float64Array,
  n: number,
  r0: number,
  c0: number,
  b: Float64Array,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) a.set(b.subarray(r * cols, (r + 1) * cols), (r0 + r) * n + c0);
}

function frobenius(x: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n * n; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}
