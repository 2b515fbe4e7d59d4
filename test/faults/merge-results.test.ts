/**
 * Recipes that used to give a silently wrong result (exit 0) are refused or warned, each with one clear
 * message: linear weights that cancel up to rounding, results that overflow to ±Infinity, an output rank
 * above min(out, in), the same adapter listed twice, alias bombs and huge model lists, and a GGUF output
 * whose base config is missing (refused before the merge starts).
 */
import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, readFileSync, readdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { merge } from "../../src/merge/engine.js";
import { parseRecipe, parseRecipeYaml, weightsCancel, MAX_MODELS } from "../../src/merge/recipe.js";
import { targetRank } from "../../src/merge/plan.js";
import { LoraAdapter } from "../../src/formats/peft.js";
import { MerglotError } from "../../src/errors.js";
import { expectMerglotError, makeAdapter, tempDir, writeRecipe, SMALL_MODULES } from "../helpers/fixtures.js";
import { tempsIn } from "../helpers/merge-faults.js";

const tmp = tempDir("merglot-faults-results-");
after(() => tmp.cleanup());
makeAdapter(join(tmp.dir, "a0"), { seed: 1 });
makeAdapter(join(tmp.dir, "a1"), { seed: 2 });
makeAdapter(join(tmp.dir, "a2"), { seed: 3 });
makeAdapter(join(tmp.dir, "partial"), { seed: 4, modules: SMALL_MODULES.slice(0, 2) });
makeAdapter(join(tmp.dir, "h0"), { seed: 5, dtype: "F16" });
makeAdapter(join(tmp.dir, "h1"), { seed: 6, dtype: "F16" });
// weights of q_proj, v_proj and down_proj, but a config that lists q_proj and k_proj
makeAdapter(join(tmp.dir, "mislisted"), { seed: 7, extraConfig: { target_modules: ["q_proj", "k_proj"] } });

