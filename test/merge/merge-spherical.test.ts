/**
 * The spherical family on deltas (SLERP, NuSLERP, Multi-SLERP, Karcher mean): hand-derived 2-D / 3-D cases of
 * the coefficient rules, and whole merges (computed by the library from the factors' Gram matrix) against a naive
 * dense reference written here on the flattened ΔW_i (norms, directions, great-circle interpolation, mergekit's
 * Multi-SLERP and Karcher iterations on dense vectors). ≤ 1e-5 relative; byte-identical reruns.
 */
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import { parseRecipe } from "../../src/merge/recipe.js";
import { karcherCoefficients, multislerpCoefficients, slerpCoefficients } from "../../src/merge/spherical.js";
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
import { delta, relErr, type Dense } from "../helpers/reference.js";

/** Gram matrix of explicit vectors. */
function gramOf(vs: number[][]): Float64Array {
  const n = vs.length;
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) g[i * n + j] = vs[i]!.reduce((s, x, k) => s + x * vs[j]![k]!, 0);
  return g;
}

function apply(vs: number[][], c: number[]): number[] {
  return vs[0]!.map((_, k) => vs.reduce((s, v, i) => s + c[i]! * v[k]!, 0));
}

function close(got: number[], want: number[], tol = 1e-12): void {
  got.forEach((x, i) => assert.ok(Math.abs(x - want[i]!) <= tol, `entry ${i}: ${x} vs ${want[i]}`));
}

describe("hand cases", () => {
  test("slerp of (2, 0) and (0, 4) at t = 0.5: norm 3 on the diagonal", () => {
    const vs = [
      [2, 0],
      [0, 4],
    ];
    const r = apply(vs, slerpCoefficients(gramOf(vs), 0.5));
    close(r, [3 / Math.SQRT2, 3 / Math.SQRT2]);
  });
  test("slerp of (1, 0) and (0, 1) at t = 1/3: the point at 30°", () => {
    const vs = [
      [1, 0],
      [0, 1],
    ];
    close(apply(vs, slerpCoefficients(gramOf(vs), 1 / 3)), [Math.cos(Math.PI / 6), Math.sin(Math.PI / 6)]);
  });
  test("slerp endpoints give the inputs; parallel and antiparallel inputs interpolate linearly", () => {
    const vs = [
      [3, 1, 0],
      [-1, 2, 2],
    ];
    close(apply(vs, slerpCoefficients(gramOf(vs), 0)), vs[0]!);
    close(apply(vs, slerpCoefficients(gramOf(vs), 1)), vs[1]!, 1e-12);
    const par = [
      [1, 2, 2],
      [2, 4, 4],
    ];
    close(apply(par, slerpCoefficients(gramOf(par), 0.25)), [1.25, 2.5, 2.5]);
    const anti = [
      [1, 0, 0],
      [-3, 0, 0],
    ];
    close(apply(anti, slerpCoefficients(gramOf(anti), 0.5)), [-1, 0, 0]);
  });
  test("slerp in 3-D keeps the great circle: the midpoint of e1 and (e2 + e3)/√2·2", () => {
    const vs = [
      [1, 0, 0],
      [0, Math.SQRT2, Math.SQRT2],
    ];
    // θ = 90°, norms 1 and 2 → norm 1.5, direction (e1 + (e2 + e3)/√2)/√2
    close(apply(vs, slerpCoefficients(gramOf(vs), 0.5)), [1.5 / Math.SQRT2, 0.75, 0.75], 1e-12);
  });
  test("multislerp and karcher of three orthogonal vectors: the diagonal, mean norm", () => {
    const vs = [
      [1, 0, 0],
      [0, 2, 0],
      [0, 0, 3],
    ];
    const want = [2 / Math.sqrt(3), 2 / Math.sqrt(3), 2 / Math.sqrt(3)];
    close(apply(vs, multislerpCoefficients(gramOf(vs), [1, 1, 1], "m")), want);
    close(apply(vs, karcherCoefficients(gramOf(vs), [1, 1, 1], 50, 1e-12, "m")), want, 1e-9);
  });
  test("karcher of two vectors is their slerp midpoint (the geodesic mean), unlike a chordal mean", () => {
    const vs = [
      [1, 0],
      [Math.cos(2), Math.sin(2)],
    ];
    // equal norms: the Karcher mean of two points is the midpoint of their arc (angle 1)
    close(
      apply(vs, karcherCoefficients(gramOf(vs), [1, 1], 100, 1e-14, "m")),
      [Math.cos(1), Math.sin(1)],
      1e-9,
    );
    // weights 3:1 → the point at a quarter of the arc
    close(
      apply(vs, karcherCoefficients(gramOf(vs), [3, 1], 100, 1e-14, "m")),
      [Math.cos(0.5), Math.sin(0.5)],
      1e-9,
    );
  });
  test("multislerp: directions that cancel are an error for three inputs", () => {
    const vs = [
      [1, 0],
      [-1, 0],
      [0, 0],
    ];
    expectMerglotError(
      () => multislerpCoefficients(gramOf(vs), [1, 1, 1], 'module "m"'),
      "merge.spherical",
      /^module "m": the weighted directions of the deltas cancel/,
    );
  });
});

