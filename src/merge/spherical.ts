/**
 * The spherical family on LoRA deltas (SLERP, NuSLERP, Multi-SLERP, Karcher mean), computed from the factors.
 *
 * What they mean for deltas: mergekit runs them on task vectors when a base model is given (NuSLERP and
 * Multi-SLERP subtract the base; docs/merge_methods.md). Here each module's delta ΔW_i (flattened, Frobenius
 * geometry) is split into a norm n_i = ‖ΔW_i‖_F and a direction u_i = ΔW_i / n_i on the unit sphere; the direction
 * is interpolated on the sphere (great circle, or the spherical mean) and the norm is interpolated linearly.
 * Every such result lies in the span of the inputs: ΔW' = Σ c_i ΔW_i, with coefficients c_i that depend only on
 * the Gram matrix G_ij = ⟨ΔW_i, ΔW_j⟩_F. For low-rank deltas G comes from the factors without forming any
 * out × in matrix:
 *   ⟨s_iB_iA_i, s_jB_jA_j⟩_F = s_i s_j · tr((B_iᵀB_j)(A_jA_iᵀ)),
 * and the result is written exactly as the concatenation B' = [c_1 s_1 B_1 | …], A' = [A_1; …] (rank Σ r_i).
 *
 * Definitions (θ the angle between u_1 and u_2):
 * - slerp(t): ((1−t)·n_1 + t·n_2) · (sin((1−t)θ)·u_1 + sin(tθ)·u_2) / sin θ. When sin θ < 1e-8 (parallel or
 *   antiparallel deltas) or a delta is zero, the plain interpolation (1−t)·ΔW_1 + t·ΔW_2 (as mergekit's NuSLERP).
 *   mergekit applies the slerp coefficients to the unnormalised tensors instead; with equal norms both agree.
 * - nuslerp: slerp with t = w_2 / (w_1 + w_2) (mergekit's NuSLERP weighting, flattened).
 * - multislerp: mergekit's Multi-SLERP. Its tangent-space step is identically zero (the weighted tangent vectors
 *   at the normalised weighted mean sum to zero), so the result is exactly
 *   (Σ ŵ_i n_i) · m / ‖m‖,  m = Σ ŵ_i u_i,  ŵ = w / Σ w;
 *   ‖m‖ < 1e-8 (the directions cancel) falls back to Σ ŵ_i ΔW_i for two adapters and is an error otherwise.
 * - karcher: the weighted Riemannian (Karcher) mean of the u_i on the sphere by mergekit's fixed-point iteration
 *   (start at the normalised weighted mean, at most `max_iter` steps, stop when the tangent norm < `tol`),
 *   times Σ ŵ_i n_i. Iterates are kept as coefficient vectors over the u_i (all in their span).
 * Zero deltas have no direction: they take no part in the direction and contribute 0 to the norm.
 */
import { MerglotError } from "../errors.js";
import { gemmF64 } from "../tensor/linalg.js";
import { concatFactors, type LowRank } from "./lowrank.js";
import type { MethodParams } from "./methods.js";
import type { ModuleJob } from "./spaces/types.js";

/** Below this sin θ two directions count as parallel (mergekit's NuSLERP eps). */
const COLINEAR_EPS = 1e-8;
/** Below this norm the weighted mean of the directions counts as zero (mergekit's Multi-SLERP eps). */
const MEAN_EPS = 1e-8;

