/**
 * Householder reflectors and their blocked (compact WY) application — the shared machinery of QR and
 * of the reductions to bidiagonal / tridiagonal form.
 *
 * Storage convention: reflectors act on *rows* of a row-major array (each row a vector to transform),
 * so every inner loop runs over contiguous memory. A reflector is H = I − τ·v·vᵀ with v[0] = 1; a
 * block of reflectors H_1⋯H_b equals I − Vᵀ·T·V (V: b rows, one reflector each, zero before its start)
 * with T upper triangular (LAPACK's dlarft, forward), which turns b rank-1 updates into three matrix
 * products on the native kernel.
 */
import { gemmF64 } from "./gemm.js";
import { norm2 } from "./matrix.js";
import { scratchF64 } from "./workspace.js";

/**
 * Makes the reflector that maps x = buf[off .. off+len) to (β, 0, …, 0) (LAPACK dlarfg): stores β at
 * buf[off] and v[1..] in buf[off+1 .. off+len), returns τ. τ = 0 (H = I) when x[1..] is already zero.
 */
export function makeReflector(buf: Float64Array, off: number, len: number): number {
  if (len <= 1) return 0;
  const xnorm = norm2(buf, off + 1, off + len);
  if (xnorm === 0) return 0;
  const alpha = buf[off];
  const beta = -Math.sign(alpha || 1) * Math.hypot(alpha, xnorm);
  const tau = (beta - alpha) / beta;
  const scale = 1 / (alpha - beta);
  for (let i = off + 1; i < off + len; i++) buf[i] *= scale;
  buf[off] = beta;
  return tau;
}

/** Applies H = I − τ·v·vᵀ to y = buf[yOff .. yOff+len), with v = (1, vbuf[vOff+1 .. vOff+len)). */
export function applyReflector(
  vbuf: Float64Array,
  vOff: number,
  tau: number,
  buf: Float64Array,
  yOff: number,
  len: number,
): void {
  if (tau === 0) return;
  let w = buf[yOff];
  for (let t = 1; t < len; t++) w += buf[yOff + t] * vbuf[vOff + t];
  w *= tau;
  buf[yOff] -= w;
  for (let t = 1; t < len; t++) buf[yOff + t] -= w * vbuf[vOff + t];
}

/**
 * Runs `fn` with rows [j0, j0+b) of `buf` (row length w) turned into explicit reflector rows: reflector
 * j (stored LAPACK-style from column start(j) = j + shift: β there, v[1..] after it) gets zeros before
 * its start and 1 at it. Restores the overwritten entries afterwards. Working in place avoids copying
 * b × w values per block (fresh memory is expensive here, see workspace.ts).
 */
export function withReflectorRows<R>(
  buf: Float64Array,
  w: number,
  j0: number,
  b: number,
  shift: number,
  fn: (v: Float64Array) => R,
): R {
  const saved = scratchF64("hh.saved", b * (j0 + b + shift + 1));
  let o = 0;
  for (let t = 0; t < b; t++) {
    const row = (j0 + t) * w;
    const start = j0 + t + shift;
    for (let c = 0; c <= start; c++) saved[o++] = buf[row + c];
    buf.fill(0, row, row + start);
    buf[row + start] = 1;
  }
  try {
    return fn(buf.subarray(j0 * w, (j0 + b) * w));
  } finally {
    o = 0;
    for (let t = 0; t < b; t++) {
      const row = (j0 + t) * w;
      const start = j0 + t + shift;
      for (let c = 0; c <= start; c++) buf[row + c] = saved[o++];
    }
  }
}

/** T (b × b, upper triangular) of explicit reflector rows `v` (b × w) by the dlarft recurrence. */
export function blockT(v: Float64Array, b: number, w: number, taus: ArrayLike<number>): Float64Array {
  const g = gemmF64(b, b, w, v, v, { transB: true, out: scratchF64("hh.g", b * b) }); // V·Vᵀ
  const tm = new Float64Array(b * b);
  for (let i = 0; i < b; i++) {
    const tau = taus[i];
    tm[i * b + i] = tau;
    if (tau === 0) continue;
    // T[0:i, i] = −τ_i · T[0:i, 0:i] · (V[0:i] · v_i)
    for (let r = 0; r < i; r++) {
      let s = 0;
      for (let c = r; c < i; c++) s += tm[r * b + c] * g[c * b + i];
      tm[r * b + i] = -tau * s;
    }
  }
  return tm;
}

/**
 * Rows [r0, r1) of `buf` (row length w) as a matrix Y: Y ← Y·H (transT false) or Y ← Y·Hᵀ (transT
 * true), where H = H_1⋯H_b = I − Vᵀ·T·V. Read per vector x (one row): x ← Hᵀ·x (false: H_1 acts
 * first) or x ← H·x (true: H_b acts first). `v` must not overlap the updated rows.
 */
export function applyBlock(
  v: Float64Array,
  t: Float64Array,
  b: number,
  w: number,
  buf: Float64Array,
  r0: number,
  r1: number,
  transT: boolean,
): void {
  const nr = r1 - r0;
  if (nr <= 0 || b === 0) return;
  const y = buf.subarray(r0 * w, r1 * w);
  const yv = gemmF64(nr, b, w, y, v, { transB: true, out: scratchF64("hh.yv", nr * b) }); // Y·Vᵀ
  const yvt = gemmF64(nr, b, b, yv, t, { transB: transT, out: scratchF64("hh.yvt", nr * b) }); // ·op(T)
  gemmF64(nr, w, b, yvt, v, { alpha: -1, c: y, beta: 1, out: y }); // Y ← Y − (…)·V, in place
}
