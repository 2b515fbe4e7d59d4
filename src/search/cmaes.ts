/**
 * Black-box optimizers behind one ask/tell interface: CMA-ES, random search and grid search. All minimise;
 * all are deterministic for a seed (src/tensor/rng.ts), so that a search can be resumed by replaying its
 * logged `tell`s: the same seed and the same told values give the same next `ask`.
 *
 * CMA-ES follows N. Hansen, "The CMA Evolution Strategy: A Tutorial" (arXiv:1604.00772), Table 1 defaults,
 * with the positive recombination weights only (w_i = 0 for i > μ, the original non-active CMA-ES the
 * tutorial starts from):
 *   λ = 4 + ⌊3 ln n⌋, μ = ⌊λ/2⌋, w'_i = ln((λ+1)/2) − ln i, w_i = w'_i / Σ_{j≤μ} w'_j, μ_eff = 1 / Σ w_i²,
 *   c_σ = (μ_eff + 2)/(n + μ_eff + 5), d_σ = 1 + 2 max(0, √((μ_eff − 1)/(n + 1)) − 1) + c_σ,
 *   c_c = (4 + μ_eff/n)/(n + 4 + 2μ_eff/n), c_1 = 2/((n + 1.3)² + μ_eff),
 *   c_μ = min(1 − c_1, 2(μ_eff − 2 + 1/μ_eff)/((n + 2)² + μ_eff)), c_m = 1,
 *   E‖N(0, I)‖ ≈ √n (1 − 1/(4n) + 1/(21n²)).
 * Each generation: y_k = B D z_k, x_k = m + σ y_k (z_k ~ N(0, I)); ⟨y⟩_w = Σ_{i≤μ} w_i y_{i:λ};
 * m ← m + c_m σ ⟨y⟩_w; p_σ ← (1 − c_σ) p_σ + √(c_σ(2 − c_σ) μ_eff) C^{-1/2} ⟨y⟩_w;
 * h_σ = [‖p_σ‖ / √(1 − (1 − c_σ)^{2(g+1)}) < (1.4 + 2/(n + 1)) E‖N(0, I)‖];
 * p_c ← (1 − c_c) p_c + h_σ √(c_c(2 − c_c) μ_eff) ⟨y⟩_w;
 * C ← (1 + c_1 δ(h_σ) − c_1 − c_μ) C + c_1 p_c p_cᵀ + c_μ Σ w_i y_{i:λ} y_{i:λ}ᵀ, δ(h_σ) = (1 − h_σ) c_c (2 − c_c);
 * σ ← σ exp((c_σ/d_σ)(‖p_σ‖/E‖N(0, I)‖ − 1)).
 *
 * Bounds (when given) are handled by mirroring: the distribution lives in unbounded coordinates u, and the
 * point handed out is u reflected back into [lo, hi] as often as needed (period 2(hi − lo)). CMA-ES then
 * optimises f∘mirror on all of ℝⁿ, whose minima are exactly the mirror images of f's minima in the box; the
 * updates use u, so the adaptation of C and σ is untouched by the bounds.
 */
import { MerglotError } from "../errors.js";
import { mat } from "../tensor/matrix.js";
import { Rng } from "../tensor/rng.js";
import { symEig } from "../tensor/symeig.js";

export interface Optimizer {
  readonly kind: OptimizerKind;
  /** The next batch of points to evaluate; empty when the optimizer has nothing more to propose. */
  ask(): number[][];
  /** The values (to minimise) of the points the last `ask` returned, in the same order. */
  tell(points: readonly (readonly number[])[], values: readonly number[]): void;
}

export type OptimizerKind = "cmaes" | "random" | "grid";

export interface Bounds {
  lo: readonly number[];
  hi: readonly number[];
}

