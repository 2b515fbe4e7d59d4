/**
 * The llama-architecture decoder: parameters, one workspace of activations allocated per batch shape, and
 * forwardBackward() that runs embedding → layers → final norm → LM head → cross-entropy and back.
 * Base weights are frozen unless enableBaseGradients() was called (pre-training); LoRA factors get
 * gradients when they have gradient buffers (see lora.ts).
 */
import type { ModelConfig } from "./config.js";
import { addInto, gemm, type Buf } from "./kernels.js";
import {
  attentionBackward,
  attentionForward,
  crossEntropy,
  embeddingBackward,
  embeddingForward,
  linearBackward,
  linearForward,
  newAttentionScratch,
  newLinearCache,
  rmsnormBackward,
  rmsnormForward,
  swigluBackward,
  swigluForward,
  type AttentionScratch,
  type Linear,
  type LinearCache,
} from "./layers.js";
import type { KvCache } from "./kv-cache.js";
import type { Rng } from "./rng.js";
import { applyRope, inverseFrequencies, RopeTable } from "./rope.js";

export type DType = "f32" | "f64";
type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;

export const LINEAR_KINDS = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
] as const;
export type LinearKind = (typeof LINEAR_KINDS)[number];

/** The HF (and PEFT, after its `base_model.model.` prefix) name of a decoder layer's linear module. */
export function linearModuleName(layer: number, kind: LinearKind): string {
  const block = kind === "gate_proj" || kind === "up_proj" || kind === "down_proj" ? "mlp" : "self_attn";
  return `model.layers.${layer}.${block}.${kind}`;
}

export interface DecoderLayer {
  index: number;
  inputNorm: Buf;
  postNorm: Buf;
  gradInputNorm: Buf | null;
  gradPostNorm: Buf | null;
  linears: Record<LinearKind, Linear>;
}

/** A batch of token rows: `batch` rows of `seq` tokens, flattened row-major. */
export interface TokenBatch {
  batch: number;
  seq: number;
  tokens: Int32Array;
  /** RoPE position per token (restarts per packed segment). */
  positions: Int32Array;
  /** Segment id per token for packed rows (attention stays inside a segment); null = one per row. */
  segments: Int32Array | null;
  /** Next-token target per position, −1 where the position is not scored. */
  targets: Int32Array;
}

/** A simple batch of one or more unpacked rows; targets are the next tokens. */
export function causalBatch(rows: number[][]): TokenBatch {
  const seq = Math.max(...rows.map((r) => r.length));
  const n = rows.length * seq;
  const b: TokenBatch = {
    batch: rows.length,
    seq,
    tokens: new Int32Array(n),
    positions: new Int32Array(n),
    segments: null,
    targets: new Int32Array(n).fill(-1),
  };
  rows.forEach((row, r) => {
    for (let t = 0; t < seq; t++) {
      b.tokens[r * seq + t] = t < row.length ? row[t] : 0;
      b.positions[r * seq + t] = t;
      if (t + 1 < row.length) b.targets[r * seq + t] = row[t + 1];
    }
  });
  return b;
}

/** Rows of the LM head computed at once: bounds the logits buffer to LOGIT_CHUNK × vocab. */
const LOGIT_CHUNK = 256;

interface LayerActs {
  x: Buf;
  xn1: Buf;
  rstd1: Buf;
  q: Buf;
  k: Buf;
  v: Buf;
  att: Buf;
  probs: Buf;
  x2: Buf;
  xn2: Buf;
  rstd2: Buf;
  g: Buf;
  u: Buf;
  sig: Buf;
  h: Buf;
  caches: Record<LinearKind, LinearCache>;
}

class Workspace {
  readonly layers: LayerActs[];
  readonly xL: Buf;
  readonly xf: Buf;
  readonly rstdF: Buf;
  readonly logits: Buf;
  // backward scratch
  readonly dres: Buf;
  readonly dxn: Buf;
  readonly dxf: Buf;
  readonly dh: Buf;
  readonly dg: Buf;
  readonly du: Buf;
  readonly datt: Buf;
  readonly dq: Buf;
  readonly dk: Buf;
  readonly dv: Buf;
  readonly attn: AttentionScratch;
  readonly gLora: Buf;

