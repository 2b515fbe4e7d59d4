/**
 * An independent, deliberately naive llama forward pass for one sequence (float64, nested loops, straight
 * from the published definitions) used to check the engine. It reads the HF-named parameters only.
 */
import type { ModelConfig } from "../../src/engine/config.js";

type Params = Map<string, ArrayLike<number>>;

function matvec(W: ArrayLike<number>, x: number[], out: number, bias?: ArrayLike<number>): number[] {
  const inF = x.length;
  const y: number[] = [];
  for (let o = 0; o < out; o++) {
    let s = bias ? bias[o] : 0;
    for (let i = 0; i < inF; i++) s += W[o * inF + i] * x[i];
    y.push(s);
  }
  return y;
}

function rms(x: number[], w: ArrayLike<number>, eps: number): number[] {
  const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
  return x.map((v, i) => (v / Math.sqrt(ms + eps)) * w[i]);
}

function rope(vec: number[], pos: number, theta: number): number[] {
  const d = vec.length;
  const out = vec.slice();
  for (let i = 0; i < d / 2; i++) {
    const ang = pos / Math.pow(theta, (2 * i) / d);
    out[i] = vec[i] * Math.cos(ang) - vec[i + d / 2] * Math.sin(ang);
    out[i + d / 2] = vec[i + d / 2] * Math.cos(ang) + vec[i] * Math.sin(ang);
  }
  return out;
}

/** logits[t][v] for tokens (default RoPE only). */
export function referenceLogits(c: ModelConfig, p: Params, tokens: number[]): number[][] {
  const H = c.hiddenSize;
  const d = c.headDim;
  const get = (n: string) => {
    const v = p.get(n);
    if (!v) throw new Error(`reference: missing ${n}`);
    return v;
  };
  const opt = (n: string) => p.get(n);
  const E = get("model.embed_tokens.weight");
  let xs = tokens.map((t) => Array.from({ length: H }, (_, i) => E[t * H + i]));
  for (let l = 0; l < c.numLayers; l++) {
    const pre = `model.layers.${l}`;
    const lin = (name: string, x: number[], out: number) =>
      matvec(get(`${pre}.${name}.weight`), x, out, opt(`${pre}.${name}.bias`));
    const xn = xs.map((x) => rms(x, get(`${pre}.input_layernorm.weight`), c.rmsNormEps));
    const q = xn.map((x) => lin("self_attn.q_proj", x, c.numHeads * d));
    const k = xn.map((x) => lin("self_attn.k_proj", x, c.numKvHeads * d));
    const v = xn.map((x) => lin("self_attn.v_proj", x, c.numKvHeads * d));
    const head = (vec: number[], h: number) => vec.slice(h * d, (h + 1) * d);
    const att = xs.map((_, t) => {
      const o: number[] = [];
      for (let h = 0; h < c.numHeads; h++) {
        const kh = Math.floor((h * c.numKvHeads) / c.numHeads);
        const qh = rope(head(q[t], h), t, c.ropeTheta);
        const scores: number[] = [];
        for (let j = 0; j <= t; j++) {
          const kj = rope(head(k[j], kh), j, c.ropeTheta);
          scores.push(qh.reduce((a, val, i) => a + val * kj[i], 0) / Math.sqrt(d));
        }
        const m = Math.max(...scores);
        const z = scores.reduce((a, s) => a + Math.exp(s - m), 0);
        const oh = new Array(d).fill(0);
        scores.forEach((s, j) => {
          const vj = head(v[j], kh);
          for (let i = 0; i < d; i++) oh[i] += (Math.exp(s - m) / z) * vj[i];
        });
        o.push(...oh);
      }
      return o;
    });
    const x2 = xs.map((x, t) => {
      const a = lin("self_attn.o_proj", att[t], H);
      return x.map((val, i) => val + a[i]);
    });
    xs = x2.map((x) => {
      const xn2 = rms(x, get(`${pre}.post_attention_layernorm.weight`), c.rmsNormEps);
      const g = lin("mlp.gate_proj", xn2, c.intermediateSize);
      const u = lin("mlp.up_proj", xn2, c.intermediateSize);
      const hdn = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
      const down = lin("mlp.down_proj", hdn, H);
      return x.map((val, i) => val + down[i]);
    });
  }
  const headW = opt("lm_head.weight") ?? E;
  return xs.map((x) => matvec(headW, rms(x, get("model.norm.weight"), c.rmsNormEps), c.vocabSize));
}