/** The Gram matrix ⟨ΔW_i, ΔW_j⟩_F of one module's deltas (n × n, row-major), from the factors. */
export function deltaGram(job: ModuleJob): Float64Array {
  const { out, in: inF, inputs } = job;
  const n = inputs.length;
  const R = inputs.reduce((s, x) => s + x.rank, 0);
  const bs = new Float64Array(out * R);
  const as = new Float64Array(R * inF);
  const offsets: number[] = [];
  let col = 0;
  for (const x of inputs) {
    offsets.push(col);
    for (let i = 0; i < out; i++) for (let j = 0; j < x.rank; j++) bs[i * R + col + j] = x.b[i * x.rank + j]!;
    for (let j = 0; j < x.rank * inF; j++) as[col * inF + j] = x.a[j]!;
    col += x.rank;
  }
  const bb = gemmF64(R, R, out, bs, bs, { transA: true }); // [B_iᵀB_j] blocks
  const aa = gemmF64(R, R, inF, as, as, { transB: true }); // [A_iA_jᵀ] blocks
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let acc = 0;
      for (let a = 0; a < inputs[i]!.rank; a++)
        for (let b = 0; b < inputs[j]!.rank; b++)
          acc += bb[(offsets[i]! + a) * R + offsets[j]! + b]! * aa[(offsets[j]! + b) * R + offsets[i]! + a]!;
      const v = inputs[i]!.scaling * inputs[j]!.scaling * acc;
      g[i * n + j] = v;
      g[j * n + i] = v;
    }
  }
  return g;
}

function norms(g: Float64Array, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sqrt(Math.max(g[i * n + i]!, 0)));
}

function normalise(w: readonly number[]): number[] {
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / s);
}

/** Coefficients c with slerp(t) = c_1 ΔW_1 + c_2 ΔW_2, from the 2 × 2 Gram matrix. */
export function slerpCoefficients(g: Float64Array, t: number): number[] {
  const [n1, n2] = norms(g, 2) as [number, number];
  if (n1 === 0 || n2 === 0) return [1 - t, t];
  const cos = Math.min(1, Math.max(-1, g[1]! / (n1 * n2)));
  const theta = Math.acos(cos);
  const sin = Math.sin(theta);
  if (sin < COLINEAR_EPS) return [1 - t, t];
  const norm = (1 - t) * n1 + t * n2;
  return [(norm * Math.sin((1 - t) * theta)) / (sin * n1), (norm * Math.sin(t * theta)) / (sin * n2)];
}

/** Coefficients of Multi-SLERP: (Σ ŵ_i n_i)·m/‖m‖ with m = Σ ŵ_i u_i. `where` names the module in errors. */
export function multislerpCoefficients(g: Float64Array, weights: readonly number[], where: string): number[] {
  const n = weights.length;
  const w = normalise(weights);
  const nrm = norms(g, n);
  const avgNorm = w.reduce((s, wi, i) => s + wi * nrm[i]!, 0);
  const mu = w.map((wi, i) => (nrm[i]! > 0 ? wi : 0)); // m = Σ mu_i u_i
  const mNorm = Math.sqrt(quadratic(g, nrm, mu));
  if (!(mNorm >= MEAN_EPS)) {
    if (n === 2) return w;
    throw new MerglotError(
      "merge.spherical",
      `${where}: the weighted directions of the deltas cancel (their mean is 0), so Multi-SLERP has no direction; change the weights`,
    );
  }
  return mu.map((m, i) => (nrm[i]! > 0 ? (avgNorm * m) / (mNorm * nrm[i]!) : 0));
}

/** ‖Σ μ_i u_i‖² = Σ μ_i μ_j G_ij / (n_i n_j) over the nonzero deltas. */
function quadratic(g: Float64Array, nrm: readonly number[], mu: readonly number[]): number {
  const n = mu.length;
  let s = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++)
      if (mu[i] !== 0 && mu[j] !== 0) s += (mu[i]! * mu[j]! * g[i * n + j]!) / (nrm[i]! * nrm[j]!);
  return Math.max(s, 0);
}

/** ⟨Σ μ_j u_j, u_i⟩. */
function dotWith(g: Float64Array, nrm: readonly number[], mu: readonly number[], i: number): number {
  const n = mu.length;
  let s = 0;
  for (let j = 0; j < n; j++) if (mu[j] !== 0) s += (mu[j]! * g[j * n + i]!) / (nrm[j]! * nrm[i]!);
  return s;
}

