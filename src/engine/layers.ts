/**
 * The decoder's layers, each forward next to its backward (llm.c style). Shapes are row-major with one row
 * per token: `rows` = batch·seq. Backward functions ADD into the gradients they produce (dx +=, dW +=),
 * except where a comment says "writes", so residual branches and shared inputs need no extra buffers.
 */
import {
  addBias,
  addColumnSums,
  batchedGemm,
  elementScratch,
  gemm,
  nativeElementwise,
  sigmoidNative,
  softmaxLseNative,
  softmaxRowsNative,
  type Buf,
} from "./kernels.js";
import type { Rng } from "./rng.js";

// ---------------------------------------------------------------------------------------------- embedding

/** out[r, :] = table[tokens[r], :]. */
export function embeddingForward(out: Buf, table: Buf, tokens: Int32Array, rows: number, H: number): void {
  for (let r = 0; r < rows; r++) {
    const t = tokens[r] * H;
    const o = r * H;
    for (let c = 0; c < H; c++) out[o + c] = table[t + c];
  }
}

/** dtable[tokens[r], :] += dout[r, :]. */
export function embeddingBackward(dtable: Buf, dout: Buf, tokens: Int32Array, rows: number, H: number): void {
  for (let r = 0; r < rows; r++) {
    const t = tokens[r] * H;
    const o = r * H;
    for (let c = 0; c < H; c++) dtable[t + c] += dout[o + c];
  }
}

// ------------------------------------------------------------------------------------------------ RMSNorm

/** out = x · rstd · w with rstd = 1/√(mean(x²) + eps) per row (stored for the backward). */
export function rmsnormForward(
  out: Buf,
  rstd: Buf,
  x: Buf,
  w: Buf,
  rows: number,
  H: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * H;
    let ss = 0;
    for (let c = 0; c < H; c++) ss += x[o + c] * x[o + c];
    const s = 1 / Math.sqrt(ss / H + eps);
    rstd[r] = s;
    for (let c = 0; c < H; c++) out[o + c] = x[o + c] * s * w[c];
  }
}

/** dx += rstd·g − x·rstd³·mean(g·x) with g = dout·w; dw += Σ_rows dout·x·rstd. */
export function rmsnormBackward(
  dx: Buf,
  dw: Buf | null,
  dout: Buf,
  x: Buf,
  w: Buf,
  rstd: Buf,
  rows: number,
  H: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * H;
    const s = rstd[r];
    let dot = 0;
    for (let c = 0; c < H; c++) dot += dout[o + c] * w[c] * x[o + c];
    const k = (s * s * s * dot) / H;
    for (let c = 0; c < H; c++) dx[o + c] += s * dout[o + c] * w[c] - k * x[o + c];
    if (dw !== null) for (let c = 0; c < H; c++) dw[c] += dout[o + c] * x[o + c] * s;
  }
}

// ------------------------------------------------------------------------------------ linear (+ LoRA)

/** A LoRA on one linear module: ΔW = scaling · B·A, A [r × in], B [out × r]. */
export interface LoraWeights {
  r: number;
  scaling: number;
  /** Dropout probability applied to the module input on the LoRA branch only (PEFT). */
  dropout: number;
  a: Buf;
  b: Buf;
  gradA: Buf | null;
  gradB: Buf | null;
}

/** One linear module: y = x·Wᵀ + bias (+ LoRA branch). */
export interface Linear {
  /** HF module path, e.g. `model.layers.0.self_attn.q_proj`. */
  name: string;
  inF: number;
  outF: number;
  weight: Buf;
  bias: Buf | null;
  gradWeight: Buf | null;
  gradBias: Buf | null;
  lora: LoraWeights | null;
}

/** What a linear forward keeps for its backward. */
export interface LinearCache {
  /** The LoRA branch input: x, or x with dropout applied. */
  xd: Buf | null;
  /** scaling · xd·Aᵀ [rows × r]. */
  xa: Buf | null;
  /** Dropout multipliers (0 or 1/(1−p)) [rows × in], null without dropout. */
  mask: Buf | null;
}

