import type { Command } from "commander";
import { runDemo } from "../workflow/demo.js";
import { parseThreads } from "./merge.js";
import { printOut } from "./terminal.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("merge the embedded demo language adapters with several methods and compare them")
    .option("-o, --output <dir>", "where to write the merged adapters", "merglot-demo")
    .option("--force", "replace an existing output folder")
    .option(
      "--force-replace-foreign",
      "replace an existing output even if merglot did not write it (never an input)",
    )
    .option("--threads <n>", "worker threads", parseThreads)
    .action(
      async (o: { output: string; force?: boolean; forceReplaceForeign?: boolean; threads?: number }) => {
        await runDemo({
          output: o.output,
          force: o.force,
          replaceForeign: o.forceReplaceForeign,
          threads: o.threads,
          log: (s) => printOut(s + "\n"),
        });
      },
    );
}
