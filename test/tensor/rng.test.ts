import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MerglotError } from "../../src/errors.js";
import { Rng, fnv1a64, seedFrom, splitmix64 } from "../../src/tensor/rng.js";

const M64 = (1n << 64n) - 1n;
const M32 = 0xffffffffn;

/** splitmix64 written from its definition (Steele, Lea & Flood 2014). */
function refSplitmix(state: bigint): [bigint, bigint] {
  const s = (state + 0x9e3779b97f4a7c15n) & M64;
  let z = s;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return [s, z ^ (z >> 31n)];
}

/** xoshiro128** 1.1 from its definition (Blackman & Vigna), on BigInts, seeded as documented in rng.ts. */
function refXoshiro(seed: bigint, count: number): number[] {
  const [st, a] = refSplitmix(seed);
  const [, b] = refSplitmix(st);
  const s = [a & M32, a >> 32n, b & M32, b >> 32n];
  const rotl = (x: bigint, k: bigint): bigint => ((x << k) | (x >> (32n - k))) & M32;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(Number((rotl((s[1] * 5n) & M32, 7n) * 9n) & M32));
    const t = (s[1] << 9n) & M32;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11n);
  }
  return out;
}

function refFnv(bytes: number[]): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & M64;
  return h;
}

describe("Rng", () => {
  test("splitmix64 matches the published first outputs for seed 0", () => {
    let s = 0n;
    const outs: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      const [next, z] = splitmix64(s);
      outs.push(z);
      s = next;
    }
    assert.deepEqual(outs, [0xe220a8397b1dcdafn, 0x6e789e6aa1b965f4n, 0x06c45d188009454fn]);
  });

  test("xoshiro128** from state (1, 2, 3, 4) gives the reference C implementation's first outputs", () => {
    const r = Rng.fromState([1, 2, 3, 4]);
    assert.deepEqual([r.nextU32(), r.nextU32(), r.nextU32(), r.nextU32()], [11520, 0, 5927040, 70819200]);
  });

  test("fixed seeds give the xoshiro128** stream computed from the definition", () => {
    for (const seed of [0n, 1n, 42n, 0xdeadbeefcafebaben, (1n << 64n) - 1n]) {
      const r = new Rng(seed);
      const got = Array.from({ length: 20 }, () => r.nextU32());
      assert.deepEqual(got, refXoshiro(seed, 20), `seed ${seed}`);
    }
    // Numbers are taken modulo 2^64 like bigints: −1 and 2^64 − 1 are the same seed.
    assert.equal(new Rng(-1).nextU32(), new Rng((1n << 64n) - 1n).nextU32());
    assert.equal(new Rng(7).nextU32(), new Rng(7n).nextU32());
  });

  test("nextFloat is (a·2^26 + b)·2^-53 of two outputs and lies in [0, 1)", () => {
    const r = new Rng(5);
    const raw = refXoshiro(5n, 4);
    assert.equal(r.nextFloat(), ((raw[0] >>> 5) * 2 ** 26 + (raw[1] >>> 6)) / 2 ** 53);
    assert.equal(r.nextFloat(), ((raw[2] >>> 5) * 2 ** 26 + (raw[3] >>> 6)) / 2 ** 53);
    let lo = 1;
    let hi = 0;
    for (let i = 0; i < 10000; i++) {
      const x = r.nextFloat();
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    assert.ok(lo >= 0 && hi < 1 && lo < 0.001 && hi > 0.999);
  });

  test("uniformity sanity: χ² over 16 bins of the top bits, 160 000 draws", () => {
    const r = new Rng(2024);
    const bins = new Array(16).fill(0);
    const N = 160000;
    for (let i = 0; i < N; i++) bins[r.nextU32() >>> 28]++;
    const expected = N / 16;
    const chi2 = bins.reduce((s, b) => s + (b - expected) ** 2 / expected, 0);
    assert.ok(chi2 < 37.7, `χ² = ${chi2} (15 dof, p = 0.001 critical value 37.7)`);
  });

  test("normal(): Box–Muller pairs, mean ≈ 0 and variance ≈ 1", () => {
    const r = new Rng(9);
    const raw = refXoshiro(9n, 4);
    const u1 = 1 - ((raw[0] >>> 5) * 2 ** 26 + (raw[1] >>> 6)) / 2 ** 53;
    const u2 = ((raw[2] >>> 5) * 2 ** 26 + (raw[3] >>> 6)) / 2 ** 53;
    const rad = Math.sqrt(-2 * Math.log(u1));
    assert.equal(r.normal(), rad * Math.cos(2 * Math.PI * u2));
    assert.equal(r.normal(), rad * Math.sin(2 * Math.PI * u2));
    const N = 40000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < N; i++) {
      const x = r.normal();
      s += x;
      s2 += x * x;
    }
    assert.ok(Math.abs(s / N) < 0.02);
    assert.ok(Math.abs(s2 / N - 1) < 0.03);
  });

  test("a non-integer seed is a MerglotError", () => {
    assert.throws(() => new Rng(1.5), MerglotError);
  });
});

describe("seedFrom", () => {
  test("FNV-1a 64 matches the published test vectors", () => {
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
    assert.equal(fnv1a64(enc("")), 0xcbf29ce484222325n);
    assert.equal(fnv1a64(enc("a")), 0xaf63dc4c8601ec8cn);
    assert.equal(fnv1a64(enc("foobar")), 0x85944171f73967e8n);
  });

  test("hashes the tagged canonical encoding of its parts", () => {
    const s = "model.layers.0.self_attn.q_proj";
    const ascii = (x: string): number[] => x.split("").map((c) => c.charCodeAt(0));
    // tag, uint32 LE length, bytes: 'i' "7", 'i' "2", 's' <module name>
    const bytes = [...ascii("i"), 1, 0, 0, 0, ...ascii("7")];
    bytes.push(...ascii("i"), 1, 0, 0, 0, ...ascii("2"));
    bytes.push(...ascii("s"), s.length, 0, 0, 0, ...ascii(s));
    assert.equal(seedFrom(7, 2n, s), refFnv(bytes));
    const f = new Uint8Array(9);
    f[0] = 0x66;
    new DataView(f.buffer).setFloat64(1, 0.5, true);
    assert.equal(seedFrom(0.5), refFnv(Array.from(f)));
  });

  test("distinguishes types and boundaries; integers as numbers and bigints agree", () => {
    assert.notEqual(seedFrom("1"), seedFrom(1));
    assert.notEqual(seedFrom("ab", "c"), seedFrom("a", "bc"));
    assert.equal(seedFrom(3, "x"), seedFrom(3n, "x"));
    assert.notEqual(seedFrom(0, 1, "m"), seedFrom(0, 2, "m"));
    assert.throws(() => seedFrom(Number.NaN), MerglotError);
  });
});
