/**
 * The report as a person sees it: opened in a real headless Chromium (Debian's `chromium`, installed by
 * .ci/run), it must render without console errors, show every figure, and every number in Table 1 must equal
 * the value computed here from results.json. A screenshot is saved for people to look at.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import puppeteer from "puppeteer-core";
import { writeReport } from "../../src/report/index.js";
import { tempDir } from "../helpers/fixtures.js";
import { sampleResults, sampleStudyFile } from "./fixture.js";

const CHROMIUM = process.env.MERGLOT_CHROMIUM ?? "/usr/bin/chromium";

describe("report in a real browser", () => {
  it("renders without errors and shows exactly the numbers of results.json", async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM}: no Chromium (apt-get install chromium, or set MERGLOT_CHROMIUM)`,
    );
    const { dir, cleanup } = tempDir();
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    try {
      const results = sampleResults();
      writeFileSync(join(dir, "results.json"), JSON.stringify(sampleStudyFile()));
      const [html] = await writeReport({ input: dir, formats: ["html"] });
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warn") problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`pageerror: ${String(e)}`));
      page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
      await page.setViewport({ width: 1300, height: 900 });
      await page.goto(`file://${html}`, { waitUntil: "load" });
      assert.deepEqual(problems, []);

      // Table 1, read back from the page: row variant → cell values in column order
      const rows = await page.$$eval("#table-main tbody tr", (trs) =>
        trs.map((tr) => ({
          variant: tr.getAttribute("data-variant"),
          cells: [...tr.querySelectorAll("td:not(.label)")].map((td) => td.getAttribute("data-value")),
        })),
      );
      const langs = results.languages;
      // worked out by hand from the fixture: both baselines and the best setting of each method, per task
      const shownFor: Record<string, string[]> = {
        sentiment: ["combined", "per_language", "merged/ties/w1-d0.5", "merged/knots_ties/w1-d1"],
        extraction: ["combined", "per_language", "merged/ties/w1-d1"],
      };
      for (const row of rows) {
        let col = 0;
        for (const task of results.tasks) {
          const metric = task === "sentiment" ? "macro_f1" : "hallucination_rate";
          const own = shownFor[task]!.includes(row.variant!)
            ? results.results.filter((r) => r.task === task && r.variant === row.variant)
            : [];
          for (const lang of langs) {
            const r = own.find((x) => x.lang === lang);
            const shown = row.cells[col++];
            if (!r) assert.equal(shown, null, `${row.variant} ${task} ${lang} should be empty`);
            else assert.equal(Number(shown), r.metrics[metric], `${row.variant} ${task} ${lang}`);
          }
          const avg = row.cells[col++];
          if (own.length === 0) assert.equal(avg, null);
          else {
            const mean = own.reduce((s, r) => s + r.metrics[metric]!, 0) / own.length;
            assert.ok(Math.abs(Number(avg) - mean) < 1e-12, `${row.variant} ${task} avg`);
          }
        }
      }
      assert.equal(rows.length, 5);

      // every figure is an SVG that takes up room on the page
      const sizes = await page.$$eval("figure", (figs) =>
        figs.map((f) => {
          const svg = f.querySelector("svg");
          const box = svg?.getBoundingClientRect();
          return { id: f.id, w: box?.width ?? 0, h: box?.height ?? 0 };
        }),
      );
      assert.ok(sizes.length >= 6, `figures: ${sizes.length}`);
      for (const s of sizes) assert.ok(s.w > 100 && s.h > 50, `figure ${s.id} is ${s.w}×${s.h}`);

      const shots = process.env.MERGLOT_SCREENSHOTS ?? join(tmpdir(), "merglot-screenshots");
      mkdirSync(shots, { recursive: true });
      const png = join(shots, "report.png");
      await page.screenshot({ path: png as `${string}.png`, fullPage: true });
      assert.ok(statSync(png).size > 20_000);
    } finally {
      await browser.close();
      cleanup();
    }
  });
});
