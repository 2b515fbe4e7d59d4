/**
 * Every method in every space against the naive dense references of test/helpers/reference.ts.
 */
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import { drop } from "../../src/merge/operators.js";
import { dropSeed } from "../../src/merge/binder.js";
import { Rng } from "../../src/tensor/linalg.js";
import { makeAdapter, readDeltas, tempDir, writeRecipe, type FixtureModule } from "../helpers/fixtures.js";
import {
  delta,
  jacobiEig,
  knotsRef,
  matmul,
  methodRef,
  relErr,
  transpose,
  type Dense,
} from "../helpers/reference.js";

const tmp = tempDir();
after(() => tmp.cleanup());

const N = 3;
const adapters: FixtureModule[][] = [];
for (let i = 0; i < N; i++)
  adapters.push(makeAdapter(join(tmp.dir, `a${i}`), { seed: 100 + i, alpha: 8 + 4 * i }));
const weights = [1, 0.5, -0.75];
const densities = [0.5, 0.7, 0.3];

function recipe(method: string, extra = ""): string {
  const models = adapters
    .map((_, i) => `  - model: a${i}\n    parameters: { weight: ${weights[i]}, density: ${densities[i]} }`)
    .join("\n");
  return `merge_method: ${method}\nmodels:\n${models}\nseed: 7\n${extra}`;
}

let counter = 0;
async function runMerge(
  method: string,
  extra = "",
  threads = 1,
): Promise<Map<string, { d: Dense; rank: number }>> {
  const name = `r${counter++}`;
  const p = writeRecipe(tmp.dir, `${name}.yaml`, recipe(method, extra));
  const out = join(tmp.dir, `${name}-out`);
  await merge(p, { output: out, threads });
  return readDeltas(out);
}

/** DARE's dropped tensors for adapter i: the library's documented stream applied to the reference x_i. */
function droppedRef(xs: Dense[], module: string, key: string): Float32Array[] {
  return xs.map((x, i) =>
    drop(Float32Array.from(x), densities[i]!, new Rng(dropSeed(7, i, module, key)), true),
  );
}

const METHODS = ["task_arithmetic", "linear", "magnitude_prune", "ties", "dare_linear", "dare_ties"];

describe("delta space", () => {
  for (const method of METHODS) {
    test(`${method} (output.rank: exact → lossless)`, async () => {
      const got = await runMerge(method, "output: { rank: exact, dtype: float32 }\n");
      for (const [mi, m] of adapters[0]!.entries()) {
        const xs = adapters.map((ad) => delta(ad[mi]!));
        const dropped = method.startsWith("dare") ? droppedRef(xs, m.name, "delta") : undefined;
        const ref = methodRef(method, xs, weights, densities, { dropped });
        const g = got.get(m.name)!;
        assert.ok(relErr(g.d, ref) < 1e-5, `${method} ${m.name}: rel err ${relErr(g.d, ref)}`);
        if (method === "task_arithmetic" || method === "linear")
          assert.equal(g.rank, N * m.rank, "cat rank = Σ r_i");
        else assert.equal(g.rank, Math.min(m.out, m.in));
      }
    });
  }

  test("ties at the default rank is the best rank-r approximation of the dense result", async () => {
    const got = await runMerge("ties", "output: { dtype: float32 }\n");
    for (const [mi, m] of adapters[0]!.entries()) {
      const xs = adapters.map((ad) => delta(ad[mi]!));
      const ref = methodRef("ties", xs, weights, densities);
      const g = got.get(m.name)!;
      assert.equal(g.rank, m.rank, "PEFT's default: the largest input rank");
      // Eckart–Young: the error equals the tail of the spectrum
      const { values } = jacobiEig(matmul(ref, transpose(ref, m.out, m.in), m.out, m.in, m.out), m.out);
      const tail = Math.sqrt(values.slice(m.rank).reduce((s, v) => s + Math.max(v, 0), 0));
      let err = 0;
      for (let i = 0; i < ref.length; i++) err += (g.d[i]! - ref[i]!) ** 2;
      assert.ok(
        Math.abs(Math.sqrt(err) - tail) <= 1e-4 * Math.max(tail, 1e-3),
        `${m.name}: ${Math.sqrt(err)} vs ${tail}`,
      );
    }
  });

  test("sign_method frequency and lambda", async () => {
    const got = await runMerge(
      "ties",
      "parameters: { sign_method: frequency, lambda: 0.5 }\noutput: { rank: exact, dtype: float32 }\n",
    );
    for (const [mi, m] of adapters[0]!.entries()) {
      const xs = adapters.map((ad) => delta(ad[mi]!));
      const ref = methodRef("ties", xs, weights, densities, { signMethod: "frequency", lambda: 0.5 });
      assert.ok(relErr(got.get(m.name)!.d, ref) < 1e-5);
    }
  });
});

describe("factors space (PEFT add_weighted_adapter)", () => {
  for (const method of METHODS) {
    test(method, async () => {
      const got = await runMerge(method, "space: factors\noutput: { dtype: float32 }\n");
      for (const [mi, m] of adapters[0]!.entries()) {
        let w = weights;
        if (method === "linear") {
          const t = w.reduce((s, v) => s + v, 0);
          w = w.map((v) => v / t);
        }
        const ws = adapters.map((ad, i) => w[i]! * ad[mi]!.scaling);
        const wA = ws.map((v) => Math.sign(v) * Math.sqrt(Math.abs(v)));
        const wB = ws.map((v) => Math.sqrt(Math.abs(v)));
        const as = adapters.map((ad) => Float64Array.from(ad[mi]!.a));
        const bs = adapters.map((ad) => Float64Array.from(ad[mi]!.b));
        const base = method === "linear" ? "task_arithmetic" : method;
        const dA = base.startsWith("dare") ? droppedRef(as, m.name, "lora_A") : undefined;
        const dB = base.startsWith("dare") ? droppedRef(bs, m.name, "lora_B") : undefined;
        const A = methodRef(base, as, wA, densities, { dropped: dA });
        const B = methodRef(base, bs, wB, densities, { dropped: dB });
        const ref = matmul(B, A, m.out, m.rank, m.in);
        const g = got.get(m.name)!;
        assert.equal(g.rank, m.rank);
        assert.ok(relErr(g.d, ref) < 1e-5, `${method} ${m.name}: rel err ${relErr(g.d, ref)}`);
      }
    });
  }
});

describe("KnOTS space", () => {
  for (const method of METHODS) {
    test(`knots_${method} equals the dense KnOTS definition`, async () => {
      const got = await runMerge(`knots_${method}`, "output: { dtype: float32 }\n");
      for (const [mi, m] of adapters[0]!.entries()) {
        const deltas = adapters.map((ad) => delta(ad[mi]!));
        const { u, k, tasks } = knotsRef(deltas, m.out, m.in);
        let dropped: Float32Array[] | undefined;
        if (method.startsWith("dare")) {
          // the stream is applied to the library's own task tensors, whose row signs may differ from ours:
          // DARE's mask does not depend on values, so dropping our x_i with the same stream is equivalent
          dropped = droppedRef(tasks, m.name, "knots");
        }
        const merged = methodRef(method, tasks, weights, densities, { dropped });
        const ref = matmul(u, merged, m.out, k, m.in);
        const g = got.get(m.name)!;
        assert.equal(g.rank, N * m.rank, "exact KnOTS rank is Σ r_i (padded)");
        assert.ok(relErr(g.d, ref) < 1e-5, `knots_${method} ${m.name}: rel err ${relErr(g.d, ref)}`);
      }
    });
  }
});
