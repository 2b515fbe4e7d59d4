import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { writeReport } from "../../src/report/index.js";
import { mainTable, multitaskTable } from "../../src/report/tables.js";
import { tempDir } from "../helpers/fixtures.js";
import { sampleResults, sampleStudyFile } from "./fixture.js";

describe("report tables", () => {
  it("Table 1 keeps both baselines and the best setting of each method, by mean over languages", () => {
    const t = mainTable(sampleResults());
    // ties: d1 mean 0.70 < d0.5 mean 0.71; knots_ties: d1 0.73 > d0.5 0.60; extraction ties: d1 0.25 < d0.5 0.30
    assert.deepEqual(
      t.rows.map((r) => r.variant),
      ["combined", "per_language", "merged/ties/w1-d0.5", "merged/knots_ties/w1-d1", "merged/ties/w1-d1"],
    );
    assert.deepEqual(t.groups[0]!.columns, ["en", "de", "ja", "avg"]);
    const cell = (variant: string, col: number) => t.rows.find((r) => r.variant === variant)!.cells[col]!;
    // per_language avg (0.82 + 0.66 + 0.61) / 3
    assert.ok(Math.abs(cell("per_language", 3).value! - 0.6966666666666667) < 1e-12);
    // a variant not in a task's rows has empty cells there
    assert.equal(cell("merged/ties/w1-d1", 0).value, null);
    assert.equal(cell("merged/knots_ties/w1-d1", 4).value, null);
  });

  it("marks the best cell of each column, lowest for hallucination rate, and significance on its cell", () => {
    const t = mainTable(sampleResults());
    const bestOf = (col: number) => t.rows.filter((r) => r.cells[col]!.best).map((r) => r.variant);
    assert.deepEqual(bestOf(0), ["per_language"]); // en 0.82
    assert.deepEqual(bestOf(1), ["merged/knots_ties/w1-d1"]); // de 0.75
    assert.deepEqual(bestOf(3), ["merged/knots_ties/w1-d1"]); // avg 0.73
    assert.deepEqual(bestOf(4), ["merged/ties/w1-d1"]); // extraction en 0.10 (lower is better)
    assert.deepEqual(bestOf(5), ["per_language"]); // extraction de 0.20
    const sig = t.rows
      .flatMap((r, i) => r.cells.map((c, j) => (c.significant ? `${i}:${j}` : "")))
      .filter(Boolean);
    assert.deepEqual(sig, ["3:1"]);
  });

  it("Table 3 compares multitask merges with each task's best merge", () => {
    const t = multitaskTable(sampleResults())!;
    assert.deepEqual(
      t.rows.map((r) => r.cells.map((c) => Number(c.value!.toFixed(6)))),
      [
        [0.73, 0.25],
        [0.5, 0.5],
      ],
    );
  });
});

describe("merglot report files", () => {
  it("writes the same bytes twice, and regenerates its own files without --force", async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, "results.json"), JSON.stringify(sampleStudyFile()));
      const first = await writeReport({ input: dir });
      const html1 = readFileSync(first[0]!, "utf8");
      const md1 = readFileSync(first[1]!, "utf8");
      await writeReport({ input: dir });
      assert.equal(readFileSync(first[0]!, "utf8"), html1);
      assert.equal(readFileSync(first[1]!, "utf8"), md1);
      assert.ok(html1.includes("fixture &#60;study&#62; &#38; co"), "the study name is escaped");
      assert.ok(!/<script/i.test(html1), "no script in the page");
      assert.ok(!/(src|href)="https?:/i.test(html1), "no external resource");
      assert.ok(md1.includes("| merged/ties/w1-d0.5 | 0.760 | 0.720 | 0.650 | 0.710 |"));
    } finally {
      cleanup();
    }
  });

  it("refuses to overwrite a file it did not write, and names the bad field of a broken results.json", async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, "results.json"), JSON.stringify(sampleStudyFile()));
      writeFileSync(join(dir, "report.html"), "my own notes");
      await assert.rejects(
        writeReport({ input: dir, formats: ["html"] }),
        /report\.html: already exists and is not a merglot report output.*--force-replace-foreign/,
      );
      assert.equal(readFileSync(join(dir, "report.html"), "utf8"), "my own notes");
      await writeReport({ input: dir, formats: ["html"], replaceForeign: true });
      assert.ok(readFileSync(join(dir, "report.html"), "utf8").startsWith("<!doctype html>"));
      const broken = sampleStudyFile() as unknown as { results: { metrics: unknown }[] };
      broken.results[2]!.metrics = { macro_f1: "high" };
      writeFileSync(join(dir, "results.json"), JSON.stringify(broken));
      await assert.rejects(writeReport({ input: dir }), /results\.json: results\.2\.metrics\.macro_f1: /);
      await assert.rejects(writeReport({ input: join(dir, "nope") }), /no such file \(run the study first\)/);
      assert.ok(!existsSync(join(dir, "report.md")));
    } finally {
      cleanup();
    }
  });
});
