/**
 * Thin singular value decomposition A = U·diag(s)·Vᵀ in float64 (Golub–Kahan–Reinsch).
 *
 * For an m × n matrix with m ≥ n (a wide one is handled through its transpose):
 * 1. m > n: Householder QR first, A = Q·R, so the O(n³) work below runs on the n × n factor R.
 * 2. Householder bidiagonalization W = U_W·B·V_Wᵀ (B upper bidiagonal): left reflector j is kept in
 *    column j below the diagonal, right reflector j in row j right of the superdiagonal.
 * 3. SVD of B by divide and conquer on its 2n × 2n Golub–Kahan tridiagonal form (fast: the O(n³) part
 *    runs in native matrix products); when tiny clustered singular values defeat that, implicit-shift
 *    QR on B (Golub & Van Loan §8.6.2) with zero-chasing, rotations accumulated into the vectors.
 * 4. Back-transformation by U_W, V_W (and Q) in compact-WY blocks on the native GEMM.
 * Backward stable: singular values are accurate to ~ε·σ_max (absolute), vectors to ~ε·σ_max/gap.
 */
import { MerglotError } from "../errors.js";
import { applyBlock, blockT, makeReflector, withReflectorRows } from "./householder.js";
import { mat, powerOfTwoScale, transposeData, type Mat } from "./matrix.js";
import { gemmF64 } from "./gemm.js";
import { qrFactor } from "./qr.js";
import { descendingOrder, givens, rotateRows } from "./rotations.js";
import { tridiagonalEig } from "./tridiag.js";
import { growMemory, lazyInstance } from "./wasm.js";
import { scratchF64 } from "./workspace.js";

const EPS = 2 ** -52;
const NB = 32;

export interface Svd {
  /** m × k, orthonormal columns (k = min(m, n)). */
  u: Mat;
  /** k singular values, descending, ≥ 0. */
  s: Float64Array;
  /** n × k, orthonormal columns. Sign convention: the largest-magnitude entry of each u column is positive. */
  v: Mat;
}

/** Thin SVD: u m × k, s (k, descending), v n × k with k = min(m, n), A = u·diag(s)·vᵀ. */
export function svd(a: Mat): Svd {
  for (let i = 0; i < a.data.length; i++) {
    if (!Number.isFinite(a.data[i])) {
      throw new MerglotError(
        "linalg.nonfinite",
        `svd: entry (${Math.floor(i / a.cols)}, ${i % a.cols}) is ${a.data[i]}.`,
      );
    }
  }
  let r: Svd;
  if (a.rows < a.cols) {
    const t = tallSvd({ rows: a.cols, cols: a.rows, data: transposeData(a.data, a.rows, a.cols) });
    r = { u: t.v, s: t.s, v: t.u };
  } else {
    r = tallSvd(a);
  }
  fixSigns(r.u, r.v);
  return r;
}

/** Flips column pairs (u_j, v_j) so that the largest-magnitude entry of u_j (the first, on ties) is positive. */
function fixSigns(u: Mat, v: Mat): void {
  const k = u.cols;
  for (let j = 0; j < k; j++) {
    let best = 0;
    let val = 0;
    for (let i = 0; i < u.rows; i++) {
      const x = u.data[i * k + j];
      if (Math.abs(x) > best) {
        best = Math.abs(x);
        val = x;
      }
    }
    if (val >= 0) continue;
    for (let i = 0; i < u.rows; i++) u.data[i * k + j] = -u.data[i * k + j];
    for (let i = 0; i < v.rows; i++) v.data[i * k + j] = -v.data[i * k + j];
  }
}