// ---- dense reference on flattened deltas ----

function dot(a: Dense, b: Dense): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
const scale = (a: Dense, c: number): Dense => a.map((x) => x * c);
function axpy(acc: Dense, a: Dense, c: number): void {
  for (let i = 0; i < a.length; i++) acc[i]! += c * a[i]!;
}

function slerpRef(x: Dense[], t: number): Dense {
  const n1 = Math.sqrt(dot(x[0]!, x[0]!));
  const n2 = Math.sqrt(dot(x[1]!, x[1]!));
  const u1 = scale(x[0]!, 1 / n1);
  const u2 = scale(x[1]!, 1 / n2);
  const theta = Math.acos(Math.min(1, Math.max(-1, dot(u1, u2))));
  const r = new Float64Array(u1.length);
  axpy(r, u1, Math.sin((1 - t) * theta) / Math.sin(theta));
  axpy(r, u2, Math.sin(t * theta) / Math.sin(theta));
  return scale(r, (1 - t) * n1 + t * n2);
}

function multislerpRef(x: Dense[], w: number[]): Dense {
  const total = w.reduce((s, v) => s + v, 0);
  const wn = w.map((v) => v / total);
  const norms = x.map((v) => Math.sqrt(dot(v, v)));
  const m = new Float64Array(x[0]!.length);
  x.forEach((v, i) => axpy(m, v, wn[i]! / norms[i]!));
  const mn = Math.sqrt(dot(m, m));
  const avg = norms.reduce((s, v, i) => s + wn[i]! * v, 0);
  return scale(m, avg / mn);
}

function karcherRef(x: Dense[], w: number[], maxIter: number, tol: number): Dense {
  const total = w.reduce((s, v) => s + v, 0);
  const a = w.map((v) => v / total);
  const norms = x.map((v) => Math.sqrt(dot(v, v)));
  const units = x.map((v, i) => scale(v, 1 / norms[i]!));
  let mean: Dense = new Float64Array(units[0]!.length);
  units.forEach((u, i) => axpy(mean, u, a[i]!));
  mean = scale(mean, 1 / Math.sqrt(dot(mean, mean)));
  for (let it = 0; it < maxIter; it++) {
    const tangent = new Float64Array(mean.length);
    units.forEach((u, i) => {
      const d = Math.min(1, Math.max(-1, dot(mean, u)));
      const th = Math.acos(d);
      if (th < tol) return;
      const f = (a[i]! * th) / Math.sin(th);
      axpy(tangent, u, f);
      axpy(tangent, mean, -f * d);
    });
    const tn = Math.sqrt(dot(tangent, tangent));
    if (tn < tol) break;
    const next = scale(mean, Math.cos(tn));
    axpy(next, tangent, Math.sin(tn) / tn);
    mean = scale(next, 1 / Math.sqrt(dot(next, next)));
  }
  return scale(
    mean,
    norms.reduce((s, v, i) => s + a[i]! * v, 0),
  );
}

const tmp = tempDir();
after(() => tmp.cleanup());

const RANDOM_MODULES: ModuleShape[] = [
  { name: "model.layers.0.self_attn.o_proj", out: 37, in: 23, rank: 4 },
  { name: "model.layers.0.mlp.up_proj", out: 12, in: 41, rank: 3 },
];

