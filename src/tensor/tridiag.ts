/**
 * Eigen-decomposition of a symmetric tridiagonal matrix T (diagonal d, off-diagonal e).
 *
 * `tridiagonalQr`: implicit-shift QR (Golub & Van Loan §8.3) with the rotations accumulated into
 * row-stored eigenvectors — simple and robust, O(n³) scalar work for the vectors.
 *
 * `tridiagonalEig`: Cuppen's divide and conquer with the Gu–Eisenstat eigenvector formula (as in
 * LAPACK dstedc): split T at the middle into two halves plus a rank-one term, solve the halves
 * recursively, deflate, solve the secular equation 1 + ρ·Σ z_i²/(d_i − λ) = 0 for the rest, and
 * rotate the halves' eigenvectors with one matrix product on the native GEMM. The O(n³) work is all
 * in that product, so for n in the hundreds this is many times faster than QR in JavaScript.
 * Eigenvectors are orthogonal to O(n·ε) (Gu & Eisenstat 1995) because ẑ is recomputed from the
 * computed roots.
 */
import { gemmF64 } from "./gemm.js";
import { givens, rotateRows } from "./rotations.js";
import { scratchF64 } from "./workspace.js";

const EPS = 2 ** -52;
/** Blocks up to this size are solved by QR iteration. */
const LEAF = 25;

/**
 * Implicit-shift QR on (d, e) of size n: on return d holds the eigenvalues (unsorted) and row j of `zt`
 * (n rows of length `w` ≥ n) has been rotated into the eigenvector for d[j].
 */
export function tridiagonalQr(d: Float64Array, e: Float64Array, zt: Float64Array, n: number, w = n): void {
  let q = n - 1; // last row of the active block
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
    if (++iterations > maxIterations) throw new Error("tridiagonal QR iteration did not converge");

    // Wilkinson shift from the trailing 2 × 2 block.
    const delta = 0.5 * (d[q - 1] - d[q]);
    const eq = e[q - 1];
    const mu = d[q] - (eq * eq) / (delta + (delta >= 0 ? 1 : -1) * Math.hypot(delta, eq));
    let x = d[p] - mu;
    let z = e[p];
    for (let k = p; k < q; k++) {
      const [c, s, r] = givens(x, z);
      if (k > p) e[k - 1] = r;
      const dk = d[k];
      const dk1 = d[k + 1];
      const ek = e[k];
      d[k] = c * c * dk + 2 * c * s * ek + s * s * dk1;
      d[k + 1] = s * s * dk - 2 * c * s * ek + c * c * dk1;
      e[k] = c * s * (dk1 - dk) + (c * c - s * s) * ek;
      if (k < q - 1) {
        z = s * e[k + 1];
        e[k + 1] *= c;
        x = e[k];
      }
      rotateRows(zt, w, k, k + 1, c, s);
    }
  }
}

/**
 * All eigenpairs of the symmetric tridiagonal matrix (d, e) by divide and conquer. Returns the
 * eigenvalues ascending and zt (n × n, `out` when given) whose row j is the unit eigenvector of values[j].
 */
export function tridiagonalEig(
  d0: Float64Array,
  e0: Float64Array,
  out?: Float64Array,
): { values: Float64Array; zt: Float64Array } {
  const n = d0.length;
  const d = d0.slice();
  const e = e0.slice(0, Math.max(0, n - 1));
  const zt = out ?? new Float64Array(n * n);
  zt.fill(0, 0, n * n);
  if (n > 0) solve(d, e, zt, n, 0, n - 1);
  return { values: d, zt };
}