function tallSvd(a: Mat): Svd {
  const m = a.rows;
  const n = a.cols;
  if (n === 0) return { u: mat(m, 0), s: new Float64Array(0), v: mat(0, 0) };
  if (m === n) {
    const w = scratchF64("svd.w", n * n);
    w.set(a.data);
    const core = squareSvd(w, n);
    return {
      u: columnsFromRows(core.ut, n, core.order),
      s: core.s,
      v: columnsFromRows(core.vt, n, core.order),
    };
  }
  const f = qrFactor(a, "svd.qr");
  const core = squareSvd(f.r().data, n);
  const u = f.applyQ(columnsFromRows(core.ut, n, core.order, scratchF64("svd.ur", n * n)));
  return { u, s: core.s, v: columnsFromRows(core.vt, n, core.order) };
}

/** The n × n matrix whose column t is row order[t] of `rows` (n × n), in `out` or a new array. */
function columnsFromRows(rows: Float64Array, n: number, order: number[], out?: Float64Array): Mat {
  const m = mat(n, n, out ?? new Float64Array(n * n));
  order.forEach((src, t) => {
    for (let i = 0; i < n; i++) m.data[i * n + t] = rows[src * n + i];
  });
  return m;
}

/**
 * SVD of the n × n row-major matrix `w` (overwritten). Returns Uᵀ and Vᵀ (rows = singular vectors, in
 * scratch memory), the singular values descending, and the order mapping them to those rows.
 */
function squareSvd(
  w: Float64Array,
  n: number,
): { ut: Float64Array; s: Float64Array; vt: Float64Array; order: number[] } {
  let maxAbs = 0;
  for (let i = 0; i < n * n; i++) maxAbs = Math.max(maxAbs, Math.abs(w[i]));
  const scale = powerOfTwoScale(maxAbs);
  const inv = 1 / scale;
  for (let i = 0; i < n * n; i++) w[i] *= inv;

  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(0, n - 1));
  const { tauL, tauR } = bidiagonalize(w, n, d, e);
  const ut = scratchF64("svd.ut", n * n);
  const vt = scratchF64("svd.vt", n * n);
  if (!bidiagonalSvdDc(d, e, n, ut, vt)) {
    // The fast path declined (clustered tiny singular values): QR iteration is slower but always fine.
    ut.fill(0);
    vt.fill(0);
    for (let i = 0; i < n; i++) ut[i * n + i] = vt[i * n + i] = 1;
    bidiagonalQr(d, e, ut, vt, n);
  }

  // U = U_W·L: left reflectors are columns of w, i.e. rows of wᵀ starting at the diagonal.
  applyReflectorsReversed(transposeData(w, n, n, scratchF64("svd.wt", n * n)), n, tauL, 0, ut);
  applyReflectorsReversed(w, n, tauR, 1, vt);

  for (let j = 0; j < n; j++) {
    if (d[j] < 0) {
      d[j] = -d[j];
      for (let t = 0; t < n; t++) vt[j * n + t] = -vt[j * n + t];
    }
  }
  const order = descendingOrder(d);
  return { ut, s: Float64Array.from(order, (i) => d[i] * scale), vt, order };
}

/**
 * Golub–Kahan bidiagonalization of the n × n row-major `w` in place: diagonal → d, superdiagonal → e.
 * Left reflector j (rows j..n−1 of column j) stays in column j below the diagonal; right reflector j
 * (columns j+1..n−1 of row j) in row j from column j+1 (β there, v[1..] after).
 * From order WASM_MIN_N on, the loop runs on a copy of w in the WebAssembly kernel's memory, whose steps
 * (wasm/bidiag.ts) give the JavaScript loop's bits.
 */
function bidiagonalize(
  w: Float64Array,
  n: number,
  d: Float64Array,
  e: Float64Array,
): { tauL: Float64Array; tauR: Float64Array } {
  const native = n >= WASM_MIN_N ? wasmBidiag(n) : null;
  if (native) {
    native.w.set(w.subarray(0, n * n));
    const taus = bidiagonalizeWith(native.w, n, d, e, native.col, native.acc, native.v, native);
    w.set(native.w);
    return taus;
  }
  return bidiagonalizeWith(w, n, d, e, new Float64Array(n), new Float64Array(n), new Float64Array(n), null);
}

