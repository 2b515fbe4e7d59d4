/**
 * rank_pattern / alpha_pattern keys are regular expressions from a downloaded file: matched in linear time,
 * with PEFT's semantics (`re.match(rf"(.*\.)?({key})$", name)`, first key in insertion order), and refused —
 * never skipped — when invalid or when they need backtracking (backreferences, lookaround).
 * Expected values are hand-derived from PEFT's rule.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { MerglotError } from "../../src/errors.js";
import { matchPatternKey, moduleScaling, parsePeftConfig } from "../../src/formats/peft.js";
import { makeAdapter, tempDir, writeRecipe } from "../helpers/fixtures.js";
import { assertOneClearLine, listTree, runCli } from "./inputs-cli.js";

const tmp = tempDir("merglot-patterns-");
after(() => tmp.cleanup());

describe("pattern keys follow PEFT's rule", () => {
  test("regular-expression keys, whole path components, insertion order, Python's $", () => {
    const q3 = "model.layers.3.self_attn.q_proj";
    // a character class and escaped dots: layers 0–3 only
    assert.equal(
      matchPatternKey(["layers\\.[0-3]\\.self_attn\\.q_proj"], q3),
      "layers\\.[0-3]\\.self_attn\\.q_proj",
    );
    assert.equal(
      matchPatternKey(["layers\\.[0-3]\\.self_attn\\.q_proj"], "model.layers.5.self_attn.q_proj"),
      undefined,
    );
    // alternation inside the key is grouped: (.*\.)?((q|k)_proj)$
    assert.equal(matchPatternKey(["(q|k)_proj"], "model.layers.0.self_attn.k_proj"), "(q|k)_proj");
    assert.equal(matchPatternKey(["q|k_proj"], "model.layers.0.self_attn.k_proj"), "q|k_proj");
    // "q|k_proj" is ((q|k_proj))$ after the prefix: it does not match "...v_proj" nor a bare "...xq_proj"
    assert.equal(matchPatternKey(["q|k_proj"], "model.layers.0.self_attn.xq_proj"), undefined);
    // first key in insertion order wins, even when a later one is more specific
    assert.equal(matchPatternKey(["q_proj", "layers.3.self_attn.q_proj"], q3), "q_proj");
    assert.equal(matchPatternKey(["layers.3.self_attn.q_proj", "q_proj"], q3), "layers.3.self_attn.q_proj");
    // re.match anchors at the start only through the optional (.*\.) prefix: "ayers.3..." is not a component
    assert.equal(matchPatternKey(["ayers.3.self_attn.q_proj"], q3), undefined);
    // Python's $ also matches before a final newline
    assert.equal(matchPatternKey(["q_proj"], "model.q_proj\n"), "q_proj");
    assert.equal(matchPatternKey(["q_proj"], "model.q_proj\n\n"), undefined);
  });

  test("scaling uses the matched keys", () => {
    const c = parsePeftConfig(
      {
        r: 8,
        lora_alpha: 16,
        rank_pattern: { "layers\\.(1|2)\\.mlp\\..*": 4 },
        alpha_pattern: { "(q|v)_proj": 64 },
      },
      "cfg.json",
    );
    assert.deepEqual(moduleScaling(c, "model.layers.2.mlp.up_proj"), { rank: 4, alpha: 16, scaling: 4 });
    assert.deepEqual(moduleScaling(c, "model.layers.3.mlp.up_proj"), { rank: 8, alpha: 16, scaling: 2 });
    assert.deepEqual(moduleScaling(c, "model.layers.3.self_attn.v_proj"), { rank: 8, alpha: 64, scaling: 8 });
  });

  const refused = (raw: unknown, pattern: RegExp): void =>
    assert.throws(
      () => parsePeftConfig(raw, "a/adapter_config.json"),
      (e: unknown) => e instanceof MerglotError && pattern.test(e.message),
    );

  test("an invalid key is an error naming the file, the field and the key", () => {
    refused(
      { r: 4, rank_pattern: { "q_proj[": 2 } },
      /^a\/adapter_config\.json: field "rank_pattern": key "q_proj\[" is not a regular expression/,
    );
    refused({ r: 4, alpha_pattern: { "(q_proj": 2 } }, /field "alpha_pattern": key "\(q_proj"/);
    // a key that would only parse spliced into the wrapper, rewriting its anchoring, is refused too
    refused({ r: 4, rank_pattern: { "a)|(b": 2 } }, /key "a\)\|\(b"/);
  });

  test("constructs that need backtracking are refused, with the reason", () => {
    for (const key of ["q(?=_proj)", "(?<!x)q_proj", "(q)_\\1", "(?P<n>q)(?P=n)", "(?>q)_proj", "q++_proj"]) {
      refused({ r: 4, rank_pattern: { [key]: 2 } }, /backreferences, lookaround, atomic groups/);
    }
  });

  test("rank_pattern values must be positive integers; a __proto__ key stays a key", () => {
    refused(
      { r: 4, rank_pattern: { q_proj: 2.5 } },
      /rank_pattern\.q_proj" must be a positive integer, got 2\.5/,
    );
    const c = parsePeftConfig(JSON.parse('{"r": 4, "rank_pattern": {"__proto__": 2}}'), "c.json");
    assert.deepEqual(Object.keys(c.rankPattern), ["__proto__"]);
    assert.equal(moduleScaling(c, "model.__proto__").rank, 2);
  });
});

describe("a crafted key and module name (catastrophic backtracking in a backtracking engine)", () => {
  // `(a|a)*b` against a long run of a's that does not end in b: a backtracking matcher tries 2^n ways.
  // With n = 40 the previous matcher (JavaScript RegExp) would run for days; see bench/pattern-keys.ts.
  const runOfA = "a".repeat(40);
  const modules = [
    { name: `model.layers.0.mlp.${runOfA}`, out: 3, in: 5, rank: 4 },
    { name: "model.layers.0.mlp.aab", out: 3, in: 5, rank: 2 },
  ];
  const dir = join(tmp.dir, "crafted");
  makeAdapter(dir, { seed: 3, modules, alpha: 8, extraConfig: { rank_pattern: { "(a|a)*b": 2 } } });

  test("inspect resolves both modules as PEFT would", () => {
    const r = runCli(tmp.dir, "inspect", dir, "--json");
    assert.equal(r.status, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as { modules: { name: string; rank: number; scaling: number }[] };
    const byName = new Map(rep.modules.map((m) => [m.name, m]));
    // no match: r = 4, scaling 8/4; match: rank_pattern's 2, scaling 8/2
    assert.deepEqual([byName.get(modules[0]!.name)?.rank, byName.get(modules[0]!.name)?.scaling], [4, 2]);
    assert.deepEqual(
      [byName.get("model.layers.0.mlp.aab")?.rank, byName.get("model.layers.0.mlp.aab")?.scaling],
      [2, 4],
    );
  });

  test("merge reads the same ranks and finishes", () => {
    makeAdapter(join(tmp.dir, "crafted2"), {
      seed: 4,
      modules,
      alpha: 8,
      extraConfig: { rank_pattern: { "(a|a)*b": 2 } },
    });
    const recipe = writeRecipe(
      tmp.dir,
      "crafted.yaml",
      "merge_method: task_arithmetic\nmodels:\n  - model: crafted\n  - model: crafted2\n",
    );
    const r = runCli(tmp.dir, "merge", recipe, "-o", "crafted-merged", "--json", "--threads", "1");
    assert.equal(r.status, 0, r.stderr);
    // task_arithmetic is exact: rank 4 + 4 and 2 + 2
    const s = JSON.parse(r.stdout) as { rank: { min: number; max: number } };
    assert.deepEqual([s.rank.min, s.rank.max], [4, 8]);
  });
});

describe("through the CLI, an invalid key is one clear line and nothing is written", () => {
  test("inspect and merge", () => {
    const dir = join(tmp.dir, "badkey");
    makeAdapter(dir, { seed: 5 });
    const cfg = join(dir, "adapter_config.json");
    writeFileSync(
      cfg,
      JSON.stringify({
        r: 2,
        lora_alpha: 4,
        target_modules: ["q_proj", "v_proj", "down_proj"],
        rank_pattern: { "down_proj(?=x)": 3 },
      }),
    );
    assertOneClearLine(
      runCli(tmp.dir, "inspect", dir),
      /adapter_config\.json: field "rank_pattern": key "down_proj\(\?=x\)"/,
    );
    makeAdapter(join(tmp.dir, "good"), { seed: 6 });
    const recipe = writeRecipe(
      tmp.dir,
      "bad.yaml",
      "merge_method: ties\nmodels:\n  - model: good\n  - model: badkey\n",
    );
    const before = listTree(tmp.dir);
    assertOneClearLine(
      runCli(tmp.dir, "merge", recipe, "-o", "never"),
      /rank_pattern": key "down_proj\(\?=x\)"/,
    );
    assert.deepEqual(listTree(tmp.dir), before);
  });
});
