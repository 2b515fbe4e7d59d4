/**
 * Fused TIES kernels: trim (or drop) + elect + disjoint mean in one pass over cache-sized blocks, with the
 * bit-identical result of composing the operators of operators.ts over whole tensors.
 *
 * Why: the composition streams every task tensor through memory four times (trim writes the kept copy,
 * elect reads it into a float64 sum as long as the tensor, disjoint mean reads it again with an inner loop
 * over adapters per entry). Here each block of BLOCK entries is trimmed into an L1-resident scratch per
 * adapter, summed, and averaged while still in cache; every loop is a flat, monomorphic typed-array loop.
 *
 * Same bits: per entry the float64 sum and the disjoint-mean numerator and count are accumulated over the
 * adapters in the same order (0, 1, …) with the same expressions as electSign / disjointMean, and trims of
 * consecutive blocks keep exactly the entries of a whole-tensor trim (tie quotas are consumed in flat
 * order, see applyThreshold). The test (test/merge/fused.test.ts) checks this against the composition.
 */
import type { SignMethod, Tensor } from "./operators.js";

/** Entries per block: m kept blocks (float32) + three float64 accumulators stay within L1/L2. */
export const BLOCK = 2048;

/**
 * Writes participant i's kept entries [from, from + len) of its task tensor `x` into `out[0, len)`, in flat
 * order over consecutive calls (a trim or a drop bound to the adapter's settings).
 */
export type RangeOperator = (i: number, x: Tensor, from: number, len: number, out: Tensor) => void;

// per-thread block scratch (every worker has its own module instance)
let keptBlocks: Float32Array[] = [];
let keptBits: Int32Array[] = [];
const SUM = new Float64Array(BLOCK);
/** The high 32 bits of each SUM entry (little-endian, as every platform Node runs on): bit 31 is its sign. */
const SUM_HI = new Int32Array(SUM.buffer);
const NUM = new Float64Array(BLOCK);
/** Agreeing adapters per entry: small integers, the same values as disjointMean's float64 count. */
const CNT = new Int32Array(BLOCK);

function blocks(m: number): void {
  while (keptBlocks.length < m) {
    const b = new Float32Array(BLOCK);
    keptBlocks = [...keptBlocks, b];
    keptBits = [...keptBits, new Int32Array(b.buffer)];
  }
}

/** sum[j] += x[j] (electSign's "total"). */
function addTotal(sum: Float64Array, x: Float32Array, len: number): void {
  for (let j = 0; j < len; j++) sum[j]! += x[j]!;
}

/** sum[j] += sign(x[j]) (electSign's "frequency"). */
function addFrequency(sum: Float64Array, x: Float32Array, len: number): void {
  for (let j = 0; j < len; j++) sum[j]! += Math.sign(x[j]!);
}

/**
 * The disjoint-mean terms of one adapter: γ_j = −1 where sum_j < 0 else +1; agree_j = 1 iff sign(v) = γ_j
 * and v ≠ 0, else 0 — the values disjointMean's agree takes, so num and cnt get the same bits.
 *
 * Branch-free on the sign bits: Math.sign and comparisons compile to data-dependent branches, and on
 * trimmed task tensors (signs and zeros at random) those mispredict about once per entry, which cost
 * ~20 cycles an entry (measured: bench/ties-kernels.ts). sum_j < 0 exactly when its sign bit is set: the
 * sum starts at +0 and float addition never returns −0 from +0, and the sums are finite.
 */
function addAgreeing(
  num: Float64Array,
  cnt: Int32Array,
  sumHi: Int32Array,
  x: Float32Array,
  xBits: Int32Array,
  w: number,
  len: number,
): void {
  for (let j = 0; j < len; j++) {
    const b = xBits[j]!;
    // all ones when v ≠ 0 (its magnitude bits are ≥ 1), else 0
    const nonzero = ~(((b & 0x7fffffff) - 1) >> 31);
    // bit 31 set when the sign bits of v and sum_j are equal
    const same = ~(b ^ sumHi[2 * j + 1]!);
    const agree = -((same & nonzero) >> 31);
    num[j]! += agree * w * x[j]!;
    cnt[j]! += agree;
  }
}

/** out[from + j] = num_j / max(1, cnt_j), the max without a branch (cnt_j | 1 when cnt_j = 0). */
function divideByCount(
  out: Float32Array,
  from: number,
  num: Float64Array,
  cnt: Int32Array,
  len: number,
): void {
  for (let j = 0; j < len; j++) {
    const c = cnt[j]!;
    out[from + j] = num[j]! / (c | -((c - 1) >> 31));
  }
}

/**
 * disjoint mean under the elected sign of op(x_i) for each adapter i, where op is a RangeOperator (trim or
 * drop): the same result as disjointMean(op(x_i)…, weights, electSign(op(x_i)…, signMethod)).
 */
export function fusedDisjointMerge(
  xs: readonly Tensor[],
  op: RangeOperator,
  weights: readonly number[],
  signMethod: SignMethod,
  out: Tensor,
): Tensor {
  const m = xs.length;
  const n = xs[0]!.length;
  blocks(m);
  const w = Float64Array.from(weights);
  for (let from = 0; from < n; from += BLOCK) {
    const len = Math.min(BLOCK, n - from);
    SUM.fill(0, 0, len);
    for (let i = 0; i < m; i++) {
      const k = keptBlocks[i]!;
      op(i, xs[i]!, from, len, k);
      if (signMethod === "total") addTotal(SUM, k, len);
      else addFrequency(SUM, k, len);
    }
    NUM.fill(0, 0, len);
    CNT.fill(0, 0, len);
    for (let i = 0; i < m; i++) addAgreeing(NUM, CNT, SUM_HI, keptBlocks[i]!, keptBits[i]!, w[i]!, len);
    divideByCount(out, from, NUM, CNT, len);
  }
  return out;
}
