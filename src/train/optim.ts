/**
 * AdamW (decoupled weight decay, bias-corrected moments, as torch.optim.AdamW), global-norm gradient
 * clipping (as torch.nn.utils.clip_grad_norm_) and the learning-rate schedules of HF transformers
 * (linear warm-up, then linear or cosine decay to zero, or constant).
 */
import type { Buf } from "../engine/kernels.js";

export interface Param {
  name: string;
  data: Buf;
  grad: Buf;
}

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export class AdamW {
  /** Steps taken (the bias correction uses it). */
  t = 0;
  readonly m: Float32Array[];
  readonly v: Float32Array[];
  constructor(
    readonly params: Param[],
    readonly opts: AdamWOptions = ADAMW_DEFAULTS,
  ) {
    this.m = params.map((p) => new Float32Array(p.data.length));
    this.v = params.map((p) => new Float32Array(p.data.length));
  }

  step(lr: number): void {
    this.t++;
    const { beta1, beta2, eps, weightDecay } = this.opts;
    const c1 = 1 - Math.pow(beta1, this.t);
    const c2 = 1 - Math.pow(beta2, this.t);
    const stepSize = lr / c1;
    const sqrtC2 = Math.sqrt(c2);
    this.params.forEach((p, k) => {
      const m = this.m[k];
      const v = this.v[k];
      const x = p.data;
      const g = p.grad;
      const decay = 1 - lr * weightDecay;
      for (let i = 0; i < x.length; i++) {
        const gi = g[i];
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        x[i] = x[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i]) / sqrtC2 + eps);
      }
    });
  }
}

/** Scale all gradients so that their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Param[], maxNorm: number): number {
  let ss = 0;
  for (const p of params) for (let i = 0; i < p.grad.length; i++) ss += p.grad[i] * p.grad[i];
  const norm = Math.sqrt(ss);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const p of params) for (let i = 0; i < p.grad.length; i++) p.grad[i] *= s;
  }
  return norm;
}

export type Schedule = "linear" | "cosine" | "constant";

/**
 * Learning rate for optimiser step `step` (0-based) of `total`, exactly as HF's get_*_schedule_with_warmup:
 * base·step/warmup during warm-up (so the first step of a warm-up has rate 0), then the decay.
 */
export function learningRate(
  schedule: Schedule,
  base: number,
  step: number,
  total: number,
  warmup: number,
): number {
  if (step < warmup) return (base * step) / Math.max(1, warmup);
  if (schedule === "constant") return base;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (schedule === "linear") return base * Math.max(0, 1 - progress);
  return base * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
