/**
 * Invariances and DARE's statistics, checked on the engine's outputs.
 */
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import { drop, electSign, disjointMean, trim } from "../../src/merge/operators.js";
import { knotsBasis, orthogonalizeStacked } from "../../src/merge/spaces/knots.js";
import { freshBuffers } from "../../src/merge/methods.js";
import { Rng } from "../../src/tensor/linalg.js";
import { makeAdapter, readDeltas, tempDir, writeRecipe, type FixtureModule } from "../helpers/fixtures.js";

const deltas = (dir: string) => new Map([...readDeltas(dir)].map(([k, v]) => [k, v.d]));
import { delta, matmul, relErr } from "../helpers/reference.js";
import { mulberry32, randn } from "../helpers/rand.js";

const tmp = tempDir();
after(() => tmp.cleanup());
const adapters: FixtureModule[][] = [0, 1, 2].map((i) =>
  makeAdapter(join(tmp.dir, `a${i}`), { seed: 200 + i }),
);

let n = 0;
async function run(yaml: string, threads = 1): Promise<string> {
  const p = writeRecipe(tmp.dir, `p${n}.yaml`, yaml);
  const out = join(tmp.dir, `p${n++}-out`);
  await merge(p, { output: out, threads });
  return out;
}
const models = (k: number, params = "") =>
  Array.from({ length: k }, (_, i) => `  - model: a${i}${params ? `\n    parameters: ${params}` : ""}`).join(
    "\n",
  );

describe("invariances", () => {
  test("knots_task_arithmetic equals task_arithmetic", async () => {
    const k = deltas(
      await run(`merge_method: knots_task_arithmetic\nmodels:\n${models(3)}\noutput: { dtype: float32 }\n`),
    );
    const t = deltas(
      await run(`merge_method: task_arithmetic\nmodels:\n${models(3)}\noutput: { dtype: float32 }\n`),
    );
    for (const [name, d] of t) assert.ok(relErr(k.get(name)!, d) < 1e-5, name);
  });

  for (const method of ["ties", "knots_ties", "task_arithmetic", "knots_dare_ties"]) {
    test(`one adapter in → the same delta out (${method})`, async () => {
      const dens = method.includes("dare") ? "" : "{ density: 1 }";
      const out = deltas(
        await run(
          `merge_method: ${method}\nmodels:\n${models(1, dens)}\noutput: { rank: exact, dtype: float32 }\n`,
        ),
      );
      for (const m of adapters[0]!)
        assert.ok(relErr(out.get(m.name)!, delta(m)) < 1e-5, `${method} ${m.name}`);
    });
  }

  test("dare_ties with density 1 equals ties with density 1", async () => {
    const a = deltas(
      await run(
        `merge_method: dare_ties\nmodels:\n${models(3, "{ density: 1 }")}\noutput: { rank: exact, dtype: float32 }\n`,
      ),
    );
    const b = deltas(
      await run(
        `merge_method: ties\nmodels:\n${models(3, "{ density: 1 }")}\noutput: { rank: exact, dtype: float32 }\n`,
      ),
    );
    for (const [name, d] of b) assert.deepEqual(a.get(name), d, name);
  });

  /** The first module of the fixture adapters `picks` (a repeat makes the stacked factors rank-deficient). */
  const firstModuleInputs = (picks: number[]) =>
    picks.map((p, i) => ({
      index: i,
      a: adapters[p]![0]!.a,
      b: adapters[p]![0]!.b,
      rank: adapters[p]![0]!.rank,
      scaling: adapters[p]![0]!.scaling,
      weight: 1,
      density: 0.5,
    }));

  test("the KnOTS basis reproduces every delta, also when the stacked B factors are rank-deficient", () => {
    // U·x_i = s_i·B_i·A_i for each adapter (the decomposition's definition). With an adapter repeated, B_all has
    // linearly dependent columns: its Gram is singular, so the basis takes the Householder route instead.
    const m = adapters[0]![0]!;
    for (const picks of [
      [0, 1, 2],
      [0, 1, 0],
    ]) {
      const inputs = firstModuleInputs(picks);
      const { u, tasks } = knotsBasis({ name: m.name, out: m.out, in: m.in, targetRank: 6, inputs });
      inputs.forEach((x, i) => {
        const want = delta({ a: x.a, b: x.b, out: m.out, in: m.in, rank: x.rank, scaling: x.scaling });
        const got = matmul(u.data, tasks[i]!, m.out, u.cols, m.in);
        assert.ok(relErr(got, want) < 1e-5, `adapters ${picks}: delta ${i} rel err ${relErr(got, want)}`);
      });
    }
  });

  test("the stacked frames factor B_all and A_allᵀ exactly (Q·R), also through the Householder fallback", () => {
    // orthogonalizeStacked (Core Space, TSV, Iso-C/CTS): Q_B·R_B = [s_1·B_1 … s_n·B_n] and Q_A·R_A = [A_1; …; A_n]ᵀ.
    // A repeated adapter makes both stacks rank-deficient, so the Gram route is refused on both sides.
    const m = adapters[0]![0]!;
    for (const picks of [
      [0, 1, 2],
      [0, 1, 0],
    ]) {
      const inputs = firstModuleInputs(picks);
      const R = m.rank * inputs.length;
      const { qb, qa } = orthogonalizeStacked(
        { name: m.name, out: m.out, in: m.in, targetRank: 6, inputs },
        freshBuffers,
        "t",
      );
      const bAll = new Float64Array(m.out * R);
      const aAllT = new Float64Array(m.in * R);
      inputs.forEach((x, i) => {
        for (let r = 0; r < m.out; r++)
          for (let j = 0; j < x.rank; j++) bAll[r * R + i * x.rank + j] = x.scaling * x.b[r * x.rank + j]!;
        for (let j = 0; j < x.rank; j++)
          for (let c = 0; c < m.in; c++) aAllT[c * R + i * x.rank + j] = x.a[j * m.in + c]!;
      });
      const gotB = qb
        .mulQ(Float64Array.from(qb.r), R, new Float32Array(Math.max(m.out, R) * R))
        .subarray(0, m.out * R);
      const gotA = qa
        .mulQ(Float64Array.from(qa.r), R, new Float32Array(Math.max(m.in, R) * R))
        .subarray(0, m.in * R);
      assert.ok(relErr(gotB, bAll) < 1e-5, `adapters ${picks}: B_all rel err ${relErr(gotB, bAll)}`);
      assert.ok(relErr(gotA, aAllT) < 1e-5, `adapters ${picks}: A_allᵀ rel err ${relErr(gotA, aAllT)}`);
    }
  });

  test("flipping the sign of a singular vector does not change a KnOTS TIES result", () => {
    const m = adapters[0]![0]!;
    const job = {
      name: m.name,
      out: m.out,
      in: m.in,
      targetRank: 6,
      inputs: adapters.map((ad, i) => ({
        index: i,
        a: ad[0]!.a,
        b: ad[0]!.b,
        rank: m.rank,
        scaling: ad[0]!.scaling,
        weight: 1,
        density: 0.5,
      })),
    };
    const { u, tasks } = knotsBasis(job);
    const k = u.cols;
    const tiesOf = (xs: Float32Array[]) => {
      const kept = xs.map((x) => trim(x, 0.5));
      return disjointMean(kept, [1, 1, 1], electSign(kept, "total"));
    };
    const base = matmul(u.data, tiesOf(tasks), m.out, k, m.in);
    const j = 1;
    const u2 = Float64Array.from(u.data);
    for (let i = 0; i < m.out; i++) u2[i * k + j] = -u2[i * k + j]!;
    const flipped = tasks.map((x) => {
      const y = Float32Array.from(x);
      for (let c = 0; c < m.in; c++) y[j * m.in + c] = -y[j * m.in + c]!;
      return y;
    });
    const other = matmul(u2, tiesOf(flipped), m.out, k, m.in);
    assert.ok(relErr(other, base) < 1e-12);
  });
});

