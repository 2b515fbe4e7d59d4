/**
 * AssemblyScript source of merglot's WebAssembly SIMD kernel for TIES (built by `npm run build` with the pinned
 * assemblyscript devDependency into dist/src/wasm/ties.wasm; loaded by src/merge/ties-wasm.ts). Not TypeScript
 * for tsc: i32, usize, v128 and load/store are AssemblyScript built-ins.
 *
 * tiesMerge is the fused kernel of src/merge/fused.ts (trim by threshold bits with the tie quota, sign
 * election, disjoint mean) on four entries at a time, with the same bits: every float64 operation is the
 * same IEEE operation in the same order per entry (sums over adapters 0, 1, …; num += (w·x) for agreeing
 * entries, +0 otherwise, which leaves num unchanged exactly as JavaScript's num += 0·w·x does; the float32
 * result is the float64 quotient rounded to nearest, as a Float32Array store rounds).
 *
 * Memory (byte offsets into this module's memory, laid out by the caller):
 *   xs    m u32 pointers, one per adapter, to its task tensor chunk (f32[n])
 *   thr   m u32 threshold bits (magnitude bits of the k-th largest |x|; ≥ 0x7fffffff keeps nothing)
 *   ties  m f64 tie quotas: entries with |x| bits equal to thr still to keep, lowest index first (updated)
 *   w     m f64 weights
 *   out   f32[n]
 *   work  f64 sum[B] | f64 num[B] | i32 cnt[B] | f32 kept[m·B]
 */
/** Entries per block: m kept blocks and the three accumulators stay in L1/L2 (the JavaScript kernel's BLOCK). */
export const B: i32 = 2048;

/** kept = trim of x[0, len) under (thr, tie quota at tiesPtr), as applyThresholdRange in operators.ts. */
function trimBlock(x: usize, len: i32, thr: u32, tiesPtr: usize, kept: usize): void {
  if (thr >= 0x7fffffff) {
    memory.fill(kept, 0, (<usize>len) << 2);
    return;
  }
  const vt = i32x4.splat(<i32>thr);
  const vm = i32x4.splat(0x7fffffff);
  let j: i32 = 0;
  for (; j + 4 <= len; j += 4) {
    const b = v128.load(x + ((<usize>j) << 2));
    const mask = i32x4.shr_s(i32x4.sub(vt, v128.and(b, vm)), 31);
    v128.store(kept + ((<usize>j) << 2), v128.and(b, mask));
  }
  for (; j < len; j++) {
    const b = load<i32>(x + ((<usize>j) << 2));
    store<i32>(kept + ((<usize>j) << 2), b & ((<i32>thr - (b & 0x7fffffff)) >> 31));
  }
  if (thr == 0) return;
  let ties = load<f64>(tiesPtr);
  for (let i: i32 = 0; i < len && ties > 0; i++) {
    const b = load<i32>(x + ((<usize>i) << 2));
    if ((b & 0x7fffffff) == <i32>thr) {
      store<i32>(kept + ((<usize>i) << 2), b);
      ties -= 1;
    }
  }
  store<f64>(tiesPtr, ties);
}

