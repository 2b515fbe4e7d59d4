/**
 * A library user's program, compiled by scripts/pack-test/run.sh in a fresh project where merglot was
 * installed from its tarball (tsc strict, skipLibCheck off, so merglot's published .d.ts files are checked
 * too), then run there. Not part of the repository's own build (tsconfig.json excludes this folder): it
 * imports "merglot" by its package name, as a consumer does.
 */
import assert from "node:assert/strict";
import {
  LlamaCppRunner,
  MerglotError,
  VERSION,
  inspectPath,
  loadRecipe,
  merge,
  metrics,
  type InspectReport,
  type MergeSummary,
} from "merglot";

// The types are real, not `any`: a wrong call must not compile.
// @ts-expect-error merge() takes a recipe (object or path), not a number
void (() => merge(42));

const recipe = loadRecipe("node_modules/merglot/data/demo/recipe.yaml");
const summary: MergeSummary = await merge(recipe, { output: "lib-merged" });
assert.equal(summary.method, "knots_ties");
assert.equal(summary.adapters, 5);

const report: InspectReport = inspectPath("lib-merged");
assert.equal(report.kind, "adapter");
assert.equal(report.baseModel, "merglot/tiny-llama-demo");

// Hand-computed expectations: 2 of 3 labels match; the second item's highest log-prob is the wrong choice.
assert.equal(metrics.accuracy(["pos", "neg", "pos"], ["pos", "pos", "pos"]), 2 / 3);
const mc = metrics.multipleChoiceAccuracy([
  { logprobs: [-1, -2], gold: 0 },
  { logprobs: [-3, -1], gold: 0 },
]);
assert.equal(mc.acc, 0.5);
// "the cat sat" vs "the cat ran": unigram overlap 2 of 3 on each side, so ROUGE-1 F = 2/3.
const r = await metrics.rouge(["the cat sat"], ["the cat ran"], { lang: "en", types: ["rouge1"] });
assert.ok(Math.abs(r.scores.rouge1.fmeasure.value - 2 / 3) < 1e-12);

// The llama.cpp runner's backend is not installed here: one MerglotError naming the install command.
await assert.rejects(
  () => LlamaCppRunner.open({ model: "model.gguf" }),
  (e: unknown) =>
    e instanceof MerglotError &&
    e.code === "backend.missing" &&
    e.message.includes("npm install node-llama-cpp@"),
);

console.log(`consumer: merglot ${VERSION} imported with types; merge, inspect, metrics and the hint work`);
