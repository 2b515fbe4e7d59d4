/** `merglot search SEARCH.yaml -o OUT_DIR`: thin; the search lives in src/search/search.ts. */
import type { Command } from "commander";
import { runSearch } from "../search/search.js";
import { loadSearchSpec } from "../search/spec.js";
import { warnIfKernelsMissing } from "./merge.js";
import { positiveInt } from "./study-view.js";

export function registerSearch(program: Command): void {
  program
    .command("search")
    .description("search merge weights/densities on validation data (CMA-ES, random or grid); resumable")
    .argument("<search>", "SEARCH.yaml file")
    .requiredOption("-o, --output <dir>", "output folder (best-recipe.yaml, adapter/, search.json)")
    .option("--force", "overwrite an existing output (or discard another spec's unfinished search)")
    .option("--json", "print search.json's summary as JSON")
    .option(
      "--jobs <n>",
      "candidates scored in parallel (worker processes; same results for every n)",
      positiveInt("jobs"),
      1,
    )
    .action(async (file: string, o: { output: string; force?: boolean; json?: boolean; jobs: number }) => {
      const spec = loadSearchSpec(file);
      warnIfKernelsMissing();
      const r = await runSearch(spec, {
        output: o.output,
        force: o.force,
        jobs: o.jobs,
        onProgress: o.json ? undefined : (line) => process.stderr.write(line + "\n"),
      });
      const summary = {
        output: r.out,
        candidates: r.candidates.length,
        resumed: r.resumed,
        best: {
          index: r.best.index,
          params: r.best.params,
          validation: r.best.scores,
          objective: r.best.objective,
        },
        test: r.test,
      };
      if (o.json) process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
      else {
        const fmt = (s: Record<string, number>) =>
          Object.entries(s)
            .map(([l, v]) => `${l} ${v.toFixed(4)}`)
            .join(", ");
        process.stdout.write(
          `best of ${r.candidates.length} candidates: #${r.best.index + 1}, validation ${spec.metric} ${r.best.mean.toFixed(4)} (${fmt(r.best.scores)})\n` +
            (r.test ? `test: ${fmt(r.test)}\n` : "") +
            `wrote ${r.out}\n`,
        );
      }
    });
}
