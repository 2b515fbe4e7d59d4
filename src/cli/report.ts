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
    .option("--force", "overwrite an output file merglot report did not write")
    .action(async (input: string, o: { output?: string; format: string; force?: boolean }) => {
      const formats: ReportFormat[] | null =
        o.format === "both" ? ["html", "md"] : o.format === "html" || o.format === "md" ? [o.format] : null;
      if (!formats)
        throw new MerglotError("cli.option", `--format: expected html, md or both, got "${o.format}"`);
      const written = await writeReport({ input, output: o.output, formats, force: o.force });
      for (const p of written) process.stdout.write(`${p}\n`);
    });
}
