/**
 * The key/value cache for incremental decoding: per layer, the RoPE-rotated keys and the values of every
 * token seen so far, for `rows` independent sequences. A decode step then computes q/k/v for one new token
 * per sequence and attends over the cached keys instead of re-running the whole prefix.
 *
 * Layout per layer: [rows × kvHeads × capacity × headDim] (head-major, so one head's keys are contiguous).
 * Slot t of a sequence holds its t-th token; the attention mask is causal plus the sliding window, exactly as
 * the full forward's (layers.ts maskedSoftmax): token i sees tokens max(0, i − window + 1)..i.
 */
import type { ModelConfig } from "./config.js";
import type { Buf } from "./kernels.js";

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;

export class KvCache {
  readonly keys: Buf[];
  readonly values: Buf[];
  readonly nkv: number;
  readonly d: number;
  /** Tokens held per sequence (the next free slot). */
  readonly lengths: Int32Array;

  constructor(
    config: ModelConfig,
    readonly rows: number,
    readonly capacity: number,
    ctor: Ctor,
  ) {
    if (!Number.isInteger(rows) || rows < 1) throw new RangeError(`KvCache: rows must be ≥ 1, got ${rows}`);
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`KvCache: capacity must be ≥ 1, got ${capacity}`);
    this.nkv = config.numKvHeads;
    this.d = config.headDim;
    const n = rows * this.nkv * capacity * this.d;
    this.keys = Array.from({ length: config.numLayers }, () => new ctor(n));
    this.values = Array.from({ length: config.numLayers }, () => new ctor(n));
    this.lengths = new Int32Array(rows);
  }

  /**
   * Store k and v of `count` tokens ([count × kvHeads·headDim], row-major as the projections write them):
   * token i goes to sequence rowOf[i], slot slotOf[i].
   */
  store(layer: number, k: Buf, v: Buf, count: number, rowOf: Int32Array, slotOf: Int32Array): void {
    const { nkv, d, capacity } = this;
    const K = this.keys[layer];
    const V = this.values[layer];
    for (let i = 0; i < count; i++) {
      const row = rowOf[i];
      const slot = slotOf[i];
      if (slot < 0 || slot >= capacity)
        throw new RangeError(`KvCache: slot ${slot} outside 0..${capacity - 1}`);
      for (let h = 0; h < nkv; h++) {
        const src = (i * nkv + h) * d;
        const dst = ((row * nkv + h) * capacity + slot) * d;
        for (let c = 0; c < d; c++) {
          K[dst + c] = k[src + c];
          V[dst + c] = v[src + c];
        }
      }
    }
  }

  /**
   * Attention of one query token per entry: q [count × nh·d] (rotated), the query of entry i sits at slot
   * slotOf[i] of sequence rowOf[i] and sees slots max(0, slot − window + 1)..slot. Writes out [count × nh·d].
   * `scores` is scratch of at least `capacity` values.
   */
  attend(
    layer: number,
    out: Buf,
    q: Buf,
    count: number,
    nh: number,
    rowOf: Int32Array,
    slotOf: Int32Array,
    window: number | null,
    scores: Float64Array,
  ): void {
    const { nkv, d, capacity } = this;
    const K = this.keys[layer];
    const V = this.values[layer];
    const group = nh / nkv;
    const scale = 1 / Math.sqrt(d);
    const win = window ?? Number.MAX_SAFE_INTEGER;
    for (let i = 0; i < count; i++) {
      const row = rowOf[i];
      const last = slotOf[i];
      const j0 = Math.max(0, last - win + 1);
      for (let h = 0; h < nh; h++) {
        const qo = (i * nh + h) * d;
        const base = (row * nkv + Math.floor(h / group)) * capacity;
        let max = -Infinity;
        for (let j = j0; j <= last; j++) {
          const ko = (base + j) * d;
          let s = 0;
          for (let c = 0; c < d; c++) s += q[qo + c] * K[ko + c];
          s *= scale;
          scores[j] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let j = j0; j <= last; j++) {
          const e = Math.exp(scores[j] - max);
          scores[j] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let c = 0; c < d; c++) out[qo + c] = 0;
        for (let j = j0; j <= last; j++) {
          const p = scores[j] * inv;
          const vo = (base + j) * d;
          for (let c = 0; c < d; c++) out[qo + c] += p * V[vo + c];
        }
      }
    }
  }
}
