/**
 * `extends:` in study files: the overlay rule by hand, a derived study equal to its written-out equivalent
 * (same parsed study, same step keys), the demo's derived studies sharing every step key of study.yaml, and the
 * refused cases (another folder, a cycle, a missing base, a non-string).
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { MerglotError } from "../../src/errors.js";
import { overlay } from "../../src/study/extends.js";
import { planStudy } from "../../src/study/plan.js";
import { loadStudy } from "../../src/study/schema.js";
import { DEMO_DIR } from "../../src/workflow/demo.js";
import { tempDir } from "../helpers/fixtures.js";

const tmp = tempDir();
after(() => tmp.cleanup());

const write = (name: string, text: string) => {
  const p = join(tmp.dir, name);
  writeFileSync(p, text);
  return p;
};

const BASE = `name: base
base_model: ./model
languages: [en, de]
tasks:
  sentiment:
    data:
      en: { train: en-train.jsonl, test: en-test.jsonl }
      de: { train: de-train.jsonl, test: de-test.jsonl }
training: { r: 4, alpha: 8, lr: 0.05, epochs: 2, seed: 1 }
merges:
  methods: [ties, dare_ties]
  sets: [{ weight: 1, density: 0.5 }]
ablations:
  similarity: true
evaluation: { bootstrap: 50 }
`;

describe("study extends", () => {
  test("overlay: mappings merge key by key, lists and scalars replace, null removes", () => {
    const base = { a: 1, m: { x: 1, y: { p: 1, q: 2 } }, l: [1, 2, 3], gone: { z: 1 } };
    const got = overlay(base, { a: 2, m: { y: { q: 3, r: 4 } }, l: [9], gone: null, n: "new" });
    assert.deepEqual(got, { a: 2, m: { x: 1, y: { p: 1, q: 3, r: 4 } }, l: [9], n: "new" });
    assert.deepEqual(
      base,
      { a: 1, m: { x: 1, y: { p: 1, q: 2 } }, l: [1, 2, 3], gone: { z: 1 } },
      "base intact",
    );
  });

  test("a derived study is its written-out equivalent: same study, same step keys", () => {
    mkdirSync(join(tmp.dir, "model"), { recursive: true });
    write(
      "model/config.json",
      JSON.stringify({ model_type: "llama", hidden_size: 16, num_hidden_layers: 1 }),
    );
    for (const f of ["en-train", "en-test", "de-train", "de-test", "en-val", "de-val"])
      write(`${f}.jsonl`, "");
    write("base.yaml", BASE);
    const derived = write(
      "derived.yaml",
      `extends: base.yaml
name: derived
tasks:
  sentiment:
    data:
      en: { validation: en-val.jsonl }
      de: { validation: de-val.jsonl }
merges:
  methods: [knots_ties]
ablations: null
`,
    );
    const full = write(
      "full.yaml",
      `name: derived
base_model: ./model
languages: [en, de]
tasks:
  sentiment:
    data:
      en: { train: en-train.jsonl, test: en-test.jsonl, validation: en-val.jsonl }
      de: { train: de-train.jsonl, test: de-test.jsonl, validation: de-val.jsonl }
training: { r: 4, alpha: 8, lr: 0.05, epochs: 2, seed: 1 }
merges:
  methods: [knots_ties]
  sets: [{ weight: 1, density: 0.5 }]
evaluation: { bootstrap: 50 }
`,
    );
    const a = loadStudy(derived);
    const b = loadStudy(full);
    assert.deepEqual({ ...a, source: "" }, { ...b, source: "" });
    const keys = (f: string) => planStudy(loadStudy(f)).map((s) => [s.id, s.key]);
    assert.deepEqual(keys(derived), keys(full));
  });

  test("the demo's search and every-method studies keep every step key of study.yaml they share", () => {
    const demo = new Map(planStudy(loadStudy(join(DEMO_DIR, "study.yaml"))).map((s) => [s.id, s.key]));
    const search = planStudy(loadStudy(join(DEMO_DIR, "search-study.yaml")));
    // the search study adds search steps and changes nothing else
    for (const [id, key] of demo) assert.equal(search.find((s) => s.id === id)?.key, key, id);
    assert.ok(search.some((s) => s.kind === "search"));
    const methods = planStudy(loadStudy(join(DEMO_DIR, "methods-study.yaml")));
    const trained = methods.filter((s) => s.kind === "train");
    assert.ok(trained.length >= 10);
    for (const s of trained) assert.equal(s.key, demo.get(s.id), s.id);
    assert.ok(!methods.some((s) => s.id.startsWith("train/update")), "no ablation steps");
  });

  test("refused: a base in another folder, a cycle, a missing base, a non-string", () => {
    mkdirSync(join(tmp.dir, "sub"), { recursive: true });
    write("sub/base.yaml", BASE);
    const refused = (name: string, text: string, pattern: RegExp) => {
      const p = write(name, text);
      assert.throws(
        () => loadStudy(p),
        (e: unknown) => e instanceof MerglotError && pattern.test(e.message),
        name,
      );
    };
    refused(
      "far.yaml",
      "extends: sub/base.yaml\n",
      /far\.yaml: extends: sub\/base\.yaml: the base study must be in the same folder/,
    );
    write("cyc-b.yaml", "extends: cyc-a.yaml\n");
    refused(
      "cyc-a.yaml",
      "extends: cyc-b.yaml\n",
      /extends: cyc-a\.yaml: a cycle \(.*cyc-a\.yaml → .*cyc-b\.yaml → .*cyc-a\.yaml\)/,
    );
    refused("self.yaml", "extends: self.yaml\n", /self\.yaml: extends: self\.yaml: a cycle/);
    refused(
      "lost.yaml",
      "extends: nowhere.yaml\n",
      /lost\.yaml: extends: nowhere\.yaml: study file not found/,
    );
    refused("num.yaml", "extends: 3\n", /num\.yaml: extends: expected the file name of another study/);
    // a bad field in the base is reported with the files that made the study
    write("bad-base.yaml", BASE.replace("ablations:", "ablation:"));
    write("mid.yaml", "extends: bad-base.yaml\n");
    refused(
      "top.yaml",
      "extends: mid.yaml\nname: top\n",
      /top\.yaml \(extends mid\.yaml, which extends bad-base\.yaml\): .*"ablation"/,
    );
  });
});
