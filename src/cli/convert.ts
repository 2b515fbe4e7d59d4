import type { Command } from "commander";
import { MerglotError } from "../errors.js";
import {
  convertAdapterToGguf,
  convertModelToGguf,
  detectConvertInput,
  type ConvertDType,
} from "../formats/convert.js";
import { printOut } from "./terminal.js";

const DTYPES: Record<string, ConvertDType> = { f32: "F32", f16: "F16", bf16: "BF16" };

export function parseDType(v: string): ConvertDType {
  const d = DTYPES[v.toLowerCase()];
  if (!d) throw new MerglotError("cli.flag", `--dtype: expected f32, f16 or bf16, got "${v}"`);
  return d;
}

interface ConvertFlags {
  to: string;
  output: string;
  base?: string;
  dtype?: ConvertDType;
  force?: boolean;
  forceReplaceForeign?: boolean;
  json?: boolean;
}

export function registerConvert(program: Command): void {
  program
    .command("convert")
    .description(
      "convert a PEFT adapter folder or an HF model folder (llama, mistral, qwen2) to llama.cpp's GGUF",
    )
    .argument("<path>", "PEFT adapter folder or HF model folder")
    .requiredOption("--to <format>", "target format (gguf)")
    .requiredOption("-o, --output <file>", "output .gguf file")
    .option(
      "--base <model>",
      "base model folder or its config.json (adapters only; default: base_model_name_or_path)",
    )
    .option(
      "--dtype <type>",
      "tensor type: f32, f16 or bf16 (default: f32 for adapters, f16 for models)",
      parseDType,
    )
    .option("--force", "overwrite an existing output")
    .option(
      "--force-replace-foreign",
      "replace an existing output even if merglot did not write it (never an input)",
    )
    .option("--json", "print a JSON summary")
    .action((path: string, o: ConvertFlags) => {
      if (o.to.toLowerCase() !== "gguf") {
        throw new MerglotError("cli.flag", `--to: only "gguf" is supported, got "${o.to}"`);
      }
      const kind = detectConvertInput(path);
      const t0 = performance.now();
      if (kind === "adapter") {
        const r = convertAdapterToGguf(path, o.output, {
          base: o.base,
          dtype: o.dtype,
          force: o.force,
          replaceForeign: o.forceReplaceForeign,
        });
        const seconds = (performance.now() - t0) / 1000;
        if (o.json) {
          printOut(JSON.stringify({ kind, ...r, seconds }, null, 2) + "\n");
          return;
        }
        const folded = r.foldedModules > 0 ? `, ${r.foldedModules} modules' scaling folded into lora_b` : "";
        printOut(
          `converted adapter ${path} (${r.modules} modules, ${r.architecture}) → ${r.path}: ` +
            `${r.tensorCount} tensors, alpha ${r.alpha}${folded} in ${seconds.toFixed(2)} s\n`,
        );
        return;
      }
      if (o.base !== undefined) {
        throw new MerglotError("cli.flag", `--base applies to adapters; ${path} is a model folder`);
      }
      const r = convertModelToGguf(path, o.output, {
        dtype: o.dtype,
        force: o.force,
        replaceForeign: o.forceReplaceForeign,
      });
      const seconds = (performance.now() - t0) / 1000;
      if (o.json) {
        printOut(JSON.stringify({ kind, ...r, seconds }, null, 2) + "\n");
        return;
      }
      printOut(
        `converted model ${path} (${r.architecture}, ${r.dtype}) → ${r.path}: ${r.tensorCount} tensors, ` +
          `${r.tokenizer.tokens} tokens (${r.tokenizer.model}/${r.tokenizer.pre}), ` +
          `${(r.bytes / 2 ** 20).toFixed(1)} MiB in ${seconds.toFixed(2)} s\n`,
      );
    });
}
