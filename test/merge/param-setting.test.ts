/**
 * Per-module weights and densities (mergekit's gradients and filtered conditions): the values are derived by
 * hand from mergekit's published rules (first matching filter; a gradient interpolated linearly over the
 * layers at t = layer / (layers − 1); an unmatched condition list falls through to the recipe's
 * `parameters`), and each merged module is checked against the dense TIES reference with those values.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import { parseRecipeYaml } from "../../src/merge/recipe.js";
import { gradientAt, settingAt } from "../../src/merge/param-setting.js";
import {
  expectMerglotError,
  makeAdapter,
  readDeltas,
  tempDir,
  writeRecipe,
  type ModuleShape,
} from "../helpers/fixtures.js";
import { delta, methodRef, relErr } from "../helpers/reference.js";

const tmp = tempDir();
after(() => tmp.cleanup());

describe("settings", () => {
  test("a gradient is interpolated linearly between evenly spaced points", () => {
    const g = [0, 0.5, 0.3, 0.7, 1];
    assert.equal(gradientAt(g, 0), 0);
    assert.equal(gradientAt(g, 1), 1);
    // t 0.3 → position 1.2 of 4: 0.8·0.5 + 0.2·0.3
    assert.ok(Math.abs(gradientAt(g, 0.3) - 0.46) < 1e-12);
    assert.ok(Math.abs(gradientAt(g, 0.625) - 0.5) < 1e-12, "position 2.5: midway between 0.3 and 0.7");
    assert.equal(gradientAt([0.4], 0.7), 0.4, "a one-point gradient is constant");
  });
  test("conditions: the first filter contained in the name wins; none matching gives nothing", () => {
    const s = [
      { filter: "self_attn", value: 0.2 },
      { filter: "q_proj", value: 0.9 },
      { filter: "mlp", value: [0, 1] },
    ];
    assert.equal(settingAt(s, "model.layers.3.self_attn.q_proj", 0), 0.2);
    assert.equal(settingAt(s, "model.layers.3.mlp.up_proj", 0.25), 0.25);
    assert.equal(settingAt(s, "lm_head", 1), undefined);
    assert.equal(settingAt([...s, { value: 0.6 }], "lm_head", 1), 0.6, "an entry without filter matches all");
    assert.equal(settingAt([{ filter: "*", value: 0.1 }], "lm_head", 1), 0.1, 'filter "*" matches all');
  });
});

describe("a merge with per-module weights and densities", () => {
  const shapes: ModuleShape[] = [
    { name: "model.layers.0.self_attn.q_proj", out: 8, in: 6, rank: 2 },
    { name: "model.layers.1.mlp.down_proj", out: 6, in: 10, rank: 3 },
    { name: "model.layers.2.self_attn.v_proj", out: 4, in: 6, rank: 2 },
    { name: "model.layers.2.mlp.up_proj", out: 10, in: 6, rank: 2 },
  ];
  const a = makeAdapter(join(tmp.dir, "pa"), { seed: 4100, alpha: 4, modules: shapes });
  const b = makeAdapter(join(tmp.dir, "pb"), { seed: 4101, alpha: 6, modules: shapes });
  const recipe = `merge_method: ties
models:
  - model: pa
    parameters:
      weight:
        - { filter: self_attn, value: [0.2, 1.0] }
        - { filter: down_proj, value: 0.7 }
      density: [0.4, 0.8]
  - model: pb
    parameters: { weight: 0.5 }
parameters:
  weight: 1.3
  density:
    - { filter: down_proj, value: 0.3 }
    - { value: 0.9 }
  lambda: 1.1
output: { rank: exact, dtype: float32 }
`;
  // three layers: t = 0, 0.5, 1. Hand-resolved [weight, density] of pa and pb per module:
  const want: Record<string, [[number, number], [number, number]]> = {
    "model.layers.0.self_attn.q_proj": [
      [0.2, 0.4],
      [0.5, 0.9],
    ],
    "model.layers.1.mlp.down_proj": [
      [0.7, 0.6],
      [0.5, 0.3],
    ],
    "model.layers.2.self_attn.v_proj": [
      [1.0, 0.8],
      [0.5, 0.9],
    ],
    // pa's conditions match neither filter: the recipe's weight 1.3
    "model.layers.2.mlp.up_proj": [
      [1.3, 0.8],
      [0.5, 0.9],
    ],
  };
  test("every module = the dense TIES of its own weights and densities", async () => {
    const out = join(tmp.dir, "pm-out");
    await merge(writeRecipe(tmp.dir, "pm.yaml", recipe), { output: out, threads: 1 });
    const got = readDeltas(out);
    for (const [i, s] of shapes.entries()) {
      const [[wa, da], [wb, db]] = want[s.name]!;
      const ref = methodRef("ties", [delta(a[i]!), delta(b[i]!)], [wa, wb], [da, db], { lambda: 1.1 });
      const err = relErr(got.get(s.name)!.d, ref);
      assert.ok(err < 1e-5, `${s.name}: rel err ${err}`);
    }
  });
  test("on worker threads the merge is the same, byte for byte", async () => {
    const one = join(tmp.dir, "pm-t1");
    const two = join(tmp.dir, "pm-t2");
    await merge(writeRecipe(tmp.dir, "pm-t.yaml", recipe), { output: one, threads: 1 });
    await merge(join(tmp.dir, "pm-t.yaml"), { output: two, threads: 2 });
    const bytes = (d: string) => readFileSync(join(d, "adapter_model.safetensors"));
    assert.ok(bytes(one).equals(bytes(two)));
  });
  test("the same values as scalars per module give other merges (the settings are not ignored)", async () => {
    const out = join(tmp.dir, "pm-flat");
    const flat = `merge_method: ties
models:
  - { model: pa, parameters: { weight: 0.2, density: 0.4 } }
  - { model: pb, parameters: { weight: 0.5, density: 0.9 } }
parameters: { lambda: 1.1 }
output: { rank: exact, dtype: float32 }
`;
    await merge(writeRecipe(tmp.dir, "pm-flat.yaml", flat), { output: out, threads: 1 });
    const got = readDeltas(out);
    // equal on layer 0's q_proj (same values there), different on the others
    const q = shapes[0]!.name;
    const perModule = readDeltas(join(tmp.dir, "pm-out"));
    assert.ok(relErr(got.get(q)!.d, perModule.get(q)!.d) < 1e-6);
    for (const s of shapes.slice(1)) assert.ok(relErr(got.get(s.name)!.d, perModule.get(s.name)!.d) > 1e-3);
  });
});

/** Two adapters whose weights sum to 0 on the MLP modules only. */
const CANCEL_ON_MLP = `models:
  - { model: la, parameters: { weight: [{ filter: mlp, value: 1 }, { value: 2 }] } }
  - { model: lb, parameters: { weight: [{ filter: mlp, value: -1 }, { value: 1 }] } }
`;