  /**
   * `training`: keep every layer's activations for the backward pass. Otherwise (scoring) the layers share
   * one set of buffers, two residual buffers alternate, and no backward scratch is allocated.
   */
  constructor(
    model: LlamaModel,
    readonly batch: number,
    readonly seq: number,
    readonly training: boolean,
  ) {
    const c = model.config;
    const A = model.ctor;
    const N = batch * seq;
    const H = c.hiddenSize;
    const I = c.intermediateSize;
    const qd = c.numHeads * c.headDim;
    const kd = c.numKvHeads * c.headDim;
    let maxR = 0;
    for (const l of model.layers)
      for (const k of LINEAR_KINDS) maxR = Math.max(maxR, l.linears[k].lora?.r ?? 0);
    const layerBuffers = () => ({
      xn1: new A(N * H),
      rstd1: new A(N),
      q: new A(N * qd),
      k: new A(N * kd),
      v: new A(N * kd),
      att: new A(N * qd),
      probs: new A(batch * c.numHeads * seq * seq),
      x2: new A(N * H),
      xn2: new A(N * H),
      rstd2: new A(N),
      g: new A(N * I),
      u: new A(N * I),
      sig: new A(N * I),
      h: new A(N * I),
    });
    const shared = training ? null : layerBuffers();
    const residuals = training ? null : [new A(N * H), new A(N * H)];
    this.layers = model.layers.map((l, i) => ({
      ...(shared ?? layerBuffers()),
      x: residuals === null ? new A(N * H) : residuals[i % 2],
      caches: Object.fromEntries(LINEAR_KINDS.map((k) => [k, newLinearCache(l.linears[k], N, A)])) as Record<
        LinearKind,
        LinearCache
      >,
    }));
    this.xL = new A(N * H);
    this.xf = new A(N * H);
    this.rstdF = new A(N);
    this.logits = new A(Math.min(N, LOGIT_CHUNK) * c.vocabSize);
    const G = training ? 1 : 0;
    this.dres = new A(G * N * H);
    this.dxn = new A(G * N * H);
    this.dxf = new A(G * N * H);
    this.dh = new A(G * N * I);
    this.dg = new A(G * N * I);
    this.du = new A(G * N * I);
    this.datt = new A(G * N * qd);
    this.dq = new A(G * N * qd);
    this.dk = new A(G * N * kd);
    this.dv = new A(G * N * kd);
    this.attn = newAttentionScratch(batch, seq, c.numHeads, c.numKvHeads, c.headDim, A, training);
    this.gLora = new A(G * N * Math.max(1, maxR));
  }
}

export class LlamaModel {
  readonly ctor: Ctor;
  embed: Buf;
  /** null when the LM head is tied to the embedding. */
  lmHead: Buf | null;
  norm: Buf;
  readonly layers: DecoderLayer[];
  gradEmbed: Buf | null = null;
  gradLmHead: Buf | null = null;
  gradNorm: Buf | null = null;
  private rope: RopeTable;
  private ws: Workspace | null = null;

  /** A model with zero weights (norm weights 1); fill it with load.ts or initRandom(). */
  constructor(
    readonly config: ModelConfig,
    readonly dtype: DType = "f32",
  ) {
    const c = config;
    const A = (this.ctor = dtype === "f64" ? Float64Array : Float32Array);
    const H = c.hiddenSize;
    const qd = c.numHeads * c.headDim;
    const kd = c.numKvHeads * c.headDim;
    this.embed = new A(c.vocabSize * H);
    this.lmHead = c.tieWordEmbeddings ? null : new A(c.vocabSize * H);
    this.norm = new A(H).fill(1);
    const lin = (name: string, inF: number, outF: number, bias: boolean): Linear => ({
      name,
      inF,
      outF,
      weight: new A(outF * inF),
      bias: bias ? new A(outF) : null,
      gradWeight: null,
      gradBias: null,
      lora: null,
    });
    this.layers = [];
    for (let i = 0; i < c.numLayers; i++) {
      this.layers.push({
        index: i,
        inputNorm: new A(H).fill(1),
        postNorm: new A(H).fill(1),
        gradInputNorm: null,
        gradPostNorm: null,
        linears: {
          q_proj: lin(linearModuleName(i, "q_proj"), H, qd, c.qkvBias),
          k_proj: lin(linearModuleName(i, "k_proj"), H, kd, c.qkvBias),
          v_proj: lin(linearModuleName(i, "v_proj"), H, kd, c.qkvBias),
          o_proj: lin(linearModuleName(i, "o_proj"), qd, H, c.oBias),
          gate_proj: lin(linearModuleName(i, "gate_proj"), H, c.intermediateSize, c.mlpBias),
          up_proj: lin(linearModuleName(i, "up_proj"), H, c.intermediateSize, c.mlpBias),
          down_proj: lin(linearModuleName(i, "down_proj"), c.intermediateSize, H, c.mlpBias),
        },
      });
    }
    this.rope = new RopeTable(inverseFrequencies(c), Math.min(c.maxPositionEmbeddings, 4096));
  }