function checkBounds(b: Bounds): void {
  if (b.lo.length !== b.hi.length || b.lo.length === 0)
    throw new MerglotError("search.bounds", "bounds: lo and hi must have the same, non-zero length");
  b.lo.forEach((l, i) => {
    if (!Number.isFinite(l) || !Number.isFinite(b.hi[i]!) || !(l <= b.hi[i]!))
      throw new MerglotError("search.bounds", `bounds[${i}]: need finite lo ≤ hi, got [${l}, ${b.hi[i]}]`);
  });
}

/** x reflected into [lo, hi] (period 2(hi − lo)); lo = hi gives lo. */
export function mirror(x: number, lo: number, hi: number): number {
  const w = hi - lo;
  if (w === 0) return lo;
  let t = (x - lo) % (2 * w);
  if (t < 0) t += 2 * w;
  return t <= w ? lo + t : lo + 2 * w - t;
}

export interface CmaesOptions {
  /** Initial mean (default: the box centre; required without bounds). */
  x0?: readonly number[];
  /** Initial step size σ0 (default: 0.3 × the widest bound range; required without bounds). */
  sigma0?: number;
  bounds?: Bounds;
  seed: number;
  /** Population size λ (default 4 + ⌊3 ln n⌋). */
  lambda?: number;
}

export class Cmaes implements Optimizer {
  readonly kind = "cmaes" as const;
  readonly n: number;
  readonly lambda: number;
  readonly mu: number;
  readonly weights: Float64Array;
  readonly muEff: number;
  readonly cSigma: number;
  readonly dSigma: number;
  readonly cc: number;
  readonly c1: number;
  readonly cMu: number;
  readonly chiN: number;
  private readonly rng: Rng;
  private readonly bounds?: Bounds;
  mean: Float64Array;
  sigma: number;
  /** Covariance C (n × n, row-major), its eigenvectors B (columns) and √eigenvalues D. */
  private C: Float64Array;
  private B: Float64Array;
  private D: Float64Array;
  private pSigma: Float64Array;
  private pC: Float64Array;
  /** Generations completed (g in the tutorial). */
  generation = 0;
  /** The unbounded samples of the pending generation, keyed by the order `ask` returned them. */
  private pending: Float64Array[] | null = null;

  constructor(o: CmaesOptions) {
    if (o.bounds) checkBounds(o.bounds);
    const n = o.x0?.length ?? o.bounds?.lo.length;
    if (!n) throw new MerglotError("search.cmaes", "CMA-ES needs x0 or bounds to know the dimension");
    if (o.x0 && o.bounds && o.x0.length !== o.bounds.lo.length)
      throw new MerglotError("search.cmaes", "CMA-ES: x0 and bounds differ in dimension");
    this.n = n;
    this.bounds = o.bounds;
    this.rng = new Rng(o.seed);
    this.lambda = o.lambda ?? 4 + Math.floor(3 * Math.log(n));
    if (!Number.isInteger(this.lambda) || this.lambda < 2)
      throw new MerglotError("search.cmaes", `CMA-ES: population size must be an integer ≥ 2`);
    this.mu = Math.floor(this.lambda / 2);
    const raw = Array.from({ length: this.mu }, (_, i) => Math.log((this.lambda + 1) / 2) - Math.log(i + 1));
    const sum = raw.reduce((s, w) => s + w, 0);
    this.weights = Float64Array.from(raw, (w) => w / sum);
    this.muEff = 1 / this.weights.reduce((s, w) => s + w * w, 0);
    const me = this.muEff;
    this.cSigma = (me + 2) / (n + me + 5);
    this.dSigma = 1 + 2 * Math.max(0, Math.sqrt((me - 1) / (n + 1)) - 1) + this.cSigma;
    this.cc = (4 + me / n) / (n + 4 + (2 * me) / n);
    this.c1 = 2 / ((n + 1.3) ** 2 + me);
    this.cMu = Math.min(1 - this.c1, (2 * (me - 2 + 1 / me)) / ((n + 2) ** 2 + me));
    this.chiN = Math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
    if (o.x0) this.mean = Float64Array.from(o.x0);
    else this.mean = Float64Array.from(o.bounds!.lo, (l, i) => (l + o.bounds!.hi[i]!) / 2);
    if (o.sigma0 !== undefined) this.sigma = o.sigma0;
    else if (o.bounds) this.sigma = 0.3 * Math.max(...o.bounds.lo.map((l, i) => o.bounds!.hi[i]! - l));
    else throw new MerglotError("search.cmaes", "CMA-ES without bounds needs sigma0");
    if (!(this.sigma > 0) || !Number.isFinite(this.sigma))
      throw new MerglotError("search.cmaes", `CMA-ES: sigma0 must be a positive number, got ${this.sigma}`);
    this.C = new Float64Array(n * n);
    this.B = new Float64Array(n * n);
    for (let i = 0; i < n; i++) this.C[i * n + i] = this.B[i * n + i] = 1;
    this.D = new Float64Array(n).fill(1);
    this.pSigma = new Float64Array(n);
    this.pC = new Float64Array(n);
  }

