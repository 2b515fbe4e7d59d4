import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MerglotError } from "../../src/errors.js";
import { GgufReader } from "../../src/formats/gguf.js";
import { writeLoraGguf, type GgufLoraModule, type GgufLoraFactors } from "../../src/formats/gguf-lora.js";

const dir = mkdtempSync(join(tmpdir(), "merglot-gguf-lora-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = () => join(dir, `${n++}.gguf`);

/** mulberry32: a tiny seeded PRNG for test data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Dense row-major C = s · B[out×r] · A[r×in], in float64. */
function delta(
  s: number,
  b: ArrayLike<number>,
  a: ArrayLike<number>,
  out: number,
  r: number,
  inF: number,
): Float64Array {
  const c = new Float64Array(out * inF);
  for (let i = 0; i < out; i++)
    for (let k = 0; k < r; k++) {
      const bik = s * b[i * r + k]!;
      for (let j = 0; j < inF; j++) c[i * inF + j]! += bik * a[k * inF + j]!;
    }
  return c;
}

/** Undo LlamaModel.permute on the rows of a [rows × cols] matrix, by numpy C-order index arithmetic. */
function naiveUnpermute(w: Float64Array, rows: number, cols: number, nHead: number): Float64Array {
  const half = rows / nHead / 2;
  const out = new Float64Array(w.length);
  for (let h = 0; h < nHead; h++)
    for (let i = 0; i < half; i++)
      for (let t = 0; t < 2; t++)
        for (let c = 0; c < cols; c++)
          out[((h * 2 + t) * half + i) * cols + c] = w[((h * half + i) * 2 + t) * cols + c]!;
  return out;
}

function maxRelErr(got: Float64Array, want: Float64Array): number {
  let maxAbs = 0;
  let maxErr = 0;
  for (let i = 0; i < want.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(want[i]!));
    maxErr = Math.max(maxErr, Math.abs(got[i]! - want[i]!));
  }
  return maxErr / maxAbs;
}

// A small llama with GQA: hidden 16, 4 query heads of 4, 2 kv heads (k/v out 8), MLP 24.
const HEADS = 4;
const KV_HEADS = 2;
const MODULES: GgufLoraModule[] = [
  // plain LoRA: alpha 8, r 4 → s = 2
  {
    hfName: "base_model.model.model.layers.0.self_attn.q_proj",
    rank: 4,
    inFeatures: 16,
    outFeatures: 16,
    scaling: 2,
  },
  // rsLoRA with a rank_pattern: alpha 8, r 2 → s = 8/√2
  {
    hfName: "model.layers.0.self_attn.k_proj",
    rank: 2,
    inFeatures: 16,
    outFeatures: 8,
    scaling: 8 / Math.SQRT2,
  },
  // alpha_pattern: alpha 1.5, r 3 → s = 0.5
  { hfName: "model.layers.0.self_attn.v_proj", rank: 3, inFeatures: 16, outFeatures: 8, scaling: 0.5 },
  { hfName: "model.layers.0.self_attn.o_proj", rank: 4, inFeatures: 16, outFeatures: 16, scaling: 2 },
  { hfName: "model.layers.1.mlp.down_proj", rank: 5, inFeatures: 24, outFeatures: 16, scaling: -0.75 },
  { hfName: "model.layers.1.self_attn.q_proj", rank: 1, inFeatures: 16, outFeatures: 16, scaling: 3 },
];

function makeFactors(modules: GgufLoraModule[], seed: number): GgufLoraFactors[] {
  const r = rng(seed);
  return modules.map((m) => ({
    a: Float32Array.from({ length: m.rank * m.inFeatures }, () => r() * 2 - 1),
    b: Float32Array.from({ length: m.outFeatures * m.rank }, () => r() * 2 - 1),
  }));
}

const GGUF_NAMES = [
  "blk.0.attn_q.weight",
  "blk.0.attn_k.weight",
  "blk.0.attn_v.weight",
  "blk.0.attn_output.weight",
  "blk.1.ffn_down.weight",
  "blk.1.attn_q.weight",
];

/**
 * Read an exported file back and check, for every module, that what llama.cpp computes — scale·B·A with
 * scale = alpha / rank (rank = lora_b's ne[0]) in f32, rows un-permuted for llama q/k — equals PEFT's s·B·A.
 */
function checkRoundTrip(
  path: string,
  arch: "llama" | "qwen2",
  modules: GgufLoraModule[],
  factors: GgufLoraFactors[],
  tol: number,
): GgufReader {
  const r = GgufReader.open(path);
  const alpha = r.getNumber("adapter.lora.alpha")!;
  assert.equal(r.getValue("adapter.lora.alpha")!.type, "f32");
  modules.forEach((m, i) => {
    const name = GGUF_NAMES[i]!;
    const ta = r.get(`${name}.lora_a`)!;
    const tb = r.get(`${name}.lora_b`)!;
    // llama-adapter.cpp: model ne[0] (= in) == a.ne[0], model ne[1] (= out) == b.ne[1], a.ne[1] == b.ne[0]
    assert.deepEqual(ta.ne, [m.inFeatures, m.rank]);
    assert.deepEqual(tb.ne, [m.rank, m.outFeatures]);
    const rank = tb.ne[0]!;
    const scale = alpha === 0 ? 1 : Math.fround(Math.fround(alpha) / rank);
    let got = delta(scale, r.readFloat32(tb.name), r.readFloat32(ta.name), m.outFeatures, rank, m.inFeatures);
    const permuted = arch === "llama" && /\.(q|k)_proj$/.test(m.hfName);
    if (permuted) {
      const heads = m.hfName.endsWith("q_proj") ? HEADS : KV_HEADS;
      got = naiveUnpermute(got, m.outFeatures, m.inFeatures, heads);
    }
    const want = delta(m.scaling, factors[i]!.b, factors[i]!.a, m.outFeatures, m.rank, m.inFeatures);
    const err = maxRelErr(got, want);
    assert.ok(err < tol, `${m.hfName}: relative error ${err}`);
  });
  return r;
}

describe("writeLoraGguf", () => {
  test("llama: metadata, shapes, folded scaling and permuted q/k rows reproduce PEFT's s·B·A", () => {
    const factors = makeFactors(MODULES, 1);
    const p = tmp();
    const res = writeLoraGguf(p, {
      architecture: "llama",
      headCount: HEADS,
      headCountKv: KV_HEADS,
      modules: MODULES,
      factors: (_m, i) => factors[i]!,
      name: "test adapter",
    });
    assert.equal(res.alpha, 8); // scaling·rank of the first module
    assert.equal(res.tensorCount, 12);
    // s·r per module: 8, 8√2 (rsLoRA), 1.5 (alpha_pattern), 8, -3.75, 3 (rank 1): four differ from alpha 8
    assert.equal(res.foldedModules, 4);
    const r = checkRoundTrip(p, "llama", MODULES, factors, 1e-6);
    assert.equal(r.getString("general.type"), "adapter");
    assert.equal(r.getString("adapter.type"), "lora");
    assert.equal(r.getString("general.architecture"), "llama");
    assert.equal(r.getString("general.name"), "test adapter");
    assert.equal(r.getNumber("adapter.lora.alpha"), 8);
    assert.deepEqual(
      r.tensors.map((t) => t.name),
      GGUF_NAMES.flatMap((g) => [`${g}.lora_a`, `${g}.lora_b`]),
    );
    // lora_A is written as PEFT stores it; lora_B of o_proj (s·r = alpha, not permuted) too.
    for (const [i, m] of MODULES.entries()) {
      assert.deepEqual(r.readFloat32(`${GGUF_NAMES[i]}.lora_a`), factors[i]!.a, m.hfName);
    }
    assert.deepEqual(r.readFloat32("blk.0.attn_output.weight.lora_b"), factors[3]!.b);
    // q's B has its scaling folded away (s·r = 8 = alpha) but its rows permuted: same values, new order
    const qb = r.readFloat32("blk.0.attn_q.weight.lora_b");
    assert.notDeepEqual(qb, factors[0]!.b);
    assert.deepEqual([...qb].sort(), [...factors[0]!.b].sort());
    r.close();
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes(".tmp-")),
      [],
    );
  });

  test("qwen2: no permutation; explicit alpha and alpha 0 (scale 1) both reproduce s·B·A", () => {
    const factors = makeFactors(MODULES, 3);
    for (const alpha of [1, 0, 16.5]) {
      const p = tmp();
      const res = writeLoraGguf(p, {
        architecture: "qwen2",
        headCount: HEADS,
        headCountKv: KV_HEADS,
        modules: MODULES,
        factors: (_m, i) => factors[i]!,
        alpha,
      });
      assert.equal(res.alpha, alpha);
      checkRoundTrip(p, "qwen2", MODULES, factors, 1e-6).close();
    }
  });

  test("F16 and BF16 files agree within their precision", () => {
    const factors = makeFactors(MODULES, 4);
    for (const [dtype, tol] of [
      ["F16", 3e-3],
      ["BF16", 2e-2],
    ] as const) {
      const p = tmp();
      writeLoraGguf(p, {
        architecture: "llama",
        headCount: HEADS,
        headCountKv: KV_HEADS,
        modules: MODULES,
        factors: (_m, i) => factors[i]!,
        dtype,
      });
      const r = checkRoundTrip(p, "llama", MODULES, factors, tol);
      assert.ok(r.tensors.every((t) => t.type === dtype));
      assert.equal(r.getNumber("general.file_type"), dtype === "F16" ? 1 : 32);
      r.close();
    }
  });

  test("fetches factors one module at a time, in order", () => {
    const factors = makeFactors(MODULES, 5);
    const calls: number[] = [];
    writeLoraGguf(tmp(), {
      architecture: "llama",
      headCount: HEADS,
      headCountKv: KV_HEADS,
      modules: MODULES,
      factors: (_m, i) => (calls.push(i), factors[i]!),
    });
    assert.deepEqual(calls, [0, 1, 2, 3, 4, 5]);
  });

  test("refuses what llama.cpp could not load, naming the module; leaves no file", () => {
    const good = MODULES[3]!;
    const fac = makeFactors([good], 6)[0]!;
    const run = (m: Partial<GgufLoraModule>, f: Partial<GgufLoraFactors> = {}, extra = {}) => {
      const p = tmp();
      try {
        writeLoraGguf(p, {
          architecture: "llama",
          headCount: HEADS,
          headCountKv: KV_HEADS,
          modules: [{ ...good, ...m }],
          factors: () => ({ ...fac, ...f }),
          ...extra,
        });
      } finally {
        assert.deepEqual(
          readdirSync(dir).filter((x) => x.includes(".tmp-")),
          [],
        );
      }
    };
    const cases: [() => void, RegExp][] = [
      [
        () => run({ hfName: "model.layers.0.self_attn.rotary" }),
        /"model.layers.0.self_attn.rotary" has no llama.cpp/,
      ],
      [() => run({ hfName: "model.embed_tokens" }), /token embeddings cannot be exported/],
      [() => run({ hfName: "model.layers.0.self_attn.o_proj.weight" }), /without a .weight\/.bias suffix/],
      [() => run({ hfName: "model.layers.0.input_layernorm" }), /is a norm/],
      [() => run({}, { a: new Float32Array(3) }), /o_proj": lora_A has 3 values, expected 4 × 16/],
      [() => run({}, { b: new Float32Array(3) }), /o_proj": lora_B has 3 values, expected 16 × 4/],
      [() => run({ rank: 0 }), /rank must be a positive integer/],
      [() => run({ scaling: NaN }), /scaling must be a finite number/],
      [
        () => run({ hfName: "model.layers.0.self_attn.k_proj", outFeatures: 6 }, { b: new Float32Array(24) }),
        /6 output rows do not split into 2 heads/,
      ],
      [() => run({}, {}, { headCountKv: 0 }), /head counts must be positive integers/],
      [() => run({}, {}, { alpha: Infinity }), /alpha must be a finite number/],
      [() => run({}, {}, { architecture: "gpt2" }), /architecture "gpt2" is not supported/],
    ];
    for (const [fn, re] of cases) {
      assert.throws(fn, (e: unknown) => e instanceof MerglotError && re.test(e.message), String(re));
    }
    assert.throws(
      () =>
        writeLoraGguf(tmp(), {
          architecture: "llama",
          headCount: HEADS,
          headCountKv: KV_HEADS,
          modules: [good, { ...good, hfName: "base_model.model." + good.hfName }],
          factors: () => fac,
        }),
      /appears twice/,
    );
  });
});