let n = 0;
async function rejects(yaml: string, code: string, pattern: RegExp, threads = 1): Promise<void> {
  const recipe = writeRecipe(tmp.dir, `r${n}.yaml`, yaml);
  const out = join(tmp.dir, `out${n++}`);
  let progressed = 0;
  await assert.rejects(
    merge(recipe, { output: out, threads, onProgress: () => progressed++ }),
    (e: unknown) => {
      assert.ok(e instanceof MerglotError, `expected a MerglotError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      assert.match(e.message, pattern);
      assert.doesNotMatch(e.message, /\n/, "one line");
      return true;
    },
  );
  assert.equal(existsSync(out), false, "nothing at the output path");
  assert.deepEqual(tempsIn(tmp.dir), [], "no temp left");
  return void progressed;
}

describe("linear weights that cancel", () => {
  test("0.1 + 0.2 − 0.3 (5.6e-17 in floating point) is refused at the recipe, naming the field", () => {
    assert.notEqual(0.1 + 0.2 - 0.3, 0, "the premise: the sum is not exactly 0");
    expectMerglotError(
      () =>
        parseRecipe(
          {
            merge_method: "linear",
            models: [
              { model: "a", parameters: { weight: 0.1 } },
              { model: "b", parameters: { weight: 0.2 } },
              { model: "c", parameters: { weight: -0.3 } },
            ],
          },
          "r.yaml",
          tmp.dir,
        ),
      "recipe.field",
      /^r\.yaml: models\[\*\]\.parameters\.weight: the weights sum to 5\.55\d*e-17 \(0 up to rounding\), so "linear" cannot normalise them$/,
    );
  });

  test("the tolerance is relative to Σ|w|: weights summing to a small but real value pass", () => {
    assert.equal(weightsCancel([0.1, 0.2, -0.3]), true);
    assert.equal(weightsCancel([1e-20, 2e-20, -3e-20]), true, "scale does not matter");
    assert.equal(weightsCancel([0.5, 0.5, -0.9]), false);
    assert.equal(weightsCancel([1e-20, 1e-20]), false, "tiny weights that do not cancel are fine");
    assert.equal(weightsCancel([1, -1 + 1e-6]), false);
  });

  test("weights that cancel only over the adapters that have a module are refused naming the module", () =>
    rejects(
      "merge_method: linear\nmodels:\n" +
        "  - {model: a0, parameters: {weight: 0.1}}\n  - {model: a1, parameters: {weight: 0.2}}\n" +
        "  - {model: a2, parameters: {weight: -0.3}}\n  - {model: partial, parameters: {weight: 1}}\n",
      "merge.weights",
      /^module "model\.layers\.1\.mlp\.down_proj": the weights of the adapters that have it sum to 0 \(up to rounding\)/,
    ));
});

describe("results that are not finite", () => {
  for (const threads of [1, 2]) {
    test(`weights of 1e308 overflow to Infinity: refused before writing, naming the module (threads ${threads})`, () =>
      rejects(
        "merge_method: task_arithmetic\nparameters: {weight: 1e308}\nmodels:\n  - model: a0\n  - model: a1\n",
        "merge.nonfinite_result",
        /^module "model\.layers\.\d\.[a-z_.]+": the merged lora_[AB] contains -?Infinity at index \d+; check the recipe's weights and lambda$/,
        threads,
      ));
  }

  test("lambda 1e39 overflows float32 as well", () =>
    rejects(
      "merge_method: ties\nparameters: {lambda: 1e39, density: 0.5}\nmodels:\n  - model: a0\n  - model: a1\n",
      "merge.nonfinite_result",
      /^module "model\.layers\.0\.self_attn\.q_proj": the merge overflowed \(svd: entry \(\d+, \d+\) is -?Infinity\); check the recipe's weights and lambda$/,
    ));

  test("values finite in float32 but beyond float16's 65504 are refused for a float16 output", async () => {
    const yaml =
      "merge_method: task_arithmetic\nparameters: {weight: 1e5}\nmodels:\n  - model: h0\n  - model: h1\n";
    await rejects(
      yaml,
      "merge.nonfinite_result",
      /^module "model\.layers\.0\.self_attn\.q_proj": the merged lora_B contains -?\d+(\.\d+)? at index \d+, which is out of range for the output dtype F16; check the recipe's weights and lambda \(or choose output\.dtype: float32\)$/,
    );
    // the same merge written as float32 is fine, and its largest value is indeed beyond float16
    const out = join(tmp.dir, "f32-out");
    await merge(writeRecipe(tmp.dir, "f32.yaml", yaml + "output: {dtype: float32}\n"), {
      output: out,
      threads: 1,
    });
    const a = LoraAdapter.open(out);
    try {
      const m = a.modules[0]!;
      const b = a.readB(m);
      assert.ok(b.some((v) => Math.abs(v) > 65504));
    } finally {
      a.close();
    }
  });
});

describe("output.rank above min(out, in)", () => {
  test("is capped per module at min(out, in) with a warning; the result equals rank: full byte for byte", async () => {
    const big = join(tmp.dir, "rank-big");
    const full = join(tmp.dir, "rank-full");
    const models = "models:\n  - model: a0\n  - model: a1\n";
    const s = await merge(
      writeRecipe(
        tmp.dir,
        "rk.yaml",
        `merge_method: ties\nparameters: {density: 0.5}\noutput: {rank: 100000}\n${models}`,
      ),
      { output: big, threads: 1 },
    );
    await merge(
      writeRecipe(
        tmp.dir,
        "rf.yaml",
        `merge_method: ties\nparameters: {density: 0.5}\noutput: {rank: full}\n${models}`,
      ),
      { output: full, threads: 1 },
    );
    // SMALL_MODULES: 8 × 6, 4 × 6, 6 × 10 → min(out, in) = 6, 4, 6
    const a = LoraAdapter.open(big);
    try {
      assert.deepEqual(
        a.modules.map((m) => [m.name, m.rank]),
        [
          ["model.layers.0.self_attn.q_proj", 6],
          ["model.layers.0.self_attn.v_proj", 4],
          ["model.layers.1.mlp.down_proj", 6],
        ],
      );
    } finally {
      a.close();
    }
    assert.deepEqual(
      readFileSync(join(big, "adapter_model.safetensors")),
      readFileSync(join(full, "adapter_model.safetensors")),
    );
    assert.ok(
      s.warnings.some((w) =>
        /^output\.rank 100000 is above min\(out, in\) of 3 of 3 modules \(e\.g\. "model\.layers\.0\.self_attn\.q_proj", 8 × 6\); those are written at rank min\(out, in\)/.test(
          w,
        ),
      ),
      s.warnings.join("\n"),
    );
  });

  test("a rank within every module's min(out, in) is not warned about", async () => {
    const s = await merge(
      writeRecipe(
        tmp.dir,
        "r3.yaml",
        "merge_method: ties\noutput: {rank: 3}\nmodels:\n  - model: a0\n  - model: a1\n",
      ),
      { output: join(tmp.dir, "rank3"), threads: 1 },
    );
    assert.equal(s.warnings.filter((w) => w.includes("output.rank")).length, 0);
    assert.deepEqual([s.rank.min, s.rank.max], [3, 3]);
  });
});

describe("the same adapter listed more than once", () => {
  test("the same folder twice, a symlink to it, and a byte-identical copy are each warned about", async () => {
    symlinkSync(join(tmp.dir, "a0"), join(tmp.dir, "a0-link"));
    cpSync(join(tmp.dir, "a1"), join(tmp.dir, "a1-copy"), { recursive: true });
    const s = await merge(
      writeRecipe(
        tmp.dir,
        "dup.yaml",
        "merge_method: ties\nmodels:\n  - model: a0\n  - model: a1\n  - model: a0\n  - model: a0-link\n  - model: a1-copy\n",
      ),
      { output: join(tmp.dir, "dup-out"), threads: 1 },
    );
    const dup = s.warnings.filter((w) => w.startsWith("models["));
    assert.equal(dup.length, 3, dup.join("\n"));
    assert.match(
      dup[0]!,
      /^models\[2\] \(.*\/a0\) is the same adapter as models\[0\]: it is merged 3 times$/,
    );
    assert.match(
      dup[1]!,
      /^models\[3\] \(.*\/a0-link\) is the same adapter as models\[0\]: it is merged 3 times$/,
    );
    assert.match(
      dup[2]!,
      /^models\[4\] \(.*\/a1-copy\) has the same weights as models\[1\] \(.*\/a1\): a copy of one adapter is merged twice$/,
    );
  });

  test("distinct adapters give no such warning", async () => {
    const s = await merge(
      writeRecipe(tmp.dir, "nodup.yaml", "merge_method: ties\nmodels:\n  - model: a0\n  - model: a1\n"),
      { output: join(tmp.dir, "nodup-out"), threads: 1 },
    );
    assert.equal(s.warnings.filter((w) => w.startsWith("models[")).length, 0);
  });
});

describe("hostile recipe structure", () => {
  test("a YAML alias bomb is refused in one line", () => {
    let y = "merge_method: ties\nx: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n";
    let prev = "a";
    for (let i = 0; i < 9; i++) {
      y += `l${i}: &l${i} [${Array(10).fill(`*${prev}`).join(", ")}]\n`;
      prev = `l${i}`;
    }
    y += "models: [{model: a0}]\n";
    expectMerglotError(
      () => parseRecipeYaml(y, "bomb.yaml", tmp.dir),
      "recipe.yaml",
      /^bomb\.yaml: too many YAML aliases \(more than 100\): refused as a possible alias bomb$/,
    );
  });

  test("a recipe listing 300,000 models is refused with one line naming the field (no RangeError)", () => {
    const y = "merge_method: ties\nmodels:\n" + "  - model: a0\n".repeat(300_000);
    expectMerglotError(
      () => parseRecipeYaml(y, "many.yaml", tmp.dir),
      "recipe.field",
      new RegExp(
        `^many\\.yaml: models: more than ${MAX_MODELS} adapters listed; merge at most ${MAX_MODELS} at once$`,
      ),
    );
  });

  test("ranks of a module over 300,000 participants: no spread, no stack overflow", () => {
    const recipe = parseRecipe({ merge_method: "ties", models: [{ model: "a" }] }, "r.yaml", tmp.dir);
    const ranks = Array.from({ length: 300_000 }, (_, i) => 1 + (i % 7));
    assert.equal(targetRank(recipe, ranks, 64, 64), 7, "the largest input rank");
  });
});

describe("output.format gguf", () => {
  test("without a base config: refused before the merge, naming output.base and not a temp path", async () => {
    const recipe = writeRecipe(
      tmp.dir,
      "gguf.yaml",
      "merge_method: ties\noutput: {format: gguf}\nmodels:\n  - model: a0\n  - model: a1\n",
    );
    const out = join(tmp.dir, "m.gguf");
    let progressed = 0;
    await assert.rejects(
      merge(recipe, { output: out, threads: 1, onProgress: () => progressed++ }),
      (e: unknown) => {
        assert.ok(e instanceof MerglotError);
        assert.match(
          e.message,
          /^.*gguf\.yaml: output\.base: output\.format gguf needs the base model's config\.json .*set output\.base to the base model folder \(the adapters' base_model_name_or_path "tiny\/base" is not a local folder with a config\.json\)$/,
        );
        assert.doesNotMatch(e.message, /\.tmp-/);
        return true;
      },
    );
    assert.equal(progressed, 0, "no module was merged");
    assert.equal(existsSync(out), false);
    assert.deepEqual(
      readdirSync(tmp.dir).filter((f) => f.includes(".tmp-") || f.startsWith(".m.gguf")),
      [],
    );
  });

  test("with output.base pointing nowhere: refused before the merge, naming the field", () =>
    rejects(
      "merge_method: ties\noutput: {format: gguf, base: ./no-such-model}\nmodels:\n  - model: a0\n",
      "model.missing",
      /^.*\.yaml: output\.base: .*no-such-model: no such model folder or config file$/,
    ));
});

describe("target_modules that disagree with the weights", () => {
  test("weights the list does not cover are refused (PEFT would drop them), naming file and module", async () => {
    await assert.rejects(
      merge(
        writeRecipe(tmp.dir, "tm.yaml", "merge_method: ties\nmodels:\n  - model: a0\n  - model: mislisted\n"),
        {
          output: join(tmp.dir, "tm-out"),
          threads: 1,
        },
      ),
      /\/mislisted\/adapter_model\.safetensors: module "model\.layers\.0\.self_attn\.v_proj" has LoRA weights but target_modules .* does not cover it/,
    );
    assert.equal(existsSync(join(tmp.dir, "tm-out")), false);
  });

  test("lists that agree are copied as before (union), with no warning", async () => {
    const out = join(tmp.dir, "tm-ok");
    const s = await merge(
      writeRecipe(tmp.dir, "tm-ok.yaml", "merge_method: ties\nmodels:\n  - model: a0\n  - model: partial\n"),
      { output: out, threads: 1 },
    );
    assert.equal(s.warnings.filter((x) => x.includes("target_modules")).length, 0);
    const cfg = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8")) as {
      target_modules: string[];
    };
    assert.deepEqual(cfg.target_modules, ["down_proj", "q_proj", "v_proj"]);
  });
});
