import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  bf16BitsToF32,
  decodeToFloat32,
  encodeFromFloat32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from "../../src/tensor/dtypes.js";

// ---- independent references, written from the IEEE 754 / bfloat16 definitions -------------------------

const dv = new DataView(new ArrayBuffer(8));
function bitsOfF32(x: number): number {
  dv.setFloat32(0, x, true);
  return dv.getUint32(0, true);
}
function f32OfBits(b: number): number {
  dv.setUint32(0, b >>> 0, true);
  return dv.getFloat32(0, true);
}

/** Half value from the definition: (-1)^s · 2^(e-15) · 1.m, subnormals 2^-14 · 0.m. */
function refHalf(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 31) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

/** bfloat16 value from the definition: (-1)^s · 2^(e-127) · 1.m (7 mantissa bits), subnormals 2^-126 · 0.m. */
function refBf16(b: number): number {
  const s = b & 0x8000 ? -1 : 1;
  const e = (b >> 7) & 0xff;
  const m = b & 0x7f;
  if (e === 255) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -133;
  return s * 2 ** (e - 127) * (1 + m / 128);
}

const isHalfNaN = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isBf16NaN = (b: number) => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;

/**
 * Round-to-nearest-even by search: positive halves are ordered like their bit patterns, so find the two
 * representable neighbours of |x| and pick the nearer, the even one on a tie. 0x7c00 plays 2^16 (the value
 * the next exponent would have) so that the overflow threshold 65520 falls out of the same rule.
 */
const halfMagnitudes = Array.from({ length: 0x7c01 }, (_, h) => (h === 0x7c00 ? 65536 : refHalf(h)));
function refF32ToHalf(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65536) return sign | 0x7c00;
  let lo = 0;
  let hi = 0x7c00; // halfMagnitudes[lo] <= a < halfMagnitudes[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (halfMagnitudes[mid] <= a) lo = mid;
    else hi = mid;
  }
  const dLo = a - halfMagnitudes[lo];
  const dHi = halfMagnitudes[hi] - a;
  if (dLo < dHi || (dLo === dHi && (lo & 1) === 0)) return sign | lo;
  return sign | hi;
}

/** Same rule for bfloat16: neighbours are the truncation and the next pattern up (0x7f80 plays 2^128). */
function refF32ToBf16(x: number): number {
  const b = bitsOfF32(x);
  const sign = (b >>> 16) & 0x8000;
  const lo = (b & 0x7fffffff) >>> 16;
  const hi = lo + 1;
  const a = Math.abs(x);
  const vLo = refBf16(lo);
  const vHi = hi === 0x7f80 ? 2 ** 128 : refBf16(hi);
  if (a === vLo) return sign | lo;
  const dLo = a - vLo;
  const dHi = vHi - a;
  if (dLo < dHi || (dLo === dHi && (lo & 1) === 0)) return sign | lo;
  return sign | hi;
}

function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const ALL16 = Uint16Array.from({ length: 65536 }, (_, i) => i);
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

// ---- f16 ----------------------------------------------------------------------------------------------