/** Solves the block [lo, hi]: d[lo..hi] ← its eigenvalues ascending, zt rows/cols lo..hi ← eigenvectors. */
function solve(d: Float64Array, e: Float64Array, zt: Float64Array, n: number, lo: number, hi: number): void {
  const s = hi - lo + 1;
  if (s <= LEAF) {
    const dd = d.slice(lo, hi + 1);
    const ee = e.slice(lo, hi);
    const z = new Float64Array(s * s);
    for (let i = 0; i < s; i++) z[i * s + i] = 1;
    tridiagonalQr(dd, ee, z, s);
    const order = Array.from(dd, (_, i) => i).sort((a, b) => dd[a] - dd[b] || a - b);
    order.forEach((src, t) => {
      d[lo + t] = dd[src];
      zt.set(z.subarray(src * s, (src + 1) * s), (lo + t) * n + lo);
    });
    return;
  }
  // T = diag(T1, T2) + ρ·w·wᵀ with w = e_mid + sign(β)·e_{mid+1}, ρ = |β|.
  const mid = lo + (s >> 1) - 1;
  const beta = e[mid];
  const rho = Math.abs(beta);
  d[mid] -= rho;
  d[mid + 1] -= rho;
  solve(d, e, zt, n, lo, mid);
  solve(d, e, zt, n, mid + 1, hi);
  merge(d, zt, n, lo, mid, hi, rho, beta < 0 ? -1 : 1);
}

/**
 * Merges the solved halves [lo, mid] and [mid+1, hi] under the rank-one term ρ·w·wᵀ: in the halves'
 * eigenbasis the matrix is D + ρ·z·zᵀ with z = (last components of T1's vectors, sign·first components
 * of T2's vectors).
 */
function merge(
  d: Float64Array,
  zt: Float64Array,
  n: number,
  lo: number,
  mid: number,
  hi: number,
  rho0: number,
  sgn: number,
): void {
  const s = hi - lo + 1;
  const s1 = mid - lo + 1;
  // Current basis rows (eigenvectors of the halves, restricted to columns lo..hi), sorted by eigenvalue.
  const z0 = new Float64Array(s);
  for (let i = 0; i < s; i++) z0[i] = i < s1 ? zt[(lo + i) * n + mid] : sgn * zt[(lo + i) * n + mid + 1];
  const perm = Array.from({ length: s }, (_, i) => i).sort((a, b) => d[lo + a] - d[lo + b] || a - b);
  const D = Float64Array.from(perm, (i) => d[lo + i]);
  const Z = Float64Array.from(perm, (i) => z0[i]);
  const basis = scratchF64("dc.basis", s * s);
  perm.forEach((src, t) => basis.set(zt.subarray((lo + src) * n + lo, (lo + src) * n + lo + s), t * s));

  let znorm = 0;
  for (let i = 0; i < s; i++) znorm += Z[i] * Z[i];
  znorm = Math.sqrt(znorm);
  const rho = rho0 * znorm * znorm;
  if (znorm > 0) for (let i = 0; i < s; i++) Z[i] /= znorm;

  // Deflation: negligible z components, then pairs of (nearly) equal d's rotated so one z vanishes.
  let dmax = 0;
  for (let i = 0; i < s; i++) dmax = Math.max(dmax, Math.abs(D[i]));
  const tol = 8 * EPS * Math.max(dmax, rho);
  const deflated = new Uint8Array(s);
  let prev = -1;
  for (let t = 0; t < s; t++) {
    if (rho * Math.abs(Z[t]) <= tol) {
      deflated[t] = 1;
      continue;
    }
    if (prev >= 0) {
      const tau = Math.hypot(Z[prev], Z[t]);
      const c = Z[t] / tau;
      const sn = -Z[prev] / tau;
      if (Math.abs((D[t] - D[prev]) * c * sn) <= tol) {
        // G = [[c, sn], [−sn, c]] on coordinates (prev, t) zeroes z_prev.
        const dp = D[prev];
        const dt = D[t];
        D[prev] = c * c * dp + sn * sn * dt;
        D[t] = sn * sn * dp + c * c * dt;
        Z[prev] = 0;
        Z[t] = tau;
        rotateRows(basis, s, prev, t, c, sn);
        deflated[prev] = 1;
      }
    }
    prev = t;
  }

  const keep: number[] = [];
  for (let t = 0; t < s; t++) if (!deflated[t]) keep.push(t);
  const K = keep.length;
  const lambda = new Float64Array(s);
  for (let t = 0; t < s; t++) lambda[t] = D[t];
  if (K > 0) {
    const Dk = Float64Array.from(keep, (t) => D[t]);
    const Zk = Float64Array.from(keep, (t) => Z[t]);
    const { roots, delta } = secularRoots(Dk, Zk, rho);
    // Gu–Eisenstat: ẑ from the computed roots, so the vectors ẑ_i/(d_i − λ_j) are orthogonal.
    const zhat = new Float64Array(K);
    for (let i = 0; i < K; i++) {
      let p = -delta[i * K + K - 1] / rho;
      for (let j = 0; j < i; j++) p *= delta[i * K + j] / (Dk[i] - Dk[j]);
      for (let j = i; j < K - 1; j++) p *= delta[i * K + j] / (Dk[i] - Dk[j + 1]);
      zhat[i] = (Zk[i] < 0 ? -1 : 1) * Math.sqrt(Math.abs(p));
    }
    const u = scratchF64("dc.u", K * K); // row j: eigenvector j in the kept-basis coordinates
    for (let j = 0; j < K; j++) {
      let nrm = 0;
      for (let i = 0; i < K; i++) {
        const v = zhat[i] / delta[i * K + j];
        u[j * K + i] = v;
        nrm += v * v;
      }
      const inv = 1 / Math.sqrt(nrm);
      for (let i = 0; i < K; i++) u[j * K + i] *= inv;
      lambda[keep[j]] = roots[j];
    }
    rotateKept(basis, s, s1, keep, u);
  }
  // Write back sorted ascending.
  const order = Array.from({ length: s }, (_, i) => i).sort((a, b) => lambda[a] - lambda[b] || a - b);
  order.forEach((src, t) => {
    d[lo + t] = lambda[src];
    zt.set(basis.subarray(src * s, (src + 1) * s), (lo + t) * n + lo);
  });
}

