/**
 * TSV-Merge, Iso-C and Iso-CTS, computed by the library from the factors, against their dense definitions written
 * here (TSV-Merge: arXiv:2412.00081; Iso-C/CTS: arXiv:2502.04959): dense ΔW_i, SVDs from a Jacobi eigen-solver,
 * polar factors from the eigen-decomposition of the Gram matrix. ≤ 1e-5 relative.
 */
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import { parseRecipe } from "../../src/merge/recipe.js";
import { isoCtsSizes } from "../../src/merge/spectral.js";
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
import { delta, jacobiEig, matmul, relErr, transpose, type Dense } from "../helpers/reference.js";

/** Thin SVD of a dense out × in matrix, singular values above 1e-6·σ_max only. */
function svdRef(m: Dense, out: number, inF: number): { u: Dense; s: number[]; v: Dense; k: number } {
  const { values, vectors } = jacobiEig(matmul(m, transpose(m, out, inF), out, inF, out), out);
  const s = Array.from(values, (l) => Math.sqrt(Math.max(l, 0)));
  let k = 0;
  while (k < out && s[k]! > 1e-6 * s[0]!) k++;
  const u = new Float64Array(out * k);
  for (let i = 0; i < out; i++) for (let j = 0; j < k; j++) u[i * k + j] = vectors[i * out + j]!;
  // v_j = Mᵀ u_j / σ_j
  const v = matmul(transpose(m, out, inF), u, inF, out, k);
  for (let i = 0; i < inF; i++) for (let j = 0; j < k; j++) v[i * k + j]! /= s[j]!;
  return { u, s: s.slice(0, k), v, k };
}

/** Nearest orthonormal-column matrix: M·(MᵀM)^(−1/2). */
function polarRef(m: Dense, rows: number, k: number): Dense {
  const { values, vectors } = jacobiEig(matmul(transpose(m, rows, k), m, k, rows, k), k);
  const w = new Float64Array(k * k);
  for (let t = 0; t < k; t++)
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++)
        w[i * k + j]! += (vectors[i * k + t]! * vectors[j * k + t]!) / Math.sqrt(values[t]!);
  return matmul(m, w, rows, k, k);
}

/** U·diag(σ)·Vᵀ. */
function compose(u: Dense, s: number[], v: Dense, out: number, inF: number, k: number): Dense {
  const us = u.map((x, idx) => x * s[idx % k]!);
  return matmul(us, transpose(v, inF, k), out, k, inF);
}

function tsvRef(deltas: Dense[], w: number[], out: number, inF: number): Dense {
  const n = deltas.length;
  const budget = Math.floor(Math.min(out, inF) / n);
  const svds = deltas.map((d) => svdRef(d, out, inF));
  const ks = svds.map((p) => Math.min(budget, p.k));
  const K = ks.reduce((a, b) => a + b, 0);
  const U = new Float64Array(out * K);
  const V = new Float64Array(inF * K);
  const s: number[] = [];
  let c = 0;
  svds.forEach((p, i) => {
    for (let j = 0; j < ks[i]!; j++) {
      for (let r = 0; r < out; r++) U[r * K + c] = p.u[r * p.k + j]!;
      for (let r = 0; r < inF; r++) V[r * K + c] = p.v[r * p.k + j]!;
      s.push(w[i]! * p.s[j]!);
      c++;
    }
  });
  return compose(polarRef(U, out, K), s, polarRef(V, inF, K), out, inF, K);
}

function isoRef(deltas: Dense[], w: number[], out: number, inF: number): Dense {
  const m = new Float64Array(out * inF);
  deltas.forEach((d, i) => d.forEach((x, j) => (m[j]! += w[i]! * x)));
  const { u, s, v, k } = svdRef(m, out, inF);
  const mean = s.reduce((a, b) => a + b, 0) / k;
  return compose(u, new Array<number>(k).fill(mean), v, out, inF, k);
}

/**
 * Iso-CTS (the paper's Algorithm 2 as its code runs it) with the spectrum size d = rank of M (a LoRA sum has no
 * other defined directions): common k, per-task s, then polar factors and the mean singular value.
 */
function isoCtsRef(deltas: Dense[], w: number[], out: number, inF: number, fraction: number): Dense {
  const n = deltas.length;
  const wd = deltas.map((d, i) => d.map((x) => w[i]! * x));
  const m = new Float64Array(out * inF);
  wd.forEach((d) => d.forEach((x, j) => (m[j]! += x)));
  const M = svdRef(m, out, inF);
  const d = M.k;
  let common = Math.floor(d * fraction);
  const specific = Math.round((d - common) / n) * n;
  common = d - specific;
  const perTask = Math.floor((d - common) / n);
  const cols: { u: number[]; v: number[]; s: number }[] = [];
  const col = (p: { u: Dense; v: Dense; k: number }, j: number) => ({
    u: Array.from({ length: out }, (_, r) => p.u[r * p.k + j]!),
    v: Array.from({ length: inF }, (_, r) => p.v[r * p.k + j]!),
  });
  for (let j = 0; j < common; j++) cols.push({ ...col(M, j), s: M.s[j]! });
  for (const di of wd) {
    // di − U_k U_kᵀ di
    const res = Float64Array.from(di);
    for (let j = 0; j < common; j++) {
      const uj = col(M, j).u;
      for (let c = 0; c < inF; c++) {
        let proj = 0;
        for (let r = 0; r < out; r++) proj += uj[r]! * di[r * inF + c]!;
        for (let r = 0; r < out; r++) res[r * inF + c]! -= uj[r]! * proj;
      }
    }
    const p = svdRef(res, out, inF);
    for (let j = 0; j < Math.min(perTask, p.k); j++) cols.push({ ...col(p, j), s: p.s[j]! });
  }
  const K = cols.length;
  const U = new Float64Array(out * K);
  const V = new Float64Array(inF * K);
  cols.forEach((c, j) => {
    c.u.forEach((x, r) => (U[r * K + j] = x));
    c.v.forEach((x, r) => (V[r * K + j] = x));
  });
  const mean = cols.reduce((t, c) => t + c.s, 0) / K;
  return compose(polarRef(U, out, K), new Array<number>(K).fill(mean), polarRef(V, inF, K), out, inF, K);
}

