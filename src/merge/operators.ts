/**
 * The merge operators of DESIGN.md ("Merge semantics"), each one formula over flat task tensors.
 * Task tensors are Float32Array views of one module's task tensor per adapter (any shape, flattened
 * row-major); methods compose these operators and never see files, spaces or threads.
 */

export type Tensor = Float32Array;
export type SignMethod = "total" | "frequency";

/**
 * A magnitude threshold that keeps exactly `k` entries: every entry with |x| bits above `bits`, plus the
 * first `ties` entries (lowest flat index first) whose |x| bits equal `bits`.
 */
export interface TrimThreshold {
  bits: number;
  ties: number;
}

/** Histogram of the high or low 16 bits of |x| (restricted to entries whose high bits equal `high`). */
export function histogram(x: Tensor, high: number | null, hist: Float64Array): void {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  if (high === null) {
    for (let i = 0; i < bits.length; i++) hist[(bits[i]! & 0x7fffffff) >>> 16]!++;
  } else {
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i]! & 0x7fffffff;
      if (b >>> 16 === high) hist[b & 0xffff]!++;
    }
  }
}

/** Walk a histogram from the top until `k` entries are covered; returns the bin and the count above it. */
export function topBin(hist: Float64Array, k: number): { bin: number; above: number } {
  let above = 0;
  for (let bin = hist.length - 1; bin >= 0; bin--) {
    const c = hist[bin]!;
    if (above + c >= k) return { bin, above };
    above += c;
  }
  return { bin: 0, above };
}

const HIST_HI = new Float64Array(65536);
const HIST_LO = new Float64Array(65536);

/**
 * Exact k-th largest magnitude over one or more tensors taken together (in the given order), by a two-pass
 * radix select on float32 bits: O(N), no copy, no sort. `k` must satisfy 1 ≤ k ≤ total length.
 */
export function magnitudeThreshold(parts: readonly Tensor[], k: number): TrimThreshold {
  // two histograms reused for the life of the thread: fresh 512 KB arrays per call cost page faults
  const hi = HIST_HI.fill(0);
  for (const p of parts) histogram(p, null, hi);
  const h = topBin(hi, k);
  const lo = HIST_LO.fill(0);
  for (const p of parts) histogram(p, h.bin, lo);
  const l = topBin(lo, k - h.above);
  return { bits: ((h.bin << 16) | l.bin) >>> 0, ties: k - h.above - l.above };
}

/** Number of entries whose magnitude bits equal `bits` (used to hand out tie quotas across tensors). */
export function countEqualMagnitude(x: Tensor, bits: number): number {
  const b = new Uint32Array(x.buffer, x.byteOffset, x.length);
  let n = 0;
  for (let i = 0; i < b.length; i++) if ((b[i]! & 0x7fffffff) === bits) n++;
  return n;
}

/**
 * Keep the entries selected by a threshold (see TrimThreshold); everything else becomes 0. The tie quota is
 * consumed from `t`, so a tensor processed in consecutive chunks keeps exactly the same entries as in one go.
 */
export function applyThreshold(
  x: Tensor,
  t: TrimThreshold,
  out: Tensor = new Float32Array(x.length),
): Tensor {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  const n = x.length;
  if (t.bits >= 0x7fffffff) {
    outBits.fill(0, 0, n); // a threshold above every magnitude keeps nothing
    return out;
  }
  // Branch-free main pass (kept iff |x| bits > threshold; data-dependent branches mispredict on trimmed
  // data): both magnitudes are < 2³¹, so (threshold − b) is negative exactly when b > threshold.
  const thr = t.bits;
  for (let i = 0; i < n; i++) {
    const b = bits[i]!;
    outBits[i] = b & ((thr - (b & 0x7fffffff)) >> 31);
  }
  // then the tie quota, lowest index first (ties at magnitude 0 are zeros: keeping them changes nothing)
  if (thr === 0) return out;
  let ties = t.ties;
  for (let i = 0; i < n && ties > 0; i++) {
    if ((bits[i]! & 0x7fffffff) === thr) {
      outBits[i] = bits[i]!;
      ties--;
    }
  }
  t.ties = ties;
  return out;
}