  /** HF-style random initialisation: N(0, initializer_range) for matrices, zero biases, unit norms. */
  initRandom(rng: Rng): this {
    const std = this.config.initializerRange;
    for (const p of this.namedParameters()) {
      if (p.name.endsWith("norm.weight")) p.data.fill(1);
      else if (p.name.endsWith(".bias")) p.data.fill(0);
      else for (let i = 0; i < p.data.length; i++) p.data[i] = rng.normal() * std;
    }
    return this;
  }

  /** Every linear module in canonical order (layer, then q, k, v, o, gate, up, down). */
  linears(): Linear[] {
    return this.layers.flatMap((l) => LINEAR_KINDS.map((k) => l.linears[k]));
  }

  /** Base parameters with HF names, shapes, data and gradient buffers (null while frozen). */
  namedParameters(): { name: string; shape: number[]; data: Buf; grad: Buf | null }[] {
    const c = this.config;
    const out: { name: string; shape: number[]; data: Buf; grad: Buf | null }[] = [];
    out.push({
      name: "model.embed_tokens.weight",
      shape: [c.vocabSize, c.hiddenSize],
      data: this.embed,
      grad: this.gradEmbed,
    });
    for (const l of this.layers) {
      const p = `model.layers.${l.index}`;
      out.push({
        name: `${p}.input_layernorm.weight`,
        shape: [c.hiddenSize],
        data: l.inputNorm,
        grad: l.gradInputNorm,
      });
      for (const k of LINEAR_KINDS) {
        const lin = l.linears[k];
        if (k === "gate_proj") {
          out.push({
            name: `${p}.post_attention_layernorm.weight`,
            shape: [c.hiddenSize],
            data: l.postNorm,
            grad: l.gradPostNorm,
          });
        }
        out.push({
          name: `${lin.name}.weight`,
          shape: [lin.outF, lin.inF],
          data: lin.weight,
          grad: lin.gradWeight,
        });
        if (lin.bias !== null)
          out.push({ name: `${lin.name}.bias`, shape: [lin.outF], data: lin.bias, grad: lin.gradBias });
      }
    }
    out.push({ name: "model.norm.weight", shape: [c.hiddenSize], data: this.norm, grad: this.gradNorm });
    if (this.lmHead !== null) {
      out.push({
        name: "lm_head.weight",
        shape: [c.vocabSize, c.hiddenSize],
        data: this.lmHead,
        grad: this.gradLmHead,
      });
    }
    return out;
  }

  /** Allocate gradient buffers for every base parameter (full-parameter training). */
  enableBaseGradients(): void {
    const A = this.ctor;
    this.gradEmbed ??= new A(this.embed.length);
    if (this.lmHead !== null) this.gradLmHead ??= new A(this.lmHead.length);
    this.gradNorm ??= new A(this.norm.length);
    for (const l of this.layers) {
      l.gradInputNorm ??= new A(l.inputNorm.length);
      l.gradPostNorm ??= new A(l.postNorm.length);
      for (const k of LINEAR_KINDS) {
        const lin = l.linears[k];
        lin.gradWeight ??= new A(lin.weight.length);
        if (lin.bias !== null) lin.gradBias ??= new A(lin.bias.length);
      }
    }
  }

