/**
 * DELLA, DELLA-linear, Model Breadcrumbs (plain and TIES) and SCE: hand-derived cases for their selection rules,
 * then every method in every space against naive dense references written here from the papers' formulas
 * (DELLA: arXiv:2406.11617 §3; Breadcrumbs: arXiv:2312.06795; SCE: arXiv:2408.07990), on the hand-sized
 * fixture modules and on larger random ones.
 */
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import {
  applyBreadcrumbs,
  breadcrumbsCuts,
  magprune,
  MagnitudeRanker,
  ramMerge,
  sceMerge,
} from "../../src/merge/operators.js";
import { dropSeed } from "../../src/merge/binder.js";
import { freshBuffers } from "../../src/merge/methods.js";
import { parseRecipe } from "../../src/merge/recipe.js";
import { Rng } from "../../src/tensor/linalg.js";
import { magnitudeMix, mulberry32 } from "../helpers/rand.js";
import {
  expectMerglotError,
  makeAdapter,
  readDeltas,
  SMALL_MODULES,
  tempDir,
  writeRecipe,
  type FixtureModule,
  type ModuleShape,
} from "../helpers/fixtures.js";
import {
  delta,
  disjointRef,
  electRef,
  knotsRef,
  matmul,
  relErr,
  weightedSumRef,
  type Dense,
} from "../helpers/reference.js";

const f = (xs: number[]) => Float32Array.from(xs);
const close = (got: ArrayLike<number>, want: number[], tol = 1e-6) =>
  want.forEach((w, i) => assert.ok(Math.abs(got[i]! - w) <= tol, `entry ${i}: ${got[i]} vs ${w}`));

/** A stream that returns the given uniforms u (as nextU32 = u·2³²), in order. */
function scripted(us: number[]): { nextU32(): number } {
  let k = 0;
  return { nextU32: () => Math.floor(us[k++]! * 4294967296) };
}

