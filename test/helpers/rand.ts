/** Test-only seeded randomness (mulberry32): independent of the library's own PRNG. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws via Box–Muller. */
export function randn(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  }
  return out;
}

/**
 * n values that stress magnitude orderings: a repeated magnitude with both signs (20%), zeros of both signs (5%),
 * the rest uniform in ±½ scaled by 2^[−40, 40).
 */
export function magnitudeMix(rand: () => number, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rand();
    if (u < 0.2) out[i] = u < 0.1 ? 0.5 : -0.5;
    else if (u < 0.25) out[i] = u < 0.225 ? 0 : -0;
    else out[i] = (rand() - 0.5) * 2 ** (rand() * 80 - 40);
  }
  return out;
}