  /** Set every gradient buffer (base and LoRA) to zero. */
  zeroGradients(): void {
    for (const p of this.namedParameters()) p.grad?.fill(0);
    for (const lin of this.linears()) {
      lin.lora?.gradA?.fill(0);
      lin.lora?.gradB?.fill(0);
    }
  }

  /** Drop the cached activations (after changing LoRA attachments, or to free memory). */
  releaseWorkspace(): void {
    this.ws = null;
  }

  private workspace(batch: number, seq: number, training: boolean): Workspace {
    const ws = this.ws;
    if (ws === null || ws.batch !== batch || ws.seq !== seq || ws.training !== training) {
      this.ws = null; // let the old buffers go before allocating new ones
      const fresh = new Workspace(this, batch, seq, training);
      this.ws = fresh;
      return fresh;
    }
    return ws;
  }

  private ensureRope(maxPos: number): void {
    if (maxPos < this.rope.maxPos) return;
    this.rope = new RopeTable(this.rope.invFreq, Math.max(maxPos + 1, 2 * this.rope.maxPos));
  }

  /** The forward pass up to the final norm; activations stay in the workspace for backward(). */
  private forwardHidden(
    b: TokenBatch,
    rng: Rng | null,
    training: boolean,
    capture?: { layer: number; into: Buf },
    kv?: KvCache,
  ): Workspace {
    const c = this.config;
    const ws = this.workspace(b.batch, b.seq, training);
    const N = b.batch * b.seq;
    const H = c.hiddenSize;
    let maxPos = 0;
    for (let i = 0; i < N; i++) {
      const t = b.tokens[i];
      if (t < 0 || t >= c.vocabSize || !Number.isInteger(t)) {
        throw new RangeError(
          `token id ${t} at position ${i} is outside the vocabulary (size ${c.vocabSize})`,
        );
      }
      if (b.positions[i] > maxPos) maxPos = b.positions[i];
    }
    this.ensureRope(maxPos);
    embeddingForward(ws.layers.length ? ws.layers[0].x : ws.xL, this.embed, b.tokens, N, H);
    if (capture?.layer === 0)
      capture.into.set((ws.layers.length ? ws.layers[0].x : ws.xL).subarray(0, N * H));
    const mask = { segments: b.segments, window: c.slidingWindow };
    // Prefill: token t of row r goes to slot t of cache sequence r (rows are unpacked, positions = slots).
    const kvRow = kv ? Int32Array.from({ length: N }, (_, i) => Math.floor(i / b.seq)) : null;
    const kvSlot = kv ? Int32Array.from({ length: N }, (_, i) => i % b.seq) : null;
    for (let li = 0; li < this.layers.length; li++) {
      const L = this.layers[li];
      const a = ws.layers[li];
      const out = li + 1 < ws.layers.length ? ws.layers[li + 1].x : ws.xL;
      rmsnormForward(a.xn1, a.rstd1, a.x, L.inputNorm, N, H, c.rmsNormEps);
      linearForward(L.linears.q_proj, a.q, a.xn1, N, a.caches.q_proj, rng);
      linearForward(L.linears.k_proj, a.k, a.xn1, N, a.caches.k_proj, rng);
      linearForward(L.linears.v_proj, a.v, a.xn1, N, a.caches.v_proj, rng);
      applyRope(a.q, b.positions, N, c.numHeads, this.rope, false);
      applyRope(a.k, b.positions, N, c.numKvHeads, this.rope, false);
      if (kv) kv.store(li, a.k, a.v, N, kvRow!, kvSlot!);
      attentionForward(
        a.att,
        a.probs,
        a.q,
        a.k,
        a.v,
        b.batch,
        b.seq,
        c.numHeads,
        c.numKvHeads,
        c.headDim,
        mask,
        ws.attn,
      );
      linearForward(L.linears.o_proj, a.x2, a.att, N, a.caches.o_proj, rng);
      addInto(a.x2, a.x, N * H);
      rmsnormForward(a.xn2, a.rstd2, a.x2, L.postNorm, N, H, c.rmsNormEps);
      linearForward(L.linears.gate_proj, a.g, a.xn2, N, a.caches.gate_proj, rng);
      linearForward(L.linears.up_proj, a.u, a.xn2, N, a.caches.up_proj, rng);
      swigluForward(a.h, a.sig, a.g, a.u, N * c.intermediateSize);
      linearForward(L.linears.down_proj, out, a.h, N, a.caches.down_proj, rng);
      addInto(out, a.x2, N * H);
      if (capture?.layer === li + 1) capture.into.set(out.subarray(0, N * H));
    }
    rmsnormForward(ws.xf, ws.rstdF, ws.xL, this.norm, N, H, c.rmsNormEps);
    return ws;
  }

