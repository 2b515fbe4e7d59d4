/**
 * Plane (Givens) rotations and the bookkeeping shared by the tridiagonal and bidiagonal QR iterations:
 * accumulating rotations into row-stored vector sets, sign normalisation and sorting.
 */

/** c, s, r with c·y + s·z = r and −s·y + c·z = 0 (r = hypot(y, z) ≥ 0; c = 1, s = 0 when both are 0). */
export function givens(y: number, z: number): [number, number, number] {
  if (z === 0) return y >= 0 ? [1, 0, y] : [-1, 0, -y];
  if (y === 0) return z >= 0 ? [0, 1, z] : [0, -1, -z];
  const r = Math.hypot(y, z);
  return [y / r, z / r, r];
}

/**
 * Rows i and j of `buf` (row length w): row_i ← c·row_i + s·row_j, row_j ← −s·row_i + c·row_j.
 * With vectors stored as rows this is the column rotation X ← X·Gᵀ of the matrix whose columns they are.
 */
export function rotateRows(buf: Float64Array, w: number, i: number, j: number, c: number, s: number): void {
  const oi = i * w;
  const oj = j * w;
  for (let t = 0; t < w; t++) {
    const x = buf[oi + t];
    const y = buf[oj + t];
    buf[oi + t] = c * x + s * y;
    buf[oj + t] = c * y - s * x;
  }
}

/**
 * Order for `values` descending; ties keep their current order, so the result is deterministic.
 */
export function descendingOrder(values: Float64Array): number[] {
  const idx = Array.from(values, (_, i) => i);
  idx.sort((a, b) => values[b] - values[a] || a - b);
  return idx;
}

/**
 * Sign convention that makes factorizations reproducible: returns −1 when the entry of largest
 * magnitude in row i of `buf` (the first such, on ties) is negative, else +1.
 */
export function signOfLargest(buf: Float64Array, w: number, i: number): number {
  let best = 0;
  let val = 0;
  for (let t = 0; t < w; t++) {
    const v = buf[i * w + t];
    if (Math.abs(v) > best) {
      best = Math.abs(v);
      val = v;
    }
  }
  return val < 0 ? -1 : 1;
}