export function newLinearCache(
  lin: Linear,
  rows: number,
  ctor: Float32ArrayConstructor | Float64ArrayConstructor,
): LinearCache {
  if (lin.lora === null) return { xd: null, xa: null, mask: null };
  const withDropout = lin.lora.dropout > 0;
  return {
    xd: withDropout ? new ctor(rows * lin.inF) : null,
    xa: new ctor(rows * lin.lora.r),
    mask: withDropout ? new ctor(rows * lin.inF) : null,
  };
}

/** out = x·Wᵀ + bias + scaling·(dropout(x)·Aᵀ)·Bᵀ. `rng` = null: no dropout (evaluation). Writes out. */
export function linearForward(
  lin: Linear,
  out: Buf,
  x: Buf,
  rows: number,
  cache: LinearCache | null,
  rng: Rng | null,
): void {
  gemm(false, true, rows, lin.outF, lin.inF, x, lin.weight, out, false);
  if (lin.bias !== null) addBias(out, lin.bias, rows, lin.outF);
  const lora = lin.lora;
  if (lora === null) return;
  let xd: Buf = x;
  const n = rows * lin.inF;
  if (lora.dropout > 0 && rng !== null && cache !== null && cache.mask !== null && cache.xd !== null) {
    const keep = 1 / (1 - lora.dropout);
    const mask = cache.mask;
    xd = cache.xd;
    for (let i = 0; i < n; i++) {
      const m = rng.uniform() < lora.dropout ? 0 : keep;
      mask[i] = m;
      xd[i] = x[i] * m;
    }
  } else if (cache !== null && cache.mask !== null && cache.xd !== null) {
    cache.mask.fill(1, 0, n);
    cache.xd.set(x.subarray(0, n));
    xd = cache.xd;
  }
  const xa =
    cache !== null && cache.xa !== null
      ? cache.xa
      : new (x.constructor as Float64ArrayConstructor)(rows * lora.r);
  gemm(false, true, rows, lora.r, lin.inF, xd, lora.a, xa, false);
  for (let i = 0; i < rows * lora.r; i++) xa[i] *= lora.scaling;
  gemm(false, true, rows, lin.outF, lora.r, xa, lora.b, out, true);
}

/**
 * dx += dout·W (+ the LoRA branch), gradWeight += doutᵀ·x and gradBias += Σ dout when the module has gradient
 * buffers, LoRA gradients likewise. `g` is scratch of rows × r for the LoRA branch.
 */
export function linearBackward(
  lin: Linear,
  dx: Buf | null,
  dout: Buf,
  x: Buf,
  rows: number,
  cache: LinearCache | null,
  g: Buf | null,
): void {
  if (dx !== null) gemm(false, false, rows, lin.inF, lin.outF, dout, lin.weight, dx, true);
  if (lin.gradWeight !== null) gemm(true, false, lin.outF, lin.inF, rows, dout, x, lin.gradWeight, true);
  if (lin.gradBias !== null) addColumnSums(lin.gradBias, dout, rows, lin.outF);
  const lora = lin.lora;
  if (lora === null || cache === null || cache.xa === null || g === null) return;
  const xd = cache.xd ?? x;
  if (lora.gradB !== null) gemm(true, false, lin.outF, lora.r, rows, dout, cache.xa, lora.gradB, true);
  // g = scaling · dout·B  [rows × r]
  gemm(false, false, rows, lora.r, lin.outF, dout, lora.b, g, false);
  for (let i = 0; i < rows * lora.r; i++) g[i] *= lora.scaling;
  if (lora.gradA !== null) gemm(true, false, lora.r, lin.inF, rows, g, xd, lora.gradA, true);
  if (dx === null) return;
  if (cache.mask === null) {
    gemm(false, false, rows, lin.inF, lora.r, g, lora.a, dx, true);
  } else {
    const n = rows * lin.inF;
    const t = cache.xd!; // the dropped input is no longer needed once gradA is done: reuse it as scratch
    gemm(false, false, rows, lin.inF, lora.r, g, lora.a, t, false);
    const mask = cache.mask;
    for (let i = 0; i < n; i++) dx[i] += t[i] * mask[i];
    // restore xd so the cache stays valid for a repeated backward (gradient checks)
    for (let i = 0; i < n; i++) t[i] = x[i] * mask[i];
  }
}

