import assert from "node:assert/strict";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadStudy } from "../../src/study/schema.js";
import { runStudy } from "../../src/study/run.js";
import { tempDir } from "../helpers/fixtures.js";
import { LANGS, makeStudyFixture, sentimentRows, type StudyFixture } from "./fixture.js";

const MERGES = ["ties/w1-d0.5", "dare_ties/w1-d0.5"];
const VARIANTS = ["base", "per_language", "combined", ...MERGES.map((m) => `merged/${m}`)];

/** Every step id of the fixture study, written out by hand from the study's definition. */
function allSteps(): string[] {
  return [
    ...LANGS.map((l) => `prepare/sentiment/${l}`),
    ...LANGS.map((l) => `train/sentiment/${l}`),
    "train/sentiment/combined",
    ...MERGES.map((m) => `merge/sentiment/${m}`),
    ...LANGS.flatMap((l) => VARIANTS.map((v) => `evaluate/sentiment/${l}/${v}`)),
  ].sort();
}

describe("study step graph and cache", () => {
  const tmp = tempDir("merglot-study-cache-");
  let fx: StudyFixture;
  const out = () => join(tmp.dir, "out");
  before(() => {
    fx = makeStudyFixture(tmp.dir);
  });
  after(() => tmp.cleanup());

  test("a first run runs every step; an unchanged study then runs nothing", async () => {
    const first = await runStudy(loadStudy(fx.studyPath), { outDir: out() });
    assert.deepEqual([...first.ran].sort(), allSteps());
    assert.deepEqual(first.cached, []);
    const again = await runStudy(loadStudy(fx.studyPath), { outDir: out() });
    assert.deepEqual(again.ran, []);
    assert.deepEqual([...again.cached].sort(), allSteps());
    const dry = await runStudy(loadStudy(fx.studyPath), { outDir: out(), dryRun: true });
    assert.ok(dry.plan.every((p) => p.state === "cached"));
  });

  test("changing one language's data re-runs exactly the steps that read it", async () => {
    appendFileSync(fx.dataPath("de", "train"), sentimentRows("de", 2, 999, "extra"));
    const dry = await runStudy(loadStudy(fx.studyPath), { outDir: out(), dryRun: true });
    const expected = [
      "prepare/sentiment/de",
      "train/sentiment/de",
      "train/sentiment/combined",
      ...MERGES.map((m) => `merge/sentiment/${m}`),
      // every evaluation of de reads de's prepared data; en and fr only where the adapter changed
      ...VARIANTS.map((v) => `evaluate/sentiment/de/${v}`),
      ...["en", "fr"].flatMap((l) =>
        ["combined", ...MERGES.map((m) => `merged/${m}`)].map((v) => `evaluate/sentiment/${l}/${v}`),
      ),
    ].sort();
    assert.deepEqual(
      dry.plan
        .filter((p) => p.state === "run")
        .map((p) => p.id)
        .sort(),
      expected,
    );
    const run = await runStudy(loadStudy(fx.studyPath), { outDir: out() });
    assert.deepEqual([...run.ran].sort(), expected);
  });

  test("changing merge parameters re-runs the merges and their evaluations only; training parameters all trainings", async () => {
    const text = readFileSync(fx.studyPath, "utf8");
    writeFileSync(fx.studyPath, text.replace("density: 0.5", "density: 0.7"));
    const merged = await runStudy(loadStudy(fx.studyPath), { outDir: out() });
    const m7 = ["ties/w1-d0.7", "dare_ties/w1-d0.7"];
    assert.deepEqual(
      [...merged.ran].sort(),
      [
        ...m7.map((m) => `merge/sentiment/${m}`),
        ...LANGS.flatMap((l) => m7.map((m) => `evaluate/sentiment/${l}/merged/${m}`)),
      ].sort(),
    );
    writeFileSync(fx.studyPath, text.replace("lr: 0.05", "lr: 0.04"));
    const trained = await runStudy(loadStudy(fx.studyPath), { outDir: out(), dryRun: true });
    const toRun = trained.plan.filter((p) => p.state === "run").map((p) => p.id);
    // back at density 0.5 (cached merges of the old lr are not reusable: their adapters change)
    assert.deepEqual(
      toRun.sort(),
      allSteps().filter((id) => !id.startsWith("prepare/") && !id.endsWith("/base")),
    );
    writeFileSync(fx.studyPath, text);
  });

  test("--only runs the matching steps and what they read, nothing else", async () => {
    appendFileSync(fx.dataPath("fr", "train"), sentimentRows("fr", 2, 998, "extra"));
    const run = await runStudy(loadStudy(fx.studyPath), { outDir: out(), only: "train/*/fr" });
    assert.deepEqual([...run.ran].sort(), ["prepare/sentiment/fr", "train/sentiment/fr"]);
    await assert.rejects(
      runStudy(loadStudy(fx.studyPath), { outDir: out(), only: "nothing/*" }),
      /--only nothing\/\*: no step matches/,
    );
  });
});
