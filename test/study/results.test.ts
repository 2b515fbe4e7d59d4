import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { readAdapter } from "../../src/formats/peft.js";
import { loadStudy } from "../../src/study/schema.js";
import { runStudy } from "../../src/study/run.js";
import { tempDir } from "../helpers/fixtures.js";
import { makeStudyFixture, sentimentRows, tinyTaskYaml, type StudyFixture } from "./fixture.js";

interface LockStep {
  key: string;
  wallS: number;
  deviceS: number;
  kind: string;
}

/** Macro-F1 over `labels` as scikit-learn defines it (a class with no prediction and no gold scores 0). */
function naiveMacroF1(pred: string[], gold: string[], labels: string[]): number {
  let sum = 0;
  for (const c of labels) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    pred.forEach((p, i) => {
      if (p === c && gold[i] === c) tp++;
      else if (p === c) fp++;
      else if (gold[i] === c) fn++;
    });
    sum += tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
  }
  return sum / labels.length;
}

/** Language vector = every module's dense s·B·A, flattened and concatenated; plain cosine. */
function naiveCosine(a: string, b: string, kind?: string): number {
  const vec = (path: string) => {
    const ad = readAdapter(path);
    const out: number[] = [];
    for (const { module: m, a: fa, b: fb } of [...ad.modules].sort((x, y) =>
      x.module.name < y.module.name ? -1 : 1,
    )) {
      if (kind && !m.name.endsWith(`.${kind}`)) continue;
      for (let i = 0; i < m.outFeatures; i++)
        for (let j = 0; j < m.inFeatures; j++) {
          let s = 0;
          for (let k = 0; k < m.rank; k++) s += fb[i * m.rank + k]! * fa[k * m.inFeatures + j]!;
          out.push(m.scaling * s);
        }
    }
    return out;
  };
  const x = vec(a);
  const y = vec(b);
  let xy = 0;
  let xx = 0;
  let yy = 0;
  x.forEach((v, i) => {
    xy += v * y[i]!;
    xx += v * v;
    yy += y[i]! * y[i]!;
  });
  return xy / Math.sqrt(xx * yy);
}

