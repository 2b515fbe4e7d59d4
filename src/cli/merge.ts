import type { Command } from "commander";
import { MerglotError } from "../errors.js";
import { merge } from "../merge/engine.js";
import { wasmProblem } from "../tensor/wasm.js";
import { progressBar } from "./progress.js";
import { printMessage, printOut } from "./terminal.js";

const MAX_THREADS = 256;

/** One warning line when the WebAssembly kernels cannot load (commands that merge call it before they start). */
export function warnIfKernelsMissing(): void {
  const problem = wasmProblem();
  if (problem) printMessage(`warning: ${problem}`);
}

export function parseThreads(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new MerglotError("cli.flag", `--threads: expected a positive integer, got "${v}"`);
  // Each thread is a worker with its own buffers: bound it so a typo is one line, not a million workers.
  if (n > MAX_THREADS) throw new MerglotError("cli.flag", `--threads: at most ${MAX_THREADS}, got "${v}"`);
  return n;
}

export function registerMerge(program: Command): void {
  program
    .command("merge")
    .description("merge LoRA adapters as a YAML recipe says (TIES, DARE, KnOTS, …) into one PEFT adapter")
    .argument("<recipe>", "recipe YAML file")
    .option("-o, --output <dir>", "output adapter folder (overrides output.path)")
    .option("--force", "overwrite an existing output")
    .option(
      "--force-replace-foreign",
      "replace an existing output even if merglot did not write it (never an input)",
    )
    .option("--threads <n>", "worker threads (default: number of cores)", parseThreads)
    .option("--allow-base-mismatch", "merge adapters that name different base models")
    .option("--json", "print a JSON summary")
    .action(
      async (
        recipe: string,
        o: {
          output?: string;
          force?: boolean;
          forceReplaceForeign?: boolean;
          threads?: number;
          allowBaseMismatch?: boolean;
          json?: boolean;
        },
      ) => {
        warnIfKernelsMissing();
        const bar = progressBar("merging");
        let summary;
        try {
          summary = await merge(recipe, {
            output: o.output,
            force: o.force,
            replaceForeign: o.forceReplaceForeign,
            threads: o.threads,
            allowBaseMismatch: o.allowBaseMismatch,
            onProgress: (d, t, m) => bar.update(d, t, m),
          });
        } finally {
          bar.stop();
        }
        if (o.json) {
          printOut(JSON.stringify(summary, null, 2) + "\n");
          return;
        }
        for (const w of summary.warnings) printMessage(`warning: ${w}`);
        const rank =
          summary.rank.min === summary.rank.max
            ? `${summary.rank.min}`
            : `${summary.rank.min}–${summary.rank.max}`;
        printOut(
          `merged ${summary.adapters} adapters with ${summary.method} (${summary.space} space): ${summary.modules} modules, ` +
            `rank ${rank}, ${summary.dtype} → ${summary.output} in ${(summary.timings.total_ms! / 1000).toFixed(2)} s\n`,
        );
      },
    );
}
