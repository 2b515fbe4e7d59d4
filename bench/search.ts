/**
 * bench/search: candidates per minute of the merge search.
 *
 * Demo mode: `merglot search` on the embedded demo (sentiment, 5 languages, all 60 validation rows per
 * language, engine runner); each candidate is one TIES merge of the five adapters plus five evaluations, run
 * once per `--jobs` value (same candidates each time, so the figures compare). The demo ships no sentiment
 * adapters for its base model: pass the demo study's folder (`npm run demo` writes merglot-demo/) or a folder
 * holding en/ de/ fr/ ja/ zh/ adapters.
 *   node dist/bench/search.js --study merglot-demo [--candidates 6] [--jobs 1,2]
 *   node dist/bench/search.js --adapters DIR [--candidates 6] [--jobs 1,2]
 *
 * 8B mode: merge time only (no evaluation) of search candidates over five synthetic Llama-3.1-8B-shaped
 * adapters (bench/synthetic.ts: r 64, bf16, all 7 linear modules × 32 layers), as the search runs them: one
 * merge per candidate of random per-language weights (and densities for methods that use them) into a
 * scratch folder, with the merge engine's threads.
 *   node dist/bench/search.js --synthetic-8b [--method task_arithmetic] [--candidates 2] [--keep DIR]
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { merge } from "../src/merge/engine.js";
import { recipeOf } from "../src/search/candidate.js";
import { runSearch } from "../src/search/search.js";
import { parseSearchSpec, type SearchSpec } from "../src/search/spec.js";
import { Rng } from "../src/tensor/rng.js";
import { writeSyntheticAdapter } from "./synthetic.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const langs = ["en", "de", "fr", "ja", "zh"];
const load = () => `load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`;

if (process.argv.includes("--synthetic-8b")) {
  const method = arg("--method") ?? "task_arithmetic";
  const n = Number(arg("--candidates") ?? 2);
  const dir = arg("--keep") ?? mkdtempSync(join(tmpdir(), "merglot-bench-search8b-"));
  mkdirSync(dir, { recursive: true });
  const adapters: Record<string, string> = {};
  langs.forEach((l, i) => {
    adapters[l] = join(dir, l);
    if (!existsSync(join(adapters[l], "adapter_config.json")))
      writeSyntheticAdapter(adapters[l], { seed: 11 + i });
  });
  const spec = { languages: langs, adapters, seed: 0 } as unknown as SearchSpec;
  const rng = new Rng(5);
  let total = 0;
  for (let c = 0; c < n; c++) {
    const params = {
      method,
      weight: Object.fromEntries(langs.map((l) => [l, 0.5 + rng.nextFloat()])),
      density: Object.fromEntries(langs.map((l) => [l, 0.2 + 0.8 * rng.nextFloat()])),
      lambda: 1,
    };
    const out = join(dir, "candidate");
    const t0 = performance.now();
    await merge(recipeOf(spec, params), { output: out, force: true });
    const s = (performance.now() - t0) / 1000;
    total += s;
    rmSync(out, { recursive: true, force: true });
    process.stdout.write(
      `8B-shaped candidate ${c + 1}/${n} (${method}, 5 adapters r 64): merge ${s.toFixed(1)} s\n`,
    );
  }
  process.stdout.write(
    `8B-shaped ${method}: ${(total / n).toFixed(1)} s per candidate (merge only) = ${((60 * n) / total).toFixed(2)} candidates/min; ${load()}\n`,
  );
  if (!arg("--keep")) rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

const adapterDir = arg("--adapters");
const study = arg("--study");
const adapterOf = (l: string): string => {
  if (adapterDir) return join(adapterDir, l);
  const lock = JSON.parse(readFileSync(join(study!, "study.lock.json"), "utf8")) as {
    steps: Record<string, { key: string }>;
  };
  return join(study!, "steps", lock.steps[`train/sentiment/${l}`]!.key, "adapter");
};
if (!adapterDir && !study) {
  process.stderr.write(
    "usage: node dist/bench/search.js --study DIR | --adapters DIR [--candidates 6] [--jobs 1,2]\n",
  );
  process.exit(1);
}
const candidates = Number(arg("--candidates") ?? 6);
const jobsList = (arg("--jobs") ?? "1").split(",").map(Number);
const demo = fileURLToPath(new URL("../../data/demo/", import.meta.url));
const spec = parseSearchSpec(
  {
    base: join(demo, "model"),
    task: "sentiment",
    adapters: Object.fromEntries(langs.map((l) => [l, adapterOf(l)])),
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
for (const jobs of jobsList) {
  const out = mkdtempSync(join(tmpdir(), "merglot-bench-search-"));
  try {
    const t0 = performance.now();
    const r = await runSearch(spec, { output: join(out, "search"), jobs });
    const s = (performance.now() - t0) / 1000;
    const evaluated = r.candidates.filter((c) => !c.cached);
    const per = evaluated.reduce((a, c) => a + c.seconds, 0) / evaluated.length;
    process.stdout.write(
      `search on the demo (ties, 5 languages × 60 validation rows), --jobs ${jobs}: ${r.candidates.length} candidates in ${s.toFixed(1)} s ` +
        `(with setup and the final re-merge) = ${((60 * r.candidates.length) / s).toFixed(2)} candidates/min; ` +
        `${per.toFixed(2)} s per candidate in its worker; ${load()}\n`,
    );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
