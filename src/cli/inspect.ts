import type { Command } from "commander";
import { formatReport, inspectPath } from "../inspect/inspect.js";
import { printOut } from "./terminal.js";

export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description("show the modules of a PEFT adapter folder, or the tensors of a .safetensors or .gguf file")
    .argument("<path>", "adapter folder or .safetensors file")
    .option("--json", "print a JSON object instead of a table")
    .option("--no-norms", "skip ‖ΔW‖_F (reads only the headers)")
    .action((path: string, o: { json?: boolean; norms: boolean }) => {
      const report = inspectPath(path, { norms: o.norms });
      // JSON.stringify escapes C0 controls itself; printOut escapes what it leaves (DEL, C1, bidi).
      // formatReport escapes the names it quotes.
      printOut(o.json ? JSON.stringify(report, null, 2) + "\n" : formatReport(report) + "\n");
    });
}