describe("f16", () => {
  test("every bit pattern decodes to its defined value and re-encodes to itself", () => {
    for (let h = 0; h < 65536; h++) {
      const x = f16BitsToF32(h);
      if (isHalfNaN(h)) {
        assert.ok(Number.isNaN(x), `0x${h.toString(16)} should decode to NaN`);
        assert.ok(isHalfNaN(f32ToF16Bits(x)), `NaN from 0x${h.toString(16)} must stay NaN`);
        continue;
      }
      assert.ok(Object.is(x, refHalf(h)), `decode 0x${h.toString(16)}: ${x} vs ${refHalf(h)}`);
      assert.equal(f32ToF16Bits(x), h, `round trip 0x${h.toString(16)}`);
    }
  });

  test("bulk decode/encode over all 65,536 patterns matches the definition, NaNs stay quiet NaNs", () => {
    const decoded = decodeToFloat32(bytesOf(ALL16), "F16");
    const bits = new Uint32Array(decoded.buffer);
    const back = new Uint16Array(encodeFromFloat32(decoded, "F16").buffer);
    for (let h = 0; h < 65536; h++) {
      if (isHalfNaN(h)) {
        // f32 NaN, sign and payload kept, quiet bit set
        assert.equal(bits[h] & 0x7f800000, 0x7f800000);
        assert.equal(bits[h] >>> 31, h >>> 15);
        assert.equal(bits[h] & 0x400000, 0x400000, "decoded NaN is quiet");
        assert.equal((bits[h] >>> 13) & 0x1ff, h & 0x1ff, "payload kept");
        assert.equal(back[h], h | 0x200, "re-encoded NaN keeps sign and payload, comes back quiet");
      } else {
        assert.equal(bits[h], bitsOfF32(refHalf(h)), `bulk decode 0x${h.toString(16)}`);
        assert.equal(back[h], h, `bulk round trip 0x${h.toString(16)}`);
      }
    }
  });

  test("f32 → f16 rounds to nearest even at every midpoint between neighbouring halves, and just off it", () => {
    for (let h = 0; h < 0x7c00; h++) {
      const lo = refHalf(h);
      const hi = h === 0x7bff ? 65536 : refHalf(h + 1);
      const mid = (lo + hi) / 2; // exactly representable in float32 (12 significant bits)
      const midBits = bitsOfF32(mid);
      assert.equal(f32OfBits(midBits), mid);
      for (const b of [midBits - 1, midBits, midBits + 1]) {
        const x = f32OfBits(b);
        assert.equal(f32ToF16Bits(x), refF32ToHalf(x), `x = ${x}`);
        assert.equal(f32ToF16Bits(-x), refF32ToHalf(-x), `x = ${-x}`);
      }
    }
  });

  test("f32 → f16 matches the reference on 200,000 random float32 values (scalar and bulk)", () => {
    const rnd = xorshift32(12345);
    const n = 200_000;
    const xs = new Float32Array(n);
    const xb = new Uint32Array(xs.buffer);
    for (let i = 0; i < n; i++) {
      // Half the draws anywhere in float32, half concentrated on exponents near the half range.
      const r = rnd();
      xb[i] = i % 2 === 0 ? r : (r & 0x807fffff) | ((100 + (rnd() % 45)) << 23);
      if (Number.isNaN(xs[i])) xb[i] = 0x3f800000;
    }
    const bulk = new Uint16Array(encodeFromFloat32(xs, "F16").buffer);
    for (let i = 0; i < n; i++) {
      const want = refF32ToHalf(xs[i]);
      assert.equal(f32ToF16Bits(xs[i]), want, `scalar x = ${xs[i]}`);
      assert.equal(bulk[i], want, `bulk x = ${xs[i]}`);
    }
  });

  test("hand-derived cases: ties, subnormals, overflow threshold, signed zero, NaN", () => {
    assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00, "tie between 1 and 1+2^-10 goes to even 1");
    assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02, "tie between 1+2^-10 and 1+2^-9 goes to even");
    assert.equal(f32ToF16Bits(2 ** -24), 0x0001, "smallest subnormal");
    assert.equal(f32ToF16Bits(2 ** -25), 0x0000, "half the smallest subnormal ties to even zero");
    assert.equal(f32ToF16Bits(1.5 * 2 ** -25), 0x0001);
    assert.equal(f32ToF16Bits(3 * 2 ** -25), 0x0002, "tie between 1 and 2 units goes to 2");
    assert.equal(
      f32ToF16Bits(2 ** -14 - 2 ** -25),
      0x0400,
      "largest subnormal + half unit rounds up to min normal",
    );
    assert.equal(f32ToF16Bits(2 ** -149), 0x0000, "float32 subnormal underflows to zero");
    assert.equal(f32ToF16Bits(65504), 0x7bff, "largest finite half");
    assert.equal(f32ToF16Bits(65519.99609375), 0x7bff, "just below the threshold stays finite");
    assert.equal(f32ToF16Bits(65520), 0x7c00, "65520 overflows to Inf");
    assert.equal(f32ToF16Bits(-65520), 0xfc00);
    assert.equal(f32ToF16Bits(1e10), 0x7c00);
    assert.equal(f32ToF16Bits(Infinity), 0x7c00);
    assert.equal(f32ToF16Bits(-Infinity), 0xfc00);
    assert.equal(f32ToF16Bits(-0), 0x8000);
    assert.equal(f32ToF16Bits(0), 0x0000);
    assert.ok(Object.is(f16BitsToF32(0x8000), -0));
    assert.equal(f16BitsToF32(0x0001), 2 ** -24);
    assert.equal(f16BitsToF32(0x7bff), 65504);
    assert.ok(isHalfNaN(f32ToF16Bits(NaN)));
    // a float32 NaN whose payload lives only in bits the half drops must not become Inf
    const lowPayloadNaN = new Float32Array(new Uint32Array([0x7f800001]).buffer);
    const h = new Uint16Array(encodeFromFloat32(lowPayloadNaN, "F16").buffer)[0];
    assert.ok(isHalfNaN(h), `0x7f800001 encoded to 0x${h.toString(16)}`);
  });
});

