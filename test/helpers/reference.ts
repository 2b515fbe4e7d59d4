/**
 * Naive dense reference implementations of DESIGN.md's merge semantics, written independently of src/ for
 * tests: plain loops over float64 arrays, sorting instead of radix select, a Jacobi eigen-solver instead of QR.
 */

export type Dense = Float64Array;

/** C = A·B for row-major A (m × k) and B (k × n). */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Dense {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[t * n + j]!;
      c[i * n + j] = s;
    }
  return c;
}

export function transpose(a: ArrayLike<number>, rows: number, cols: number): Dense {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j]!;
  return t;
}

/** s·B·A. */
export function delta(m: {
  a: ArrayLike<number>;
  b: ArrayLike<number>;
  out: number;
  in: number;
  rank: number;
  scaling: number;
}): Dense {
  return matmul(m.b, m.a, m.out, m.rank, m.in).map((v) => v * m.scaling);
}

/** Keep the floor(ρN) largest |x| (ties: lower index first). */
export function trimRef(x: ArrayLike<number>, density: number): Dense {
  const n = x.length;
  const k = Math.floor(density * n);
  const idx = Array.from({ length: n }, (_, i) => i).sort(
    (p, q) => Math.abs(x[q]!) - Math.abs(x[p]!) || p - q,
  );
  const out = new Float64Array(n);
  for (let t = 0; t < k; t++) out[idx[t]!] = x[idx[t]!]!;
  return out;
}

export function electRef(xs: ArrayLike<number>[], method: "total" | "frequency"): Int8Array {
  const n = xs[0]!.length;
  const g = new Int8Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (const x of xs) s += method === "total" ? x[j]! : Math.sign(x[j]!);
    g[j] = s < 0 ? -1 : 1;
  }
  return g;
}

export function disjointRef(xs: ArrayLike<number>[], w: number[], g: Int8Array): Dense {
  const n = g.length;
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let num = 0;
    let cnt = 0;
    xs.forEach((x, i) => {
      if (x[j] !== 0 && Math.sign(x[j]!) === g[j]) {
        num += w[i]! * x[j]!;
        cnt++;
      }
    });
    out[j] = num / Math.max(1, cnt);
  }
  return out;
}

export function weightedSumRef(xs: ArrayLike<number>[], w: number[]): Dense {
  const out = new Float64Array(xs[0]!.length);
  xs.forEach((x, i) => {
    for (let j = 0; j < out.length; j++) out[j]! += w[i]! * x[j]!;
  });
  return out;
}

/**
 * One method on dense task tensors. `dropped` supplies DARE's already-dropped tensors (the random stream is
 * the library's documented PRNG, checked on its own); every other operator is computed here.
 */
export function methodRef(
  name: string,
  xs: ArrayLike<number>[],
  w: number[],
  densities: number[],
  opts: { signMethod?: "total" | "frequency"; lambda?: number; dropped?: ArrayLike<number>[] } = {},
): Dense {
  const sm = opts.signMethod ?? "total";
  let r: Dense;
  switch (name) {
    case "task_arithmetic":
      r = weightedSumRef(xs, w);
      break;
    case "linear": {
      const total = w.reduce((s, v) => s + v, 0);
      r = weightedSumRef(
        xs,
        w.map((v) => v / total),
      );
      break;
    }
    case "magnitude_prune":
      r = weightedSumRef(
        xs.map((x, i) => trimRef(x, densities[i]!)),
        w,
      );
      break;
    case "ties": {
      const t = xs.map((x, i) => trimRef(x, densities[i]!));
      r = disjointRef(t, w, electRef(t, sm));
      break;
    }
    case "dare_linear":
      r = weightedSumRef(opts.dropped!, w);
      break;
    case "dare_ties":
      r = disjointRef(opts.dropped!, w, electRef(opts.dropped!, sm));
      break;
    default:
      throw new Error(`unknown method ${name}`);
  }
  return r.map((v) => v * (opts.lambda ?? 1));
}

/** Cyclic Jacobi eigen-decomposition of a symmetric n × n matrix: values descending, vectors as columns. */
export function jacobiEig(sym: ArrayLike<number>, n: number): { values: Dense; vectors: Dense } {
  const a = Float64Array.from(sym);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y]! - a[x * n + x]!);
  const values = Float64Array.from(order, (i) => a[i * n + i]!);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src]!;
  });
  return { values, vectors };
}

/**
 * KnOTS by its dense definition: U from the SVD of [ΔW_1 | … | ΔW_n] (as eigenvectors of Σ ΔW_i ΔW_iᵀ),
 * x_i = Σ·V_iᵀ = Uᵀ·ΔW_i, singular values below `tol`·σ_max dropped.
 */
export function knotsRef(
  deltas: Dense[],
  out: number,
  inF: number,
  tol = 1e-6,
): { u: Dense; k: number; tasks: Dense[] } {
  const mmT = new Float64Array(out * out);
  for (const d of deltas) {
    const p = matmul(d, transpose(d, out, inF), out, inF, out);
    for (let i = 0; i < p.length; i++) mmT[i]! += p[i]!;
  }
  const { values, vectors } = jacobiEig(mmT, out);
  const smax = Math.sqrt(Math.max(values[0]!, 0));
  let k = 0;
  while (k < out && Math.sqrt(Math.max(values[k]!, 0)) > tol * smax) k++;
  const u = new Float64Array(out * k);
  for (let i = 0; i < out; i++) for (let j = 0; j < k; j++) u[i * k + j] = vectors[i * out + j]!;
  const ut = transpose(u, out, k);
  return { u, k, tasks: deltas.map((d) => matmul(ut, d, k, out, inF)) };
}

export function relErr(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (x[i]! - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-300);
}