const tmp = tempDir();
after(() => tmp.cleanup());

const RANDOM_MODULES: ModuleShape[] = [
  { name: "model.layers.0.self_attn.o_proj", out: 40, in: 24, rank: 4 },
  { name: "model.layers.0.mlp.up_proj", out: 17, in: 33, rank: 4 },
];

for (const [label, shapes] of [
  ["hand sizes", SMALL_MODULES],
  ["random sizes", RANDOM_MODULES],
] as const) {
  const N = 3;
  const adapters: FixtureModule[][] = [];
  for (let i = 0; i < N; i++)
    adapters.push(
      makeAdapter(join(tmp.dir, `${label}-a${i}`), { seed: 500 + i, alpha: 8 + 4 * i, modules: shapes }),
    );
  const weights = [1, 0.5, -0.75];
  let counter = 0;
  const run = async (method: string, params = "") => {
    const models = adapters
      .map((_, i) => `  - model: ${label}-a${i}\n    parameters: { weight: ${weights[i]} }`)
      .join("\n");
    const yaml = `merge_method: ${method}\nmodels:\n${models}\nparameters: { lambda: 0.8${params} }\noutput: { dtype: float32 }\n`;
    const name = `${label.replace(" ", "-")}-${counter++}`;
    const out = join(tmp.dir, `${name}-out`);
    await merge(writeRecipe(tmp.dir, `${name}.yaml`, yaml), { output: out, threads: 1 });
    return readDeltas(out);
  };

  describe(`from the factors = the dense definition (${label})`, () => {
    for (const [method, params, ref] of [
      ["tsv", "", tsvRef],
      ["iso_c", "", isoRef],
      ["iso_cts", "", (d: Dense[], w: number[], o: number, i: number) => isoCtsRef(d, w, o, i, 0.8)],
      [
        "iso_cts",
        ", common_space_fraction: 0.5",
        (d: Dense[], w: number[], o: number, i: number) => isoCtsRef(d, w, o, i, 0.5),
      ],
    ] as const) {
      test(`${method}${params}`, async () => {
        const got = await run(method, params);
        for (const [mi, m] of adapters[0]!.entries()) {
          const want = ref(
            adapters.map((ad) => delta(ad[mi]!)),
            weights,
            m.out,
            m.in,
          ).map((x) => 0.8 * x);
          const g = got.get(m.name)!;
          assert.equal(g.rank, N * m.rank, "declared rank Σ r_i (exact low-rank result, zero-padded)");
          assert.ok(relErr(g.d, want) < 1e-5, `${method} ${m.name}: rel err ${relErr(g.d, want)}`);
        }
      });
    }
  });
}

test("Iso-CTS subspace sizes follow the paper's code (task-specific total a multiple of n)", () => {
  // d = 12, n = 3, f = 0.8: ⌊9.6⌋ = 9 common, 3 task-specific → 1 per task
  assert.deepEqual(isoCtsSizes(12, 3, 0.8), { common: 9, perTask: 1 });
  // d = 80, n = 5: 64 common, 16 specific → 3.2 per task rounds to 3 (15), common takes the rest (65)
  assert.deepEqual(isoCtsSizes(80, 5, 0.8), { common: 65, perTask: 3 });
  // d = 4, n = 3: 3 common, round(1/3) = 0 specific → all common (Iso-C on the top 4)
  assert.deepEqual(isoCtsSizes(4, 3, 0.8), { common: 4, perTask: 0 });
  assert.deepEqual(isoCtsSizes(10, 2, 0), { common: 0, perTask: 5 });
});

test("tsv and iso_c exist only in the delta space", () => {
  const r = (method: string, space?: string) => ({
    merge_method: method,
    models: [{ model: "a" }],
    ...(space ? { space } : {}),
  });
  expectMerglotError(
    () => parseRecipe(r("knots_tsv"), "r.yaml", "/"),
    "recipe.field",
    /unknown merge method/,
  );
  expectMerglotError(
    () => parseRecipe(r("iso_c", "factors"), "r.yaml", "/"),
    "recipe.field",
    /^r\.yaml: space: "iso_c" exists only in the delta space/,
  );
  assert.equal(parseRecipe(r("tsv"), "r.yaml", "/").space, "delta");
});