// ---- bf16 ---------------------------------------------------------------------------------------------

describe("bf16", () => {
  test("every bit pattern decodes to its defined value and re-encodes to itself (scalar and bulk)", () => {
    const decoded = decodeToFloat32(bytesOf(ALL16), "BF16");
    const bits = new Uint32Array(decoded.buffer);
    const back = new Uint16Array(encodeFromFloat32(decoded, "BF16").buffer);
    for (let b = 0; b < 65536; b++) {
      const x = bf16BitsToF32(b);
      if (isBf16NaN(b)) {
        assert.ok(Number.isNaN(x));
        assert.ok(isBf16NaN(f32ToBf16Bits(x)));
        assert.equal(bits[b], (b << 16) >>> 0, "bulk decode keeps the NaN's bits");
        assert.equal(back[b], b | 0x40, "re-encoded NaN keeps sign and payload, comes back quiet");
        continue;
      }
      assert.ok(Object.is(x, refBf16(b)), `decode 0x${b.toString(16)}`);
      assert.equal(f32ToBf16Bits(x), b, `round trip 0x${b.toString(16)}`);
      assert.equal(bits[b], bitsOfF32(refBf16(b)), `bulk decode 0x${b.toString(16)}`);
      assert.equal(back[b], b, `bulk round trip 0x${b.toString(16)}`);
    }
  });

  test("f32 → bf16 rounds to nearest even at every midpoint and just off it", () => {
    for (let lo = 0; lo < 0x7f80; lo++) {
      const midBits = ((lo << 16) | 0x8000) >>> 0;
      for (const b of [midBits - 1, midBits, midBits + 1]) {
        const x = f32OfBits(b);
        assert.equal(f32ToBf16Bits(x), refF32ToBf16(x), `x bits 0x${b.toString(16)}`);
        assert.equal(f32ToBf16Bits(-x), refF32ToBf16(-x));
      }
    }
  });

  test("f32 → bf16 matches the reference on 200,000 random float32 values (scalar and bulk)", () => {
    const rnd = xorshift32(777);
    const n = 200_000;
    const xs = new Float32Array(n);
    const xb = new Uint32Array(xs.buffer);
    for (let i = 0; i < n; i++) {
      xb[i] = rnd();
      if (Number.isNaN(xs[i])) xb[i] = 0x40490fdb;
    }
    const bulk = new Uint16Array(encodeFromFloat32(xs, "BF16").buffer);
    for (let i = 0; i < n; i++) {
      const want = refF32ToBf16(xs[i]);
      assert.equal(f32ToBf16Bits(xs[i]), want);
      assert.equal(bulk[i], want);
    }
  });

  test("hand-derived cases: ties, overflow, signed zero, NaN", () => {
    assert.equal(f32ToBf16Bits(1 + 2 ** -8), 0x3f80, "tie between 1 and 1+2^-7 goes to even 1");
    assert.equal(f32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82, "tie goes up to the even neighbour");
    assert.equal(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -23), 0x3f81, "just above the tie rounds up");
    assert.equal(f32ToBf16Bits(f32OfBits(0x7f7fffff)), 0x7f80, "largest float32 overflows to Inf");
    assert.equal(f32ToBf16Bits(f32OfBits(0x7f7f7fff)), 0x7f7f, "below the threshold stays finite");
    assert.equal(f32ToBf16Bits(-0), 0x8000);
    assert.equal(f32ToBf16Bits(-Infinity), 0xff80);
    assert.equal(
      f32ToBf16Bits(2 ** -149),
      0x0000,
      "smallest float32 subnormal is far below the first tie: zero",
    );
    assert.equal(f32ToBf16Bits(f32OfBits(0x00008001)), 0x0001, "subnormal above the tie rounds up");
    // a float32 NaN with payload only in the dropped bits must stay NaN
    const nan = new Float32Array(new Uint32Array([0xff800001]).buffer);
    assert.equal(new Uint16Array(encodeFromFloat32(nan, "BF16").buffer)[0], 0xffc0);
  });
});

// ---- bulk functions -----------------------------------------------------------------------------------

