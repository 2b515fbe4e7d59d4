/**
 * AssemblyScript source of the WebAssembly kernel of DELLA's magprune (built by `npm run build` into
 * dist/src/wasm/della.wasm; used by src/merge/della-wasm.ts, with src/merge/operators.ts `magprune` as the
 * JavaScript twin and fallback). Not TypeScript for tsc: i32, u32, usize, f32, f64 and load/store are
 * AssemblyScript built-ins.
 *
 * The same computation as the JavaScript function, so both give the same bits: per row, the stable three-pass
 * LSD radix sort of the complemented magnitude bits (11, 11, 9 bits; a pass with one digit for the whole row is
 * skipped), keep probabilities q = 1 − (p_min + ε·rank/n) in float64, then one xoshiro128** draw per entry in
 * flat order, kept iff u < q·2³², divided by q when rescaling, rounded to float32 on store.
 *
 * Memory (byte offsets, laid out by the caller, 8-aligned): state u32[4] (the generator, read and written
 * back), count u32[3·2048], keyA, keyB u64[cols], q f64[cols], x f32[len], out f32[len].
 */

function rotl(x: u32, k: u32): u32 {
  return (x << k) | (x >>> (32 - k));
}

export function magprune(
  state: usize,
  count: usize,
  keyA: usize,
  keyB: usize,
  q: usize,
  x: usize,
  out: usize,
  len: i32,
  cols: i32,
  density: f64,
  epsilon: f64,
  rescale: i32,
): void {
  let s0 = load<u32>(state);
  let s1 = load<u32>(state, 4);
  let s2 = load<u32>(state, 8);
  let s3 = load<u32>(state, 12);
  const pMin = 1 - density - epsilon / 2;
  const n = cols;
  const fn = <f64>cols;
  for (let r0: i32 = 0; r0 < len; r0 += cols) {
    const xr = x + ((<usize>r0) << 2);
    // (complemented magnitude << 32 | index): a stable pass on the magnitude digits moves both in one store
    let key = keyA;
    let keyOut = keyB;
    memory.fill(count, 0, 3 * 2048 * 4);
    for (let j: i32 = 0; j < n; j++) {
      const k: u32 = 0x7fffffff - (load<u32>(xr + ((<usize>j) << 2)) & 0x7fffffff);
      store<u64>(key + ((<usize>j) << 3), ((<u64>k) << 32) | (<u64>j));
      const c0 = count + ((<usize>(k & 0x7ff)) << 2);
      store<u32>(c0, load<u32>(c0) + 1);
      const c1 = count + ((<usize>(2048 + ((k >>> 11) & 0x7ff))) << 2);
      store<u32>(c1, load<u32>(c1) + 1);
      const c2 = count + ((<usize>(4096 + (k >>> 22))) << 2);
      store<u32>(c2, load<u32>(c2) + 1);
    }
    for (let pass: i32 = 0; pass < 3; pass++) {
      const base = count + ((<usize>(pass * 2048)) << 2);
      const shift = <u64>(32 + pass * 11);
      const first = (<u32>(load<u64>(key) >>> shift)) & 0x7ff;
      if (load<u32>(base + ((<usize>first) << 2)) == <u32>n) continue;
      let sum: u32 = 0;
      for (let d: i32 = 0; d < 2048; d++) {
        const p = base + ((<usize>d) << 2);
        const c = load<u32>(p);
        store<u32>(p, sum);
        sum += c;
      }
      for (let j: i32 = 0; j < n; j++) {
        const e = load<u64>(key + ((<usize>j) << 3));
        const p = base + ((<usize>((<u32>(e >>> shift)) & 0x7ff)) << 2);
        const at = load<u32>(p);
        store<u32>(p, at + 1);
        store<u64>(keyOut + ((<usize>at) << 3), e);
      }
      const kt = key;
      key = keyOut;
      keyOut = kt;
    }
    for (let pos: i32 = 0; pos < n; pos++) {
      const j = <u32>load<u64>(key + ((<usize>pos) << 3));
      store<f64>(q + ((<usize>j) << 3), 1 - (pMin + (epsilon * <f64>pos) / fn));
    }
    const outr = out + ((<usize>r0) << 2);
    for (let j: i32 = 0; j < n; j++) {
      const qj = load<f64>(q + ((<usize>j) << 3));
      const v = <f64>load<f32>(xr + ((<usize>j) << 2));
      // xoshiro128** (the JavaScript Rng.nextU32)
      const u = rotl(s1 * 5, 7) * 9;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      let r: f64 = 0;
      if (<f64>u < qj * 4294967296) r = rescale ? v / qj : v;
      store<f32>(outr + ((<usize>j) << 2), <f32>r);
    }
  }
  store<u32>(state, s0);
  store<u32>(state, s1, 4);
  store<u32>(state, s2, 8);
  store<u32>(state, s3, 12);
}