/** Coefficients of the weighted Karcher mean of the directions × Σ ŵ_i n_i (mergekit's iteration). */
export function karcherCoefficients(
  g: Float64Array,
  weights: readonly number[],
  maxIter: number,
  tol: number,
  where: string,
): number[] {
  const n = weights.length;
  const w = normalise(weights);
  const nrm = norms(g, n);
  const scale = w.reduce((s, wi, i) => s + wi * nrm[i]!, 0);
  const valid = nrm.map((x) => x > 0);
  if (!valid.some(Boolean)) return new Array<number>(n).fill(0);
  const validSum = w.reduce((s, wi, i) => s + (valid[i] ? wi : 0), 0);
  const alpha = w.map((wi, i) => (valid[i] ? wi / validSum : 0));
  let mu = [...alpha];
  const m0 = Math.sqrt(quadratic(g, nrm, mu));
  if (m0 < tol) mu = alpha.map((_, i) => (i === valid.indexOf(true) ? 1 : 0));
  else mu = mu.map((x) => x / m0);
  for (let iter = 0; iter < maxIter; iter++) {
    const tau = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) {
      if (!valid[i]) continue;
      const dot = Math.min(1, Math.max(-1, dotWith(g, nrm, mu, i)));
      const theta = Math.acos(dot);
      if (theta < tol) continue;
      const sin = Math.sin(theta);
      if (sin < COLINEAR_EPS)
        throw new MerglotError(
          "merge.spherical",
          `${where}: a delta points opposite to the running Karcher mean, which is then undefined; change the weights`,
        );
      // α_i·θ/sin θ·(u_i − dot·m)
      const f = (alpha[i]! * theta) / sin;
      tau[i]! += f;
      for (let j = 0; j < n; j++) tau[j]! -= f * dot * mu[j]!;
    }
    const tn = Math.sqrt(quadratic(g, nrm, tau));
    if (tn < tol) break;
    mu = mu.map((m, j) => Math.cos(tn) * m + (Math.sin(tn) * tau[j]!) / tn);
    const un = Math.sqrt(quadratic(g, nrm, mu));
    if (un > tol) mu = mu.map((m) => m / un);
  }
  return mu.map((m, i) => (valid[i] ? (scale * m) / nrm[i]! : 0));
}

/** Σ c_i ΔW_i · lambda, written exactly from the factors. */
function combine(job: ModuleJob, coeffs: readonly number[], lambda: number): LowRank {
  return concatFactors(
    job,
    coeffs.map((c) => c * lambda),
  );
}

/** A module present in only one of the adapters keeps that adapter's delta (as mergekit does for one input). */
function single(job: ModuleJob, lambda: number): LowRank | undefined {
  return job.inputs.length === 1 ? combine(job, [1], lambda) : undefined;
}

function moduleName(job: ModuleJob): string {
  return `module "${job.name}"`;
}

export function slerpMerge(job: ModuleJob, _w: readonly number[], lambda: number, p: MethodParams): LowRank {
  return single(job, lambda) ?? combine(job, slerpCoefficients(deltaGram(job), p.t), lambda);
}

export function nuslerpMerge(job: ModuleJob, w: readonly number[], lambda: number): LowRank {
  const s = w[0]! + w[1]!;
  // mergekit: weights summing to (almost) 0 interpolate at the midpoint
  const t = Math.abs(s) < 1e-6 ? 0.5 : w[1]! / s;
  return single(job, lambda) ?? combine(job, slerpCoefficients(deltaGram(job), t), lambda);
}

export function multislerpMerge(job: ModuleJob, w: readonly number[], lambda: number): LowRank {
  return (
    single(job, lambda) ?? combine(job, multislerpCoefficients(deltaGram(job), w, moduleName(job)), lambda)
  );
}

export function karcherMerge(job: ModuleJob, w: readonly number[], lambda: number, p: MethodParams): LowRank {
  return (
    single(job, lambda) ??
    combine(job, karcherCoefficients(deltaGram(job), w, p.max_iter, p.tol, moduleName(job)), lambda)
  );
}
