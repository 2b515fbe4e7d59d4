/**
 * `merglot data --task T --data PATH --lang L -o OUT [--config C] [--sizes 5000,500,500] [--seed 0]
 * [--force] [--json]`: writes the canonical per-language train/validation/test JSONL that `merglot train`
 * reads (procedure: src/data/prepare.ts).
 */
import type { Command } from "commander";
import { MerglotError } from "../errors.js";
import { prepareSplits, writePreparedData, type SplitSizes } from "../data/prepare.js";

interface DataFlags {
  task: string;
  data: string;
  lang?: string;
  output: string;
  config?: string;
  sizes?: string;
  seed: string;
  force?: boolean;
  forceReplaceForeign?: boolean;
  json?: boolean;
}

function parseSizes(v: string): SplitSizes {
  const parts = v.split(",").map((x) => x.trim());
  const n = parts.map(Number);
  if (parts.length !== 3 || n.some((x, i) => parts[i] === "" || !Number.isInteger(x) || x < 1)) {
    throw new MerglotError(
      "cli.flag",
      `--sizes: expected three positive integers train,validation,test, got "${v}"`,
    );
  }
  return { train: n[0]!, validation: n[1]!, test: n[2]! };
}

export function registerData(
  program: Command,
  print: (text: string) => void = (t) => process.stdout.write(t),
): void {
  program
    .command("data")
    .description("write canonical per-language train/validation/test JSONL from a dataset file or folder")
    .requiredOption("--task <task>", "sentiment, reasoning, summarization or extraction")
    .requiredOption("--data <path>", "data file or dataset folder (a downloaded Hugging Face dataset)")
    .option("--lang <code>", "language code (selects the config and/or rows)")
    .requiredOption("-o, --output <dir>", "output folder")
    .option("--config <name>", "dataset config (subset)")
    .option("--sizes <t,v,e>", "examples per split: train,validation,test (default: the study's)")
    .option("--seed <n>", "selection seed", "0")
    .option("--force", "replace an existing output folder")
    .option(
      "--force-replace-foreign",
      "replace an existing output folder even if merglot did not write it (never an input)",
    )
    .option("--json", "print a JSON summary")
    .action(async (o: DataFlags) => {
      const seed = Number(o.seed);
      if (!Number.isSafeInteger(seed))
        throw new MerglotError("cli.flag", `--seed: expected an integer, got "${o.seed}"`);
      const data = await prepareSplits({
        path: o.data,
        task: o.task,
        lang: o.lang,
        config: o.config,
        seed,
        sizes: o.sizes ? parseSizes(o.sizes) : undefined,
      });
      writePreparedData(o.output, data, o.data, o.force ?? false, o.forceReplaceForeign ?? false);
      const counts = Object.fromEntries(Object.entries(data.splits).map(([s, p]) => [s, p.examples.length]));
      if (o.json) {
        print(
          JSON.stringify(
            {
              output: o.output,
              task: data.task,
              lang: data.lang ?? null,
              config: data.config,
              schema: data.schema,
              seed,
              counts,
            },
            null,
            2,
          ) + "\n",
        );
        return;
      }
      const carved = Object.entries(data.splits)
        .filter(([s, p]) => p.from !== s)
        .map(([s]) => s);
      print(
        `wrote ${o.output}: train ${counts.train}, validation ${counts.validation}, test ${counts.test} ` +
          `(${data.schema}${data.config ? `, config ${data.config}` : ""}, seed ${seed}` +
          `${carved.length ? `; ${carved.join(", ")} carved from train` : ""})\n`,
      );
    });
}