describe("DARE", () => {
  test("same seed → byte-identical output regardless of --threads", async () => {
    const y = `merge_method: dare_ties\nmodels:\n${models(3, "{ density: 0.4 }")}\nseed: 3\n`;
    const one = await run(y, 1);
    const two = await run(y, 2);
    assert.deepEqual(
      readFileSync(join(one, "adapter_model.safetensors")),
      readFileSync(join(two, "adapter_model.safetensors")),
    );
    assert.deepEqual(
      readFileSync(join(one, "adapter_config.json")),
      readFileSync(join(two, "adapter_config.json")),
    );
    const other = await run(y.replace("seed: 3", "seed: 4"), 1);
    assert.notDeepEqual(
      readFileSync(join(one, "adapter_model.safetensors")),
      readFileSync(join(other, "adapter_model.safetensors")),
    );
  });

  test("kept fraction ≈ density and kept values are exactly x/ρ", () => {
    const x = randn(mulberry32(5), 200_000);
    for (const rho of [0.1, 0.5, 0.9]) {
      const y = drop(x, rho, new Rng(42n), true);
      let kept = 0;
      for (let i = 0; i < x.length; i++) {
        if (y[i] !== 0) {
          kept++;
          assert.equal(y[i], Math.fround(x[i]! / rho));
        }
      }
      const sd = Math.sqrt(x.length * rho * (1 - rho));
      assert.ok(Math.abs(kept - rho * x.length) < 5 * sd, `ρ=${rho}: kept ${kept} of ${x.length}`);
      const plain = drop(x, rho, new Rng(42n), false);
      for (let i = 0; i < x.length; i++) assert.ok(plain[i] === 0 || plain[i] === x[i]);
    }
  });
});
