import type { Command } from "commander";
import { MerglotError } from "../errors.js";
import { writeReport, type ReportFormat } from "../report/index.js";

export function registerReport(program: Command): void {
  program
    .command("report")
    .description("write the study's report (tables and figures) from its results.json")
    .argument("<study>", "a study output folder, or its results.json")
    .option("-o, --output <file>", "output file (default: <study>/report.html and report.md)")
    .option("--format <format>", "html, md, or both", "both")
    .option("--force-replace-foreign", "replace an output file merglot report did not write (never an input)")
    .action(async (input: string, o: { output?: string; format: string; forceReplaceForeign?: boolean }) => {
      const formats: ReportFormat[] | null =
        o.format === "both" ? ["html", "md"] : o.format === "html" || o.format === "md" ? [o.format] : null;
      if (!formats)
        throw new MerglotError("cli.option", `--format: expected html, md or both, got "${o.format}"`);
      const written = await writeReport({
        input,
        output: o.output,
        formats,
        replaceForeign: o.forceReplaceForeign,
      });
      for (const p of written) process.stdout.write(`${p}\n`);
    });
}