describe("decodeToFloat32 / encodeFromFloat32", () => {
  const values = Float32Array.from([0, -0, 1, -2.5, 3.140625, 65504, -1e-3, 1e30, -Infinity, 7e-45]);

  test("F32 and F64 round trip float32 values exactly", () => {
    for (const dtype of ["F32", "F64"] as const) {
      const back = decodeToFloat32(encodeFromFloat32(values, dtype), dtype);
      assert.deepEqual(new Uint32Array(back.buffer), new Uint32Array(values.buffer), dtype);
    }
  });

  test("F16 and BF16 round trip values they can represent", () => {
    const exact = Float32Array.from([0, -0, 1, -2.5, 3.140625, 0.5, -1024, Infinity]);
    for (const dtype of ["F16", "BF16"] as const) {
      const back = decodeToFloat32(encodeFromFloat32(exact, dtype), dtype);
      assert.deepEqual(new Uint32Array(back.buffer), new Uint32Array(exact.buffer), dtype);
    }
  });

  test("F64 decodes with float32 round-to-nearest-even (Math.fround is the reference)", () => {
    const xs = [1 + 2 ** -24, 1 + 3 * 2 ** -24, 1 + 2 ** -24 + 2 ** -50, 0.1, -1e39, 1e-50, -0];
    const f64 = new Float64Array(xs);
    const got = decodeToFloat32(bytesOf(f64), "F64");
    xs.forEach((x, i) => assert.ok(Object.is(got[i], Math.fround(x)), `x = ${x}`));
    assert.ok(Number.isNaN(decodeToFloat32(bytesOf(new Float64Array([NaN])), "F64")[0]));
  });

  test("little-endian layout and unaligned input", () => {
    // 1.0 as F16 is 0x3c00, as BF16 0x3f80, as F32 0x3f800000; -2 as F64 is 0xc000000000000000.
    const cases = [
      { dtype: "F16" as const, bytes: [0x00, 0x3c, 0x00, 0xc0], want: [1, -2] },
      { dtype: "BF16" as const, bytes: [0x80, 0x3f, 0x00, 0xc0], want: [1, -2] },
      { dtype: "F32" as const, bytes: [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0], want: [1, -2] },
      {
        dtype: "F64" as const,
        bytes: [0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0xc0],
        want: [1, -2],
      },
    ];
    for (const { dtype, bytes, want } of cases) {
      for (const shift of [0, 1, 2, 3]) {
        const buf = new Uint8Array(bytes.length + shift);
        buf.set(bytes, shift);
        const view = buf.subarray(shift);
        assert.deepEqual(Array.from(decodeToFloat32(view, dtype)), want, `${dtype} at offset ${shift}`);
      }
      assert.deepEqual(
        Array.from(encodeFromFloat32(Float32Array.from(want), dtype)),
        bytes,
        `encode ${dtype}`,
      );
    }
  });

  test("encoding a subarray uses only its own elements", () => {
    const whole = Float32Array.from([9, 1, -2, 9]);
    const part = whole.subarray(1, 3);
    for (const dtype of ["F32", "F16", "BF16", "F64"] as const) {
      assert.deepEqual(Array.from(decodeToFloat32(encodeFromFloat32(part, dtype), dtype)), [1, -2], dtype);
    }
  });

  test("decoding and encoding into caller-provided buffers, including views at an offset", () => {
    const values = [1, -2, 0.5, 3];
    for (const dtype of ["F32", "F16", "BF16", "F64"] as const) {
      const size = { F32: 4, F16: 2, BF16: 2, F64: 8 }[dtype];
      const encodedBacking = new Uint8Array(8 + 4 * size).fill(0xee);
      const encodeTarget = encodedBacking.subarray(8, 8 + 4 * size);
      const enc = encodeFromFloat32(Float32Array.from(values), dtype, encodeTarget);
      assert.equal(enc, encodeTarget, "returns the buffer it was given");
      assert.deepEqual(
        Array.from(encodedBacking.subarray(0, 8)),
        new Array(8).fill(0xee),
        "writes nowhere else",
      );
      assert.deepEqual(
        Array.from(enc),
        Array.from(encodeFromFloat32(Float32Array.from(values), dtype)),
        dtype,
      );

      const backing = new Float32Array(7).fill(99);
      const target = backing.subarray(2, 6);
      assert.equal(decodeToFloat32(enc, dtype, target), target);
      assert.deepEqual(Array.from(backing), [99, 99, ...values, 99], dtype);
      assert.throws(() => decodeToFloat32(enc, dtype, new Float32Array(3)), RangeError);
      assert.throws(
        () => encodeFromFloat32(Float32Array.from(values), dtype, new Uint8Array(4 * size + 1)),
        RangeError,
      );
    }
  });

  test("a byte count that is not a whole number of elements is refused", () => {
    assert.throws(() => decodeToFloat32(new Uint8Array(3), "F16"), RangeError);
    assert.throws(() => decodeToFloat32(new Uint8Array(6), "F32"), RangeError);
  });
});
