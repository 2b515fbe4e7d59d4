/**
 * The dense matrix type shared by the linear-algebra modules, and the small helpers everything else uses.
 * Row-major float64: element (i, j) lives at data[i * cols + j].
 */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

/** A rows × cols matrix over `data` (not copied), or a new zero matrix. */
export function mat(rows: number, cols: number, data?: Float64Array): Mat {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0) {
    throw new RangeError(`mat: invalid shape ${rows} × ${cols}`);
  }
  if (data === undefined) return { rows, cols, data: new Float64Array(rows * cols) };
  if (data.length !== rows * cols) {
    throw new RangeError(
      `mat: data has ${data.length} elements, a ${rows} × ${cols} matrix needs ${rows * cols}`,
    );
  }
  return { rows, cols, data };
}

/** The n × n identity. */
export function eye(n: number): Mat {
  const m = mat(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

/** A matrix from an array of equally long rows (handy in tests and small setups). */
export function fromRows(rows: readonly (readonly number[])[]): Mat {
  const r = rows.length;
  const c = r === 0 ? 0 : rows[0].length;
  const m = mat(r, c);
  for (let i = 0; i < r; i++) {
    if (rows[i].length !== c)
      throw new RangeError(`fromRows: row ${i} has ${rows[i].length} entries, not ${c}`);
    m.data.set(rows[i], i * c);
  }
  return m;
}

export function clone(a: Mat): Mat {
  return { rows: a.rows, cols: a.cols, data: a.data.slice() };
}

/** Transpose into a new matrix. Blocked so that both reads and writes stay within cache lines. */
export function transpose(a: Mat): Mat {
  return { rows: a.cols, cols: a.rows, data: transposeData(a.data, a.rows, a.cols) };
}

/**
 * Transpose a row-major rows × cols array into `dst` (a new array by default) as cols × rows.
 * Tiles of 16 × 16 keep both the reads and the writes within a few cache lines and pages.
 */
export function transposeData(
  src: Float64Array,
  rows: number,
  cols: number,
  dst?: Float64Array,
): Float64Array {
  const out = dst ?? new Float64Array(rows * cols);
  const B = 16;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(i0 + B, rows);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(j0 + B, cols);
      for (let j = j0; j < j1; j++) {
        const o = j * rows;
        for (let i = i0; i < i1; i++) out[o + i] = src[i * cols + j];
      }
    }
  }
  return out;
}

/** Columns [c0, c1) of a, copied. */
export function sliceCols(a: Mat, c0: number, c1: number): Mat {
  if (c0 < 0 || c1 > a.cols || c0 > c1)
    throw new RangeError(`sliceCols: [${c0}, ${c1}) outside 0..${a.cols}`);
  const w = c1 - c0;
  const out = mat(a.rows, w);
  for (let i = 0; i < a.rows; i++) out.data.set(a.data.subarray(i * a.cols + c0, i * a.cols + c1), i * w);
  return out;
}

/** Rows [r0, r1) of a, copied. */
export function sliceRows(a: Mat, r0: number, r1: number): Mat {
  if (r0 < 0 || r1 > a.rows || r0 > r1)
    throw new RangeError(`sliceRows: [${r0}, ${r1}) outside 0..${a.rows}`);
  return mat(r1 - r0, a.cols, a.data.slice(r0 * a.cols, r1 * a.cols));
}

/** [a1 | a2 | …]: matrices with equal row counts side by side. */
export function hcat(parts: readonly Mat[]): Mat {
  if (parts.length === 0) return mat(0, 0);
  const rows = parts[0].rows;
  let cols = 0;
  for (const p of parts) {
    if (p.rows !== rows) throw new RangeError(`hcat: row counts differ (${rows} vs ${p.rows})`);
    cols += p.cols;
  }
  const out = mat(rows, cols);
  for (let i = 0; i < rows; i++) {
    let off = i * cols;
    for (const p of parts) {
      out.data.set(p.data.subarray(i * p.cols, (i + 1) * p.cols), off);
      off += p.cols;
    }
  }
  return out;
}

/** [a1; a2; …]: matrices with equal column counts stacked vertically. */
export function vcat(parts: readonly Mat[]): Mat {
  if (parts.length === 0) return mat(0, 0);
  const cols = parts[0].cols;
  let rows = 0;
  for (const p of parts) {
    if (p.cols !== cols) throw new RangeError(`vcat: column counts differ (${cols} vs ${p.cols})`);
    rows += p.rows;
  }
  const out = mat(rows, cols);
  let off = 0;
  for (const p of parts) {
    out.data.set(p.data, off);
    off += p.data.length;
  }
  return out;
}

/** Frobenius norm, scaled to avoid overflow/underflow on extreme entries. */
export function frobenius(a: Mat): number {
  return norm2(a.data, 0, a.data.length);
}

/** Euclidean norm of x[from, to) without overflow (two passes: find the scale, then sum squares). */
export function norm2(x: Float64Array, from: number, to: number): number {
  let scale = 0;
  for (let i = from; i < to; i++) {
    const v = Math.abs(x[i]);
    if (v > scale) scale = v;
  }
  if (scale === 0 || !Number.isFinite(scale)) return scale;
  // Plain sum of squares when nothing can overflow or underflow badly: the common, fast case.
  if (scale < 1e150 && scale > 1e-150) {
    let s = 0;
    for (let i = from; i < to; i++) s += x[i] * x[i];
    return Math.sqrt(s);
  }
  const inv = 1 / scale;
  let s = 0;
  for (let i = from; i < to; i++) {
    const v = x[i] * inv;
    s += v * v;
  }
  return scale * Math.sqrt(s);
}

/**
 * A power of two near `maxAbs` (1 for 0 or non-finite), for scaling a matrix into [½, 1) before an
 * iterative decomposition: multiplying by a power of two is exact, so scaling back loses nothing.
 */
export function powerOfTwoScale(maxAbs: number): number {
  if (!(maxAbs > 0) || !Number.isFinite(maxAbs)) return 1;
  return 2 ** Math.max(-1000, Math.min(1000, Math.floor(Math.log2(maxAbs)) + 1));
}

/** a · diag(d): scales column j by d[j]. */
export function scaleCols(a: Mat, d: ArrayLike<number>): Mat {
  if (d.length !== a.cols) throw new RangeError(`scaleCols: ${d.length} factors for ${a.cols} columns`);
  const out = mat(a.rows, a.cols);
  for (let i = 0; i < a.rows; i++) {
    const o = i * a.cols;
    for (let j = 0; j < a.cols; j++) out.data[o + j] = a.data[o + j] * d[j];
  }
  return out;
}
