/**
 * bench/search: candidates per minute of `merglot search` on the embedded demo (sentiment, 5 languages, all
 * 60 validation rows per language, engine runner): each candidate is one TIES merge of the five adapters plus
 * five evaluations. The demo ships no sentiment adapters for its base model, so pass a folder holding
 * en/ de/ fr/ ja/ zh/ adapters trained with `merglot train --task sentiment` (README "### search").
 *   node dist/bench/search.js --adapters DIR [--candidates 6]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runSearch } from "../src/search/search.js";
import { parseSearchSpec } from "../src/search/spec.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const adapters = arg("--adapters");
if (!adapters) {
  process.stderr.write("usage: node dist/bench/search.js --adapters DIR [--candidates 6]\n");
  process.exit(1);
}
const candidates = Number(arg("--candidates") ?? 6);
const demo = fileURLToPath(new URL("../../data/demo/", import.meta.url));
const langs = ["en", "de", "fr", "ja", "zh"];
const spec = parseSearchSpec(
  {
    base: join(demo, "model"),
    task: "sentiment",
    adapters: Object.fromEntries(langs.map((l) => [l, join(adapters, l)])),
    data: Object.fromEntries(langs.map((l) => [l, join(demo, "tasks", "sentiment", l)])),
    methods: ["ties"],
    parameters: {
      weight: { min: 0.5, max: 2, per_language: true },
      density: { min: 0.2, max: 1, per_language: true },
    },
    objective: { metric: "accuracy" },
    budget: { candidates },
    optimizer: { kind: "random" },
    final_test: false,
  },
  "<bench>",
  process.cwd(),
);
const out = mkdtempSync(join(tmpdir(), "merglot-bench-search-"));
try {
  const t0 = performance.now();
  const r = await runSearch(spec, { output: join(out, "search") });
  const s = (performance.now() - t0) / 1000;
  const evaluated = r.candidates.filter((c) => !c.cached);
  const per = evaluated.reduce((a, c) => a + c.seconds, 0) / evaluated.length;
  process.stdout.write(
    `search on the demo (ties, 5 languages × 60 validation rows): ${r.candidates.length} candidates in ${s.toFixed(1)} s ` +
      `(with setup and the final re-merge); ${per.toFixed(2)} s per candidate = ${(60 / per).toFixed(1)} candidates/min; ` +
      `load average ${loadavg()[0]!.toFixed(1)}\n`,
  );
} finally {
  rmSync(out, { recursive: true, force: true });
}
