/**
 * A study's `search` section end to end on the tiny study fixture: the search step scores candidates on the
 * validation files only (its split-read log, recorded in search.json, names no test file), its best merge is
 * evaluated on test like every other variant and appears in results.json with its curve and paired bootstrap
 * against the best grid merge and the combined baseline; a second run is all cached; a task without a
 * validation split is refused naming the field.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MerglotError } from "../../src/errors.js";
import { runStudy } from "../../src/study/run.js";
import type { Results } from "../../src/study/results.js";
import { loadStudy } from "../../src/study/schema.js";
import { tempDir } from "../helpers/fixtures.js";
import { buildDocument } from "../../src/report/document.js";
import { readStudyResults } from "../../src/report/results.js";
import type { Table } from "../../src/report/tables.js";
import { LANGS, makeStudyFixture, sentimentRows, type StudyFixture } from "./fixture.js";

const tmp = tempDir("merglot-study-search-");
let fx: StudyFixture;

const SEARCH = `search:
  methods: [ties]
  parameters:
    weight: { min: 0.2, max: 1.5, per_language: true }
    lambda: { min: 0.5, max: 2 }
  budget: { candidates: 4 }
  optimizer: { kind: cmaes, population: 4 }
  seed: 2
`;

function withValidation(path: string, langs: string[]): void {
  let text = readFileSync(path, "utf8");
  for (const l of langs)
    text = text.replace(
      `test: data/${l}/test.jsonl }`,
      `test: data/${l}/test.jsonl, validation: data/${l}/validation.jsonl }`,
    );
  writeFileSync(path, text);
}

before(() => {
  fx = makeStudyFixture(tmp.dir, SEARCH);
  LANGS.forEach((l, i) =>
    writeFileSync(fx.dataPath(l, "validation"), sentimentRows(l, 6, 300 + i, "validation")),
  );
  withValidation(fx.studyPath, LANGS);
});
after(() => tmp.cleanup());

describe("study search", () => {
  test("a task without a validation split is refused, naming the field", () => {
    const p = join(tmp.dir, "no-validation.yaml");
    writeFileSync(
      p,
      readFileSync(fx.studyPath, "utf8").replace(", validation: data/de/validation.jsonl", ""),
    );
    assert.throws(
      () => loadStudy(p),
      (e: unknown) =>
        e instanceof MerglotError && /tasks\.sentiment\.data\.de\.validation: .*validation/.test(e.message),
    );
  });

  test("weights searched per module filter: filters that miss a module are refused when the study is read", () => {
    const p = join(tmp.dir, "filters.yaml");
    writeFileSync(
      p,
      readFileSync(fx.studyPath, "utf8").replace(
        "weight: { min: 0.2, max: 1.5, per_language: true }",
        "weight: { min: 0.2, max: 1.5, per_language: true, filters: [self_attn] }",
      ),
    );
    // before any training: the modules come from the base model's layers and training.target_modules
    assert.throws(
      () => loadStudy(p),
      (e: unknown) =>
        e instanceof MerglotError &&
        /filters\.yaml: search\.parameters\.weight\.filters: on \S+ with training\.target_modules .*: module "model\.layers\.0\.mlp\.gate_proj" matches none of self_attn; add a filter that names it$/.test(
          e.message,
        ),
    );
    writeFileSync(p, readFileSync(p, "utf8").replace("filters: [self_attn]", "filters: [proj, mlp]"));
    assert.throws(
      () => loadStudy(p),
      (e: unknown) =>
        e instanceof MerglotError &&
        /search\.parameters\.weight\.filters: .*"mlp" applies to no module: each module takes the first filter it contains$/.test(
          e.message,
        ),
    );
    writeFileSync(p, readFileSync(p, "utf8").replace("filters: [proj, mlp]", "filters: [self_attn, mlp]"));
    assert.deepEqual(loadStudy(p).search!.settings.weight, {
      min: 0.2,
      max: 1.5,
      perLanguage: true,
      filters: ["self_attn", "mlp"],
    });
  });

  test("the search reads validation only; its best merge is a test-evaluated variant with curve and significance", async () => {
    const out = join(tmp.dir, "out");
    const study = loadStudy(fx.studyPath);
    const run1 = await runStudy(study, { outDir: out });
    assert.ok(run1.ran.includes("search/sentiment/cmaes/ties"));
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as Results;
    const [s] = results.search!;
    assert.equal(results.search!.length, 1);
    assert.equal(s!.variant, "search/cmaes/ties");
    assert.equal(s!.candidates, 4);
    // the loaders' split log, recorded during the search: the validation files and nothing else
    assert.deepEqual(
      s!.split_reads.map((r) => [r.path, r.split]).sort(),
      LANGS.map((l) => [fx.dataPath(l, "validation"), "validation"]).sort(),
    );
    // search.json as the step wrote it
    const lock = JSON.parse(readFileSync(join(out, "study.lock.json"), "utf8")) as {
      steps: Record<string, { key: string }>;
    };
    const json = JSON.parse(
      readFileSync(join(out, "steps", lock.steps["search/sentiment/cmaes/ties"]!.key, "search.json"), "utf8"),
    ) as { best: { mean: number; index: number }; candidates: { objective: number; mean: number }[] };
    assert.equal(json.candidates.length, 4);
    assert.equal(s!.best.mean, json.best.mean);
    assert.equal(s!.best.index, json.best.index);
    // the curve is the running maximum of the candidates' objectives
    let m = -Infinity;
    assert.deepEqual(
      s!.curve,
      json.candidates.map((c) => (m = Math.max(m, c.objective))),
    );
    assert.equal(Math.max(...json.candidates.map((c) => c.objective)), s!.curve.at(-1));
    // the searched merge is evaluated on every language's test rows like the grid's merges
    const rows = results.results.filter((r) => r.variant === "search/cmaes/ties");
    assert.deepEqual(rows.map((r) => r.lang).sort(), [...LANGS].sort());
    for (const r of rows) assert.equal(r.n, 6);
    const mean = (v: string) =>
      LANGS.reduce(
        (t, l) => t + results.results.find((r) => r.variant === v && r.lang === l)!.metrics.macro_f1!,
        0,
      ) / LANGS.length;
    assert.equal(s!.test.searched, mean("search/cmaes/ties"));
    assert.equal(s!.test.combined, mean("combined"));
    const grid = ["merged/ties/w1-d0.5", "merged/dare_ties/w1-d0.5"];
    const best = grid.reduce((a, b) => (mean(b) > mean(a) ? b : a));
    assert.equal(s!.best_grid_variant, best);
    assert.equal(s!.test.best_grid, mean(best));
    // paired bootstrap of the mean over languages: the observed delta is the difference of the means
    assert.ok(Math.abs(s!.vs_best_grid!.delta - (mean("search/cmaes/ties") - mean(best))) < 1e-12);
    assert.ok(Math.abs(s!.vs_combined!.delta - (mean("search/cmaes/ties") - mean("combined"))) < 1e-12);
    assert.ok(s!.vs_combined!.p >= 0 && s!.vs_combined!.p <= 1);

    // the report's search section carries the same numbers
    const doc = buildDocument(readStudyResults(join(out, "results.json")));
    const sec = doc.sections.find((x) => x.id === "search")!;
    const text = sec.blocks.find((b) => b.kind === "text") as { text: string };
    assert.match(text.text, new RegExp(`validation macro_f1 ${json.best.mean.toFixed(3)}`));
    assert.match(text.text, new RegExp(`searched ${mean("search/cmaes/ties").toFixed(3)}`));
    assert.match(text.text, new RegExp(`combined ${mean("combined").toFixed(3)}`));
    const table = (sec.blocks.find((b) => b.kind === "table") as { table: Table }).table;
    const row = table.rows.find((r) => r.variant === "search/cmaes/ties")!;
    assert.equal(row.label, "search (cma-es, ties)");
    assert.deepEqual(
      row.cells.map((c) => c.value),
      [...LANGS.map((l) => rows.find((r) => r.lang === l)!.metrics.macro_f1!), mean("search/cmaes/ties")],
    );
    assert.ok(sec.blocks.some((b) => b.kind === "figure" && b.id === "fig-search-sentiment"));
    // Table 1 lists the searched merge as its own row
    const main = doc.sections.find((x) => x.id === "per-language")!.blocks[0] as { table: Table };
    assert.ok(main.table.rows.some((r) => r.label === "search (cma-es, ties)"));

    // nothing changed: everything, the search included, comes from the cache
    const run2 = await runStudy(loadStudy(fx.studyPath), { outDir: out });
    assert.deepEqual(run2.ran, []);
  });
});