/** The threshold trim(x, ρ) uses for a whole tensor of length n whose entries are `x`. */
export function trimThreshold(x: Tensor, density: number): TrimThreshold {
  const k = Math.floor(density * x.length);
  if (k >= x.length) return { bits: 0, ties: Number.MAX_SAFE_INTEGER }; // keep everything
  if (k <= 0) return { bits: 0xffffffff, ties: 0 }; // keep nothing
  return magnitudeThreshold([x], k);
}

/**
 * trim(x, ρ): keep the k = floor(ρ·N) entries of largest |x| (lower flat index wins among equals), zero the
 * rest. ρ = 1 keeps everything.
 */
export function trim(x: Tensor, density: number): Tensor {
  return applyThreshold(x, trimThreshold(x, density));
}

/** The random stream DARE draws from: one uniform 32-bit integer per entry, in flat order. */
export interface UniformStream {
  nextU32(): number;
}

/**
 * drop(x, ρ) (DARE): keep each entry independently with probability ρ — entry i is kept iff its draw
 * u_i = nextU32()/2³² satisfies u_i < ρ — dividing kept entries by ρ when `rescale` (the correct factor is
 * 1/ρ = 1/(1−p) for drop rate p; the study's text has a typo there).
 */
export function drop(
  x: Tensor,
  density: number,
  rng: UniformStream,
  rescale: boolean,
  out: Tensor = new Float32Array(x.length),
): Tensor {
  const cut = density * 4294967296;
  for (let i = 0; i < x.length; i++) {
    out[i] = rng.nextU32() < cut ? (rescale ? x[i]! / density : x[i]!) : 0;
  }
  return out;
}

/**
 * elect: the majority sign γ per entry, from the (trimmed or dropped) unweighted values:
 * sign(Σ x̂_i) for "total", sign(Σ sign(x̂_i)) for "frequency"; γ = +1 where the sum is 0.
 */
export function electSign(
  xs: readonly Tensor[],
  method: SignMethod,
  gamma: Int8Array | Float32Array = new Int8Array(xs[0]!.length),
  sum: Float64Array = new Float64Array(xs[0]!.length),
): Int8Array | Float32Array {
  const n = xs[0]!.length;
  sum.fill(0, 0, n);
  for (const x of xs) {
    if (method === "total") for (let j = 0; j < n; j++) sum[j]! += x[j]!;
    else for (let j = 0; j < n; j++) sum[j]! += Math.sign(x[j]!);
  }
  for (let j = 0; j < n; j++) gamma[j] = sum[j]! < 0 ? -1 : 1;
  return gamma;
}

/**
 * disjoint mean: Σ_i w_i·x̂_i·[sign(x̂_i) = γ] / max(1, #{i : sign(x̂_i) = γ}); zeros never agree.
 */
export function disjointMean(
  xs: readonly Tensor[],
  weights: readonly number[],
  gamma: Int8Array | Float32Array,
  out: Tensor = new Float32Array(gamma.length),
): Tensor {
  const n = gamma.length;
  const m = xs.length;
  for (let j = 0; j < n; j++) {
    const g = gamma[j]!;
    let num = 0;
    let cnt = 0;
    for (let i = 0; i < m; i++) {
      const v = xs[i]![j]!;
      // agree = 1 when sign(v) = γ, else 0 (zeros never agree) — arithmetic, not a branch: with trimmed
      // data the branch is unpredictable and mispredictions cost more than the arithmetic
      const a = Math.sign(v) * g;
      const agree = (a + a * a) * 0.5;
      num += agree * weights[i]! * v;
      cnt += agree;
    }
    out[j] = num / Math.max(1, cnt);
  }
  return out;
}

/** Σ_i c_i·x_i, accumulated in float64. */
export function weightedSum(
  xs: readonly Tensor[],
  coeffs: readonly number[],
  out: Tensor = new Float32Array(xs[0]!.length),
  acc: Float64Array = new Float64Array(xs[0]!.length),
): Tensor {
  const n = xs[0]!.length;
  acc.fill(0, 0, n);
  xs.forEach((x, i) => {
    const c = coeffs[i]!;
    for (let j = 0; j < n; j++) acc[j]! += c * x[j]!;
  });
  for (let j = 0; j < n; j++) out[j] = acc[j]!;
  return out;
}

/** x·c in place (the final `lambda`). */
export function scaleInPlace(x: Tensor, c: number): Tensor {
  if (c !== 1) for (let j = 0; j < x.length; j++) x[j]! *= c;
  return x;
}
