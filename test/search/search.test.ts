/**
 * The merge search end to end on a tiny random llama and random adapters: determinism for a seed, the
 * test split never read during the search (the loaders' split-read log), budget limits, overwrite refusal,
 * strict SEARCH.yaml, and resume after a real SIGKILL of `merglot search` (the resumed search's candidates
 * equal an uninterrupted run's).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clearSplitReads, splitReads } from "../../src/data/split-log.js";
import { MerglotError } from "../../src/errors.js";
import { METHOD_NAMES } from "../../src/merge/methods.js";
import { Cmaes } from "../../src/search/cmaes.js";
import { runSearch } from "../../src/search/search.js";
import { merge } from "../../src/merge/engine.js";
import { loadSearchSpec, parseSearchSpec } from "../../src/search/spec.js";
import { makeAdapter, readDeltas, tempDir } from "../helpers/fixtures.js";
import { relErr } from "../helpers/reference.js";
import { writeByteModel } from "../tasks/tiny-model.js";

const tmp = tempDir("merglot-search-");
const root = tmp.dir;
const LANGS = ["en", "de"];
const LABELS = ["positive", "neutral", "negative"];
// module shapes of the byte model (hidden 32, 2 KV heads of 8, ffn 48)
const MODULES = [
  { name: "model.layers.0.self_attn.q_proj", out: 32, in: 32, rank: 2 },
  { name: "model.layers.0.self_attn.v_proj", out: 16, in: 32, rank: 2 },
  { name: "model.layers.0.mlp.down_proj", out: 32, in: 48, rank: 2 },
];

function rows(lang: string, split: string, n: number): string {
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({ id: `${lang}-${split}-${i}`, lang, text: `review ${i} ${split}`, label: LABELS[i % 3] }),
  )
    .map((l) => l + "\n")
    .join("");
}

before(() => {
  writeByteModel(join(root, "model"), 21);
  LANGS.forEach((l, i) => {
    makeAdapter(join(root, "adapters", l), { seed: 100 + i, modules: MODULES, alpha: 2 });
    const d = join(root, "data", l);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "train.jsonl"), rows(l, "train", 6));
    writeFileSync(join(d, "validation.jsonl"), rows(l, "validation", 6));
    writeFileSync(join(d, "test.jsonl"), rows(l, "test", 6));
  });
});
after(() => tmp.cleanup());

function specYaml(name: string, extra: string): string {
  const p = join(root, `${name}.yaml`);
  writeFileSync(
    p,
    `base: model
task: sentiment
adapters: { en: adapters/en, de: adapters/de }
data: { en: data/en, de: data/de }
methods: [ties]
parameters:
  weight: { min: 0.2, max: 1.5, per_language: true }
  density: { min: 0.3, max: 1 }
objective: { metric: accuracy }
seed: 3
${extra}
`,
  );
  return p;
}

/** A spec over the fixture's two adapters, given as an object: CMA-ES with population 4, seed 3, no final test. */
function inlineSpec(methods: string[], parameters: object, candidates: number, optimizer: object = {}) {
  return parseSearchSpec(
    {
      base: "model",
      task: "sentiment",
      adapters: { en: "adapters/en", de: "adapters/de" },
      data: { en: "data/en", de: "data/de" },
      methods,
      parameters,
      objective: { metric: "accuracy" },
      budget: { candidates },
      optimizer: { kind: "cmaes", population: 4, ...optimizer },
      seed: 3,
      final_test: false,
    },
    "S.yaml",
    root,
  );
}

const strip = (s: string) => s.replace(/"seconds": [0-9.e-]+/g, '"seconds": 0');

