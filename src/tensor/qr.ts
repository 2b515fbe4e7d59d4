/**
 * Householder QR, blocked so that almost all flops run in the native GEMM.
 *
 * A (m × n) is factored as A = Q·R with k = min(m, n), Q m × k orthonormal, R k × n upper triangular
 * (thin/economy form). Works in the transposed layout (row j of `at` is column j of A), so that every
 * reflector and every column it touches is contiguous. Columns are processed in panels of NB; inside a
 * panel a recursive split (left half, block update of the right half, right half) keeps the level-2
 * work to LEAF columns at a time; after each panel one compact-WY block update hits all trailing
 * columns. Rank-deficient input is fine: a zero column just gives τ = 0 and a zero on R's diagonal,
 * and Q stays orthonormal.
 */
import { cholQr2 } from "./cholqr.js";
import { applyBlock, applyReflector, blockT, makeReflector, withReflectorRows } from "./householder.js";
import { mat, transposeData, type Mat } from "./matrix.js";
import { scratchF64 } from "./workspace.js";

const NB = 64;
const LEAF = 8;

export interface QrFactorization {
  rows: number;
  cols: number;
  /** min(rows, cols). */
  k: number;
  /** R (k × cols), upper triangular, diagonal ≥ 0 (Q's columns are signed to match). */
  r(): Mat;
  /** The thin Q (rows × k), formed explicitly (in `out`, length rows·k, when given). */
  q(out?: Float64Array): Mat;
  /** Q·X for X k × p (rows × p); cheaper than forming Q when p < k. */
  applyQ(x: Mat): Mat;
  /** Qᵀ·Y for Y rows × p (k × p). */
  applyQt(y: Mat): Mat;
}

/**
 * Thin QR: q is m × min(m, n) with orthonormal columns, r is min(m, n) × n upper triangular with a
 * non-negative diagonal (which makes the factorization unique when A has full column rank).
 *
 * Tall, well-conditioned matrices (m ≥ 2n, n ≥ 16) go through CholeskyQR2 (cholqr.ts): four large
 * matrix products instead of the reflector sweeps, ~3× faster here. It declines on ill-conditioned or
 * rank-deficient input, which then gets Householder QR; both give the same factors to rounding.
 * `qOut` (length m·min(m, n)) receives Q instead of a new array — worth it for large Q, since fresh
 * memory is expensive on the VMs this runs on (see workspace.ts).
 */
export function qr(a: Mat, opts: { qOut?: Float64Array } = {}): { q: Mat; r: Mat } {
  if (a.rows >= 2 * a.cols && a.cols >= 16) {
    const c = cholQr2(a, opts.qOut);
    if (c !== undefined) return c;
  }
  // The factored form is consumed right here, so its working copy can live in scratch memory.
  const f = qrFactor(a, "qr.at");
  return { q: f.q(opts.qOut), r: f.r() };
}

/**
 * Householder QR kept in factored form (reflectors + R), with Q available implicitly. `scratchRole`
 * (for callers inside this package) keeps the working copy in a scratch buffer of that role: the
 * factorization is then only valid until that role is used again.
 */
export function qrFactor(a: Mat, scratchRole?: string): QrFactorization {
  const n = a.rows * a.cols;
  return factor(a, scratchRole === undefined ? new Float64Array(n) : scratchF64(scratchRole, n));
}

