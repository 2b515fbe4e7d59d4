/**
 * The demo: merge the embedded language adapters (data/demo) with several methods and show how much of each
 * language's vector every merged adapter keeps. Everything it prints is computed, nothing is canned.
 */
import { existsSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { languageVectorSimilarity } from "../analysis/similarity.js";
import { MerglotError } from "../errors.js";
import { merge, type MergeSummary } from "../merge/engine.js";
import { loadRecipe, parseRecipe } from "../merge/recipe.js";
import { OWNERS } from "../output/owners.js";
import { openOutput } from "../output/slot.js";

/** data/demo inside the installed package (three levels above dist/src/workflow). */
export const DEMO_DIR = fileURLToPath(new URL("../../../data/demo/", import.meta.url));

const METHODS: { method: string; space?: string; density?: number }[] = [
  { method: "task_arithmetic" },
  { method: "ties", density: 0.5 },
  { method: "dare_ties", density: 0.5 },
  { method: "ties", space: "factors", density: 0.5 },
  { method: "knots_ties", density: 0.5 },
  { method: "knots_dare_ties", density: 0.5 },
];

export interface DemoResult {
  languages: string[];
  similarity: number[][];
  merges: { label: string; summary: MergeSummary; cosine: number[]; relNorm: number[] }[];
}

export async function runDemo(opts: {
  output: string;
  /** Replace an existing demo output (a folder with summary.json). */
  force?: boolean;
  /** Replace whatever is at the output path. */
  replaceForeign?: boolean;
  threads?: number;
  log?: (s: string) => void;
}): Promise<DemoResult> {
  const log = opts.log ?? ((s: string) => process.stdout.write(s + "\n"));
  const recipePath = join(DEMO_DIR, "recipe.yaml");
  if (!existsSync(recipePath))
    throw new MerglotError("demo.data", `${recipePath}: the demo data is missing from this installation`);
  // Everything is written into one temp folder, moved into place at the end (src/output).
  const out = openOutput({
    path: opts.output,
    kind: "dir",
    inputs: [DEMO_DIR],
    owner: OWNERS.demo,
    force: opts.force,
    replaceForeign: opts.replaceForeign,
  });
  try {
    return await demoInto(out.temp, opts.output, recipePath, opts.threads, log, () => out.commit());
  } catch (e) {
    throw out.fail(e);
  }
}

async function demoInto(
  tmp: string,
  output: string,
  recipePath: string,
  threads: number | undefined,
  log: (s: string) => void,
  commit: () => void,
): Promise<DemoResult> {
  const base = loadRecipe(recipePath);
  const paths = base.models.map((m) => m.path);
  const langs = paths.map((p) => basename(p));
  const sim = languageVectorSimilarity(paths);
  const n = paths.length;
  log(`merglot demo: ${n} language adapters (${langs.join(", ")}) from ${join(DEMO_DIR, "adapters")}`);
  log("\nlanguage-vector cosine similarity:");
  log("      " + langs.map((l) => l.padStart(6)).join(""));
  langs.forEach((l, i) =>
    log(l.padEnd(6) + langs.map((_, j) => sim.cosine[i * n + j]!.toFixed(3).padStart(6)).join("")),
  );

  const merges: DemoResult["merges"] = [];
  log("\nmerged adapter vs each language vector: cosine (relative norm)");
  log("method".padEnd(26) + langs.map((l) => l.padStart(15)).join("") + "   rank   time");
  for (const m of METHODS) {
    const label = m.space ? `${m.method} (${m.space})` : m.method;
    const sub = label.replace(/[^a-z_]+/g, "-").replace(/-$/, "");
    const dir = join(tmp, sub);
    const recipe = parseRecipe(
      {
        merge_method: m.method,
        ...(m.space ? { space: m.space } : {}),
        models: base.raw.models,
        ...(m.density ? { parameters: { density: m.density } } : {}),
        seed: 0,
        output: { rank: "exact", dtype: "float32" },
      },
      recipePath,
      DEMO_DIR,
    );
    const summary = { ...(await merge(recipe, { output: dir, threads })), output: join(output, sub) };
    const withMerged = languageVectorSimilarity([...paths, dir]);
    const k = n + 1;
    const cosine = paths.map((_, i) => withMerged.cosine[i * k + n]!);
    const relNorm = paths.map((_, i) => withMerged.norms[n]! / withMerged.norms[i]!);
    merges.push({ label, summary, cosine, relNorm });
    log(
      label.padEnd(26) +
        cosine.map((c, i) => `${c.toFixed(3)} (${relNorm[i]!.toFixed(2)})`.padStart(15)).join("") +
        `${summary.rank.max}`.padStart(7) +
        `${(summary.timings.total_ms! / 1000).toFixed(2)}s`.padStart(7),
    );
  }
  const result: DemoResult = {
    languages: langs,
    similarity: langs.map((_, i) => Array.from(sim.cosine.slice(i * n, i * n + n))),
    merges,
  };
  writeFileSync(join(tmp, "summary.json"), JSON.stringify(result, null, 2) + "\n");
  commit();
  log(`\nmerged adapters and summary.json written to ${resolve(output)}`);
  return result;
}
