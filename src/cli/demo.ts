import type { Command } from "commander";
import { runDemo } from "../workflow/demo.js";
import { warnIfKernelsMissing } from "./merge.js";
import { positiveInt, printSummary, progressView } from "./study-view.js";
import { printOut } from "./terminal.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("run the embedded demo study (train, merge, evaluate, report) on the tiny demo model")
    .option(
      "-o, --output <dir>",
      "study folder (its step cache makes a second run take seconds)",
      "merglot-demo",
    )
    .option("--jobs <n>", "steps run in parallel", positiveInt("jobs"), 2)
    .option(
      "--force-replace-foreign",
      "use an existing folder that is not a demo output (nothing in it is removed; never an input)",
    )
    .action(async (o: { output: string; jobs: number; forceReplaceForeign?: boolean }) => {
      warnIfKernelsMissing();
      const { summary, report } = await runDemo({
        output: o.output,
        jobs: o.jobs,
        replaceForeign: o.forceReplaceForeign,
        onEvent: progressView(),
      });
      printSummary(summary);
      for (const p of report) printOut(`report: ${p}\n`);
    });
}
