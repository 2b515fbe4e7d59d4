/**
 * Inner products and norms of LoRA deltas from their factors, without forming B·A:
 *   ⟨s₁B₁A₁, s₂B₂A₂⟩_F = s₁s₂·trace(A₁ᵀB₁ᵀB₂A₂) = s₁s₂·Σ_jk (B₁ᵀB₂)_jk (A₁A₂ᵀ)_jk,
 * two r₁ × r₂ cross-Gram matrices at O((out + in)·r₁·r₂) instead of O(out·in·r).
 */

/** Cross Gram X·Yᵀ of the rows of row-major X (r1 × n) and Y (r2 × n), float64 accumulation. */
export function rowCrossGram(x: Float32Array, r1: number, y: Float32Array, r2: number, n: number): Float64Array {
  const g = new Float64Array(r1 * r2);
  const symmetric = x === y;
  for (let j = 0; j < r1; j++) {
    const oj = j * n;
    for (let k = symmetric ? j : 0; k < r2; k++) {
      const ok = k * n;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let t = 0;
      for (; t + 3 < n; t += 4) {
        s0 += x[oj + t]! * y[ok + t]!;
        s1 += x[oj + t + 1]! * y[ok + t + 1]!;
        s2 += x[oj + t + 2]! * y[ok + t + 2]!;
        s3 += x[oj + t + 3]! * y[ok + t + 3]!;
      }
      for (; t < n; t++) s0 += x[oj + t]! * y[ok + t]!;
      g[j * r2 + k] = s0 + s1 + s2 + s3;
      if (symmetric) g[k * r2 + j] = g[j * r2 + k]!;
    }
  }
  return g;
}

/** Transpose of a row-major rows × cols matrix. */
export function transposeF32(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j]!;
  return t;
}

/** One module's factors: A (rank × in) and B (out × rank), row-major, with PEFT scaling. */
export interface Factors {
  a: Float32Array;
  b: Float32Array;
  rank: number;
  in: number;
  out: number;
  scaling: number;
}

/** ⟨ΔW₁, ΔW₂⟩_F for two modules of the same shape. */
export function deltaInner(x: Factors, y: Factors, bT?: { x: Float32Array; y: Float32Array }): number {
  const ga = rowCrossGram(x.a, x.rank, y.a, y.rank, x.in);
  const bx = bT?.x ?? transposeF32(x.b, x.out, x.rank);
  const by = x === y ? bx : (bT?.y ?? transposeF32(y.b, y.out, y.rank));
  const gb = rowCrossGram(bx, x.rank, by, y.rank, x.out);
  let s = 0;
  for (let i = 0; i < ga.length; i++) s += ga[i]! * gb[i]!;
  return x.scaling * y.scaling * s;
}

/** ‖s·B·A‖_F for A (r × in) and B (out × r), both row-major. */
export function deltaFrobeniusNorm(a: Float32Array, b: Float32Array, r: number, inF: number, out: number, scaling: number): number {
  const f: Factors = { a, b, rank: r, in: inF, out, scaling: 1 };
  return Math.abs(scaling) * Math.sqrt(Math.max(0, deltaInner(f, f)));
}