describe("selection rules, hand-derived", () => {
  test("DELLA's row order: largest magnitude first, equal magnitudes (±, −0) by lower index, as a comparison sort", () => {
    const next = mulberry32(11);
    for (const cols of [1, 7, 2048, 4099]) {
      const ranker = new MagnitudeRanker(cols);
      const x = magnitudeMix(next, cols * 3);
      const bits = new Uint32Array(x.buffer);
      for (let r0 = 0; r0 < x.length; r0 += cols) {
        const naive = Array.from({ length: cols }, (_, j) => j).sort(
          (a, b) => Math.abs(x[r0 + b]!) - Math.abs(x[r0 + a]!) || a - b,
        );
        assert.deepEqual([...ranker.row(bits, r0)], naive, `cols ${cols}, row at ${r0}`);
      }
    }
  });

  test("DELLA: row ranks → drop probabilities p_min + ε·r/n, rescale 1/(1 − p)", () => {
    // row [1, −4, 2, 0], ρ = 0.5, ε = 0.4: ranks (largest first) −4→0, 2→1, 1→2, 0→3; p_min = 0.5 − 0.2 = 0.3
    // p = 0.3, 0.4, 0.5, 0.6 by rank, so keep probabilities q: entry0 0.5, entry1 0.7, entry2 0.6, entry3 0.4
    // draws (flat order) 0.49 < 0.5 keep → 1/0.5 = 2; 0.71 ≥ 0.7 drop; 0.59 < 0.6 keep → 2/0.6; 0 < 0.4 keep 0
    const got = magprune(f([1, -4, 2, 0]), 0.5, 0.4, 4, scripted([0.49, 0.71, 0.59, 0]), true);
    close(got, [2, 0, 2 / 0.6, 0]);
    // the same without rescale; and a second row is ranked on its own: [3, 3] → index 0 ranks first (q 0.7),
    // index 1 second (q 0.6), with n = 2: p = 0.3 + 0.4·r/2 → q = 0.7, 0.5
    const two = magprune(f([1, -4, 2, 0, 3, 3]), 0.5, 0.4, 4, scripted([0.49, 0.71, 0.59, 0]), false);
    assert.deepEqual([...two.subarray(0, 4)], [1, 0, 2, 0]);
    const row2 = magprune(f([3, 3]), 0.5, 0.4, 2, scripted([0.69, 0.51]), true);
    close(row2, [3 / 0.7, 0]);
    // ρ = 1 keeps everything unchanged (no draws needed)
    assert.deepEqual(magprune(f([1, -2]), 1, 0.4, 2, scripted([]), true), f([1, -2]));
  });

  test("Breadcrumbs: drop the n_top = ⌊γN⌋ largest, keep the next ⌊ρN⌋", () => {
    const x = f([5, -1, 3, 0.5, -4, 2, 1.5, -0.2, 6, 2.5]);
    // magnitudes descending: 6(8) 5(0) 4(4) 3(2) 2.5(9) 2(5) 1.5(6) 1(1) 0.5(3) 0.2(7)
    const cut = (rho: number, g: number) => applyBreadcrumbs(x, breadcrumbsCuts(x, rho, g));
    // ρ = 0.5, γ = 0.1: drop 6, keep 5 4 3 2.5 2
    assert.deepEqual(cut(0.5, 0.1), f([5, 0, 3, 0, -4, 2, 0, 0, 0, 2.5]));
    // γ = 0.8 would leave fewer than ⌊ρN⌋ = 5: only N − 5 = 5 outliers go, the 5 smallest stay
    assert.deepEqual(cut(0.5, 0.8), f([0, -1, 0, 0.5, 0, 2, 1.5, -0.2, 0, 0]));
    // γ = 0 is magnitude pruning; ρ = 1 keeps everything
    assert.deepEqual(cut(0.3, 0), f([5, 0, 0, 0, -4, 0, 0, 0, 6, 0]));
    assert.deepEqual(cut(1, 0.1), x);
    // equal magnitudes: the lower index counts as larger
    const t = f([2, 2, 2, 1]);
    assert.deepEqual(applyBreadcrumbs(t, breadcrumbsCuts(t, 0.5, 0.25)), f([0, 2, 2, 0]));
    // chunked application with one set of cuts equals one pass
    const cuts = breadcrumbsCuts(x, 0.5, 0.1);
    const parts = [x.subarray(0, 4), x.subarray(4)].map((c) => [...applyBreadcrumbs(c, cuts)]);
    assert.deepEqual(f(parts.flat()), cut(0.5, 0.1));
  });

  test("SCE: variance selection, squared-magnitude weights, minority signs erased", () => {
    const x1 = f([1, 2, -3, 4, 2]);
    const x2 = f([3, 2, 1, -4, 6]);
    // variances (a−b)²/4 = 1, 0, 4, 16, 4; 4 nonzero; select_topk 0.5 → k = 2: entry 3, then entry 2 (the lower
    // index of the two 4s). x̂1 = [0,0,−3,4,0], x̂2 = [0,0,1,−4,0]; entry 2: γ = −1, only x̂1 agrees → −3;
    // entry 3: sum 0 → γ = +1, only x̂1 agrees → 4
    close(sceMerge([x1, x2], [1, 1], 0.5, "total", freshBuffers), [0, 0, -3, 4, 0]);
    // select_topk 1, weights (1, 2): ω1 = 1+4+9+16+4 = 34, ω2 = 9+4+1+16+36 = 66
    // entry 0: (34·1 + 2·66·3)/100 = 4.3; entry 1: (68 + 264)/100 = 3.32; entry 2: −3; entry 3: 4;
    // entry 4: (68 + 792)/100 = 8.6
    close(sceMerge([x1, x2], [1, 2], 1, "total", freshBuffers), [4.3, 3.32, -3, 4, 8.6], 1e-5);
  });
});

test("RAM: lone contributions kept, shared ones averaged; |x| ≤ ε does not contribute", () => {
  const xs = [f([0.5, 2, -1, 0.0625, 3]), f([0, 4, 0.125, -0.0625, -1]), f([0, 0, 0.0625, 0, 2])];
  // ε = 0.125: entry 0 only x1 → 0.5; entry 1: x1, x2 → (2 + 4)/2; entry 2: x1 only (0.125 is not > ε) → −1;
  // entry 3: nobody → 0; entry 4: all three → (3 − 1 + 2)/3
  close(ramMerge(xs, [1, 1, 1], 0.125), [0.5, 3, -1, 0, 4 / 3]);
  // weights multiply in the numerator only
  close(ramMerge(xs, [2, 1, 1], 0.125), [1, 4, -2, 0, 7 / 3]);
});

// ---- naive dense references, from the papers' formulas ----