describe("results.json against the per-step outputs", () => {
  const tmp = tempDir("merglot-study-results-");
  let fx: StudyFixture;
  const out = () => join(tmp.dir, "out");
  before(() => {
    fx = makeStudyFixture(
      tmp.dir,
      `ablations:
  update: { lang: de, data: { sentiment: data/de/extra.jsonl } }
  clusters: { western: [en, de], french: [fr] }
  weighted: { weights: { en: 1, de: 0.5, fr: 0.5 } }
  similarity: true
  multitask: true
`,
    );
    writeFileSync(join(tmp.dir, "data/de/extra.jsonl"), sentimentRows("de", 8, 555, "extra"));
    // a second task from a custom task file (same data, another prompt) makes the multitask ablation possible
    writeFileSync(join(tmp.dir, "polarity.yaml"), tinyTaskYaml("polarity", "{{ text }} Sentiment:"));
    const text = readFileSync(fx.studyPath, "utf8");
    const sentimentBlock = text.slice(text.indexOf("  sentiment:"), text.indexOf("training:"));
    writeFileSync(
      fx.studyPath,
      text.replace(
        "training:",
        sentimentBlock.replace(
          "  sentiment:\n    task_file: tiny-sentiment.yaml",
          "  polarity:\n    task_file: polarity.yaml",
        ) + "training:",
      ),
    );
  });
  after(() => tmp.cleanup());

  test("every metric, cost, update ratio and similarity comes from the recorded step outputs", async () => {
    await runStudy(loadStudy(fx.studyPath), { outDir: out() });
    const results = JSON.parse(readFileSync(join(out(), "results.json"), "utf8"));
    const lock = JSON.parse(readFileSync(join(out(), "study.lock.json"), "utf8")) as {
      steps: Record<string, LockStep>;
    };
    const step = (id: string) => {
      const s = lock.steps[id];
      assert.ok(s, `no step ${id} in the lock file`);
      return s;
    };
    assert.deepEqual(results.languages, ["en", "de", "fr"]);
    assert.deepEqual(results.tasks, ["sentiment", "polarity"]);

    // metrics: equal to the step's metrics.json and to a recomputation from its samples
    const variants = new Set<string>(results.results.map((r: { variant: string }) => r.variant));
    for (const v of [
      "base",
      "per_language",
      "combined",
      "merged/ties/w1-d0.5",
      "merged/dare_ties/w1-d0.5",
      "cluster/western/ties/w1-d0.5",
      "cluster/french/dare_ties/w1-d0.5",
      "weighted/ties/w1-d0.5",
      "update/de/per_language",
      "update/de/combined",
      "update/de/merged/ties/w1-d0.5",
      "multitask/ties/w1-d0.5",
    ])
      assert.ok(variants.has(v), `variant ${v} missing`);
    for (const row of results.results) {
      const dir = join(out(), "steps", step(`evaluate/${row.task}/${row.lang}/${row.variant}`).key);
      const m = JSON.parse(readFileSync(join(dir, "metrics.json"), "utf8"));
      assert.deepEqual(row.metrics, m.metrics);
      assert.deepEqual(row.ci, m.ci);
      const samples = readFileSync(join(dir, "samples.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { prediction: string; gold: string });
      assert.equal(samples.length, 6);
      const acc = samples.filter((s) => s.prediction === s.gold).length / samples.length;
      assert.equal(row.metrics.accuracy, acc);
      const labels = ["positive", "negative"];
      const f1 = naiveMacroF1(
        samples.map((s) => s.prediction),
        samples.map((s) => s.gold),
        labels,
      );
      assert.ok(
        Math.abs(row.metrics.macro_f1 - f1) < 1e-12,
        `${row.variant}: macro F1 ${row.metrics.macro_f1} vs ${f1}`,
      );
      assert.ok(row.ci.accuracy[0] <= acc && acc <= row.ci.accuracy[1]);
    }
    // cluster variants are evaluated on their group's languages only
    const frenchLangs = results.results
      .filter((r: { variant: string }) => r.variant.startsWith("cluster/french/"))
      .map((r: { lang: string }) => r.lang);
    assert.deepEqual([...new Set(frenchLangs)], ["fr"]);

    // costs: sums and maxima of the recorded training and merge times, priced at 0.5 per device-hour
    const cost = (task: string | null, variant: string) =>
      results.costs.find(
        (c: { task: string | null; variant: string }) => c.task === task && c.variant === variant,
      );
    const trains = ["en", "de", "fr"].map((l) => step(`train/sentiment/${l}`));
    const perLang = cost("sentiment", "per_language");
    const sum = trains.reduce((a, s) => a + s.wallS, 0);
    assert.equal(perLang.sequentialWallS, sum);
    assert.equal(perLang.parallelWallS, Math.max(...trains.map((s) => s.wallS)));
    assert.ok(Math.abs(perLang.cost - (trains.reduce((a, s) => a + s.deviceS, 0) / 3600) * 0.5) < 1e-15);
    const mergeTies = step("merge/sentiment/ties/w1-d0.5");
    const merged = cost("sentiment", "merged/ties/w1-d0.5");
    assert.equal(merged.sequentialWallS, sum + mergeTies.wallS);
    assert.equal(merged.parallelWallS, Math.max(...trains.map((s) => s.wallS)) + mergeTies.wallS);
    assert.equal(cost("sentiment", "combined").sequentialWallS, step("train/sentiment/combined").wallS);
    assert.equal(cost("sentiment", "base").deviceS, 0);
    const multitask = cost(null, "multitask/ties/w1-d0.5");
    assert.equal(multitask.trainings.length, 6);

    // update ablation: retrain de + re-merge versus retrain combined, from the recorded times
    const u = results.update.entries.find(
      (e: { task: string; variant: string }) => e.task === "sentiment" && e.variant === "merged/ties/w1-d0.5",
    );
    const tl = step("train/sentiment/de/update");
    const rm = step("merge/sentiment/update/de/merged/ties/w1-d0.5");
    const tc = step("train/sentiment/combined/update");
    assert.equal(u.speedup, tc.wallS / (tl.wallS + rm.wallS));
    assert.ok(Math.abs(u.costRatio - tc.deviceS / (tl.deviceS + rm.deviceS)) < 1e-12);
    assert.equal(results.update.entries.length, 2); // update data for sentiment only: 2 merges

    // similarity: the language vectors' cosines, recomputed densely
    const sim = results.similarity.sentiment;
    const adapter = (l: string) => join(out(), "steps", step(`train/sentiment/${l}`).key, "adapter");
    assert.deepEqual(sim.languages, ["en", "de", "fr"]);
    for (const kind of ["all", "q_proj", "down_proj"]) {
      const mtx = sim.modules[kind] as number[][];
      assert.ok(mtx, `no similarity for ${kind}`);
      for (let i = 0; i < 3; i++) {
        assert.ok(Math.abs(mtx[i]![i]! - 1) < 1e-9);
        for (let j = 0; j < 3; j++) {
          const want = naiveCosine(
            adapter(sim.languages[i]),
            adapter(sim.languages[j]),
            kind === "all" ? undefined : kind,
          );
          assert.ok(Math.abs(mtx[i]![j]! - want) < 1e-5, `${kind}[${i}][${j}]: ${mtx[i]![j]} vs ${want}`);
        }
      }
    }
  });
});