  /**
   * The residual stream after `layer` decoder layers (0 = the token embeddings, numLayers = the last layer's
   * output before the final norm), one row of hiddenSize values per token of the batch: the contextual
   * embeddings BERTScore-style metrics read from a chosen layer.
   */
  hiddenStates(b: TokenBatch, layer: number): Buf {
    if (!Number.isInteger(layer) || layer < 0 || layer > this.layers.length) {
      throw new RangeError(`layer ${layer} is outside 0..${this.layers.length}`);
    }
    const into = new this.ctor(b.batch * b.seq * this.config.hiddenSize);
    this.forwardHidden(b, null, false, { layer, into });
    return into;
  }

  /**
   * Forward pass, then (unless `backward` is false) the backward pass into every gradient buffer that exists.
   * The loss is Σ over scored positions of −log p(target); gradients are of `lossScale` × that sum, so a trainer
   * that accumulates micro-batches passes 1 / (scored tokens in the whole step).
   * `rng` drives LoRA dropout; null = no dropout.
   */
  forwardBackward(
    b: TokenBatch,
    opts: { lossScale?: number; rng?: Rng | null; backward?: boolean } = {},
  ): { loss: number; count: number } {
    const c = this.config;
    const rng = opts.rng ?? null;
    const doBackward = opts.backward ?? true;
    const scale = opts.lossScale ?? 1;
    const ws = this.forwardHidden(b, rng, doBackward);
    const N = b.batch * b.seq;
    const H = c.hiddenSize;
    const V = c.vocabSize;
    const head = this.lmHead ?? this.embed;
    const gradHead = this.lmHead !== null ? this.gradLmHead : this.gradEmbed;
    let loss = 0;
    let count = 0;
    if (doBackward) ws.dxf.fill(0, 0, N * H);
    for (let r0 = 0; r0 < N; r0 += LOGIT_CHUNK) {
      const n = Math.min(LOGIT_CHUNK, N - r0);
      let any = false;
      for (let r = r0; r < r0 + n; r++) if (b.targets[r] >= 0) any = true;
      if (!any) continue; // unscored rows contribute neither loss nor gradient
      const xf = ws.xf.subarray(r0 * H, (r0 + n) * H);
      const logits = ws.logits.subarray(0, n * V);
      gemm(false, true, n, V, H, xf, head, logits, false);
      const ce = crossEntropy(logits, b.targets, r0, n, V, scale, doBackward);
      loss += ce.loss;
      count += ce.count;
      if (!doBackward) continue;
      gemm(false, false, n, H, V, logits, head, ws.dxf.subarray(r0 * H, (r0 + n) * H), true);
      if (gradHead !== null) gemm(true, false, V, H, n, logits, xf, gradHead, true);
    }
    if (doBackward) this.backward(b, ws);
    return { loss, count };
  }