/** MAGPRUNE on a rows × cols tensor: ranks by sorting each row, draws from the documented stream. */
function magpruneRef(
  x: ArrayLike<number>,
  cols: number,
  rho: number,
  eps: number,
  rng: { nextU32(): number },
): Dense {
  const out = new Float64Array(x.length);
  if (rho >= 1) return Float64Array.from(x);
  for (let r0 = 0; r0 < x.length; r0 += cols) {
    const idx = Array.from({ length: cols }, (_, j) => j).sort(
      (p, q) => Math.abs(x[r0 + q]!) - Math.abs(x[r0 + p]!) || p - q,
    );
    const drop = new Float64Array(cols);
    idx.forEach((j, rank) => (drop[j] = 1 - rho - eps / 2 + (eps / cols) * rank));
    for (let j = 0; j < cols; j++) {
      const keep = 1 - drop[j]!;
      const u = rng.nextU32();
      out[r0 + j] = u < keep * 4294967296 ? x[r0 + j]! / keep : 0;
    }
  }
  return out;
}

/** Breadcrumbs by sorting: positions n_top .. n_top + k − 1 of the magnitude order survive. */
function breadcrumbsRef(x: ArrayLike<number>, rho: number, g: number): Dense {
  const n = x.length;
  if (rho >= 1) return Float64Array.from(x);
  const k = Math.floor(rho * n);
  const nTop = Math.min(Math.floor(g * n), n - k);
  const idx = Array.from({ length: n }, (_, i) => i).sort(
    (p, q) => Math.abs(x[q]!) - Math.abs(x[p]!) || p - q,
  );
  const out = new Float64Array(n);
  for (let t = nTop; t < nTop + k; t++) out[idx[t]!] = x[idx[t]!]!;
  return out;
}

function sceRef(xs: ArrayLike<number>[], w: number[], topk: number): Dense {
  const n = xs[0]!.length;
  const m = xs.length;
  let sel = xs.map((x) => Float64Array.from(x));
  if (topk < 1) {
    const v = Array.from({ length: n }, (_, j) => {
      const mean = xs.reduce((s, x) => s + x[j]!, 0) / m;
      return xs.reduce((s, x) => s + (x[j]! - mean) ** 2, 0) / m;
    });
    const k = Math.floor(topk * v.filter((a) => a !== 0).length);
    const order = Array.from({ length: n }, (_, j) => j).sort((p, q) => v[q]! - v[p]! || p - q);
    const keep = new Set(order.slice(0, k));
    sel = sel.map((x) => x.map((a, j) => (keep.has(j) ? a : 0)));
  }
  const omega = sel.map((x) => x.reduce((s, a) => s + a * a, 0) / n); // the paper's mean square
  const g = electRef(sel, "total");
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let num = 0;
    let den = 0;
    sel.forEach((x, i) => {
      if (x[j] !== 0 && Math.sign(x[j]!) === g[j]) {
        num += w[i]! * omega[i]! * x[j]!;
        den += omega[i]!;
      }
    });
    out[j] = den > 0 ? num / den : 0;
  }
  return out;
}

function ramRef(xs: ArrayLike<number>[], w: number[], eps: number): Dense {
  const out = new Float64Array(xs[0]!.length);
  for (let j = 0; j < out.length; j++) {
    const contributors = xs.map((x, i) => i).filter((i) => Math.abs(xs[i]![j]!) > eps);
    const sum = contributors.reduce((s, i) => s + w[i]! * xs[i]![j]!, 0);
    out[j] = contributors.length ? sum / contributors.length : 0;
  }
  return out;
}

const SEED = 7;
const EPS = 0.2;
const GAMMA = 0.05;
const TOPK = 0.6;

/** One method on dense task tensors (rows of `cols`), as the recipe of runMerge below configures it. */
function extraRef(
  method: string,
  xs: ArrayLike<number>[],
  w: number[],
  rho: number[],
  cols: number,
  streamKey: { module: string; key: string },
): Dense {
  const stream = (i: number) => new Rng(dropSeed(SEED, i, streamKey.module, streamKey.key));
  const mag = () => xs.map((x, i) => magpruneRef(x, cols, rho[i]!, EPS, stream(i)));
  const bc = () => xs.map((x, i) => breadcrumbsRef(x, rho[i]!, GAMMA));
  switch (method) {
    case "della": {
      const t = mag();
      return disjointRef(t, w, electRef(t, "total"));
    }
    case "della_linear":
      return weightedSumRef(mag(), w);
    case "breadcrumbs":
      return weightedSumRef(bc(), w);
    case "breadcrumbs_ties": {
      const t = bc();
      return disjointRef(t, w, electRef(t, "total"));
    }
    case "sce":
      return sceRef(xs, w, TOPK);
    case "ram":
      return ramRef(xs, w, EPS);
    default:
      throw new Error(method);
  }
}