// -------------------------------------------------------------------------------------------- attention

/** Which keys a query may see: causal, same segment (packing), within the sliding window. */
export interface AttentionMask {
  /** Segment id per row [batch·seq]; tokens attend only within their own segment. null = one segment per row. */
  segments: Int32Array | null;
  /** Sliding window (mistral), null = unlimited. */
  window: number | null;
}

/** Scratch for attention: head-major copies of q, k, v and their gradients, and one score matrix. */
export interface AttentionScratch {
  /** [B·nh·T·d] */
  qh: Buf;
  /** [B·nkv·T·d] */
  kh: Buf;
  vh: Buf;
  /** [B·nh·T·d]: the output, then dout, in head-major order. */
  oh: Buf;
  /** [B·nh·T·T] */
  dp: Buf;
  dqh: Buf;
  dkh: Buf;
  dvh: Buf;
}

export function newAttentionScratch(
  B: number,
  T: number,
  nh: number,
  nkv: number,
  d: number,
  ctor: Float32ArrayConstructor | Float64ArrayConstructor,
  withGradients = true,
): AttentionScratch {
  const g = withGradients ? 1 : 0;
  return {
    qh: new ctor(B * nh * T * d),
    kh: new ctor(B * nkv * T * d),
    vh: new ctor(B * nkv * T * d),
    oh: new ctor(B * nh * T * d),
    dp: new ctor(g * B * nh * T * T),
    dqh: new ctor(g * B * nh * T * d),
    dkh: new ctor(g * B * nkv * T * d),
    dvh: new ctor(g * B * nkv * T * d),
  };
}

/** Row-major [B·T × n·d] ↔ head-major [B × n × T × d]. */
function toHeads(dst: Buf, src: Buf, B: number, T: number, n: number, d: number): void {
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const so = (b * T + t) * n * d;
      for (let h = 0; h < n; h++) {
        const o = ((b * n + h) * T + t) * d;
        for (let c = 0; c < d; c++) dst[o + c] = src[so + h * d + c];
      }
    }
}
function addFromHeads(
  dst: Buf,
  src: Buf,
  B: number,
  T: number,
  n: number,
  d: number,
  overwrite: boolean,
): void {
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const so = (b * T + t) * n * d;
      for (let h = 0; h < n; h++) {
        const o = ((b * n + h) * T + t) * d;
        if (overwrite) for (let c = 0; c < d; c++) dst[so + h * d + c] = src[o + c];
        else for (let c = 0; c < d; c++) dst[so + h * d + c] += src[o + c];
      }
    }
}

/**
 * Grouped-query causal attention. q [rows × nh·d] and k, v [rows × nkv·d] (rows = B·T, RoPE already applied);
 * query head h reads kv head ⌊h / (nh/nkv)⌋. Writes out [rows × nh·d] and probs [B × nh × T × T].
 *
 * The products run as batched matrix products over (batch, kv head) with the `nh/nkv` query heads of a
 * group stacked as rows, so grouped heads need no copies of k and v; the mask and softmax are row loops.
 */
