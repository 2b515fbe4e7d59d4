/**
 * Portable float64 GEMM in plain JavaScript: Y = alpha·op(A)·op(B) + beta·C.
 *
 * The fallback when the native kernel (onnxruntime) is unavailable, and the kernel for small products
 * where a native call's fixed cost (~10 µs) exceeds the work. Structure is the classic Goto/BLIS one:
 * B is packed in KC × NC blocks of 4-column panels, A in 4-row panels, and a 4 × 4 register tile
 * (16 scalar accumulators, which V8 keeps in registers) runs over the packed data. Packing also absorbs
 * the transposes, so all four op() combinations share one inner loop. Measured ~3–4 GFLOP/s on one core.
 */
import { scratchF64 } from "./workspace.js";

const MR = 4;
const NR = 4;
const KC = 256;
const NC = 512;
/** Products up to this m·n·k skip packing. */
const SMALL_VOLUME = 16 * 16 * 16;

export interface GemmArgs {
  m: number;
  n: number;
  k: number;
  /** op(A) is m × k: A stored m × k row-major, or k × m when transA. */
  a: Float64Array;
  /** op(B) is k × n: B stored k × n row-major, or n × k when transB. */
  b: Float64Array;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
  /** m × n, read only when beta ≠ 0. */
  c: Float64Array | undefined;
}

/**
 * Writes the product into `out` (length m·n; may be the same array as `c`, never as `a` or `b`) and
 * returns it.
 */
export function gemmJs(g: GemmArgs, y: Float64Array): Float64Array {
  const { m, n, k, alpha, beta, c } = g;
  if (c !== undefined && beta !== 0) {
    for (let i = 0; i < m * n; i++) y[i] = beta * c[i];
  } else {
    y.fill(0, 0, m * n);
  }
  if (m === 0 || n === 0 || k === 0 || alpha === 0) return y;
  if (m * n * k <= SMALL_VOLUME) return smallGemm(g, y);

  const ap = scratchF64("gemmjs.ap", MR * KC);
  const bp = scratchF64("gemmjs.bp", KC * (NC + NR));
  // Strides of op(A)(i, p) and op(B)(p, j) in the stored arrays.
  const aRow = g.transA ? 1 : k;
  const aCol = g.transA ? m : 1;
  const bRow = g.transB ? 1 : n;
  const bCol = g.transB ? k : 1;
  const A = g.a;
  const B = g.b;

  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      // Pack op(B)[pc:pc+kc, jc:jc+nc] as panels of NR columns: bp[jp*kc + p*NR + jj]; pad with zeros.
      for (let jp = 0; jp < nc; jp += NR) {
        const nr = Math.min(NR, nc - jp);
        const base = jp * kc;
        for (let jj = 0; jj < NR; jj++) {
          if (jj < nr) {
            let src = pc * bRow + (jc + jp + jj) * bCol;
            for (let p = 0, o = base + jj; p < kc; p++, o += NR, src += bRow) bp[o] = B[src];
          } else {
            for (let p = 0, o = base + jj; p < kc; p++, o += NR) bp[o] = 0;
          }
        }
      }
      for (let i = 0; i < m; i += MR) {
        const mr = Math.min(MR, m - i);
        // Pack op(A)[i:i+mr, pc:pc+kc] k-major: ap[p*MR + ii]; pad with zeros.
        for (let ii = 0; ii < MR; ii++) {
          if (ii < mr) {
            let src = (i + ii) * aRow + pc * aCol;
            for (let p = 0, o = ii; p < kc; p++, o += MR, src += aCol) ap[o] = A[src];
          } else {
            for (let p = 0, o = ii; p < kc; p++, o += MR) ap[o] = 0;
          }
        }
        for (let jp = 0; jp < nc; jp += NR) {
          microKernel(ap, bp, jp * kc, kc, y, i, jc + jp, n, mr, Math.min(NR, nc - jp), alpha);
        }
      }
    }
  }
  return y;
}