export function tiesMerge(
  xs: usize,
  m: i32,
  n: i32,
  thr: usize,
  ties: usize,
  w: usize,
  frequency: i32,
  out: usize,
  work: usize,
): void {
  const sum = work;
  const num = sum + ((<usize>B) << 3);
  const cnt = num + ((<usize>B) << 3);
  const keptBase = cnt + ((<usize>B) << 2);
  const one = i32x4.splat(1);
  const vm = i32x4.splat(0x7fffffff);
  for (let from: i32 = 0; from < n; from += B) {
    const len = min(B, n - from);
    const len4 = len & ~3;
    memory.fill(sum, 0, (<usize>len) << 3);
    for (let i: i32 = 0; i < m; i++) {
      const kept = keptBase + ((<usize>(i * B)) << 2);
      const x = <usize>load<u32>(xs + ((<usize>i) << 2)) + ((<usize>from) << 2);
      trimBlock(x, len, load<u32>(thr + ((<usize>i) << 2)), ties + ((<usize>i) << 3), kept);
      // sum += kept (total) or sign(kept) (frequency); the sign as float32 −1, 0, +1 promotes to the same
      // float64 values JavaScript's Math.sign adds
      let j: i32 = 0;
      for (; j < len4; j += 4) {
        let v = v128.load(kept + ((<usize>j) << 2));
        if (frequency) {
          // (x < 0) − (x > 0) in mask arithmetic (masks are −1), then to float32
          v = f32x4.convert_i32x4_s(i32x4.sub(f32x4.lt(v, f32x4.splat(0)), f32x4.gt(v, f32x4.splat(0))));
        }
        const p = sum + ((<usize>j) << 3);
        v128.store(p, f64x2.add(v128.load(p), f64x2.promote_low_f32x4(v)));
        v128.store(
          p + 16,
          f64x2.add(v128.load(p + 16), f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1))),
        );
      }
      for (; j < len; j++) {
        const p = sum + ((<usize>j) << 3);
        const v = load<f32>(kept + ((<usize>j) << 2));
        store<f64>(p, load<f64>(p) + (frequency ? <f64>(v > 0 ? 1 : v < 0 ? -1 : 0) : <f64>v));
      }
    }
    memory.fill(num, 0, (<usize>len) << 3);
    memory.fill(cnt, 0, (<usize>len) << 2);
    for (let i: i32 = 0; i < m; i++) {
      const kept = keptBase + ((<usize>(i * B)) << 2);
      const wv = f64x2.splat(load<f64>(w + ((<usize>i) << 3)));
      const ws = load<f64>(w + ((<usize>i) << 3));
      let j: i32 = 0;
      for (; j < len4; j += 4) {
        const b = v128.load(kept + ((<usize>j) << 2));
        const p = sum + ((<usize>j) << 3);
        // high words of the four float64 sums: their sign bits
        const hi = i8x16.shuffle(
          v128.load(p),
          v128.load(p + 16),
          4,
          5,
          6,
          7,
          12,
          13,
          14,
          15,
          20,
          21,
          22,
          23,
          28,
          29,
          30,
          31,
        );
        const nonzero = v128.not(i32x4.eq(v128.and(b, vm), i32x4.splat(0)));
        const same = i32x4.ge_s(v128.xor(b, hi), i32x4.splat(0));
        const agree = v128.and(nonzero, same);
        const c = cnt + ((<usize>j) << 2);
        v128.store(c, i32x4.sub(v128.load(c), agree));
        const q = num + ((<usize>j) << 3);
        const lo = f64x2.mul(wv, f64x2.promote_low_f32x4(b));
        const hiX = f64x2.mul(wv, f64x2.promote_low_f32x4(i32x4.shuffle(b, b, 2, 3, 0, 1)));
        v128.store(q, f64x2.add(v128.load(q), v128.and(lo, i64x2.extend_low_i32x4_s(agree))));
        v128.store(q + 16, f64x2.add(v128.load(q + 16), v128.and(hiX, i64x2.extend_high_i32x4_s(agree))));
      }
      for (; j < len; j++) {
        const bits = load<i32>(kept + ((<usize>j) << 2));
        const sHi = load<i32>(sum + ((<usize>j) << 3) + 4);
        if ((bits & 0x7fffffff) != 0 && (bits ^ sHi) >= 0) {
          const q = num + ((<usize>j) << 3);
          store<f64>(q, load<f64>(q) + ws * <f64>load<f32>(kept + ((<usize>j) << 2)));
          const c = cnt + ((<usize>j) << 2);
          store<i32>(c, load<i32>(c) + 1);
        }
      }
    }
    const o = out + ((<usize>from) << 2);
    let j: i32 = 0;
    for (; j < len4; j += 4) {
      const c = i32x4.max_s(v128.load(cnt + ((<usize>j) << 2)), one);
      const q = num + ((<usize>j) << 3);
      const a = f32x4.demote_f64x2_zero(f64x2.div(v128.load(q), f64x2.convert_low_i32x4_s(c)));
      const b2 = f32x4.demote_f64x2_zero(
        f64x2.div(v128.load(q + 16), f64x2.convert_low_i32x4_s(i32x4.shuffle(c, c, 2, 3, 0, 1))),
      );
      v128.store(o + ((<usize>j) << 2), i64x2.shuffle(a, b2, 0, 2));
    }
    for (; j < len; j++) {
      const c = max(load<i32>(cnt + ((<usize>j) << 2)), 1);
      store<f32>(o + ((<usize>j) << 2), <f32>(load<f64>(num + ((<usize>j) << 3)) / <f64>c));
    }
  }
}

// ------------------------------------------------------------------ magnitude histograms (the trim threshold)
//
// histogram() of src/merge/operators.ts: counts of the high 16 bits of |x| (two interleaved count arrays, so
// consecutive entries of similar magnitude do not chain through one counter), or of the low 16 bits of the
// entries whose high bits equal `high`. Counts are u32 (each array sees fewer than 2³¹ entries of one call).

/** c0, c1: u32[65536] each (cleared here); x: f32[n]. */
export function histHigh(x: usize, n: i32, c0: usize, c1: usize): void {
  memory.fill(c0, 0, 65536 << 2);
  memory.fill(c1, 0, 65536 << 2);
  let i: i32 = 0;
  for (; i + 2 <= n; i += 2) {
    const p = x + ((<usize>i) << 2);
    const a = (<usize>((load<u32>(p) & 0x7fffffff) >>> 16)) << 2;
    const b = (<usize>((load<u32>(p + 4) & 0x7fffffff) >>> 16)) << 2;
    store<u32>(c0 + a, load<u32>(c0 + a) + 1);
    store<u32>(c1 + b, load<u32>(c1 + b) + 1);
  }
  if (i < n) {
    const a = (<usize>((load<u32>(x + ((<usize>i) << 2)) & 0x7fffffff) >>> 16)) << 2;
    store<u32>(c0 + a, load<u32>(c0 + a) + 1);
  }
}

/** c0: u32[65536] (cleared here) gets the low 16 bits of |x| for the entries whose high 16 bits are `high`. */
export function histLow(x: usize, n: i32, high: u32, c0: usize): void {
  memory.fill(c0, 0, 65536 << 2);
  const vh = i32x4.splat(<i32>high);
  const vm = i32x4.splat(0x7fffffff);
  let i: i32 = 0;
  // four entries at a time: almost no entry is in the bin, so one vector test skips most of them
  for (; i + 4 <= n; i += 4) {
    const p = x + ((<usize>i) << 2);
    if (v128.any_true(i32x4.eq(i32x4.shr_u(v128.and(v128.load(p), vm), 16), vh))) {
      for (let j: i32 = 0; j < 4; j++) {
        const b = load<u32>(p + ((<usize>j) << 2)) & 0x7fffffff;
        if (b >>> 16 == high) {
          const c = c0 + ((<usize>(b & 0xffff)) << 2);
          store<u32>(c, load<u32>(c) + 1);
        }
      }
    }
  }
  for (; i < n; i++) {
    const b = load<u32>(x + ((<usize>i) << 2)) & 0x7fffffff;
    if (b >>> 16 == high) {
      const c = c0 + ((<usize>(b & 0xffff)) << 2);
      store<u32>(c, load<u32>(c) + 1);
    }
  }
}