/** Below this order the JavaScript loop is as fast (the kernel's fixed costs: a copy in and out). */
const WASM_MIN_N = 32;

interface BidiagKernel {
  memory: WebAssembly.Memory;
  bidiagLeft(w: number, n: number, j: number, L: number, col: number, acc: number, tl: number): void;
  bidiagRows(
    w: number,
    n: number,
    j: number,
    L: number,
    col: number,
    acc: number,
    v: number,
    tl: number,
    tr: number,
  ): void;
}
const bidiagKernel = lazyInstance<BidiagKernel>("bidiag");

interface BidiagSteps {
  left(j: number, L: number, tl: number): void;
  rows(j: number, L: number, tl: number, tr: number): void;
}

/** Views of w (n × n), col, acc and v in the kernel's memory, and its two steps; null when unavailable. */
function wasmBidiag(
  n: number,
): (BidiagSteps & { w: Float64Array; col: Float64Array; acc: Float64Array; v: Float64Array }) | null {
  const k = bidiagKernel();
  if (k === null || !growMemory(k.memory, 8 * (n * n + 3 * n))) return null;
  const buf = k.memory.buffer;
  const colOff = 8 * n * n;
  const accOff = colOff + 8 * n;
  const vOff = accOff + 8 * n;
  return {
    w: new Float64Array(buf, 0, n * n),
    col: new Float64Array(buf, colOff, n),
    acc: new Float64Array(buf, accOff, n),
    v: new Float64Array(buf, vOff, n),
    left: (j, L, tl) => k.bidiagLeft(0, n, j, L, colOff, accOff, tl),
    rows: (j, L, tl, tr) => k.bidiagRows(0, n, j, L, colOff, accOff, vOff, tl, tr),
  };
}

/**
 * The bidiagonalization loop with col (left reflector u, u[0] = 1), acc (τ_L·uᵀA) and v (right reflector,
 * v[j+1] = 1) as work vectors; `steps` (the WebAssembly kernel) or the JavaScript below updates the trailing
 * block. Each step makes three passes over it instead of the textbook four: uᵀA (four rows at a time), then
 * per row the left update fused with the dot product of the right update, then the right update itself.
 */
function bidiagonalizeWith(
  w: Float64Array,
  n: number,
  d: Float64Array,
  e: Float64Array,
  col: Float64Array,
  acc: Float64Array,
  v: Float64Array,
  steps: BidiagSteps | null,
): { tauL: Float64Array; tauR: Float64Array } {
  const tauL = new Float64Array(n);
  const tauR = new Float64Array(Math.max(0, n - 2));
  for (let j = 0; j < n; j++) {
    // Left reflector from column j, rows j..n−1 (gathered: columns are strided in row-major storage).
    const L = n - j;
    for (let i = 0; i < L; i++) col[i] = w[(j + i) * n + j];
    const tl = makeReflector(col, 0, L);
    tauL[j] = tl;
    d[j] = col[0];
    for (let i = 0; i < L; i++) w[(j + i) * n + j] = col[i];
    col[0] = 1;
    const c0 = j + 1;
    if (tl !== 0 && c0 < n && steps) steps.left(j, L, tl);
    else if (tl !== 0 && c0 < n) {
      acc.fill(0, c0, n);
      let i = 0;
      for (; i + 3 < L; i += 4) {
        const u0 = col[i], u1 = col[i + 1], u2 = col[i + 2], u3 = col[i + 3]; // prettier-ignore
        const r0 = (j + i) * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n; // prettier-ignore
        for (let c = c0; c < n; c++)
          acc[c] += u0 * w[r0 + c] + u1 * w[r1 + c] + u2 * w[r2 + c] + u3 * w[r3 + c];
      }
      for (; i < L; i++) {
        const ui = col[i];
        const r = (j + i) * n;
        for (let c = c0; c < n; c++) acc[c] += ui * w[r + c];
      }
      for (let c = c0; c < n; c++) acc[c] *= tl;
      const r = j * n; // row j needs its left update before its right reflector is formed
      for (let c = c0; c < n; c++) w[r + c] -= acc[c];
    }
    if (j >= n - 1) continue;
    // Right reflector from row j, columns j+1..n−1 (contiguous).
    const rowOff = j * n + c0;
    const tr = j < n - 2 ? makeReflector(w, rowOff, n - c0) : 0;
    if (j < n - 2) tauR[j] = tr;
    e[j] = w[rowOff];
    if (tr !== 0) {
      v[c0] = 1;
      for (let c = c0 + 1; c < n; c++) v[c] = w[j * n + c];
    }
    if (steps) {
      steps.rows(j, L, tl, tr);
      continue;
    }
    for (let i = 1; i < L; i++) {
      const r = (j + i) * n;
      const f = tl !== 0 ? col[i] : 0;
      if (tr === 0) {
        if (f !== 0) for (let c = c0; c < n; c++) w[r + c] -= f * acc[c];
        continue;
      }
      let s = 0;
      if (f !== 0) {
        for (let c = c0; c < n; c++) {
          const x = w[r + c] - f * acc[c];
          w[r + c] = x;
          s += x * v[c];
        }
      } else {
        for (let c = c0; c < n; c++) s += w[r + c] * v[c];
      }
      s *= tr;
      for (let c = c0; c < n; c++) w[r + c] -= s * v[c];
    }
  }
  return { tauL, tauR };
}