export function attentionForward(
  out: Buf,
  probs: Buf,
  q: Buf,
  k: Buf,
  v: Buf,
  B: number,
  T: number,
  nh: number,
  nkv: number,
  d: number,
  mask: AttentionMask,
  scratch: AttentionScratch,
): void {
  const group = nh / nkv;
  const { qh, kh, vh, oh } = scratch;
  toHeads(qh, q, B, T, nh, d);
  toHeads(kh, k, B, T, nkv, d);
  toHeads(vh, v, B, T, nkv, d);
  batchedGemm(false, true, B * nkv, group * T, T, d, qh, kh, probs);
  maskedSoftmax(probs, B, T, nh, 1 / Math.sqrt(d), mask);
  batchedGemm(false, false, B * nkv, group * T, d, T, probs, vh, oh);
  addFromHeads(out, oh, B, T, nh, d, true);
}

/** In place on raw scores [B × nh × T × T]: scale, causal/segment/window mask, softmax per row. */
function maskedSoftmax(p: Buf, B: number, T: number, nh: number, scale: number, mask: AttentionMask): void {
  const seg = mask.segments;
  const win = mask.window ?? Number.MAX_SAFE_INTEGER;
  const n = B * nh * T * T;
  if (nativeElementwise(p, n)) {
    // scaled scores with −∞ where the mask hides a key (every row keeps at least its own token), then a
    // native row softmax back into p
    const s = elementScratch(n);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < nh; h++)
        for (let i = 0; i < T; i++) {
          const o = ((b * nh + h) * T + i) * T;
          const si = seg === null ? 0 : seg[b * T + i];
          const j0 = Math.max(0, i - win + 1);
          for (let j = 0; j < T; j++)
            s[o + j] =
              j < j0 || j > i || (seg !== null && seg[b * T + j] !== si) ? -Infinity : p[o + j] * scale;
        }
    if (softmaxRowsNative(s, B * nh * T, T, p)) return;
  }
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nh; h++) {
      for (let i = 0; i < T; i++) {
        const o = ((b * nh + h) * T + i) * T;
        const si = seg === null ? 0 : seg[b * T + i];
        const j0 = Math.max(0, i - win + 1);
        let max = -Infinity;
        for (let j = j0; j <= i; j++) {
          if (seg !== null && seg[b * T + j] !== si) continue;
          const s = p[o + j] * scale;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = 0; j < T; j++) {
          if (j < j0 || j > i || (seg !== null && seg[b * T + j] !== si)) {
            p[o + j] = 0;
            continue;
          }
          const e = Math.exp(p[o + j] * scale - max);
          p[o + j] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let j = j0; j <= i; j++) p[o + j] *= inv;
      }
    }
  }
}

/**
 * dS = P ⊙ (dP − rowsum(P ⊙ dP)) with dP = dout·vᵀ; dq += dS·k/√d, dk += dSᵀ·q/√d, dv += Pᵀ·dout.
 * q, k, v are the forward's inputs (row-major, after RoPE).
 */
export function attentionBackward(
  dq: Buf,
  dk: Buf,
  dv: Buf,
  dout: Buf,
  probs: Buf,
  q: Buf,
  k: Buf,
  v: Buf,
  B: number,
  T: number,
  nh: number,
  nkv: number,
  d: number,
  scratch: AttentionScratch,
): void {
  const group = nh / nkv;
  const scale = 1 / Math.sqrt(d);
  const { qh, kh, vh, oh: doh, dp, dqh, dkh, dvh } = scratch;
  toHeads(qh, q, B, T, nh, d);
  toHeads(kh, k, B, T, nkv, d);
  toHeads(vh, v, B, T, nkv, d);
  toHeads(doh, dout, B, T, nh, d);
  batchedGemm(false, true, B * nkv, group * T, T, d, doh, vh, dp);
  batchedGemm(true, false, B * nkv, T, d, group * T, probs, doh, dvh);
  const rows = B * nh * T;
  for (let r = 0; r < rows; r++) {
    const o = r * T;
    let dot = 0;
    for (let j = 0; j < T; j++) dot += probs[o + j] * dp[o + j];
    for (let j = 0; j < T; j++) dp[o + j] = probs[o + j] * (dp[o + j] - dot) * scale;
  }
  batchedGemm(false, false, B * nkv, group * T, d, T, dp, kh, dqh);
  batchedGemm(true, false, B * nkv, T, d, group * T, dp, qh, dkh);
  addFromHeads(dq, dqh, B, T, nh, d, false);
  addFromHeads(dk, dkh, B, T, nkv, d, false);
  addFromHeads(dv, dvh, B, T, nkv, d, false);
}