  private backward(b: TokenBatch, ws: Workspace): void {
    const c = this.config;
    const N = b.batch * b.seq;
    const H = c.hiddenSize;
    const I = c.intermediateSize;
    const qd = c.numHeads * c.headDim;
    const kd = c.numKvHeads * c.headDim;
    const dres = ws.dres;
    dres.fill(0, 0, N * H);
    rmsnormBackward(dres, this.gradNorm, ws.dxf, ws.xL, this.norm, ws.rstdF, N, H);
    for (let li = this.layers.length - 1; li >= 0; li--) {
      const L = this.layers[li];
      const a = ws.layers[li];
      const lin = L.linears;
      // MLP branch: out = x2 + down(silu(gate(xn2)) · up(xn2))
      ws.dh.fill(0, 0, N * I);
      linearBackward(lin.down_proj, ws.dh, dres, a.h, N, a.caches.down_proj, ws.gLora);
      swigluBackward(ws.dg, ws.du, ws.dh, a.g, a.u, a.sig, N * I);
      ws.dxn.fill(0, 0, N * H);
      linearBackward(lin.gate_proj, ws.dxn, ws.dg, a.xn2, N, a.caches.gate_proj, ws.gLora);
      linearBackward(lin.up_proj, ws.dxn, ws.du, a.xn2, N, a.caches.up_proj, ws.gLora);
      rmsnormBackward(dres, L.gradPostNorm, ws.dxn, a.x2, L.postNorm, a.rstd2, N, H);
      // attention branch: x2 = x + o(attention(rope(q(xn1)), rope(k(xn1)), v(xn1)))
      ws.datt.fill(0, 0, N * qd);
      linearBackward(lin.o_proj, ws.datt, dres, a.att, N, a.caches.o_proj, ws.gLora);
      ws.dq.fill(0, 0, N * qd);
      ws.dk.fill(0, 0, N * kd);
      ws.dv.fill(0, 0, N * kd);
      attentionBackward(
        ws.dq,
        ws.dk,
        ws.dv,
        ws.datt,
        a.probs,
        a.q,
        a.k,
        a.v,
        b.batch,
        b.seq,
        c.numHeads,
        c.numKvHeads,
        c.headDim,
        ws.attn,
      );
      applyRope(ws.dq, b.positions, N, c.numHeads, this.rope, true);
      applyRope(ws.dk, b.positions, N, c.numKvHeads, this.rope, true);
      ws.dxn.fill(0, 0, N * H);
      linearBackward(lin.q_proj, ws.dxn, ws.dq, a.xn1, N, a.caches.q_proj, ws.gLora);
      linearBackward(lin.k_proj, ws.dxn, ws.dk, a.xn1, N, a.caches.k_proj, ws.gLora);
      linearBackward(lin.v_proj, ws.dxn, ws.dv, a.xn1, N, a.caches.v_proj, ws.gLora);
      rmsnormBackward(dres, L.gradInputNorm, ws.dxn, a.x, L.inputNorm, a.rstd1, N, H);
    }
    if (this.gradEmbed !== null) embeddingBackward(this.gradEmbed, dres, b.tokens, N, H);
  }

  /**
   * Forward only; calls `onLogits(rowStart, rows, logits)` for consecutive chunks of rows with the logits
   * [rows × vocab] (the buffer is reused between calls). Rows with target < 0 are skipped unless `allRows`.
   */
  forwardLogits(
    b: TokenBatch,
    onLogits: (rowStart: number, rows: number, logits: Buf) => void,
    allRows = true,
  ): void {
    const c = this.config;
    const ws = this.forwardHidden(b, null, false);
    const N = b.batch * b.seq;
    const H = c.hiddenSize;
    const V = c.vocabSize;
    const head = this.lmHead ?? this.embed;
    for (let r0 = 0; r0 < N; r0 += LOGIT_CHUNK) {
      const n = Math.min(LOGIT_CHUNK, N - r0);
      if (!allRows) {
        let any = false;
        for (let r = r0; r < r0 + n; r++) if (b.targets[r] >= 0) any = true;
        if (!any) continue;
      }
      const logits = ws.logits.subarray(0, n * V);
      gemm(false, true, n, V, H, ws.xf.subarray(r0 * H, (r0 + n) * H), head, logits, false);
      onLogits(r0, n, logits);
    }
  }
  /**
   * Prefill for incremental decoding: the full forward over `rows` (unpacked token rows, right-padded),
   * storing every layer's rotated keys and values in `cache` (sequence r = row r), then the logits of each
   * row's last token [rows × vocab]. The cache's lengths become the rows' lengths; padding slots are
   * overwritten by the decode steps that follow before anything attends to them.
   */
  prefill(rows: number[][], cache: KvCache): Buf {
    const c = this.config;
    if (rows.length !== cache.rows)
      throw new RangeError(`prefill: ${rows.length} rows for a cache of ${cache.rows} sequences`);
    const b = causalBatch(rows);
    if (b.seq > cache.capacity)
      throw new RangeError(`prefill: ${b.seq} tokens exceed the cache capacity ${cache.capacity}`);
    const ws = this.forwardHidden(b, null, false, undefined, cache);
    const H = c.hiddenSize;
    const last = new this.ctor(rows.length * H);
    rows.forEach((row, r) => {
      if (row.length === 0) throw new RangeError(`prefill: row ${r} is empty`);
      const at = (r * b.seq + row.length - 1) * H;
      last.set(ws.xf.subarray(at, at + H), r * H);
      cache.lengths[r] = row.length;
    });
    const logits = new this.ctor(rows.length * c.vocabSize);
    gemm(false, true, rows.length, c.vocabSize, H, last, this.lmHead ?? this.embed, logits, false);
    return logits;
  }

