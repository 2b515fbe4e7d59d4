/**
 * Rotary position embeddings, as HF transformers applies them to llama-family models: the head vector is
 * split in two halves (x1, x2) and rotated pairwise, x' = x·cos θ + rotate_half(x)·sin θ with
 * rotate_half(x) = [−x2, x1], θ_i = position · inv_freq_i. Angles are computed in float64.
 */
import type { ModelConfig } from "./config.js";
import type { Buf } from "./kernels.js";

/** inv_freq_i = 1 / theta^(2i/d) for i < d/2, then the config's rope scaling (llama3, linear). */
export function inverseFrequencies(
  config: Pick<ModelConfig, "headDim" | "ropeTheta" | "ropeScaling">,
): Float64Array {
  const d = config.headDim;
  const inv = new Float64Array(d / 2);
  for (let i = 0; i < d / 2; i++) inv[i] = 1 / Math.pow(config.ropeTheta, (2 * i) / d);
  const s = config.ropeScaling;
  if (s === null) return inv;
  if (s.type === "linear") {
    for (let i = 0; i < inv.length; i++) inv[i] /= s.factor;
    return inv;
  }
  // llama3: long wavelengths are divided by `factor`, short ones kept, the band between interpolated
  const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let i = 0; i < inv.length; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    if (wavelen < highFreqWavelen) continue;
    if (wavelen > lowFreqWavelen) {
      inv[i] /= s.factor;
      continue;
    }
    const smooth =
      (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
  }
  return inv;
}

/** cos/sin tables [maxPos × d/2] for positions 0..maxPos-1. */
export class RopeTable {
  readonly half: number;
  readonly cos: Float64Array;
  readonly sin: Float64Array;
  constructor(
    readonly invFreq: Float64Array,
    readonly maxPos: number,
  ) {
    this.half = invFreq.length;
    this.cos = new Float64Array(maxPos * this.half);
    this.sin = new Float64Array(maxPos * this.half);
    for (let p = 0; p < maxPos; p++) {
      for (let i = 0; i < this.half; i++) {
        const a = p * invFreq[i];
        this.cos[p * this.half + i] = Math.cos(a);
        this.sin[p * this.half + i] = Math.sin(a);
      }
    }
  }
}

/**
 * Rotate every head of every row in place: x is [rows × nHeads·d], row r has position positions[r].
 * `inverse` applies the transposed rotation (−θ): that is the backward pass, since the rotation is orthogonal.
 */
export function applyRope(
  x: Buf,
  positions: Int32Array,
  rows: number,
  nHeads: number,
  table: RopeTable,
  inverse: boolean,
): void {
  const half = table.half;
  const d = 2 * half;
  const sgn = inverse ? -1 : 1;
  for (let r = 0; r < rows; r++) {
    const tb = positions[r] * half;
    for (let h = 0; h < nHeads; h++) {
      const o = (r * nHeads + h) * d;
      for (let i = 0; i < half; i++) {
        const c = table.cos[tb + i];
        const s = sgn * table.sin[tb + i];
        const x1 = x[o + i];
        const x2 = x[o + half + i];
        x[o + i] = x1 * c - x2 * s;
        x[o + half + i] = x2 * c + x1 * s;
      }
    }
  }
}
