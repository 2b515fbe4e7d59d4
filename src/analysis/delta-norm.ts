/**
 * Inner products and norms of LoRA deltas from their factors, without forming B·A:
 *   ⟨s₁B₁A₁, s₂B₂A₂⟩_F = s₁s₂·trace(A₁ᵀB₁ᵀB₂A₂) = s₁s₂·Σ_jk (B₁ᵀB₂)_jk (A₁A₂ᵀ)_jk,
 * two r₁ × r₂ cross-Gram matrices at O((out + in)·r₁·r₂) instead of O(out·in·r).
 */
import { gemmF32 } from "../tensor/gemm.js";

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
export function deltaInner(x: Factors, y: Factors): number {
  const ga = gemmF32(x.rank, y.rank, x.in, x.a, y.a, { transB: true }); // A₁A₂ᵀ
  const gb = gemmF32(x.rank, y.rank, x.out, x.b, y.b, { transA: true }); // B₁ᵀB₂
  let s = 0;
  for (let i = 0; i < ga.length; i++) s += ga[i]! * gb[i]!;
  return x.scaling * y.scaling * s;
}

/** ‖s·B·A‖_F for A (r × in) and B (out × r), both row-major. From the r × r Grams when that is the smaller
 *  work space, else from B·A itself (out × in): a rank far above min(out, in) — 100,000 on a 64 × 64 module —
 *  would otherwise need r² floats. Memory: min(r², out·in) floats besides the factors. */
export function deltaFrobeniusNorm(
  a: Float32Array,
  b: Float32Array,
  r: number,
  inF: number,
  out: number,
  scaling: number,
): number {
  if (r * r > out * inF) {
    const d = gemmF32(out, inF, r, b, a);
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i]! * d[i]!;
    return Math.abs(scaling) * Math.sqrt(s);
  }
  const f: Factors = { a, b, rank: r, in: inF, out, scaling: 1 };
  return Math.abs(scaling) * Math.sqrt(Math.max(0, deltaInner(f, f)));
}