  ask(): number[][] {
    const n = this.n;
    const z = new Float64Array(n);
    this.pending = [];
    const out: number[][] = [];
    for (let k = 0; k < this.lambda; k++) {
      this.rng.fillNormal(z);
      const u = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let y = 0;
        for (let j = 0; j < n; j++) y += this.B[i * n + j]! * this.D[j]! * z[j]!;
        u[i] = this.mean[i]! + this.sigma * y;
      }
      this.pending.push(u);
      const b = this.bounds;
      out.push(Array.from(u, (x, i) => (b ? mirror(x, b.lo[i]!, b.hi[i]!) : x)));
    }
    return out;
  }

  tell(points: readonly (readonly number[])[], values: readonly number[]): void {
    const pend = this.pending;
    if (!pend || points.length !== pend.length || values.length !== pend.length)
      throw new Error("Cmaes.tell: tell the whole batch the last ask returned");
    if (values.some((v) => Number.isNaN(v))) throw new Error("Cmaes.tell: a value is NaN");
    this.pending = null;
    const n = this.n;
    // stable sort: ties keep sampling order, so a replay reproduces the same ranking
    const order = values.map((v, k) => [v, k] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const ys = order.slice(0, this.mu).map(([, k]) => {
      const u = pend[k]!;
      return Float64Array.from(u, (x, i) => (x - this.mean[i]!) / this.sigma);
    });
    const yw = new Float64Array(n);
    ys.forEach((y, i) => y.forEach((v, j) => (yw[j] += this.weights[i]! * v)));
    for (let i = 0; i < n; i++) this.mean[i] += this.sigma * yw[i]!; // c_m = 1
    // C^{-1/2} ⟨y⟩_w = B D^{-1} Bᵀ ⟨y⟩_w
    const bty = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += this.B[i * n + j]! * yw[i]!;
      bty[j] = s / this.D[j]!;
    }
    const cs = this.cSigma;
    const sPs = Math.sqrt(cs * (2 - cs) * this.muEff);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += this.B[i * n + j]! * bty[j]!;
      this.pSigma[i] = (1 - cs) * this.pSigma[i]! + sPs * s;
    }
    const psNorm = Math.hypot(...this.pSigma);
    const g = this.generation;
    const hSigma =
      psNorm / Math.sqrt(1 - (1 - cs) ** (2 * (g + 1))) < (1.4 + 2 / (n + 1)) * this.chiN ? 1 : 0;
    const sPc = Math.sqrt(this.cc * (2 - this.cc) * this.muEff);
    for (let i = 0; i < n; i++) this.pC[i] = (1 - this.cc) * this.pC[i]! + hSigma * sPc * yw[i]!;
    const delta = (1 - hSigma) * this.cc * (2 - this.cc);
    const keep = 1 + this.c1 * delta - this.c1 - this.cMu; // Σ w_i = 1
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let rankMu = 0;
        ys.forEach((y, k) => (rankMu += this.weights[k]! * y[i]! * y[j]!));
        const v = keep * this.C[i * n + j]! + this.c1 * this.pC[i]! * this.pC[j]! + this.cMu * rankMu;
        this.C[i * n + j] = v;
        this.C[j * n + i] = v;
      }
    }
    this.sigma *= Math.exp((cs / this.dSigma) * (psNorm / this.chiN - 1));
    this.generation++;
    this.decompose();
  }

  private decompose(): void {
    const n = this.n;
    const e = symEig(mat(n, n, Float64Array.from(this.C)));
    for (let j = 0; j < n; j++) {
      // a covariance is positive semi-definite; round-off may make a tiny eigenvalue negative
      this.D[j] = Math.sqrt(Math.max(e.values[j]!, 1e-300));
      for (let i = 0; i < n; i++) this.B[i * n + j] = e.vectors.data[i * n + j]!;
    }
  }

  /** The covariance matrix (a copy), for tests. */
  covariance(): Float64Array {
    return Float64Array.from(this.C);
  }
}