/**
 * basis rows `keep` ← U·(those rows). A row that came from the first half is zero in columns ≥ s1 and
 * one from the second half in columns < s1 (unless a deflation rotation mixed them), so each column
 * half is one product over only the rows that are nonzero there — about half the flops of the full
 * product (LAPACK dlaed3 does the same).
 */
function rotateKept(basis: Float64Array, s: number, s1: number, keep: number[], u: Float64Array): void {
  const K = keep.length;
  const halves: [number, number][] = [
    [0, s1],
    [s1, s],
  ];
  const results: Float64Array[] = [];
  for (const [c0, c1] of halves) {
    const w = c1 - c0;
    const rows: number[] = [];
    keep.forEach((t, r) => {
      for (let c = c0; c < c1; c++) {
        if (basis[t * s + c] !== 0) {
          rows.push(r);
          return;
        }
      }
    });
    const h = rows.length;
    const part = scratchF64(c0 === 0 ? "dc.part0" : "dc.part1", K * w);
    if (h === 0) {
      part.fill(0);
    } else {
      const sub = scratchF64("dc.sub", h * w);
      const uSub = scratchF64("dc.usub", K * h);
      rows.forEach((r, i) => sub.set(basis.subarray(keep[r] * s + c0, keep[r] * s + c1), i * w));
      for (let j = 0; j < K; j++) for (let i = 0; i < h; i++) uSub[j * h + i] = u[j * K + rows[i]];
      gemmF64(K, w, h, uSub, sub, { out: part });
    }
    results.push(part);
  }
  keep.forEach((t, j) => {
    basis.set(results[0].subarray(j * s1, (j + 1) * s1), t * s);
    basis.set(results[1].subarray(j * (s - s1), (j + 1) * (s - s1)), t * s + s1);
  });
}

/**
 * Roots of 1 + ρ·Σ z_i²/(d_i − λ) = 0 (ρ > 0, d strictly increasing, Σz² ≤ 1): root j lies in
 * (d_j, d_{j+1}) (the last in (d_{K−1}, d_{K−1} + ρ)). Each is found relative to its nearer pole, so
 * that the differences delta[i·K + j] = d_i − λ_j come out to high relative accuracy; the iteration
 * is a bracketed rational (two-pole) Newton method with bisection as the safeguard.
 */
