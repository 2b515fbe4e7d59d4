/**
 * target_modules against the weights, with PEFT's semantics (`check_target_module_exists`): a list matches a
 * module whose name equals an entry or ends with `.entry`; a string is a regular expression full-matched
 * against the module name; "all-linear" covers every linear module. Weights for a module the config does not
 * cover are refused (PEFT would silently drop them when loading); a list naming kinds without weights is
 * accepted, as PEFT writes such files, but a merge output lists only the kinds it holds.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { makeAdapter, tempDir, writeRecipe } from "../helpers/fixtures.js";
import { assertOneClearLine, listTree, runCli } from "./inputs-cli.js";

const tmp = tempDir("merglot-targets-");
after(() => tmp.cleanup());

/** SMALL_MODULES: layer 0 q_proj and v_proj, layer 1 down_proj. */
function adapter(name: string, targetModules: unknown, seed = 1): string {
  const dir = join(tmp.dir, name);
  makeAdapter(dir, { seed, extraConfig: { target_modules: targetModules } });
  return dir;
}

test("weights for a module the list does not cover: refused naming the module", () => {
  const dir = adapter("uncovered", ["q_proj", "v_proj"]);
  assertOneClearLine(
    runCli(tmp.dir, "inspect", dir),
    /adapter_model\.safetensors: module "model\.layers\.1\.mlp\.down_proj" has LoRA weights but target_modules \(\["q_proj","v_proj"\]\) in adapter_config\.json does not cover it/,
  );
  // a suffix must be a whole path component: "proj" covers nothing here
  assertOneClearLine(runCli(tmp.dir, "inspect", adapter("suffix", ["proj"])), /does not cover it/);
  // and nothing is written by a merge that reads it
  adapter("fine", ["q_proj", "v_proj", "down_proj"], 2);
  const recipe = writeRecipe(
    tmp.dir,
    "r.yaml",
    "merge_method: ties\nmodels:\n  - model: fine\n  - model: uncovered\n",
  );
  const before = listTree(tmp.dir);
  assertOneClearLine(
    runCli(tmp.dir, "merge", recipe, "-o", "out"),
    /"model\.layers\.1\.mlp\.down_proj" has LoRA weights/,
  );
  assert.deepEqual(listTree(tmp.dir), before);
});

test("a regular-expression target_modules is full-matched; all-linear and full names are accepted", () => {
  assertOneClearLine(
    runCli(tmp.dir, "inspect", adapter("re-partial", ".*\\.(q|v)_proj")),
    /down_proj" has LoRA weights/,
  );
  // full match: a regex matching only a prefix of the name does not cover it
  assertOneClearLine(
    runCli(tmp.dir, "inspect", adapter("re-prefix", "model\\.layers\\.\\d+")),
    /does not cover it/,
  );
  for (const [name, tm] of [
    ["re-all", "model\\.layers\\.\\d+\\.(self_attn\\.(q|v)_proj|mlp\\.down_proj)"],
    ["all-linear", "all-linear"],
    [
      "full-names",
      ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.mlp.down_proj"],
    ],
  ] as const) {
    const r = runCli(tmp.dir, "inspect", adapter(name, tm), "--json");
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    assert.equal((JSON.parse(r.stdout) as { modules: unknown[] }).modules.length, 3);
  }
});

test("an invalid regular expression in target_modules is refused naming the field", () => {
  assertOneClearLine(
    runCli(tmp.dir, "inspect", adapter("re-bad", "(q_proj")),
    /adapter_config\.json: field "target_modules": value "\(q_proj" is not a regular expression/,
  );
});

test("a list naming kinds without weights is read, and a merge writes only the kinds it holds", () => {
  const wide = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
  adapter("wide-a", wide, 3);
  adapter("wide-b", wide, 4);
  const recipe = writeRecipe(
    tmp.dir,
    "wide.yaml",
    "merge_method: ties\nmodels:\n  - model: wide-a\n  - model: wide-b\n",
  );
  const r = runCli(tmp.dir, "merge", recipe, "-o", "wide-out");
  assert.equal(r.status, 0, r.stderr);
  const cfg = JSON.parse(readFileSync(join(tmp.dir, "wide-out", "adapter_config.json"), "utf8")) as {
    target_modules: string[];
  };
  assert.deepEqual(cfg.target_modules, ["down_proj", "q_proj", "v_proj"]);
  // and the output reads back (its own list covers its weights)
  assert.equal(runCli(tmp.dir, "inspect", join(tmp.dir, "wide-out")).status, 0);
});