describe("merglot search", () => {
  test("same spec and seed → identical search.json (times aside), recipe and adapter", async () => {
    const spec = loadSearchSpec(
      specYaml(
        "det",
        "budget: { candidates: 6 }\noptimizer: { kind: cmaes, population: 4 }\nfinal_test: false",
      ),
    );
    const a = await runSearch(spec, { output: join(root, "det-a") });
    await runSearch(spec, { output: join(root, "det-b") });
    assert.equal(a.candidates.length, 6);
    const read = (d: string, f: string) => readFileSync(join(root, d, f));
    assert.equal(
      strip(read("det-a", "search.json").toString()),
      strip(read("det-b", "search.json").toString()),
    );
    assert.deepEqual(read("det-a", "best-recipe.yaml"), read("det-b", "best-recipe.yaml"));
    assert.deepEqual(
      read("det-a", "adapter/adapter_model.safetensors"),
      read("det-b", "adapter/adapter_model.safetensors"),
    );
    // the best is the candidate with the highest objective, and the objective is the mean over languages
    const max = Math.max(...a.candidates.map((c) => c.objective));
    assert.equal(a.best.objective, max);
    for (const c of a.candidates) assert.equal(c.mean, (c.scores.en! + c.scores.de!) / 2);
    // a different seed proposes other parameters
    const other = await runSearch({ ...spec, seed: 4 }, { output: join(root, "det-c") });
    assert.notDeepEqual(
      other.candidates.map((c) => c.params),
      a.candidates.map((c) => c.params),
    );
  });

  test("--jobs 2 scores a generation in parallel and gives the same candidates, scores and best as --jobs 1", async () => {
    const spec = loadSearchSpec(
      specYaml(
        "jobs",
        "budget: { candidates: 8 }\noptimizer: { kind: cmaes, population: 4 }\nfinal_test: false",
      ),
    );
    const one = await runSearch(spec, { output: join(root, "jobs-1"), jobs: 1 });
    const two = await runSearch(spec, { output: join(root, "jobs-2"), jobs: 2 });
    assert.equal(two.candidates.length, 8);
    const read = (d: string, f: string) => readFileSync(join(root, d, f));
    assert.equal(
      strip(read("jobs-1", "search.json").toString()),
      strip(read("jobs-2", "search.json").toString()),
    );
    assert.deepEqual(
      read("jobs-1", "adapter/adapter_model.safetensors"),
      read("jobs-2", "adapter/adapter_model.safetensors"),
    );
    // the workers' scratch folders are gone with the work folder
    assert.ok(!existsSync(join(root, "jobs-2.partial")));
    assert.deepEqual(
      two.candidates.map((c) => c.index),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    assert.deepEqual([two.best.index, two.best.params], [one.best.index, one.best.params]);
    assert.deepEqual([one.parallel, two.parallel], [1, 2]);
  });

  test("random and grid search keep --jobs 2 workers busy and propose the same points as --jobs 1", async () => {
    for (const optimizer of ["{ kind: random }", "{ kind: grid, grid_points: 2 }"]) {
      const spec = loadSearchSpec(
        specYaml(
          `jobs-${optimizer.length}`,
          `budget: { candidates: 5 }\noptimizer: ${optimizer}\nfinal_test: false`,
        ),
      );
      const one = await runSearch(spec, { output: join(root, `rj1-${optimizer.length}`), jobs: 1 });
      const two = await runSearch(spec, { output: join(root, `rj2-${optimizer.length}`), jobs: 2 });
      const read = (r: typeof one) => strip(readFileSync(join(r.out, "search.json"), "utf8"));
      assert.equal(read(two), read(one), optimizer);
      assert.equal(two.candidates.length, 5);
      assert.deepEqual([one.parallel, two.parallel], [1, 2], optimizer);
    }
  });

  test("the test split is never read during the search; only the final evaluation reads it", async () => {
    const spec = loadSearchSpec(specYaml("split", "budget: { candidates: 3 }\noptimizer: { kind: random }"));
    clearSplitReads();
    const r = await runSearch(spec, { output: join(root, "split-out") });
    assert.ok(r.searchReads.length >= 2);
    assert.deepEqual([...new Set(r.searchReads.map((x) => x.split))], ["validation"]);
    const all = splitReads();
    const firstTest = all.findIndex((x) => x.split === "test");
    assert.ok(firstTest >= r.searchReads.length, "test is read only after the search's reads");
    assert.ok(r.test && "en" in r.test && "de" in r.test);
    // without the final evaluation, test is never read at all
    clearSplitReads();
    await runSearch({ ...spec, finalTest: false }, { output: join(root, "split-out2") });
    assert.ok(splitReads().every((x) => x.split !== "test"));
  });

  test("budgets: candidates cap, an exhausted grid stops early, a time budget stops after one", async () => {
    const base = loadSearchSpec(
      specYaml(
        "budget",
        "budget: { candidates: 5 }\noptimizer: { kind: cmaes, population: 4 }\nfinal_test: false",
      ),
    );
    const r = await runSearch(base, { output: join(root, "b1") });
    assert.equal(r.candidates.length, 5);
    const grid = await runSearch(
      { ...base, weight: 1, budget: { candidates: 50 }, optimizer: { kind: "grid", gridPoints: 2 } },
      { output: join(root, "b2") },
    );
    // one searched coordinate (density) with 2 levels: 0.3 and 1
    assert.deepEqual(
      grid.candidates.map((c) => c.params.density.en),
      [0.3, 1],
    );
    const timed = await runSearch(
      { ...base, budget: { seconds: 1e-9 }, optimizer: { kind: "random", gridPoints: 3 } },
      { output: join(root, "b3") },
    );
    assert.equal(timed.candidates.length, 1);
  });

  test("every merge method of the registry is accepted by name; two-adapter methods need two languages", () => {
    const spec = (methods: string[], langs = LANGS) => ({
      base: "m",
      task: "sentiment",
      adapters: Object.fromEntries(langs.map((l) => [l, `ad-${l}`])),
      data: Object.fromEntries(langs.map((l) => [l, `data-${l}`])),
      methods,
      objective: { metric: "acc" },
      budget: { candidates: 1 },
      optimizer: { kind: "random" },
    });
    for (const m of METHOD_NAMES) assert.deepEqual(parseSearchSpec(spec([m]), "S.yaml", root).methods, [m]);
    assert.throws(
      () => parseSearchSpec(spec(["slerp"], ["en", "de", "fr"]), "S.yaml", root),
      (e: unknown) =>
        e instanceof MerglotError &&
        /^S\.yaml: methods: "slerp" merges exactly 2 adapters, the search has 3/.test(e.message),
    );
  });

  test("optimizer.start is scored first, then CMA-ES samples around it with the given σ; bad starts name the field", async () => {
    const spec = loadSearchSpec(
      specYaml(
        "start",
        "budget: { candidates: 5 }\noptimizer: { kind: cmaes, population: 4, start: { weight: 1, density: 0.5 }, sigma: 0.1 }\nfinal_test: false",
      ),
    );
    const r = await runSearch(spec, { output: join(root, "start-out") });
    assert.deepEqual(r.candidates[0]!.params, {
      method: "ties",
      weight: { en: 1, de: 1 },
      density: { en: 0.5, de: 0.5 },
      lambda: 1,
    });
    // the next four are CMA-ES's first generation from mean (1, 1, 0.5), σ0 = 0.1 × the widest range (1.3),
    // seeded as the search seeds its first method: the start's score is not told to it
    const lo = [0.2, 0.2, 0.3];
    const hi = [1.5, 1.5, 1];
    const gen = new Cmaes({ bounds: { lo, hi }, seed: 3, lambda: 4, x0: [1, 1, 0.5], sigma0: 0.13 }).ask();
    const round = (v: number) => Number(v.toPrecision(12));
    assert.deepEqual(
      r.candidates.slice(1).map((c) => [c.params.weight.en, c.params.weight.de, c.params.density.en]),
      gen.map((x) => x.map(round)),
    );
    // and the σ was the one given: the default σ0 (0.3 × 1.3) proposes other points from the same mean and seed
    const byDefault = new Cmaes({ bounds: { lo, hi }, seed: 3, lambda: 4, x0: [1, 1, 0.5] }).ask();
    assert.notDeepEqual(
      byDefault.map((x) => x.map(round)),
      gen.map((x) => x.map(round)),
    );

    const bad = (optimizer: string, pattern: RegExp) =>
      assert.throws(
        () => loadSearchSpec(specYaml("bad-start", `budget: { candidates: 1 }\noptimizer: ${optimizer}`)),
        (e: unknown) => e instanceof MerglotError && pattern.test(e.message),
      );
    bad(
      "{ kind: cmaes, start: { density: 0.2 } }",
      /bad-start\.yaml: optimizer\.start\.density: 0\.2 lies outside the searched range \[0\.3, 1\]/,
    );
    bad(
      "{ kind: cmaes, start: { lambda: 1 } }",
      /optimizer\.start\.lambda: lambda is not searched \(fixed at 1\)/,
    );
    bad("{ kind: random, sigma: 0.2 }", /optimizer\.sigma: only CMA-ES has a step size/);
    bad("{ kind: cmaes, start: { weigth: 1 } }", /optimizer\.start.*weigth/);
  });

  test("a searched density applies to the methods that use one; a method without searches the other parameters", async () => {
    const spec = (methods: string[], parameters: object) => inlineSpec(methods, parameters, 8);
    const weight = { min: 0.2, max: 1.5, per_language: true };
    const r = await runSearch(spec(["ties", "multislerp"], { weight, density: { min: 0.3, max: 1 } }), {
      output: join(root, "mixed-out"),
    });
    const ties = r.candidates.filter((c) => c.method === "ties");
    const slerp = r.candidates.filter((c) => c.method === "multislerp");
    assert.deepEqual([ties.length, slerp.length], [4, 4]);
    // TIES searches (weight.en, weight.de, density): its densities vary inside the range
    const d = ties.map((c) => c.params.density.en as number);
    assert.ok(d.every((v) => v >= 0.3 && v <= 1) && new Set(d).size === 4);
    // multislerp searches the two weights only (CMA-ES in 2-D, seeded as the search seeds its second method),
    // and merges with the recipes' density 1
    const gen = new Cmaes({ bounds: { lo: [0.2, 0.2], hi: [1.5, 1.5] }, seed: 4, lambda: 4 }).ask();
    const round = (v: number) => Number(v.toPrecision(12));
    assert.deepEqual(
      slerp.map((c) => [c.params.weight.en, c.params.weight.de]),
      gen.map((x) => x.map(round)),
    );
    for (const c of slerp) assert.deepEqual(c.params.density, { en: 1, de: 1 });

    const refused = (methods: string[], parameters: object, pattern: RegExp) =>
      assert.throws(
        () => spec(methods, parameters),
        (e: unknown) => e instanceof MerglotError && pattern.test(e.message),
      );
    refused(
      ["multislerp"],
      { weight, density: { min: 0.3, max: 1 } },
      /^S\.yaml: parameters\.density: no method searched uses a density \(multislerp\), so it cannot be searched/,
    );
    refused(
      ["ties", "multislerp"],
      { density: { min: 0.3, max: 1 } },
      /^S\.yaml: methods: "multislerp" does not use a density, the only searched parameter, so it would search nothing/,
    );
  });

  test("optimizer.start.methods: a method's own start values replace the common ones; bad keys name the field", async () => {
    const spec = (methods: string[], parameters: object, start: object) =>
      inlineSpec(methods, parameters, 4, { start });
    const parameters = { weight: { min: 0.2, max: 1.5, per_language: true }, lambda: { min: 0.1, max: 2 } };
    const r = await runSearch(
      spec(["ties", "task_arithmetic"], parameters, {
        weight: 1,
        lambda: 1,
        methods: { task_arithmetic: { lambda: 0.4 } },
      }),
      { output: join(root, "start-methods-out") },
    );
    const first = (m: string) => r.candidates.find((c) => c.method === m)!.params;
    assert.deepEqual([first("ties").weight, first("ties").lambda], [{ en: 1, de: 1 }, 1]);
    assert.deepEqual(
      [first("task_arithmetic").weight, first("task_arithmetic").lambda],
      [{ en: 1, de: 1 }, 0.4],
    );
    const refused = (methods: string[], params: object, start: object, pattern: RegExp) =>
      assert.throws(
        () => spec(methods, params, start),
        (e: unknown) => e instanceof MerglotError && pattern.test(e.message),
      );
    refused(
      ["ties"],
      parameters,
      { methods: { dare_ties: { lambda: 0.5 } } },
      /^S\.yaml: optimizer\.start\.methods\.dare_ties: "dare_ties" is not one of the searched methods \(ties\)$/,
    );
    refused(
      ["ties", "multislerp"],
      { ...parameters, density: { min: 0.3, max: 1 } },
      { methods: { multislerp: { density: 0.5 } } },
      /^S\.yaml: optimizer\.start\.methods\.multislerp\.density: "multislerp" does not use a density$/,
    );
    refused(
      ["ties"],
      parameters,
      { methods: { ties: { lambda: 5 } } },
      /^S\.yaml: optimizer\.start\.methods\.ties\.lambda: 5 lies outside the searched range \[0\.1, 2\]$/,
    );
  });

  test("weights searched per module filter: one coordinate per language × filter, written as conditions", async () => {
    const spec = (weight: object) => inlineSpec(["ties"], { weight, lambda: { min: 0.5, max: 2 } }, 4);
    const weight = { min: 0.2, max: 1.5, per_language: true, filters: ["self_attn", "mlp"] };
    const out = join(root, "filters-out");
    const r = await runSearch(spec(weight), { output: out });
    // the coordinates in order: weight.en.self_attn, weight.en.mlp, weight.de.self_attn, weight.de.mlp, lambda
    const gen = new Cmaes({
      bounds: { lo: [0.2, 0.2, 0.2, 0.2, 0.5], hi: [1.5, 1.5, 1.5, 1.5, 2] },
      seed: 3,
      lambda: 4,
    }).ask();
    const round = (v: number) => Number(v.toPrecision(12));
    assert.deepEqual(
      r.candidates.map((c) => [
        (c.params.weight.en as Record<string, number>).self_attn,
        (c.params.weight.en as Record<string, number>).mlp,
        (c.params.weight.de as Record<string, number>).self_attn,
        (c.params.weight.de as Record<string, number>).mlp,
        c.params.lambda,
      ]),
      gen.map((x) => x.map(round)),
    );
    // the best recipe holds mergekit's condition lists; merging it again gives the search's adapter
    const recipe = readFileSync(join(out, "best-recipe.yaml"), "utf8");
    const best = r.best.params.weight.en as Record<string, number>;
    assert.match(recipe, new RegExp(`- filter: self_attn\\n\\s+value: ${best.self_attn}\\n`));
    assert.match(recipe, new RegExp(`- filter: mlp\\n\\s+value: ${best.mlp}\\n`));
    const again = join(root, "filters-again");
    await merge(join(out, "best-recipe.yaml"), { output: again, threads: 1 });
    assert.ok(
      readFileSync(join(again, "adapter_model.safetensors")).equals(
        readFileSync(join(out, "adapter", "adapter_model.safetensors")),
      ),
    );
    // each module group of the best adapter = a plain merge with that group's weights (so the conditions act)
    const plain = (filter: string) => {
      const w = (l: string) => (r.best.params.weight[l] as Record<string, number>)[filter]!;
      const dir = join(root, `filters-plain-${filter}`);
      const y = join(root, `filters-plain-${filter}.yaml`);
      writeFileSync(
        y,
        `merge_method: ties\nmodels:\n  - { model: adapters/en, parameters: { weight: ${w("en")} } }\n` +
          `  - { model: adapters/de, parameters: { weight: ${w("de")} } }\nparameters: { lambda: ${r.best.params.lambda} }\n` +
          `seed: 3\noutput: { dtype: float32 }\n`,
      );
      return merge(y, { output: dir, threads: 1 }).then(() => readDeltas(dir));
    };
    const bestDeltas = readDeltas(join(out, "adapter"));
    const [attn, mlp] = [await plain("self_attn"), await plain("mlp")];
    for (const [name, d] of bestDeltas) {
      const want = (name.includes("self_attn") ? attn : mlp).get(name)!.d;
      const other = (name.includes("self_attn") ? mlp : attn).get(name)!.d;
      assert.ok(relErr(d.d, want) < 1e-6, `${name}: its group's weights`);
      assert.ok(relErr(d.d, other) > 1e-3, `${name}: the other group's weights give another merge`);
    }
    // a module that no filter names is refused before anything is scored
    await assert.rejects(
      runSearch(spec({ ...weight, filters: ["self_attn"] }), { output: join(root, "filters-bad") }),
      (e: unknown) =>
        e instanceof MerglotError &&
        /^S\.yaml: parameters\.weight\.filters: the en adapter \(.*\): module "model\.layers\.0\.mlp\.down_proj" matches none of self_attn; add a filter that names it$/.test(
          e.message,
        ),
    );
    assert.ok(!existsSync(join(root, "filters-bad")));
    // a filter that is never a module's first match would be a coordinate that changes nothing
    await assert.rejects(
      runSearch(spec({ ...weight, filters: ["proj", "q_proj"] }), { output: join(root, "filters-idle") }),
      (e: unknown) =>
        e instanceof MerglotError &&
        /^S\.yaml: parameters\.weight\.filters: the en adapter \(.*\): "q_proj" applies to no module: each module takes the first filter it contains$/.test(
          e.message,
        ),
    );
    assert.throws(
      () => spec({ ...weight, filters: ["mlp", "mlp"] }),
      (e: unknown) =>
        e instanceof MerglotError &&
        /^S\.yaml: parameters\.weight\.filters: filters repeat a name$/.test(e.message),
    );
  });

  test("an existing output is refused without force; an unknown key names the field", async () => {
    const spec = loadSearchSpec(
      specYaml("ow", "budget: { candidates: 1 }\noptimizer: { kind: random }\nfinal_test: false"),
    );
    await runSearch(spec, { output: join(root, "ow-out") });
    await assert.rejects(runSearch(spec, { output: join(root, "ow-out") }), (e: unknown) => {
      return e instanceof MerglotError && /already exists/.test(e.message);
    });
    assert.throws(
      () =>
        parseSearchSpec(
          { ...{ base: "m", task: "sentiment", adapters: {}, data: {}, methods: ["ties"] }, objectiv: 1 },
          "S.yaml",
          root,
        ),
      (e: unknown) => e instanceof MerglotError && /S\.yaml: .*"objectiv"/.test(e.message),
    );
  });

  test("resume after SIGKILL (of a --jobs 2 search) replays the log and ends with the uninterrupted run's candidates", async () => {
    const file = specYaml(
      "resume",
      "budget: { candidates: 16 }\noptimizer: { kind: cmaes, population: 4 }\nfinal_test: false",
    );
    const out = join(root, "resume-out");
    const cli = join(process.cwd(), "dist", "src", "cli", "main.js");
    // killed while two workers score a generation: the log holds candidates in completion order
    const child = spawn(process.execPath, [cli, "search", file, "-o", out, "--jobs", "2"], {
      stdio: "ignore",
    });
    const exited = new Promise((res) => child.on("exit", res));
    const log = `${out}.partial/candidates.jsonl`;
    const lines = () => (existsSync(log) ? readFileSync(log, "utf8").split("\n").length - 1 : 0);
    await new Promise<void>((res, rej) => {
      const t = setInterval(() => {
        if (lines() >= 3) {
          clearInterval(t);
          child.kill("SIGKILL");
          res();
        }
      }, 10);
      child.on("exit", () => {
        clearInterval(t);
        if (lines() < 3) rej(new Error("the search finished before it could be killed"));
      });
    });
    await exited;
    assert.ok(!existsSync(out), "a killed search leaves no output folder");
    const killedAt = lines();
    // the killed search's orphaned workers may still be scoring in scratch folders named after their own
    // pid; the resumed search must not share one with them (it did when they were named by slot), and
    // sweeps the scratch of processes that are gone: plant one of a finished process
    const gone = spawnSync(process.execPath, [
      "-e",
      "process.stdout.write(String(process.pid))",
    ]).stdout.toString();
    const dead = join(`${out}.partial`, `.candidate.tmp-${gone}-0-feed`);
    mkdirSync(join(dead, "adapter"), { recursive: true });
    writeFileSync(join(dead, "adapter", "adapter_config.json"), "{}");
    const resumed = await runSearch(loadSearchSpec(file), { output: out });
    assert.ok(!readdirSync(out).some((n) => n.startsWith(".candidate.")), "scratch folders are gone");
    assert.ok(resumed.resumed >= 3 && resumed.resumed === killedAt);
    const fresh = await runSearch(loadSearchSpec(file), { output: join(root, "resume-fresh") });
    const view = (r: typeof fresh) => r.candidates.map((c) => [c.params, c.scores, c.objective]);
    assert.deepEqual(view(resumed), view(fresh));
    assert.equal(resumed.candidates.length, 16);
  });
});
