import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { MerglotError } from "../../src/errors.js";
import { runStudy } from "../../src/study/run.js";
import { METHOD_NAMES } from "../../src/merge/methods.js";
import { loadStudy, parseStudy } from "../../src/study/schema.js";
import { tempDir } from "../helpers/fixtures.js";
import { makeStudyFixture, type StudyFixture } from "./fixture.js";

const CLI = join(process.cwd(), "dist/src/cli/main.js");

describe("study.yaml validation", () => {
  const tmp = tempDir("merglot-study-schema-");
  let fx: StudyFixture;
  const data = (langs: string[]) =>
    Object.fromEntries(
      langs.map((l) => [l, { train: `data/${l}/train.jsonl`, test: `data/${l}/test.jsonl` }]),
    );
  const valid = () => ({
    base_model: "./base",
    languages: ["en", "de", "fr"],
    tasks: { sentiment: { data: data(["en", "de", "fr"]) } },
  });
  const parse = (o: unknown) => parseStudy(o, "study.yaml", tmp.dir);
  const refuses = (o: unknown, pattern: RegExp) =>
    assert.throws(
      () => parse(o),
      (e: unknown) => e instanceof MerglotError && pattern.test(e.message),
    );
  before(() => {
    fx = makeStudyFixture(tmp.dir);
    for (const l of ["ja", "zh"]) {
      mkdirSync(join(tmp.dir, "data", l));
      for (const split of ["train", "test"]) writeFileSync(join(tmp.dir, "data", l, `${split}.jsonl`), "");
    }
  });
  after(() => tmp.cleanup());

  test("defaults are the seed study's values", () => {
    const s = parse(valid());
    assert.equal(s.training.r, 64);
    assert.equal(s.training.alpha, 64);
    assert.equal(s.training.lr, 2e-5);
    assert.equal(s.training.batch, 8);
    assert.deepEqual(s.merges.methods, ["ties", "knots_ties", "dare_ties", "knots_dare_ties"]);
    assert.deepEqual(s.merges.sets, [
      { weight: 1, density: 1 },
      { weight: 1, density: 0.5 },
    ]);
    assert.deepEqual(s.baselines, ["combined", "per_language"]);
    assert.equal(s.executor.kind, "local");
    const d = parse({
      ...valid(),
      languages: undefined,
      tasks: { sentiment: { data: data(["en", "de", "fr", "ja", "zh"]) } },
    });
    assert.deepEqual(d.languages, ["en", "de", "fr", "ja", "zh"]);
  });

  test("evaluation.gpu: absent by default (step keys unchanged), refused for an HF base, checked values", () => {
    assert.equal("gpu" in parse(valid()).evaluation, false);
    refuses(
      { ...valid(), evaluation: { gpu: "cuda" } },
      /evaluation\.gpu: applies to GGUF base models \(the llama\.cpp runner\); base is an HF folder/,
    );
    refuses({ ...valid(), evaluation: { gpu: "rocm" } }, /evaluation\.gpu/);
    assert.equal(parse({ ...valid(), evaluation: { gpu: "off" } }).evaluation.gpu, "off");
  });

  test("every merge method of the registry is accepted by name; two-adapter methods need two languages", () => {
    const two = { ...valid(), languages: ["en", "de"], tasks: { sentiment: { data: data(["en", "de"]) } } };
    for (const m of METHOD_NAMES) {
      const s = parse({ ...two, merges: { methods: [m] } });
      assert.deepEqual(s.merges.methods, [m]);
    }
    for (const m of ["iso_cts", "core_ties", "karcher", "multislerp", "slerp", "nuslerp", "core_dare_ties"])
      assert.ok(METHOD_NAMES.includes(m), m);
    refuses(
      { ...valid(), merges: { methods: ["ties", "slerp"] } },
      /^study\.yaml: merges\.methods\[1\]: "slerp" merges exactly 2 adapters, but the study merges 3 languages/,
    );
    refuses(
      { ...two, merges: { methods: ["nuslerp"] }, ablations: { clusters: { g: ["en"] } } },
      /merges\.methods\[0\]: "nuslerp" merges exactly 2 adapters.*clusters/,
    );
  });

  test("unknown keys are errors naming the field path", () => {
    refuses({ ...valid(), trainig: {} }, /study\.yaml: \(top level\): unknown key\(s\) "trainig"/);
    refuses({ ...valid(), training: { rank: 8 } }, /training: unknown key\(s\) "rank"/);
    refuses(
      { ...valid(), tasks: { sentiment: { data: data(["en", "de", "fr"]), size: {} } } },
      /tasks\.sentiment: unknown key\(s\) "size"/,
    );
    refuses({ ...valid(), merges: { sets: [{ weight: 1, densty: 0.5 }] } }, /merges\.sets\[0\]: unknown key/);
    refuses(
      { ...valid(), merges: { sets: [{ density: 1.5 }] } },
      /merges\.sets\[0\]\.density: density must lie in \(0, 1\]/,
    );
    refuses({ ...valid(), executor: { kind: "pbs" } }, /executor\.kind/);
  });

  test("bad languages, tasks, data, clusters and methods are refused with the field named", () => {
    refuses({ ...valid(), languages: ["en", "dee", "fr"] }, /languages\[1\]: unknown language code "dee"/);
    refuses(
      { ...valid(), tasks: { sentimant: { data: data(["en", "de", "fr"]) } } },
      /tasks\.sentimant: unknown task "sentimant" \(built-in: extraction, reasoning, sentiment, summarization/,
    );
    refuses(
      { ...valid(), tasks: { sentiment: { data: data(["en", "de"]) } } },
      /tasks\.sentiment\.data: no data for language "fr"/,
    );
    refuses(
      { ...valid(), tasks: { sentiment: { data: { ...data(["en", "de", "fr"]), it: data(["en"]).en } } } },
      /tasks\.sentiment\.data\.it: language "it" is not in the study's languages/,
    );
    refuses(
      {
        ...valid(),
        tasks: {
          sentiment: {
            data: { ...data(["en", "de"]), fr: { train: "nope.jsonl", test: "data/fr/test.jsonl" } },
          },
        },
      },
      /tasks\.sentiment\.data\.fr\.train: nope\.jsonl: no such file or folder/,
    );
    refuses(
      { ...valid(), ablations: { clusters: { east: ["ja", "zh"] } } },
      /ablations\.clusters\.east\[0\]: language "ja" is not in the study's languages/,
    );
    refuses(
      { ...valid(), merges: { methods: ["ties", "tie"] } },
      /merges\.methods\[1\]: unknown merge method "tie"/,
    );
    refuses(
      { ...valid(), ablations: { multitask: true } },
      /ablations\.multitask: merging tasks needs at least two tasks/,
    );
    refuses({ ...valid(), base_model: "./nowhere" }, /base_model: \.\/nowhere: no such model folder/);
    refuses(
      { ...valid(), ablations: { update: { lang: "it", data: {} } } },
      /ablations\.update\.lang: language "it" is not in the study's languages/,
    );
  });

  test("the CLI prints one line, exits 1 and leaves another study's folder untouched", () => {
    const bad = join(tmp.dir, "bad.yaml");
    writeFileSync(
      bad,
      readFileSync(fx.studyPath, "utf8").replace("languages: [en, de, fr]", "languages: [en, de, xx]"),
    );
    const r = spawnSync(process.execPath, [CLI, "study", "run", bad, "-o", join(tmp.dir, "o")], {
      encoding: "utf8",
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^merglot: .*bad\.yaml: languages\[2\]: unknown language code "xx"\n$/);

    // a folder holding the study "tiny" is refused for a study of another name, unless --force
    const out = join(tmp.dir, "out");
    const first = spawnSync(
      process.execPath,
      [CLI, "study", "run", fx.studyPath, "-o", out, "--only", "prepare/**"],
      {
        encoding: "utf8",
      },
    );
    assert.equal(first.status, 0, first.stderr);
    const lockBefore = readFileSync(join(out, "study.lock.json"));
    const other = join(tmp.dir, "other.yaml");
    writeFileSync(other, readFileSync(fx.studyPath, "utf8").replace("name: tiny", "name: another"));
    const refused = spawnSync(process.execPath, [CLI, "study", "run", other, "-o", out], {
      encoding: "utf8",
    });
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /^merglot: .*out: holds the study "tiny", not "another" \(use --force/);
    assert.ok(readFileSync(join(out, "study.lock.json")).equals(lockBefore));
    const notStudy = spawnSync(
      process.execPath,
      [CLI, "study", "run", fx.studyPath, "-o", join(tmp.dir, "data")],
      {
        encoding: "utf8",
      },
    );
    assert.equal(notStudy.status, 1);
    assert.match(notStudy.stderr, /not empty and not a study folder/);
    const dry = spawnSync(process.execPath, [CLI, "study", "run", other, "-o", out, "--force", "--dry-run"], {
      encoding: "utf8",
    });
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /cached {2}prepare\/sentiment\/en\n/);
    assert.match(dry.stdout, /run {5}train\/sentiment\/en\n/);
  });

  test("bad data fails its step with the step and the row named, recorded as failed, nothing else written", async () => {
    writeFileSync(
      join(tmp.dir, "bad.jsonl"),
      '{"id":"b0","lang":"en","text":"en_p1 en_p2","label":"maybe"}\n',
    );
    const p = join(tmp.dir, "bad-data.yaml");
    writeFileSync(
      p,
      readFileSync(fx.studyPath, "utf8").replace(
        "en: { train: data/en/train.jsonl",
        "en: { train: bad.jsonl",
      ),
    );
    const out = join(tmp.dir, "bad-out");
    await assert.rejects(
      runStudy(loadStudy(p), { outDir: out }),
      (e: unknown) =>
        e instanceof MerglotError &&
        /^step prepare\/sentiment\/en: .*bad\.jsonl: .*label "maybe"/.test(e.message),
    );
    const lock = JSON.parse(readFileSync(join(out, "study.lock.json"), "utf8"));
    assert.equal(lock.steps["prepare/sentiment/en"].status, "failed");
    assert.deepEqual(
      readdirSync(join(out, "steps")).filter((n) => n.startsWith(".")),
      [],
    );
    assert.ok(!existsSync(join(out, "results.json")));
  });

  test("loadStudy names the YAML line of a syntax error", () => {
    const p = join(tmp.dir, "syntax.yaml");
    writeFileSync(p, "base_model: ./base\ntasks: [\n");
    assert.throws(() => loadStudy(p), /syntax\.yaml: line \d+, column \d+/);
  });
});
