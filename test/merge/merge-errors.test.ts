/**
 * Bad input: each case gives a clear MerglotError naming the adapter / module / field, and nothing is written.
 */
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync, readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import { MerglotError } from "../../src/errors.js";
import { makeAdapter, tempDir, writeRecipe, SMALL_MODULES } from "../helpers/fixtures.js";
import { writeSafetensors } from "../../src/formats/safetensors.js";

const tmp = tempDir();
after(() => tmp.cleanup());
makeAdapter(join(tmp.dir, "a0"), { seed: 1 });
makeAdapter(join(tmp.dir, "a1"), { seed: 2 });
makeAdapter(join(tmp.dir, "other-base"), { seed: 3, base: "another/base" });
makeAdapter(join(tmp.dir, "wide"), {
  seed: 4,
  modules: SMALL_MODULES.map((m, i) => (i === 1 ? { ...m, in: 7 } : m)),
});
makeAdapter(join(tmp.dir, "rank4"), { seed: 5, modules: SMALL_MODULES.map((m) => ({ ...m, rank: 4 })) });
makeAdapter(join(tmp.dir, "partial"), { seed: 6, modules: SMALL_MODULES.slice(0, 2) });
// an adapter with a NaN in one factor
makeAdapter(join(tmp.dir, "nan"), { seed: 7 });
{
  const p = join(tmp.dir, "nan", "adapter_model.safetensors");
  const m = SMALL_MODULES[0]!;
  const a = new Float32Array(m.rank * m.in).fill(0.1);
  a[3] = NaN;
  const tensors = SMALL_MODULES.flatMap((mm) => [
    {
      name: `base_model.model.${mm.name}.lora_A.weight`,
      dtype: "F32" as const,
      shape: [mm.rank, mm.in],
      data: mm === m ? a : new Float32Array(mm.rank * mm.in),
    },
    {
      name: `base_model.model.${mm.name}.lora_B.weight`,
      dtype: "F32" as const,
      shape: [mm.out, mm.rank],
      data: new Float32Array(mm.out * mm.rank),
    },
  ]);
  writeSafetensors(p + ".new", tensors);
  writeFileSync(p, readFileSync(p + ".new"));
}