/**
 * Rows of `vecs` (vectors of length n) ← H_0⋯H_{c−1}·x, for reflectors stored in rows of `refl`
 * (reflector j starting at column j + shift), in blocks of NB from the last block to the first.
 */
function applyReflectorsReversed(
  refl: Float64Array,
  n: number,
  taus: Float64Array,
  shift: number,
  vecs: Float64Array,
): void {
  const count = taus.length;
  const starts: number[] = [];
  for (let j0 = 0; j0 < count; j0 += NB) starts.push(j0);
  for (let bi = starts.length - 1; bi >= 0; bi--) {
    const j0 = starts[bi];
    const b = Math.min(NB, count - j0);
    withReflectorRows(refl, n, j0, b, shift, (v) => {
      applyBlock(v, blockT(v, b, n, taus.subarray(j0, j0 + b)), b, n, vecs, 0, n, true);
    });
  }
}

/**
 * SVD of the n × n upper bidiagonal (d, e) by one method, for tests and diagnostics: returns the
 * (unsorted, for "qr" possibly negative) values s and Uᵀ, Vᵀ with B = Σ_j s_j·u_j·v_jᵀ, or undefined
 * when "dc" declines.
 */
export function bidiagonalSvd(
  d0: Float64Array,
  e0: Float64Array,
  method: "dc" | "qr",
): { s: Float64Array; ut: Float64Array; vt: Float64Array } | undefined {
  const n = d0.length;
  const d = d0.slice();
  const e = e0.slice();
  const ut = new Float64Array(n * n);
  const vt = new Float64Array(n * n);
  if (method === "dc") return bidiagonalSvdDc(d, e, n, ut, vt) ? { s: d, ut, vt } : undefined;
  for (let i = 0; i < n; i++) ut[i * n + i] = vt[i * n + i] = 1;
  bidiagonalQr(d, e, ut, vt, n);
  return { s: d, ut, vt };
}

/**
 * SVD of the upper bidiagonal B = (d, e) through the eigenvectors of its Golub–Kahan form: the
 * 2n × 2n symmetric tridiagonal T with zero diagonal and off-diagonal (d_0, e_0, d_1, e_1, …, d_{n−1})
 * has eigenvalues ±σ_i, and the eigenvector of +σ_i interleaves (v_i, u_i)/√2. T is solved by divide
 * and conquer (tridiag.ts). On success d ← σ (descending order of rows) and the rows of `ut`, `vt`
 * (n × n, overwritten) are the singular vectors of B; returns false when a tiny, clustered σ leaves the u and v
 * halves mixed (checked: both halves must carry half the norm, and the vectors must be orthonormal to
 * O(n·ε)), so that the caller can use QR iteration instead.
 */