// ------------------------------------------------------------------------------------------------ SwiGLU

/** h = silu(g)·u with silu(g) = g·σ(g); σ(g) is kept in `sig` for the backward. Writes h and sig. */
export function swigluForward(h: Buf, sig: Buf, g: Buf, u: Buf, n: number): void {
  if (nativeElementwise(g, n) && sig instanceof Float32Array && sigmoidNative(g, n, sig)) {
    for (let i = 0; i < n; i++) h[i] = g[i] * sig[i] * u[i];
    return;
  }
  for (let i = 0; i < n; i++) {
    const x = g[i];
    const s = 1 / (1 + Math.exp(-x));
    sig[i] = s;
    h[i] = x * s * u[i];
  }
}

/** dg = dh·u·σ(g)(1 + g(1 − σ(g))), du = dh·silu(g). Writes dg and du. */
export function swigluBackward(dg: Buf, du: Buf, dh: Buf, g: Buf, u: Buf, sig: Buf, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = g[i];
    const s = sig[i];
    const d = dh[i];
    du[i] = d * x * s;
    dg[i] = d * u[i] * s * (1 + x * (1 - s));
  }
}

// --------------------------------------------------------------------------------------- cross-entropy

/**
 * Softmax cross-entropy over rows of `logits` [rows × V]; rows whose target is < 0 are ignored.
 * Returns the summed loss (float64) and the count of scored rows, and overwrites logits with
 * dlogits = scale·(softmax − onehot) (0 on ignored rows) when `grad` is set.
 */
export function crossEntropy(
  logits: Buf,
  targets: Int32Array,
  targetOffset: number,
  rows: number,
  V: number,
  scale: number,
  grad: boolean,
): { loss: number; count: number } {
  let loss = 0;
  let count = 0;
  if (grad && nativeElementwise(logits, rows * V)) {
    // training: softmax and log-sum-exp on native kernels, then dlogits = scale·(softmax − onehot) in one pass
    // (the loss in float32 precision; scoring, grad = false, keeps the float64 JavaScript path below)
    const probs = elementScratch(rows * V + rows);
    const lse = probs.subarray(rows * V);
    if (softmaxLseNative(logits, rows, V, probs, lse)) {
      for (let r = 0; r < rows; r++) {
        const o = r * V;
        const t = targets[targetOffset + r];
        if (t < 0) {
          logits.fill(0, o, o + V);
          continue;
        }
        loss += lse[r] - logits[o + t];
        count++;
        for (let c = 0; c < V; c++) logits[o + c] = probs[o + c] * scale;
        logits[o + t] -= scale;
      }
      return { loss, count };
    }
  }
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    const t = targets[targetOffset + r];
    if (t < 0) {
      if (grad) logits.fill(0, o, o + V);
      continue;
    }
    let max = -Infinity;
    for (let c = 0; c < V; c++) if (logits[o + c] > max) max = logits[o + c];
    const lt = logits[o + t];
    let sum = 0;
    if (grad) {
      // one exp per logit: keep exp(l − max) in place, normalise afterwards
      for (let c = 0; c < V; c++) {
        const e = Math.exp(logits[o + c] - max);
        logits[o + c] = e;
        sum += e;
      }
      const k = scale / sum;
      for (let c = 0; c < V; c++) logits[o + c] *= k;
      logits[o + t] -= scale;
    } else {
      for (let c = 0; c < V; c++) sum += Math.exp(logits[o + c] - max);
    }
    loss += max + Math.log(sum) - lt;
    count++;
  }
  return { loss, count };
}