let n = 0;
async function expectError(
  yaml: string,
  pattern: RegExp,
  opts: { output?: string; allowBaseMismatch?: boolean } = {},
): Promise<void> {
  const p = writeRecipe(tmp.dir, `e${n}.yaml`, yaml);
  const out = opts.output ?? join(tmp.dir, `e${n++}-out`);
  const before = readdirSync(tmp.dir).length;
  await assert.rejects(
    merge(p, { output: out, threads: 1, allowBaseMismatch: opts.allowBaseMismatch }),
    (e: unknown) => {
      assert.ok(e instanceof MerglotError, `expected MerglotError, got ${String(e)}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
  if (!opts.output) assert.equal(existsSync(out), false, "nothing written at the output path");
  assert.equal(
    readdirSync(tmp.dir).filter((f) => f.includes(".tmp-")).length,
    0,
    "no temp files left behind",
  );
  assert.ok(readdirSync(tmp.dir).length <= before + 1);
}

describe("bad input", () => {
  test("module shapes that differ across adapters", () =>
    expectError(
      "merge_method: ties\nmodels:\n  - model: a0\n  - model: wide\n",
      /v_proj" has shape 4×6 in .*a0 but 4×7 in .*wide/,
    ));
  test("different base models (and the override)", async () => {
    await expectError(
      "merge_method: ties\nmodels:\n  - model: a0\n  - model: other-base\n",
      /different base models.*--allow-base-mismatch/,
    );
    const p = writeRecipe(
      tmp.dir,
      "ok-base.yaml",
      "merge_method: ties\nmodels:\n  - model: a0\n  - model: other-base\n",
    );
    const s = await merge(p, { output: join(tmp.dir, "ok-base-out"), threads: 1, allowBaseMismatch: true });
    assert.ok(s.warnings.some((w) => w.includes("different base models")));
  });
  test("NaN in an input tensor", () =>
    expectError(
      "merge_method: ties\nmodels:\n  - model: a0\n  - model: nan\n",
      /nan: tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" contains NaN/,
    ));
  test("density outside (0, 1]", async () => {
    await expectError(
      "merge_method: ties\nmodels:\n  - model: a0\n    parameters: { density: 1.5 }\n",
      /models\[0\]\.parameters\.density: density must lie in \(0, 1\]/,
    );
    await expectError(
      "merge_method: ties\nmodels:\n  - model: a0\nparameters: { density: 0 }\n",
      /parameters\.density: density must lie in \(0, 1\]/,
    );
  });
  test("unknown method or space", async () => {
    await expectError("merge_method: tie\nmodels:\n  - model: a0\n", /merge_method: unknown merge method/);
    await expectError("merge_method: ties\nspace: weights\nmodels:\n  - model: a0\n", /space:/);
  });
  test("unknown keys are errors", async () => {
    await expectError(
      "merge_method: ties\nmodels:\n  - model: a0\nparameters: { densty: 0.5 }\n",
      /parameters: unknown key\(s\) "densty"/,
    );
    await expectError("merge_method: ties\nmodel:\n  - model: a0\n", /unknown key\(s\) "model"/);
  });
  test("weights that sum to 0 with linear", () =>
    expectError(
      "merge_method: linear\nmodels:\n  - model: a0\n    parameters: { weight: 1 }\n  - model: a1\n    parameters: { weight: -1 }\n",
      /weights sum to 0/,
    ));
  test("an empty models list", () =>
    expectError("merge_method: ties\nmodels: []\n", /models: the models list is empty/));
  test("a missing adapter folder", () =>
    expectError("merge_method: ties\nmodels:\n  - model: nowhere\n", /nowhere: adapter folder not found/));
  test("different ranks in factors space", () =>
    expectError(
      "merge_method: ties\nspace: factors\nmodels:\n  - model: a0\n  - model: rank4\n",
      /factors space needs equal ranks/,
    ));
  test("YAML syntax errors name the line", () =>
    expectError("merge_method: ties\nmodels:\n  - model: [a0\n", /line \d+/));
  test("an output path that exists (--force replaces a merge output, --force-replace-foreign anything)", async () => {
    const out = join(tmp.dir, "exists");
    mkdirSync(out);
    writeFileSync(join(out, "keep.txt"), "x");
    await expectError("merge_method: ties\nmodels:\n  - model: a0\n", /exists.*--force-replace-foreign/, {
      output: out,
    });
    assert.ok(existsSync(join(out, "keep.txt")));
    const p = writeRecipe(tmp.dir, "force.yaml", "merge_method: ties\nmodels:\n  - model: a0\n");
    await assert.rejects(merge(p, { output: out, force: true, threads: 1 }), /no merge_manifest\.json/);
    assert.ok(existsSync(join(out, "keep.txt")));
    await merge(p, { output: out, replaceForeign: true, threads: 1 });
    await merge(p, { output: out, force: true, threads: 1 });
    assert.ok(existsSync(join(out, "adapter_model.safetensors")));
    assert.equal(existsSync(join(out, "keep.txt")), false);
  });
});

describe("partial coverage and different ranks", () => {
  test("a module missing in one adapter is merged over the adapters that have it", async () => {
    const p = writeRecipe(
      tmp.dir,
      "partial.yaml",
      "merge_method: knots_ties\nmodels:\n  - model: a0\n  - model: partial\n",
    );
    const s = await merge(p, { output: join(tmp.dir, "partial-out"), threads: 1 });
    assert.equal(s.modules, 3);
    assert.ok(s.warnings.some((w) => w.includes("down_proj") && w.includes("1 of 2")));
  });
  test("different ranks are fine in delta and knots spaces", async () => {
    for (const method of ["ties", "knots_ties"]) {
      const p = writeRecipe(
        tmp.dir,
        `ranks-${method}.yaml`,
        `merge_method: ${method}\nmodels:\n  - model: a0\n  - model: rank4\n`,
      );
      const s = await merge(p, { output: join(tmp.dir, `ranks-${method}-out`), threads: 1 });
      assert.equal(s.modules, 3);
    }
  });
});