const METHODS = ["della", "della_linear", "breadcrumbs", "breadcrumbs_ties", "sce", "ram"];
const RANDOM_MODULES: ModuleShape[] = [
  { name: "model.layers.0.self_attn.o_proj", out: 40, in: 24, rank: 4 },
  { name: "model.layers.0.mlp.up_proj", out: 17, in: 33, rank: 4 },
];

const tmp = tempDir();
after(() => tmp.cleanup());

for (const [label, shapes] of [
  ["hand sizes", SMALL_MODULES],
  ["random sizes", RANDOM_MODULES],
] as const) {
  const N = 3;
  const adapters: FixtureModule[][] = [];
  for (let i = 0; i < N; i++)
    adapters.push(
      makeAdapter(join(tmp.dir, `${label}-a${i}`), { seed: 300 + i, alpha: 8 + 4 * i, modules: shapes }),
    );
  const weights = [1, 0.5, -0.75];
  const densities = [0.5, 0.7, 0.3];
  let counter = 0;
  const runMerge = async (method: string, extra: string, threads = 1, seed = SEED) => {
    const models = adapters
      .map(
        (_, i) =>
          `  - model: ${label}-a${i}\n    parameters: { weight: ${weights[i]}, density: ${densities[i]} }`,
      )
      .join("\n");
    const params = `parameters: { epsilon: ${EPS}, gamma: ${GAMMA}, select_topk: ${TOPK} }\n`;
    const yaml = `merge_method: ${method}\nmodels:\n${models}\nseed: ${seed}\n${params}${extra}`;
    const name = `${label.replace(" ", "-")}-r${counter++}`;
    const out = join(tmp.dir, `${name}-out`);
    await merge(writeRecipe(tmp.dir, `${name}.yaml`, yaml), { output: out, threads });
    return { deltas: readDeltas(out), dir: out };
  };

  describe(`delta space (${label})`, () => {
    for (const method of METHODS) {
      test(`${method} equals its dense definition`, async () => {
        const { deltas } = await runMerge(method, "output: { rank: exact, dtype: float32 }\n");
        for (const [mi, m] of adapters[0]!.entries()) {
          const xs = adapters.map((ad) => delta(ad[mi]!));
          const ref = extraRef(method, xs, weights, densities, m.in, { module: m.name, key: "delta" });
          const g = deltas.get(m.name)!;
          assert.ok(relErr(g.d, ref) < 1e-5, `${method} ${m.name}: rel err ${relErr(g.d, ref)}`);
        }
      });
    }
  });

  describe(`factors space (${label})`, () => {
    for (const method of METHODS) {
      test(`${method} on the A and B lists (PEFT add_weighted_adapter)`, async () => {
        const { deltas } = await runMerge(method, "space: factors\noutput: { dtype: float32 }\n");
        for (const [mi, m] of adapters[0]!.entries()) {
          const ws = adapters.map((ad, i) => weights[i]! * ad[mi]!.scaling);
          const wA = ws.map((v) => Math.sign(v) * Math.sqrt(Math.abs(v)));
          const wB = ws.map((v) => Math.sqrt(Math.abs(v)));
          const as = adapters.map((ad) => ad[mi]!.a);
          const bs = adapters.map((ad) => ad[mi]!.b);
          const A = extraRef(method, as, wA, densities, m.in, { module: m.name, key: "lora_A" });
          const B = extraRef(method, bs, wB, densities, m.rank, { module: m.name, key: "lora_B" });
          const ref = matmul(B, A, m.out, m.rank, m.in);
          const g = deltas.get(m.name)!;
          assert.ok(relErr(g.d, ref) < 1e-5, `${method} ${m.name}: rel err ${relErr(g.d, ref)}`);
        }
      });
    }
  });

  describe(`KnOTS space (${label})`, () => {
    for (const method of METHODS) {
      test(`knots_${method} equals the dense KnOTS definition`, async () => {
        const { deltas } = await runMerge(`knots_${method}`, "output: { dtype: float32 }\n");
        for (const [mi, m] of adapters[0]!.entries()) {
          const { u, k, tasks } = knotsRef(
            adapters.map((ad) => delta(ad[mi]!)),
            m.out,
            m.in,
          );
          // singular-vector signs may differ from the library's, but they flip a whole row of every x_i:
          // magnitudes (DELLA's ranks, Breadcrumbs' cuts), variances and elected signs follow the flip
          const merged = extraRef(method, tasks, weights, densities, m.in, { module: m.name, key: "knots" });
          const ref = matmul(u, merged, m.out, k, m.in);
          const g = deltas.get(m.name)!;
          assert.ok(relErr(g.d, ref) < 1e-5, `knots_${method} ${m.name}: rel err ${relErr(g.d, ref)}`);
        }
      });
    }
  });

  if (label === "random sizes") {
    test("della and sce: same seed → byte-identical output with 1 or 2 threads; another seed differs", async () => {
      for (const method of ["della", "sce"]) {
        const one = await runMerge(method, "output: { rank: exact, dtype: float32 }\n", 1);
        const two = await runMerge(method, "output: { rank: exact, dtype: float32 }\n", 2);
        const bytes = (d: string) => readFileSync(join(d, "adapter_model.safetensors"));
        assert.deepEqual(bytes(one.dir), bytes(two.dir), method);
      }
      const a = await runMerge("della", "output: { rank: exact, dtype: float32 }\n");
      const b = await runMerge("della", "output: { rank: exact, dtype: float32 }\n", 1, SEED + 1);
      assert.notDeepEqual(
        readFileSync(join(a.dir, "adapter_model.safetensors")),
        readFileSync(join(b.dir, "adapter_model.safetensors")),
      );
    });
  }
}