describe("refusals", () => {
  test("a density out of range inside a gradient or condition names the field", () => {
    expectMerglotError(
      () =>
        parseRecipeYaml(
          "merge_method: ties\nmodels:\n  - model: a\n    parameters: { density: [0.5, 1.5] }\n",
          "g.yaml",
          tmp.dir,
        ),
      "recipe.field",
      /^g\.yaml: models\[0\]\.parameters\.density\[1\]: density must lie in \(0, 1\]$/,
    );
  });
  test("a malformed setting names its problem and place", () => {
    const cases: [string, RegExp][] = [
      ['"x"', /^m\.yaml: models\[0\]\.parameters\.weight: expected a number$/],
      ["[]", /^m\.yaml: models\[0\]\.parameters\.weight: a gradient needs at least one number$/],
      [
        "[0.5, { value: 1 }]",
        /^m\.yaml: models\[0\]\.parameters\.weight\[0\]: a condition list holds only \{ filter, value \} entries/,
      ],
      [
        "[{ fliter: mlp, value: 1 }]",
        /^m\.yaml: models\[0\]\.parameters\.weight\[0\]: unknown key\(s\) "fliter"/,
      ],
      [
        "[{ filter: mlp }]",
        /^m\.yaml: models\[0\]\.parameters\.weight\[0\]\.value: a condition needs a value$/,
      ],
      [
        "[{ filter: mlp, value: [] }]",
        /^m\.yaml: models\[0\]\.parameters\.weight\[0\]\.value: a gradient needs/,
      ],
    ];
    for (const [w, pattern] of cases)
      expectMerglotError(
        () =>
          parseRecipeYaml(
            `merge_method: ties\nmodels:\n  - model: a\n    parameters: { weight: ${w} }\n`,
            "m.yaml",
            tmp.dir,
          ),
        "recipe.field",
        pattern,
      );
  });
  test("the global density scope with per-module densities", () => {
    expectMerglotError(
      () =>
        parseRecipeYaml(
          "merge_method: ties\nmodels: [{ model: a }, { model: b }]\nparameters: { density: [0.5, 0.9], density_scope: global }\n",
          "s.yaml",
          tmp.dir,
        ),
      "recipe.field",
      /^s\.yaml: parameters\.density_scope: "global" .*per-module densities/,
    );
  });
  test("a DELLA density gradient between two valid values that crosses the gap below 1 is refused at that module", async () => {
    // ε 0.4: valid densities [0.2, 0.8] ∪ {1}; the gradient [0.8, 1] gives layer 1 of 3 the density 0.9
    const shapes: ModuleShape[] = [
      { name: "model.layers.0.self_attn.q_proj", out: 4, in: 4, rank: 1 },
      { name: "model.layers.1.self_attn.q_proj", out: 4, in: 4, rank: 1 },
      { name: "model.layers.2.self_attn.q_proj", out: 4, in: 4, rank: 1 },
    ];
    makeAdapter(join(tmp.dir, "da"), { seed: 3, alpha: 1, modules: shapes });
    makeAdapter(join(tmp.dir, "db"), { seed: 4, alpha: 1, modules: shapes });
    const r = `merge_method: della
models: [{ model: da }, { model: db }]
parameters: { density: [0.8, 1.0], epsilon: 0.4 }
`;
    await assert.rejects(
      merge(writeRecipe(tmp.dir, "dg.yaml", r), { output: join(tmp.dir, "dg-out"), threads: 1 }),
      (e: Error) =>
        /dg\.yaml: models\[0\]\.parameters\.density: module "model\.layers\.1\.self_attn\.q_proj": della needs epsilon\/2 ≤ density ≤ 1 − epsilon\/2 \(density 0\.9/.test(
          e.message,
        ),
    );
  });
  test("linear weights that cancel on one module only are refused naming the module", async () => {
    const shapes: ModuleShape[] = [
      { name: "model.layers.0.self_attn.q_proj", out: 4, in: 4, rank: 1 },
      { name: "model.layers.0.mlp.up_proj", out: 4, in: 4, rank: 1 },
    ];
    makeAdapter(join(tmp.dir, "la"), { seed: 1, alpha: 1, modules: shapes });
    makeAdapter(join(tmp.dir, "lb"), { seed: 2, alpha: 1, modules: shapes });
    const r = `merge_method: linear\n${CANCEL_ON_MLP}`;
    await assert.rejects(
      merge(writeRecipe(tmp.dir, "lc.yaml", r), { output: join(tmp.dir, "lc-out"), threads: 1 }),
      (e: Error) => /module "model\.layers\.0\.mlp\.up_proj": the weights .* sum to 0/.test(e.message),
    );
  });
  test("multislerp weights that cancel on one module are refused naming the module", async () => {
    const r = `merge_method: multislerp\n${CANCEL_ON_MLP}`;
    await assert.rejects(
      merge(writeRecipe(tmp.dir, "ms.yaml", r), { output: join(tmp.dir, "ms-out"), threads: 1 }),
      (e: Error) =>
        /module "model\.layers\.0\.mlp\.up_proj": the weights .* sum to 0.*"multislerp" cannot normalise/.test(
          e.message,
        ),
    );
  });
});
