/**
 * Core Space merging (arXiv:2509.17786): the library computes the reference bases and cores from the factors
 * (QR + small SVDs); the reference here builds them densely by the paper's definition — U_B from the SVD of the
 * stacked [s_1B_1 | … | s_nB_n], V_A from the SVD of the stacked [A_1; …; A_n] (Jacobi eigen-solver on the Gram
 * matrices), cores M_i = U_Bᵀ·ΔW_i·V_A, the method on the cores, ΔW' = U_B·merged·V_Aᵀ. ≤ 1e-5 relative.
 */
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import { parseRecipe } from "../../src/merge/recipe.js";
import {
  makeAdapter,
  readDeltas,
  SMALL_MODULES,
  tempDir,
  writeRecipe,
  type FixtureModule,
  type ModuleShape,
} from "../helpers/fixtures.js";
import { delta, jacobiEig, matmul, methodRef, relErr, transpose, type Dense } from "../helpers/reference.js";

/** Leading eigenvectors (as columns) of a symmetric n × n Gram matrix with σ = √λ above 1e-6·σ_max. */
function leadingBasis(g: Dense, n: number): { q: Dense; k: number } {
  const { values, vectors } = jacobiEig(g, n);
  const smax = Math.sqrt(Math.max(values[0]!, 0));
  let k = 0;
  while (k < n && Math.sqrt(Math.max(values[k]!, 0)) > 1e-6 * smax) k++;
  const q = new Float64Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) q[i * k + j] = vectors[i * n + j]!;
  return { q, k };
}

function coreRef(
  mods: FixtureModule[],
  method: string,
  w: number[],
  densities: number[],
  lambda: number,
): Dense {
  const { out, in: inF } = mods[0]!;
  const R = mods.reduce((s, m) => s + m.rank, 0);
  const bs = new Float64Array(out * R);
  const as = new Float64Array(R * inF);
  let c = 0;
  for (const m of mods) {
    for (let i = 0; i < out; i++)
      for (let j = 0; j < m.rank; j++) bs[i * R + c + j] = m.scaling * m.b[i * m.rank + j]!;
    for (let j = 0; j < m.rank * inF; j++) as[c * inF + j] = m.a[j]!;
    c += m.rank;
  }
  const ub = leadingBasis(matmul(bs, transpose(bs, out, R), out, R, out), out); // out × kB
  const va = leadingBasis(matmul(transpose(as, R, inF), as, inF, R, inF), inF); // in × kA
  const ubT = transpose(ub.q, out, ub.k);
  const cores = mods.map((m) => matmul(matmul(ubT, delta(m), ub.k, out, inF), va.q, ub.k, inF, va.k));
  const merged = methodRef(method, cores, w, densities, { lambda });
  return matmul(matmul(ub.q, merged, out, ub.k, va.k), transpose(va.q, inF, va.k), out, va.k, inF);
}

const tmp = tempDir();
after(() => tmp.cleanup());

const RANDOM_MODULES: ModuleShape[] = [
  { name: "model.layers.0.self_attn.o_proj", out: 30, in: 26, rank: 3 },
  { name: "model.layers.0.mlp.down_proj", out: 11, in: 35, rank: 5 },
];

let counter = 0;
async function run(names: string[], method: string, w: number[], densities: number[], lambda: number) {
  const models = names
    .map((a, i) => `  - model: ${a}\n    parameters: { weight: ${w[i]}, density: ${densities[i]} }`)
    .join("\n");
  const yaml = `merge_method: ${method}\nmodels:\n${models}\nparameters: { lambda: ${lambda} }\noutput: { dtype: float32 }\n`;
  const name = `c${counter++}`;
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
    const name = `${label.replace(" ", "-")}-c${i}`;
    mods.push(makeAdapter(join(tmp.dir, name), { seed: 1300 + i, alpha: 4 + 6 * i, modules: shapes }));
    names.push(name);
  }
  const w = [1, 0.6, -0.4];
  const dens = [0.5, 0.7, 0.3];

  describe(`Core Space from the factors = the dense definition (${label})`, () => {
    for (const method of ["ties", "magnitude_prune", "task_arithmetic", "linear"]) {
      test(`core_${method}`, async () => {
        const { deltas } = await run(names, `core_${method}`, w, dens, 0.9);
        for (const [mi, m] of mods[0]!.entries()) {
          const want = coreRef(
            mods.map((ad) => ad[mi]!),
            method,
            w,
            dens,
            0.9,
          );
          const g = deltas.get(m.name)!;
          assert.equal(g.rank, 3 * m.rank, "declared rank Σ r_i");
          assert.ok(relErr(g.d, want) < 1e-5, `core_${method} ${m.name}: rel err ${relErr(g.d, want)}`);
        }
      });
    }
    test("the projection is lossless: core_task_arithmetic = task_arithmetic", async () => {
      const core = await run(names, "core_task_arithmetic", w, [1, 1, 1], 1);
      const plain = await run(names, "task_arithmetic", w, [1, 1, 1], 1);
      for (const [name, g] of core.deltas)
        assert.ok(
          relErr(g.d, plain.deltas.get(name)!.d) < 1e-5,
          `${name}: ${relErr(g.d, plain.deltas.get(name)!.d)}`,
        );
    });
    test("core_dare_ties is deterministic", async () => {
      const a = await run(names, "core_dare_ties", w, dens, 1);
      const b = await run(names, "core_dare_ties", w, dens, 1);
      assert.ok(a.bytes.equals(b.bytes));
    });
  });
}

test("core_<m> names put the method in the core space; space: is then unused", () => {
  const r = parseRecipe(
    { merge_method: "core_ties", space: "factors", models: [{ model: "a" }, { model: "b" }] },
    "r.yaml",
    "/",
  );
  assert.equal(r.space, "core");
  assert.equal(r.method.name, "ties");
  assert.deepEqual(r.unused, ["space"]);
});