describe("recipes", () => {
  const base = (method: string, params: string, density = 0.5) => ({
    merge_method: method,
    models: [{ model: "a", parameters: { density } }],
    parameters: params ? (JSON.parse(params) as Record<string, unknown>) : undefined,
  });

  test("defaults: epsilon 0.1, gamma 0.01, select_topk 1, t 0.5, max_iter 10, tol 1e-5, common_space_fraction 0.8; unread options are reported", () => {
    const r = parseRecipe(base("della", ""), "r.yaml", "/");
    assert.deepEqual(r.methodParams, {
      epsilon: 0.1,
      gamma: 0.01,
      select_topk: 1,
      t: 0.5,
      max_iter: 10,
      tol: 1e-5,
      common_space_fraction: 0.8,
    });
    assert.equal(parseRecipe(base("ram", ""), "r.yaml", "/").methodParams.epsilon, 1e-5); // mergekit's
    const t = parseRecipe(base("ties", '{"epsilon": 0.2, "select_topk": 0.5}'), "r.yaml", "/");
    assert.deepEqual(t.unused, ["epsilon", "select_topk"]);
    const b = parseRecipe(base("breadcrumbs", '{"density_scope": "global"}'), "r.yaml", "/");
    assert.equal(b.densityScope, "tensor");
    assert.deepEqual(b.unused, ["density_scope"]);
  });

  test("DELLA refuses a density whose drop probabilities leave [0, 1]", () => {
    expectMerglotError(
      () => parseRecipe(base("della", '{"epsilon": 0.4}', 0.1), "r.yaml", "/"),
      "recipe.field",
      /^r\.yaml: models\[0\]\.parameters\.density: della needs epsilon\/2 ≤ density/,
    );
    expectMerglotError(
      () => parseRecipe(base("knots_della_linear", '{"epsilon": 0.4}', 0.9), "r.yaml", "/"),
      "recipe.field",
      /density 0\.9, epsilon 0\.4/,
    );
    // density 1 keeps everything, whatever epsilon
    assert.equal(parseRecipe(base("della", '{"epsilon": 0.4}', 1), "r.yaml", "/").models[0]!.density, 1);
    expectMerglotError(
      () => parseRecipe(base("sce", '{"select_topk": 0}'), "r.yaml", "/"),
      "recipe.field",
      /parameters\.select_topk: select_topk must lie in \(0, 1\]/,
    );
  });
});
