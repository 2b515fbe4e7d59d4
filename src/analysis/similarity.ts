/**
 * Language-vector similarity: the cosine between two adapters' deltas taken as one long vector over the
 * modules they share (the study's "language vector"), computed module by module from the factors.
 */
import { LoraAdapter, type LoraModule } from "../formats/peft.js";
import { deltaInner, type Factors } from "./delta-norm.js";

function factorsOf(ad: LoraAdapter, name: string): Factors | null {
  const m = ad.get(name);
  if (!m) return null;
  return {
    a: ad.readA(m),
    b: ad.readB(m),
    rank: m.rank,
    in: m.inFeatures,
    out: m.outFeatures,
    scaling: m.scaling,
  };
}

/**
 * Pairwise cosine similarities of the adapters' language vectors (n × n, row-major) and their norms.
 * `modules` restricts the vectors to some modules (e.g. one module kind: `(m) => m.kind === "q_proj"`).
 */
export function languageVectorSimilarity(
  paths: string[],
  opts: { modules?: (m: LoraModule) => boolean } = {},
): {
  names: string[];
  cosine: Float64Array;
  norms: Float64Array;
} {
  const adapters = paths.map((p) => LoraAdapter.open(p));
  try {
    const n = adapters.length;
    const dots = new Float64Array(n * n);
    const keep = opts.modules ?? (() => true);
    const modules = new Set(adapters.flatMap((a) => a.modules.filter(keep).map((m) => m.name)));
    for (const name of modules) {
      const fs = adapters.map((a) => factorsOf(a, name));
      for (let i = 0; i < n; i++) {
        for (let j = i; j < n; j++) {
          const x = fs[i];
          const y = fs[j];
          if (!x || !y) continue;
          const d = deltaInner(x, y);
          dots[i * n + j]! += d;
          if (i !== j) dots[j * n + i]! += d;
        }
      }
    }
    const norms = Float64Array.from({ length: n }, (_, i) => Math.sqrt(dots[i * n + i]!));
    const cosine = dots.map((d, k) => {
      const den = norms[Math.floor(k / n)]! * norms[k % n]!;
      return den > 0 ? d / den : 0;
    });
    return { names: paths, cosine, norms };
  } finally {
    for (const a of adapters) a.close();
  }
}