  /**
   * One decode step: token tokens[i] is appended to cache sequence seqs[i] (at position = its current
   * length), runs through every layer attending over that sequence's cached keys, and the logits of the next
   * token come back [count × vocab]. Equivalent to the full forward over the whole sequence, at the cost of
   * one token.
   */
  decode(cache: KvCache, seqs: Int32Array, tokens: Int32Array): Buf {
    const c = this.config;
    const n = seqs.length;
    const A = this.ctor;
    const H = c.hiddenSize;
    const I = c.intermediateSize;
    const qd = c.numHeads * c.headDim;
    const kd = c.numKvHeads * c.headDim;
    const slots = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const t = tokens[i];
      if (t < 0 || t >= c.vocabSize || !Number.isInteger(t))
        throw new RangeError(`token id ${t} is outside the vocabulary (size ${c.vocabSize})`);
      slots[i] = cache.lengths[seqs[i]];
      if (slots[i] >= cache.capacity)
        throw new RangeError(`decode: sequence ${seqs[i]} is full (capacity ${cache.capacity})`);
    }
    let maxPos = 0;
    for (const p of slots) if (p > maxPos) maxPos = p;
    this.ensureRope(maxPos);
    const x = new A(n * H);
    const xn = new A(n * H);
    const x2 = new A(n * H);
    const rstd = new A(n);
    const q = new A(n * qd);
    const k = new A(n * kd);
    const v = new A(n * kd);
    const att = new A(n * qd);
    const g = new A(n * I);
    const u = new A(n * I);
    const sig = new A(n * I);
    const h = new A(n * I);
    const scores = new Float64Array(cache.capacity);
    embeddingForward(x, this.embed, tokens, n, H);
    for (let li = 0; li < this.layers.length; li++) {
      const L = this.layers[li];
      rmsnormForward(xn, rstd, x, L.inputNorm, n, H, c.rmsNormEps);
      linearForward(L.linears.q_proj, q, xn, n, null, null);
      linearForward(L.linears.k_proj, k, xn, n, null, null);
      linearForward(L.linears.v_proj, v, xn, n, null, null);
      applyRope(q, slots, n, c.numHeads, this.rope, false);
      applyRope(k, slots, n, c.numKvHeads, this.rope, false);
      cache.store(li, k, v, n, seqs, slots);
      cache.attend(li, att, q, n, c.numHeads, seqs, slots, c.slidingWindow, scores);
      linearForward(L.linears.o_proj, x2, att, n, null, null);
      addInto(x2, x, n * H);
      rmsnormForward(xn, rstd, x2, L.postNorm, n, H, c.rmsNormEps);
      linearForward(L.linears.gate_proj, g, xn, n, null, null);
      linearForward(L.linears.up_proj, u, xn, n, null, null);
      swigluForward(h, sig, g, u, n * I);
      linearForward(L.linears.down_proj, x, h, n, null, null);
      addInto(x, x2, n * H);
    }
    rmsnormForward(xn, rstd, x, this.norm, n, H, c.rmsNormEps);
    for (let i = 0; i < n; i++) cache.lengths[seqs[i]] = slots[i] + 1;
    const logits = new A(n * c.vocabSize);
    gemm(false, true, n, c.vocabSize, H, xn, this.lmHead ?? this.embed, logits, false);
    return logits;
  }
}