let counter = 0;
async function run(
  adapters: string[],
  method: string,
  weights: number[],
  params = "",
): Promise<{ deltas: Map<string, { d: Float64Array; rank: number }>; bytes: Buffer }> {
  const models = adapters
    .map((a, i) => `  - model: ${a}\n    parameters: { weight: ${weights[i]} }`)
    .join("\n");
  const yaml = `merge_method: ${method}\nmodels:\n${models}\nparameters: { lambda: 0.7${params} }\noutput: { dtype: float32 }\n`;
  const name = `r${counter++}`;
  const out = join(tmp.dir, `${name}-out`);
  await merge(writeRecipe(tmp.dir, `${name}.yaml`, yaml), { output: out, threads: 1 });
  return { deltas: readDeltas(out), bytes: readFileSync(join(out, "adapter_model.safetensors")) };
}

for (const [label, shapes] of [
  ["hand sizes", SMALL_MODULES],
  ["random sizes", RANDOM_MODULES],
] as const) {
  const mods: FixtureModule[][] = [];
  const names: string[] = [];
  for (let i = 0; i < 3; i++) {
    const name = `${label.replace(" ", "-")}-a${i}`;
    mods.push(makeAdapter(join(tmp.dir, name), { seed: 900 + i, alpha: 6 + 5 * i, modules: shapes }));
    names.push(name);
  }
  const deltasOf = (mi: number, which: number[]) => which.map((i) => delta(mods[i]![mi]!));

  describe(`from the factors = the dense definition (${label})`, () => {
    const cases: [string, number[], string, (x: Dense[]) => Dense][] = [
      ["slerp", [0, 1], ", t: 0.3", (x) => slerpRef(x, 0.3)],
      ["nuslerp", [0, 2], "", (x) => slerpRef(x, 0.25 / (2 + 0.25))],
      ["multislerp", [0, 1, 2], "", (x) => multislerpRef(x, [2, 1.5, 0.25])],
      ["karcher", [0, 1, 2], "", (x) => karcherRef(x, [2, 1.5, 0.25], 10, 1e-5)],
      ["karcher", [0, 1, 2], ", max_iter: 3", (x) => karcherRef(x, [2, 1.5, 0.25], 3, 1e-5)],
    ];
    for (const [method, which, params, ref] of cases) {
      test(`${method}${params}`, async () => {
        const allW = [2, 1.5, 0.25];
        const { deltas, bytes } = await run(
          which.map((i) => names[i]!),
          method,
          which.map((i) => allW[i]!),
          params,
        );
        for (const [mi, m] of mods[0]!.entries()) {
          const want = ref(deltasOf(mi, which)).map((v) => 0.7 * v);
          const g = deltas.get(m.name)!;
          assert.equal(g.rank, which.length * m.rank, "exact: rank Σ r_i (concatenated factors)");
          assert.ok(relErr(g.d, want) < 1e-5, `${method} ${m.name}: rel err ${relErr(g.d, want)}`);
        }
        const again = await run(
          which.map((i) => names[i]!),
          method,
          which.map((i) => allW[i]!),
          params,
        );
        assert.ok(again.bytes.equals(bytes), "same inputs → byte-identical output");
      });
    }
  });
}

test("slerp and nuslerp take exactly two adapters; parameters are checked", () => {
  const r = (method: string, n: number, parameters: Record<string, unknown> = {}) => ({
    merge_method: method,
    models: Array.from({ length: n }, (_, i) => ({ model: `a${i}` })),
    parameters,
  });
  expectMerglotError(
    () => parseRecipe(r("slerp", 3), "r.yaml", "/"),
    "recipe.field",
    /^r\.yaml: models: "slerp" merges exactly 2 adapters, the recipe lists 3/,
  );
  expectMerglotError(() => parseRecipe(r("nuslerp", 1), "r.yaml", "/"), "recipe.field", /exactly 2 adapters/);
  expectMerglotError(
    () => parseRecipe(r("slerp", 2, { t: 1.5 }), "r.yaml", "/"),
    "recipe.field",
    /^r\.yaml: parameters\.t: t must lie in \[0, 1\]/,
  );
  expectMerglotError(
    () => parseRecipe(r("knots_slerp", 2), "r.yaml", "/"),
    "recipe.field",
    /unknown merge method/,
  );
  const k = parseRecipe(r("karcher", 4, { max_iter: 25, t: 0.2 }), "r.yaml", "/");
  assert.equal(k.methodParams.max_iter, 25);
  assert.equal(k.methodParams.tol, 1e-5);
  assert.deepEqual(k.unused, ["t"]);
  assert.equal(parseRecipe(r("slerp", 2), "r.yaml", "/").methodParams.t, 0.5);
});