function secularRoots(
  D: Float64Array,
  Z: Float64Array,
  rho: number,
): { roots: Float64Array; delta: Float64Array } {
  const K = D.length;
  const z2 = Float64Array.from(Z, (v) => v * v);
  const roots = new Float64Array(K);
  const delta = scratchF64("dc.delta", K * K);
  const dl = new Float64Array(K);
  for (let j = 0; j < K; j++) {
    let origin: number;
    let lo: number;
    let hi: number;
    if (j < K - 1) {
      const gap = D[j + 1] - D[j];
      const half = gap / 2;
      let f = 1;
      for (let i = 0; i < K; i++) f += (rho * z2[i]) / (D[i] - D[j] - half);
      if (f >= 0) {
        origin = j;
        lo = 0;
        hi = half;
      } else {
        origin = j + 1;
        lo = -(gap - half);
        hi = 0;
      }
    } else {
      origin = K - 1;
      let sz = 0;
      for (let i = 0; i < K; i++) sz += z2[i];
      lo = 0;
      hi = rho * sz;
    }
    for (let i = 0; i < K; i++) dl[i] = D[i] - D[origin];
    const pl = j; // nearest pole on the left
    const pr = j + 1 < K ? j + 1 : -1; // and on the right (none for the last root)
    let tau = 0.5 * (lo + hi);
    for (let it = 0; it < 100; it++) {
      let psi = 0, dpsi = 0, phi = 0, dphi = 0; // prettier-ignore
      for (let i = 0; i < K; i++) {
        const inv = 1 / (dl[i] - tau);
        const t = z2[i] * inv;
        if (i <= j) {
          psi += t;
          dpsi += t * inv;
        } else {
          phi += t;
          dphi += t * inv;
        }
      }
      const g = 1 + rho * (psi + phi);
      if (g === 0) break;
      if (g < 0) lo = tau;
      else hi = tau;
      if (Math.abs(g) <= 8 * K * EPS * (1 + rho * (Math.abs(psi) + Math.abs(phi)))) break;
      // Two-pole rational model matching ψ, φ and their derivatives at τ, solved exactly.
      const a = dl[pl] - tau;
      const qa = rho * dpsi * a * a;
      let next: number;
      if (pr < 0) {
        const c = 1 + rho * (psi - dpsi * a);
        next = c > 0 ? dl[pl] + qa / c : NaN;
      } else {
        const b = dl[pr] - tau;
        const qb = rho * dphi * b * b;
        const c = 1 + rho * (psi - dpsi * a + phi - dphi * b);
        next = rationalRoot(c, qa, qb, dl[pl], dl[pr]);
      }
      if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
      if (next === tau || hi - lo <= 2 * EPS * Math.max(Math.abs(lo), Math.abs(hi))) {
        tau = next;
        break;
      }
      tau = next;
    }
    roots[j] = D[origin] + tau;
    for (let i = 0; i < K; i++) delta[i * K + j] = dl[i] - tau;
  }
  return { roots, delta };
}

/** The root in (p, q) of c + A/(p − x) + B/(q − x) = 0 (A, B > 0), or NaN when it cannot be formed. */
function rationalRoot(c: number, A: number, B: number, p: number, q: number): number {
  // c·(p − x)(q − x) + A(q − x) + B(p − x) = 0  ⇔  c x² − (c(p + q) + A + B) x + (c p q + A q + B p) = 0
  if (c === 0) return (A * q + B * p) / (A + B);
  const b = -(c * (p + q) + A + B);
  const cc = c * p * q + A * q + B * p;
  const disc = b * b - 4 * c * cc;
  if (!(disc >= 0)) return NaN;
  const qq = -0.5 * (b + (b >= 0 ? 1 : -1) * Math.sqrt(disc));
  const x1 = qq / c;
  const x2 = qq !== 0 ? cc / qq : NaN;
  const lo = Math.min(p, q);
  const hi = Math.max(p, q);
  if (x1 > lo && x1 < hi) return x1;
  if (x2 > lo && x2 < hi) return x2;
  return NaN;
}
