/**
 * The seeded random stream behind every random choice merglot makes (DARE drops, randomized SVD test
 * matrices). It is a fixed, documented algorithm so that results are reproducible across machines,
 * thread counts and releases:
 *
 * - generator: xoshiro128** 1.1 (Blackman & Vigna), 128-bit state in four uint32 words s0..s3;
 * - seeding: a 64-bit seed runs splitmix64 (Steele, Lea & Flood) twice; the first output gives
 *   s0 = low 32 bits, s1 = high 32 bits, the second gives s2 = low, s3 = high;
 * - `seedFrom(...parts)`: FNV-1a 64 over a canonical byte encoding of the parts (see `encodePart`), so a
 *   stream can be keyed by (recipe seed, adapter index, module name) independently of visiting order.
 */
import { MerglotError } from "../errors.js";

const MASK64 = (1n << 64n) - 1n;

/** One splitmix64 step: returns [next state, output]. */
export function splitmix64(state: bigint): [bigint, bigint] {
  const s = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = s;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [s, z ^ (z >> 31n)];
}

function toSeed(seed: bigint | number): bigint {
  if (typeof seed === "number") {
    if (!Number.isSafeInteger(seed)) {
      throw new MerglotError(
        "rng.seed",
        `Random seed ${seed} is not an integer in ±2^53; use an integer seed.`,
      );
    }
    return BigInt.asUintN(64, BigInt(seed));
  }
  return BigInt.asUintN(64, seed);
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** Second Box–Muller value, returned by the next `normal()` call. */
  private spare = 0;
  private hasSpare = false;

  /** `seed` is taken modulo 2^64 (negative integers wrap as two's complement). */
  constructor(seed: bigint | number) {
    const [st, a] = splitmix64(toSeed(seed));
    const [, b] = splitmix64(st);
    this.s0 = Number(a & 0xffffffffn);
    this.s1 = Number(a >> 32n);
    this.s2 = Number(b & 0xffffffffn);
    this.s3 = Number(b >> 32n);
    // xoshiro must not start from the all-zero state (it would stay there).
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator started from explicit state words (not all zero); for tests against reference vectors. */
  static fromState(words: readonly [number, number, number, number]): Rng {
    if (words.every((w) => w >>> 0 === 0))
      throw new RangeError("Rng.fromState: the state must not be all zero");
    const r = new Rng(0);
    [r.s0, r.s1, r.s2, r.s3] = words.map((w) => w | 0);
    r.hasSpare = false;
    return r;
  }

  /** The four state words into `into` (a kernel continues the stream there; see loadState). */
  saveState(into: Uint32Array): void {
    into[0] = this.s0;
    into[1] = this.s1;
    into[2] = this.s2;
    into[3] = this.s3;
  }

  /** Continue from the state words a kernel left in `from` (written by saveState and advanced there). */
  loadState(from: Uint32Array): void {
    this.s0 = from[0]! | 0;
    this.s1 = from[1]! | 0;
    this.s2 = from[2]! | 0;
    this.s3 = from[3]! | 0;
  }

  /** Next uniform uint32 (xoshiro128** output). */
  nextU32(): number {
    const s1 = this.s1;
    const x = Math.imul(s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /**
   * Uniform double in [0, 1) with 53 random bits: the top 27 bits of one output and the top 26 of the
   * next, as (a·2^26 + b)·2^-53.
   */
  nextFloat(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * 67108864 + b) * 1.1102230246251565e-16;
  }

  /**
   * Standard normal deviate by the Box–Muller transform on two `nextFloat()` draws u1, u2:
   * r = sqrt(-2 ln(1 − u1)), values r·cos(2πu2) then r·sin(2πu2) (the second is kept for the next call).
   */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const u1 = 1 - this.nextFloat(); // (0, 1]: log stays finite
    const u2 = this.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u1));
    const th = 2 * Math.PI * u2;
    this.spare = r * Math.sin(th);
    this.hasSpare = true;
    return r * Math.cos(th);
  }

  /** Fills `out` with standard normal deviates, in call order. */
  fillNormal(out: Float64Array): Float64Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
    return out;
  }
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;

/**
 * Canonical bytes of one seed part. Each part is tagged so that ("1") and (1) differ and so that
 * concatenations cannot collide:
 * - string: 's', uint32 LE byte length, UTF-8 bytes;
 * - integer (a bigint, or a number that is a safe integer): 'i', uint32 LE length, decimal ASCII digits
 *   (with '-' when negative), so 7 and 7n encode the same;
 * - other finite number: 'f', 8 bytes of IEEE-754 binary64, little-endian.
 */
export function encodePart(part: string | number | bigint): Uint8Array {
  const enc = new TextEncoder();
  const tagged = (tag: string, body: Uint8Array): Uint8Array => {
    const out = new Uint8Array(5 + body.length);
    out[0] = tag.charCodeAt(0);
    new DataView(out.buffer).setUint32(1, body.length, true);
    out.set(body, 5);
    return out;
  };
  if (typeof part === "string") return tagged("s", enc.encode(part));
  if (typeof part === "bigint") return tagged("i", enc.encode(part.toString(10)));
  if (Number.isSafeInteger(part)) return tagged("i", enc.encode((part === 0 ? 0 : part).toString(10)));
  if (!Number.isFinite(part)) {
    throw new MerglotError("rng.seed", `Seed part ${part} is not a finite number.`);
  }
  const out = new Uint8Array(9);
  out[0] = "f".charCodeAt(0);
  new DataView(out.buffer).setFloat64(1, part, true);
  return out;
}

/** FNV-1a 64 of raw bytes. */
export function fnv1a64(bytes: Uint8Array, h: bigint = FNV_OFFSET): bigint {
  for (let i = 0; i < bytes.length; i++) h = ((h ^ BigInt(bytes[i])) * FNV_PRIME) & MASK64;
  return h;
}

/** A 64-bit seed from an ordered list of parts: FNV-1a 64 over their canonical encodings, concatenated. */
export function seedFrom(...parts: (string | number | bigint)[]): bigint {
  let h = FNV_OFFSET;
  for (const p of parts) h = fnv1a64(encodePart(p), h);
  return h;
}