function factor(a: Mat, atBuf: Float64Array): QrFactorization {
  const m = a.rows;
  const n = a.cols;
  const k = Math.min(m, n);
  const at = transposeData(a.data, m, n, atBuf); // n × m
  const taus = new Float64Array(k);
  const blocks: { j0: number; b: number; t: Float64Array }[] = [];

  for (let j0 = 0; j0 < k; j0 += NB) {
    const jb = Math.min(NB, k - j0);
    factorPanel(at, m, j0, jb, taus);
    const t = withReflectorRows(at, m, j0, jb, 0, (v) => {
      const tm = blockT(v, jb, m, taus.subarray(j0, j0 + jb));
      applyBlock(v, tm, jb, m, at, j0 + jb, n, false);
      return tm;
    });
    blocks.push({ j0, b: jb, t });
  }

  // Q·D and D·R with D = diag(sign R_jj) make the diagonal of R non-negative.
  const sign = new Float64Array(k);
  for (let j = 0; j < k; j++) sign[j] = at[j * m + j] < 0 ? -1 : 1;

  /** Rows [from(j0), r1) of `buf` (vectors of length m) ← Q·x each, i.e. H_1⋯H_k applied. */
  const applyQRows = (buf: Float64Array, from: (j0: number) => number, r1: number): void => {
    for (let bi = blocks.length - 1; bi >= 0; bi--) {
      const { j0, b, t } = blocks[bi];
      withReflectorRows(at, m, j0, b, 0, (v) => applyBlock(v, t, b, m, buf, from(j0), r1, true));
    }
  };

  return {
    rows: m,
    cols: n,
    k,
    r(): Mat {
      const r = mat(k, n);
      for (let j = 0; j < n; j++) {
        const top = Math.min(j, k - 1);
        for (let i = 0; i <= top; i++) r.data[i * n + j] = sign[i] * at[j * m + i];
      }
      return r;
    },
    q(out?: Float64Array): Mat {
      const qt = scratchF64("qr.qt", k * m); // row i = column i of Q, starting as e_i
      qt.fill(0);
      for (let i = 0; i < k; i++) qt[i * m + i] = sign[i];
      // Column i of [I; 0] is untouched by blocks whose reflectors all start after i, so each block
      // only needs the rows from its own start on.
      applyQRows(qt, (j0) => j0, k);
      return mat(m, k, transposeData(qt, k, m, out));
    },
    applyQ(x: Mat): Mat {
      if (x.rows !== k) throw new RangeError(`applyQ: X has ${x.rows} rows, Q has ${k} columns`);
      const p = x.cols;
      const yt = scratchF64("qr.apply", p * m); // row c = column c of [X; 0]
      yt.fill(0);
      for (let i = 0; i < k; i++) for (let c = 0; c < p; c++) yt[c * m + i] = sign[i] * x.data[i * p + c];
      applyQRows(yt, () => 0, p);
      return mat(m, p, transposeData(yt, p, m));
    },
    applyQt(y: Mat): Mat {
      if (y.rows !== m) throw new RangeError(`applyQt: Y has ${y.rows} rows, Q has ${m}`);
      const p = y.cols;
      const yt = transposeData(y.data, m, p, scratchF64("qr.apply", p * m)); // p × m
      for (const { j0, b, t } of blocks)
        withReflectorRows(at, m, j0, b, 0, (v) => applyBlock(v, t, b, m, yt, 0, p, false));
      const out = mat(k, p);
      for (let c = 0; c < p; c++) for (let i = 0; i < k; i++) out.data[i * p + c] = sign[i] * yt[c * m + i];
      return out;
    },
  };
}

/** Factors columns [j0, j0+jb) (rows of `at`), all earlier reflectors already applied to them. */
function factorPanel(at: Float64Array, m: number, j0: number, jb: number, taus: Float64Array): void {
  if (jb <= LEAF) {
    for (let j = j0; j < j0 + jb; j++) {
      const off = j * m + j;
      taus[j] = makeReflector(at, off, m - j);
      for (let i = j + 1; i < j0 + jb; i++) applyReflector(at, off, taus[j], at, i * m + j, m - j);
    }
    return;
  }
  const h = jb >> 1;
  factorPanel(at, m, j0, h, taus);
  withReflectorRows(at, m, j0, h, 0, (v) => {
    applyBlock(v, blockT(v, h, m, taus.subarray(j0, j0 + h)), h, m, at, j0 + h, j0 + jb, false);
  });
  factorPanel(at, m, j0 + h, jb - h, taus);
}