/**
 * A given point first, as a batch of its own whose score is not told to the inner optimizer (a fixed
 * reference, not one of its samples), then the inner optimizer's batches.
 */
export class StartFirst implements Optimizer {
  private state: "unasked" | "asked" | "inner" = "unasked";
  constructor(
    private readonly start: readonly number[],
    private readonly inner: Optimizer,
  ) {}
  get kind(): OptimizerKind {
    return this.inner.kind;
  }
  ask(): number[][] {
    if (this.state === "inner") return this.inner.ask();
    this.state = "asked";
    return [this.start.slice()];
  }
  tell(points: readonly (readonly number[])[], values: readonly number[]): void {
    if (this.state === "asked") this.state = "inner";
    else this.inner.tell(points, values);
  }
}

/** Uniform random points in the box, `batch` per ask, forever (the search budget stops it). */
export class RandomSearch implements Optimizer {
  readonly kind = "random" as const;
  private readonly rng: Rng;
  constructor(
    private readonly bounds: Bounds,
    seed: number,
    private readonly batch = 1,
  ) {
    checkBounds(bounds);
    this.rng = new Rng(seed);
  }
  ask(): number[][] {
    return Array.from({ length: this.batch }, () =>
      this.bounds.lo.map((l, i) => l + this.rng.nextFloat() * (this.bounds.hi[i]! - l)),
    );
  }
  tell(): void {
    /* random search does not learn */
  }
}

/**
 * Every point of the grid with `points` evenly spaced levels per coordinate (lo and hi included; one level
 * is the centre), in lexicographic order with the last coordinate fastest, `batch` points per ask (the last
 * ask may return fewer).
 */
export class GridSearch implements Optimizer {
  readonly kind = "grid" as const;
  private next = 0;
  readonly size: number;
  constructor(
    private readonly bounds: Bounds,
    private readonly points: number,
    private readonly batch = 1,
  ) {
    checkBounds(bounds);
    if (!Number.isInteger(points) || points < 1)
      throw new MerglotError("search.grid", `grid: points per coordinate must be a positive integer`);
    this.size = points ** bounds.lo.length;
  }
  private level(i: number, k: number): number {
    const lo = this.bounds.lo[i]!;
    const hi = this.bounds.hi[i]!;
    return this.points === 1 ? (lo + hi) / 2 : lo + ((hi - lo) * k) / (this.points - 1);
  }
  ask(): number[][] {
    const out: number[][] = [];
    const n = this.bounds.lo.length;
    while (out.length < this.batch && this.next < this.size) {
      let idx = this.next++;
      const x = new Array<number>(n);
      for (let i = n - 1; i >= 0; i--) {
        x[i] = this.level(i, idx % this.points);
        idx = Math.floor(idx / this.points);
      }
      out.push(x);
    }
    return out;
  }
  tell(): void {
    /* the grid is fixed */
  }
}