/** y += alpha·op(A)·op(B) by direct loops: for tiny products packing costs more than it saves. */
function smallGemm(g: GemmArgs, y: Float64Array): Float64Array {
  const { m, n, k, a, b, alpha } = g;
  const aRow = g.transA ? 1 : k;
  const aCol = g.transA ? m : 1;
  const bRow = g.transB ? 1 : n;
  const bCol = g.transB ? k : 1;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * aRow + p * aCol] * b[p * bRow + j * bCol];
      y[i * n + j] += alpha * s;
    }
  }
  return y;
}

/** y[i:i+mr, j:j+nr] += alpha · (4×kc packed A) · (kc×4 packed B at bo). */
function microKernel(
  ap: Float64Array,
  bp: Float64Array,
  bo: number,
  kc: number,
  y: Float64Array,
  i: number,
  j: number,
  n: number,
  mr: number,
  nr: number,
  alpha: number,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0; // prettier-ignore
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0; // prettier-ignore
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0; // prettier-ignore
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0; // prettier-ignore
  for (let p = 0, ao = 0; p < kc; p++, ao += 4, bo += 4) {
    const a0 = ap[ao], a1 = ap[ao + 1], a2 = ap[ao + 2], a3 = ap[ao + 3]; // prettier-ignore
    const b0 = bp[bo], b1 = bp[bo + 1], b2 = bp[bo + 2], b3 = bp[bo + 3]; // prettier-ignore
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3; // prettier-ignore
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3; // prettier-ignore
    c20 += a2 * b0;
    c21 += a2 * b1;
    c22 += a2 * b2;
    c23 += a2 * b3; // prettier-ignore
    c30 += a3 * b0;
    c31 += a3 * b1;
    c32 += a3 * b2;
    c33 += a3 * b3; // prettier-ignore
  }
  if (mr === 4 && nr === 4) {
    let o = i * n + j;
    y[o] += alpha * c00;
    y[o + 1] += alpha * c01;
    y[o + 2] += alpha * c02;
    y[o + 3] += alpha * c03; // prettier-ignore
    o += n;
    y[o] += alpha * c10;
    y[o + 1] += alpha * c11;
    y[o + 2] += alpha * c12;
    y[o + 3] += alpha * c13; // prettier-ignore
    o += n;
    y[o] += alpha * c20;
    y[o + 1] += alpha * c21;
    y[o + 2] += alpha * c22;
    y[o + 3] += alpha * c23; // prettier-ignore
    o += n;
    y[o] += alpha * c30;
    y[o + 1] += alpha * c31;
    y[o + 2] += alpha * c32;
    y[o + 3] += alpha * c33; // prettier-ignore
    return;
  }
  // Edge tile: the padded rows/columns computed zeros; write back only the live part.
  const t = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
  for (let ii = 0; ii < mr; ii++) {
    for (let jj = 0; jj < nr; jj++) y[(i + ii) * n + j + jj] += alpha * t[ii * 4 + jj];
  }
}

/**
 * Lower-and-upper Gram AᵀA of a row-major m × n array, exploiting symmetry: accumulates outer products
 * of rows into the upper triangle only (half the flops of a general product), then mirrors.
 */
export function gramJs(a: Float64Array, m: number, n: number): Float64Array {
  const g = new Float64Array(n * n);
  // Rows in blocks of 4 so each pass over g's upper triangle does 4 rank-1 updates.
  let r = 0;
  for (; r + 4 <= m; r += 4) {
    const o0 = r * n, o1 = o0 + n, o2 = o1 + n, o3 = o2 + n; // prettier-ignore
    for (let i = 0; i < n; i++) {
      const x0 = a[o0 + i], x1 = a[o1 + i], x2 = a[o2 + i], x3 = a[o3 + i]; // prettier-ignore
      const gi = i * n;
      for (let j = i; j < n; j++) {
        g[gi + j] += x0 * a[o0 + j] + x1 * a[o1 + j] + x2 * a[o2 + j] + x3 * a[o3 + j];
      }
    }
  }
  for (; r < m; r++) {
    const o = r * n;
    for (let i = 0; i < n; i++) {
      const x = a[o + i];
      const gi = i * n;
      for (let j = i; j < n; j++) g[gi + j] += x * a[o + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) g[i * n + j] = g[j * n + i];
  return g;
}