function bidiagonalSvdDc(
  d: Float64Array,
  e: Float64Array,
  n: number,
  ut: Float64Array,
  vt: Float64Array,
): boolean {
  const N = 2 * n;
  const off = new Float64Array(N - 1);
  for (let i = 0; i < n; i++) {
    off[2 * i] = d[i];
    if (i < n - 1) off[2 * i + 1] = e[i];
  }
  const { values, zt } = tridiagonalEig(new Float64Array(N), off, scratchF64("svd.tgk", N * N));
  for (let r = 0; r < n; r++) {
    const row = (N - 1 - r) * N;
    let nu = 0;
    let nv = 0;
    for (let i = 0; i < n; i++) {
      nv += zt[row + 2 * i] ** 2;
      nu += zt[row + 2 * i + 1] ** 2;
    }
    if (!(Math.abs(nu - 0.5) <= 0.25 && Math.abs(nv - 0.5) <= 0.25)) return false; // (NaN-safe)
    const iu = 1 / Math.sqrt(nu);
    const iv = 1 / Math.sqrt(nv);
    for (let i = 0; i < n; i++) {
      vt[r * n + i] = zt[row + 2 * i] * iv;
      ut[r * n + i] = zt[row + 2 * i + 1] * iu;
    }
  }
  if (!reorthonormalize(ut, n) || !reorthonormalize(vt, n)) return false;
  for (let r = 0; r < n; r++) d[r] = Math.max(0, values[N - 1 - r]);
  return true;
}

/**
 * Brings the rows of the n × n X back to orthonormal to O(n·ε) with at most two Newton–Schulz steps
 * X ← ½(3I − X·Xᵀ)·X (each squares the defect). The halves of a Golub–Kahan eigenvector are exactly
 * orthogonal only in exact arithmetic: mixing with the eigenvector of −σ_k costs O(ε·σ_max/(σ_j + σ_k)),
 * which this removes while moving σ_j·u_j·v_jᵀ by only O(ε·σ_max). Returns false (caller falls back)
 * when the defect is too large for that (> 1e-6: clustered singular values near zero).
 */
function reorthonormalize(x: Float64Array, n: number): boolean {
  const target = 2 * n * EPS;
  for (let step = 0; ; step++) {
    const g = gemmF64(n, n, n, x, x, { transB: true, out: scratchF64("svd.gram", n * n) });
    let err = 0;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) err = Math.max(err, Math.abs(g[i * n + j] - (i === j ? 1 : 0)));
    if (err <= target) return true;
    if (err > 1e-6 || step === 2) return false;
    for (let i = 0; i < n * n; i++) g[i] = -0.5 * g[i];
    for (let i = 0; i < n; i++) g[i * n + i] += 1.5;
    x.set(gemmF64(n, n, n, g, x, { out: scratchF64("svd.ns", n * n) }));
  }
}

/**
 * Implicit-shift QR on the upper bidiagonal (d, e), scaled so that max |entry| ≤ 1. On return d holds
 * the singular values (unsorted, possibly negative) and the rows of `ut`, `vt` (n × n) have been
 * rotated into the corresponding left / right singular vectors of B.
 */
