/**
 * Exact conversions between float32 and the 16-bit float formats (IEEE half "f16" and bfloat16), plus the
 * bulk decode/encode used when tensors are read from or written to files.
 *
 * Every narrowing conversion rounds to nearest, ties to even, overflows to ±Inf, keeps −0 and subnormals, and
 * never turns a NaN into an infinity (NaNs come out quiet, keeping the sign and the high payload bits).
 * The bulk functions work on raw bit patterns through Uint32Array / Uint16Array views so that NaN payloads
 * survive and the loops stay on V8's fast typed-array paths.
 */

export type FloatDType = "F32" | "F16" | "BF16" | "F64";

const BYTES_PER_ELEMENT: Record<FloatDType, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

// Typed-array views use the host byte order and files are little-endian; every supported Node platform is
// little-endian, so say so loudly rather than silently producing byte-swapped numbers elsewhere.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function assertLittleEndianHost(): void {
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error("merglot's tensor I/O requires a little-endian host");
}

// One shared scratch word to move between a float32 value and its bit pattern.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The float32 bit pattern of `x` after rounding it to float32 (Math.fround semantics). */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** The float32 value with bit pattern `bits`. */
export function f32FromBits(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0];
}

/** float32 bit pattern of the half with bit pattern `h` (exact; NaNs are made quiet, payload kept). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) {
    // Inf keeps a zero mantissa; NaN gets the quiet bit so a signalling NaN never reads back as Inf.
    return (sign | 0x7f800000 | (mant === 0 ? 0 : 0x400000 | (mant << 13))) >>> 0;
  }
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // rebias 15 → 127
  if (mant === 0) return sign >>> 0; // ±0
  // Subnormal half: mant · 2^-24. Normalise: shift the leading one up to bit 10.
  let e = 113; // biased float32 exponent of 2^-14, the smallest normal half
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** Half bit pattern nearest (ties to even) to the float32 with bit pattern `b`. */
function f32BitsToF16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) {
    // Inf stays Inf; NaN keeps its top payload bits and is forced quiet (so it can never collapse to Inf).
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127; // unbiased exponent
  if (e > 15) return sign | 0x7c00; // ≥ 2^16: beyond every half, overflow
  if (e >= -14) {
    // Normal half range: drop 13 mantissa bits with round-to-nearest-even. A carry out of the mantissa
    // correctly bumps the exponent (and 65520 and above becomes 0x7c00 = Inf).
    let h = ((e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
    return sign | h;
  }
  // Below 2^-14 the result is a half subnormal (units of 2^-24) or zero. Float32 subnormals (exp 0) are
  // below 2^-126 and round to zero like anything under half a unit.
  if (e < -25) return sign;
  const sig = mant | 0x800000; // 24-bit significand, value = sig · 2^(e-23)
  const shift = -e - 1; // 14..24: value in units of 2^-24 is sig / 2^shift
  let h = sig >>> shift;
  const rest = sig & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1) === 1)) h++;
  return sign | h;
}

/** bfloat16 bit pattern nearest (ties to even) to the float32 with bit pattern `b`. */
function f32BitsToBf16Bits(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) {
    // NaN: keep sign and top payload bits, force the quiet bit (bit 6 of bf16) so it never becomes Inf.
    return (b >>> 16) | 0x0040;
  }
  // Adding 0x7fff plus the lowest kept bit rounds half to even; a carry may bump the exponent, which is
  // exactly right, including overflow of the largest finite values to Inf.
  return (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
}

/** float32 value of the half with bit pattern `bits` (exact). */
export function f16BitsToF32(bits: number): number {
  return f32FromBits(f16BitsToF32Bits(bits & 0xffff));
}

/** Half bit pattern of `x` (first rounded to float32), round to nearest even. */
export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32Bits(x));
}

/** float32 value of the bfloat16 with bit pattern `bits` (exact: bfloat16 is the top half of a float32). */
export function bf16BitsToF32(bits: number): number {
  return f32FromBits(((bits & 0xffff) << 16) >>> 0);
}

/** bfloat16 bit pattern of `x` (first rounded to float32), round to nearest even. */
export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32Bits(x));
}

// 65536-entry half → float32-bits table, built on first use (256 KiB) so f16 decode is one load per element.
let f16Table: Uint32Array | undefined;
function f16DecodeTable(): Uint32Array {
  if (!f16Table) {
    const t = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32Bits(h);
    f16Table = t;
  }
  return f16Table;
}

/** `bytes` itself when its offset suits `align`-byte views, else an aligned copy. */
function aligned(bytes: Uint8Array, align: number): Uint8Array {
  return bytes.byteOffset % align === 0 ? bytes : bytes.slice();
}

