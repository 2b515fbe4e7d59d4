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
    .option("--threads <n>", "worker threads", parseThreads)
    .action(async (o: { output: string; force?: boolean; threads?: number }) => {
      await runDemo({ output: o.output, force: o.force, threads: o.threads, log: (s) => printOut(s + "\n") });
    });
}