function bidiagonalQr(d: Float64Array, e: Float64Array, ut: Float64Array, vt: Float64Array, n: number): void {
  let bnorm = 0;
  for (let i = 0; i < n; i++) bnorm = Math.max(bnorm, Math.abs(d[i]), i < n - 1 ? Math.abs(e[i]) : 0);
  const tinyD = EPS * bnorm;
  let q = n - 1;
  let iterations = 0;
  const maxIterations = 30 * n + 30;
  while (q > 0) {
    for (let i = 0; i < q; i++) {
      if (Math.abs(e[i]) <= EPS * (Math.abs(d[i]) + Math.abs(d[i + 1])) || Math.abs(e[i]) < 1e-300) e[i] = 0;
    }
    while (q > 0 && e[q - 1] === 0) q--;
    if (q === 0) break;
    let p = q - 1;
    while (p > 0 && e[p - 1] !== 0) p--;
    if (++iterations > maxIterations) throw new Error("svd: QR iteration did not converge");

    // A (numerically) zero diagonal entry splits the block once its row or column is chased out.
    let zero = -1;
    for (let i = p; i <= q; i++) {
      if (Math.abs(d[i]) <= tinyD) {
        zero = i;
        break;
      }
    }
    if (zero >= 0) {
      d[zero] = 0;
      if (zero < q) chaseRow(d, e, ut, n, zero, q);
      else chaseColumn(d, e, vt, n, p, q);
      continue;
    }
    qrSweep(d, e, ut, vt, n, p, q);
  }
}

/** d[i] = 0 (i < q): left rotations with rows i+1..q zero row i's superdiagonal entry. */
function chaseRow(d: Float64Array, e: Float64Array, ut: Float64Array, n: number, i: number, q: number): void {
  let x = e[i];
  e[i] = 0;
  for (let j = i + 1; j <= q && x !== 0; j++) {
    const [c, s, r] = givens(d[j], x);
    d[j] = r;
    rotateRows(ut, n, j, i, c, s);
    if (j < q) {
      x = -s * e[j];
      e[j] *= c;
    }
  }
}

/** d[q] = 0: right rotations with columns q−1..p zero column q's superdiagonal entry. */
function chaseColumn(
  d: Float64Array,
  e: Float64Array,
  vt: Float64Array,
  n: number,
  p: number,
  q: number,
): void {
  let x = e[q - 1];
  e[q - 1] = 0;
  for (let j = q - 1; j >= p && x !== 0; j--) {
    const [c, s, r] = givens(d[j], x);
    d[j] = r;
    rotateRows(vt, n, j, q, c, s);
    if (j > p) {
      x = -s * e[j - 1];
      e[j - 1] *= c;
    }
  }
}

/** One implicit-shift Golub–Kahan sweep over the unreduced block p..q. */
function qrSweep(
  d: Float64Array,
  e: Float64Array,
  ut: Float64Array,
  vt: Float64Array,
  n: number,
  p: number,
  q: number,
): void {
  // Wilkinson shift: eigenvalue of the trailing 2 × 2 of BᵀB closer to its last diagonal entry.
  const dm = d[q - 1];
  const em = q - 1 > p ? e[q - 2] : 0;
  const el = e[q - 1];
  const dl = d[q];
  const t11 = dm * dm + em * em;
  const t12 = dm * el;
  const t22 = dl * dl + el * el;
  const delta = 0.5 * (t11 - t22);
  const mu = t22 - (t12 * t12) / (delta + (delta >= 0 ? 1 : -1) * Math.hypot(delta, t12));

  let y = d[p] * d[p] - mu;
  let z = d[p] * e[p];
  for (let k = p; k < q; k++) {
    // Right rotation on columns k, k+1: zeroes the bulge above the superdiagonal (or starts the chase).
    let [c, s, r] = givens(y, z);
    if (k > p) e[k - 1] = r;
    y = c * d[k] + s * e[k];
    e[k] = c * e[k] - s * d[k];
    z = s * d[k + 1];
    d[k + 1] *= c;
    rotateRows(vt, n, k, k + 1, c, s);
    // Left rotation on rows k, k+1: zeroes the bulge below the diagonal.
    [c, s, r] = givens(y, z);
    d[k] = r;
    y = c * e[k] + s * d[k + 1];
    d[k + 1] = c * d[k + 1] - s * e[k];
    if (k < q - 1) {
      z = s * e[k + 1];
      e[k + 1] *= c;
    }
    rotateRows(ut, n, k, k + 1, c, s);
  }
  e[q - 1] = y;
}