function elementCount(bytes: Uint8Array, dtype: FloatDType): number {
  const size = BYTES_PER_ELEMENT[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  return bytes.byteLength / size;
}

// The loops live in small single-purpose functions so V8 sees one typed-array shape per loop and keeps
// them on its fast path.

function decodeF16(in16: Uint16Array, out32: Uint32Array): void {
  const table = f16DecodeTable();
  const n = in16.length;
  for (let i = 0; i < n; i++) out32[i] = table[in16[i]];
}

/** bfloat16 is the top half of a float32: a shift. Two elements per 32-bit load where alignment allows. */
function decodeBf16(bytes: Uint8Array, out32: Uint32Array): void {
  const n = out32.length;
  const src = aligned(bytes, 2);
  if (src.byteOffset % 4 !== 0) {
    const in16 = new Uint16Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) out32[i] = in16[i] << 16;
    return;
  }
  const pairs = n >>> 1;
  const in32 = new Uint32Array(src.buffer, src.byteOffset, pairs);
  for (let i = 0, j = 0; i < pairs; i++, j += 2) {
    const two = in32[i]; // little-endian: element j in the low half, j + 1 in the high half
    out32[j] = two << 16;
    out32[j + 1] = two & 0xffff0000;
  }
  if (n & 1) out32[n - 1] = (src[2 * n - 2] | (src[2 * n - 1] << 8)) << 16;
}

/**
 * Decode little-endian `dtype` elements to float32. `bytes` may start at any offset (it is copied once if a
 * view would be misaligned). F64 values are rounded to nearest float32. The result goes into `out` when given
 * (it must hold exactly the element count; reusing one buffer avoids paying for fresh pages on every call),
 * else into a new Float32Array.
 */
export function decodeToFloat32(bytes: Uint8Array, dtype: FloatDType, out?: Float32Array): Float32Array {
  assertLittleEndianHost();
  const n = elementCount(bytes, dtype);
  if (out === undefined) out = new Float32Array(n);
  else if (out.length !== n)
    throw new RangeError(`output holds ${out.length} floats, the input has ${n} ${dtype}`);
  switch (dtype) {
    case "F32": {
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
      return out;
    }
    case "F16": {
      const src = aligned(bytes, 2);
      decodeF16(
        new Uint16Array(src.buffer, src.byteOffset, n),
        new Uint32Array(out.buffer, out.byteOffset, n),
      );
      return out;
    }
    case "BF16": {
      decodeBf16(bytes, new Uint32Array(out.buffer, out.byteOffset, n));
      return out;
    }
    case "F64": {
      const src = aligned(bytes, 8);
      out.set(new Float64Array(src.buffer, src.byteOffset, n)); // rounds to nearest even, overflow → ±Inf
      return out;
    }
    default:
      throw new RangeError(`cannot decode dtype ${String(dtype)} to float32`);
  }
}

/**
 * Encode float32 values as little-endian `dtype` elements (round to nearest even for F16/BF16). The bytes go
 * into `out` when given (exactly the encoded size, aligned for the element type), else into a new array.
 */
export function encodeFromFloat32(data: Float32Array, dtype: FloatDType, out?: Uint8Array): Uint8Array {
  assertLittleEndianHost();
  const n = data.length;
  const size = BYTES_PER_ELEMENT[dtype];
  if (size === undefined) throw new RangeError(`cannot encode float32 as dtype ${String(dtype)}`);
  if (out === undefined) out = new Uint8Array(n * size);
  else if (out.byteLength !== n * size || out.byteOffset % size !== 0) {
    throw new RangeError(`output must be ${n * size} bytes aligned to ${size} for ${n} ${dtype} values`);
  }
  const in32 = new Uint32Array(data.buffer, data.byteOffset, n);
  switch (dtype) {
    case "F32":
      out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      break;
    case "F16":
      encodeF16(in32, new Uint16Array(out.buffer, out.byteOffset, n));
      break;
    case "BF16":
      encodeBf16(in32, new Uint16Array(out.buffer, out.byteOffset, n));
      break;
    case "F64":
      new Float64Array(out.buffer, out.byteOffset, n).set(data);
      break;
  }
  return out;
}

function encodeF16(in32: Uint32Array, out16: Uint16Array): void {
  const n = in32.length;
  for (let i = 0; i < n; i++) out16[i] = f32BitsToF16Bits(in32[i]);
}

function encodeBf16(in32: Uint32Array, out16: Uint16Array): void {
  const n = in32.length;
  for (let i = 0; i < n; i++) out16[i] = f32BitsToBf16Bits(in32[i]);
}
