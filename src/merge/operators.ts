/**
 * The merge operators of DESIGN.md ("Merge semantics"), each one formula over flat task tensors.
 * Task tensors are Float32Array views of one module's task tensor per adapter (any shape, flattened
 * row-major); methods compose these operators and never see files, spaces or threads.
 */
import { histogramWasm } from "./ties-wasm.js";

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

// two interleaved integer histograms for the unrestricted pass: consecutive entries of similar magnitude hit
// the same bin, and a float64 read-modify-write chain through one bin stalls on store forwarding (measured
// 2.1× slower, bench/ties-kernels.ts); reused for the life of the thread
const COUNT_0 = new Int32Array(65536);
const COUNT_1 = new Int32Array(65536);

/**
 * Adds to `hist` the histogram of the high 16 bits of |x| (`high` null), or of the low 16 bits of the
 * entries whose high bits equal `high`. Exact counts: each integer counter sees at most half of a typed
 * array (< 2³¹ entries), and the float64 totals stay below 2⁵³.
 */
export function histogram(x: Tensor, high: number | null, hist: Float64Array): void {
  if (histogramWasm(x, high, hist)) return; // the same counts from the WebAssembly kernel (ties-wasm.ts)
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  if (high === null) {
    COUNT_0.fill(0);
    COUNT_1.fill(0);
    const even = bits.length & ~1;
    for (let i = 0; i < even; i += 2) {
      COUNT_0[(bits[i]! & 0x7fffffff) >>> 16]!++;
      COUNT_1[(bits[i + 1]! & 0x7fffffff) >>> 16]!++;
    }
    if (even < bits.length) COUNT_0[(bits[even]! & 0x7fffffff) >>> 16]!++;
    for (let b = 0; b < 65536; b++) hist[b]! += COUNT_0[b]! + COUNT_1[b]!;
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
  applyThresholdRange(bits, 0, x.length, t, outBits);
  return out;
}

/**
 * applyThreshold on the float32 bits of entries [from, from + len) of a tensor, written to outBits[0, len):
 * consecutive ranges consume the tie quota in flat order, so they keep exactly the entries of one pass.
 */
export function applyThresholdRange(
  bits: Uint32Array,
  from: number,
  len: number,
  t: TrimThreshold,
  outBits: Uint32Array,
): void {
  if (t.bits >= 0x7fffffff) {
    outBits.fill(0, 0, len); // a threshold above every magnitude keeps nothing
    return;
  }
  // Branch-free main pass (kept iff |x| bits > threshold; data-dependent branches mispredict on trimmed
  // data): both magnitudes are < 2³¹, so (threshold − b) is negative exactly when b > threshold.
  const thr = t.bits;
  for (let i = 0; i < len; i++) {
    const b = bits[from + i]!;
    outBits[i] = b & ((thr - (b & 0x7fffffff)) >> 31);
  }
  // then the tie quota, lowest index first (ties at magnitude 0 are zeros: keeping them changes nothing)
  if (thr === 0) return;
  let ties = t.ties;
  for (let i = 0; i < len && ties > 0; i++) {
    if ((bits[from + i]! & 0x7fffffff) === thr) {
      outBits[i] = bits[from + i]!;
      ties--;
    }
  }
  t.ties = ties;
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

/**
 * The entries of a row ordered by magnitude, largest first, equal magnitudes by lower index first (the order
 * DELLA's ranks need, one row at a time): a stable LSD radix sort of the 31 magnitude bits in three passes of
 * 11, 11 and 9 bits (a pass whose digit is the same for the whole row is skipped). It replaced a comparison sort
 * of float64 keys, ~6× slower per entry on long rows; the order is the same, so the output bits are too.
 */
export class MagnitudeRanker {
  private readonly keyA: Uint32Array;
  private readonly keyB: Uint32Array;
  private readonly idxA: Uint32Array;
  private readonly idxB: Uint32Array;
  /** The three passes' digit counts, then their start offsets. */
  private readonly count = new Uint32Array(3 * 2048);

  constructor(readonly cols: number) {
    this.keyA = new Uint32Array(cols);
    this.keyB = new Uint32Array(cols);
    this.idxA = new Uint32Array(cols);
    this.idxB = new Uint32Array(cols);
  }

  /** Row indices (0 … cols−1) of the row starting at `r0` of float32 bit patterns, largest magnitude first. */
  row(bits: Uint32Array, r0: number): Uint32Array {
    const n = this.cols;
    let key = this.keyA;
    let idx = this.idxA;
    let keyOut = this.keyB;
    let idxOut = this.idxB;
    // one read pass: the keys (ascending complement of |x| = descending |x|; index order in, so the stable
    // passes keep lower indices first among equal magnitudes) and all three digit histograms
    const count = this.count;
    count.fill(0);
    for (let j = 0; j < n; j++) {
      const k = 0x7fffffff - (bits[r0 + j]! & 0x7fffffff);
      key[j] = k;
      idx[j] = j;
      count[k & 0x7ff]!++;
      count[2048 + ((k >>> 11) & 0x7ff)]!++;
      count[4096 + (k >>> 22)]!++;
    }
    for (let pass = 0; pass < 3; pass++) {
      const base = pass * 2048;
      const shift = pass * 11;
      // one digit for the whole row: this pass would leave the order as it is
      if (count[base + ((key[0]! >>> shift) & 0x7ff)] === n) continue;
      let sum = 0;
      for (let d = base; d < base + 2048; d++) {
        const c = count[d]!;
        count[d] = sum;
        sum += c;
      }
      for (let j = 0; j < n; j++) {
        const k = key[j]!;
        const at = count[base + ((k >>> shift) & 0x7ff)]!++;
        keyOut[at] = k;
        idxOut[at] = idx[j]!;
      }
      const kt = key;
      key = keyOut;
      keyOut = kt;
      const it = idx;
      idx = idxOut;
      idxOut = it;
    }
    return idx;
  }
}

/**
 * magprune(x, ρ, ε) (DELLA's MAGPRUNE, Deep et al. 2024, arXiv:2406.11617 §3): within each row of `cols`
 * entries, rank the entries by magnitude, r = 0 for the largest (equal magnitudes: lower index first), and
 * drop entry i with probability p_i = p_min + ε·r_i/n, p_min = (1 − ρ) − ε/2 (n = row length) — so larger
 * magnitudes are dropped less often and the mean drop rate is ≈ 1 − ρ. Entry i is kept iff its draw
 * u_i = nextU32()/2³² (flat order, the same stream as DARE's) satisfies u_i < q_i = 1 − p_i; kept entries are
 * divided by q_i when `rescale` (the paper's 1/(1 − p_i)). ρ = 1 keeps everything (as mergekit). The row-wise
 * ranking is the paper's preferred variant; mergekit's della_magprune also ranks along rows.
 */
export function magprune(
  x: Tensor,
  density: number,
  epsilon: number,
  cols: number,
  rng: UniformStream,
  rescale: boolean,
  out: Tensor = new Float32Array(x.length),
): Tensor {
  if (density >= 1) {
    out.set(x);
    return out;
  }
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const rank = new MagnitudeRanker(cols);
  const q = new Float64Array(cols);
  const pMin = 1 - density - epsilon / 2;
  for (let r0 = 0; r0 < x.length; r0 += cols) {
    const order = rank.row(bits, r0);
    for (let pos = 0; pos < cols; pos++) q[order[pos]!] = 1 - (pMin + (epsilon * pos) / cols);
    for (let j = 0; j < cols; j++) {
      const qj = q[j]!;
      const v = x[r0 + j]!;
      out[r0 + j] = rng.nextU32() < qj * 4294967296 ? (rescale ? v / qj : v) : 0;
    }
  }
  return out;
}

/**
 * The two magnitude cuts of Model Breadcrumbs (Davari & Belilovsky 2023, arXiv:2312.06795): with N entries,
 * k = floor(ρ·N) entries are kept after removing the n_top = floor(γ·N) largest magnitudes (the outliers) and
 * as many of the smallest as needed; when n_top + k > N, fewer outliers are removed (n_top = N − k), as in
 * mergekit's `magnitude_outliers`. Ranking as in trim (equal magnitudes: lower flat index first), so the kept
 * set is trim(x, n_top + k) minus trim(x, n_top). ρ = 1 keeps everything.
 */
export interface BreadcrumbsCuts {
  /** The n_top + k largest (applied first). */
  upto: TrimThreshold;
  /** The n_top largest, removed again. */
  top: TrimThreshold;
}

function thresholdForCount(x: Tensor, k: number): TrimThreshold {
  if (k >= x.length) return { bits: 0, ties: Number.MAX_SAFE_INTEGER };
  if (k <= 0) return { bits: 0xffffffff, ties: 0 };
  return magnitudeThreshold([x], k);
}

export function breadcrumbsCuts(x: Tensor, density: number, gamma: number): BreadcrumbsCuts {
  const n = x.length;
  const k = density >= 1 ? n : Math.floor(density * n);
  const nTop = Math.min(Math.floor(gamma * n), n - k);
  return { upto: thresholdForCount(x, nTop + k), top: thresholdForCount(x, nTop) };
}

/** Apply the breadcrumbs cuts to (a chunk of) x; tie quotas are consumed as in applyThreshold. */
export function applyBreadcrumbs(
  x: Tensor,
  cuts: BreadcrumbsCuts,
  out: Tensor = new Float32Array(x.length),
  scratch: Tensor = new Float32Array(x.length),
): Tensor {
  applyThreshold(x, cuts.upto, out);
  const top = applyThreshold(x, cuts.top, scratch);
  // the top set is a subset of the upto set (same order, same tie rule): removing it is a subtraction
  for (let i = 0; i < x.length; i++) if (top[i] !== 0) out[i] = 0;
  return out;
}

/**
 * SCE (Wan et al. 2024, FuseChat-2.0, arXiv:2408.07990: Select, Calculate, Erase) on one task tensor:
 * - select: if `selectTopk` < 1, keep (in every adapter) the entries whose variance across adapters
 *   (population variance of the unweighted x_i) is among the floor(selectTopk·#{var ≠ 0}) largest (equal
 *   variances: lower flat index first), as mergekit's `select_topk`; 1 keeps all.
 * - calculate: ω_i = Σ_j x̂_ij² (the paper's squared-magnitude weights; their normalisation cancels below, so
 *   unlike mergekit no fallback to uniform weights is needed for tiny tensors).
 * - erase: elect γ from the x̂_i (sign_method), then Σ_i w_i ω_i x̂_i [sign x̂_i = γ] / Σ_i ω_i [sign x̂_i = γ]
 *   (0 where nothing agrees). The user weights w_i multiply in the numerator, as in the disjoint mean; with
 *   all w_i = 1 this is mergekit's `sce`.
 */
export function sceMerge(
  xs: readonly Tensor[],
  weights: readonly number[],
  selectTopk: number,
  signMethod: SignMethod,
  buffers: { f32(role: string, n: number): Float32Array; f64(role: string, n: number): Float64Array },
): Tensor {
  const n = xs[0]!.length;
  const m = xs.length;
  let sel: readonly Tensor[] = xs;
  if (selectTopk < 1) {
    const v = buffers.f32("sce.var", n);
    let nonzero = 0;
    for (let j = 0; j < n; j++) {
      let mean = 0;
      for (let i = 0; i < m; i++) mean += xs[i]![j]!;
      mean /= m;
      let ss = 0;
      for (let i = 0; i < m; i++) ss += (xs[i]![j]! - mean) ** 2;
      v[j] = ss / m;
      if (v[j] !== 0) nonzero++;
    }
    const k = Math.floor(selectTopk * nonzero);
    const kept = applyThreshold(v, thresholdForCount(v, k), buffers.f32("sce.kept", n));
    sel = xs.map((x, i) => {
      const o = buffers.f32(`sce.sel.${i}`, n);
      for (let j = 0; j < n; j++) o[j] = kept[j] !== 0 ? x[j]! : 0;
      return o;
    });
  }
  const omega = sel.map((x) => {
    let s = 0;
    for (let j = 0; j < n; j++) s += x[j]! * x[j]!;
    return s;
  });
  const gamma = electSign(sel, signMethod, buffers.f32("sce.gamma", n), buffers.f64("sce.sum", n));
  const out = buffers.f32("method.out", n);
  for (let j = 0; j < n; j++) {
    const g = gamma[j]!;
    let num = 0;
    let den = 0;
    for (let i = 0; i < m; i++) {
      const v = sel[i]![j]!;
      if (v !== 0 && Math.sign(v) === g) {
        num += weights[i]! * omega[i]! * v;
        den += omega[i]!;
      }
    }
    out[j] = den > 0 ? num / den : 0;
  }
  return out;
}

/**
 * RAM (Reinforced Agent Merging, arXiv:2601.13572, as mergekit's `ram`): an entry with |x_i| > ε is a
 * contribution of adapter i; an entry with one contributor keeps its value, one with several gets their mean:
 * Σ_i w_i x_i [|x_i| > ε] / max(1, #{i : |x_i| > ε}). The user weights multiply in the numerator, as in the
 * disjoint mean (mergekit's `ram` has no weights: all 1 reproduces it).
 */
export function ramMerge(
  xs: readonly Tensor[],
  weights: readonly number[],
  epsilon: number,
  out: Tensor = new Float32Array(xs[0]!.length),
): Tensor {
  const n = xs[0]!.length;
  for (let j = 0; j < n; j++) {
    let num = 0;
    let cnt = 0;
    for (let i = 0; i < xs.length; i++) {
      const v = xs[i]![j]!;
      if (Math.abs(v) > epsilon) {
        num += weights[i]! * v;
        cnt++;
      }
    }
    out[j] = num / Math.max(1, cnt);
  }
  return out;
}
