/**
 * `merglot score --metric NAME --pred FILE --ref FILE [--lang L] [--json]`: scores a JSONL file of
 * predictions against a JSONL file of references (formats: src/eval/metrics/score-files.ts), prints the
 * headline number with its bootstrap interval, and with `--compare FILE` a paired significance test of
 * the two systems.
 */
import type { Command } from "commander";
import { MerglotError } from "../errors.js";
import { loadTransformersProvider } from "../eval/metrics/bertscore/transformers-provider.js";
import { loadEngineProvider } from "../eval/metrics/bertscore/engine-provider.js";
import { MAX_RESAMPLES } from "../eval/metrics/bootstrap.js";
import { formatReport, scoreFiles, type ScoreFilesOptions } from "../eval/metrics/score-files.js";
import { printOut } from "./terminal.js";

interface ScoreFlags {
  metric: string;
  pred: string;
  ref: string;
  lang?: string;
  json?: boolean;
  compare?: string;
  test: string;
  pairedSamples?: string;
  samples: string;
  seed: string;
  confidence: string;
  labels?: string;
  average: string;
  zeroDivision: string;
  tokenizer: string;
  stem?: boolean;
  model?: string;
  engineModel?: string;
  engineLayer?: string;
  outputName?: string;
  idf?: boolean;
  rescale?: string | boolean;
  layer?: string;
  baseline?: string;
  caseFold?: boolean;
  fuzzy?: string | boolean;
}

function int(flag: string, v: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min)
    throw new MerglotError("cli.flag", `--${flag}: expected an integer ≥ ${min}, got "${v}"`);
  if (n > max) throw new MerglotError("cli.flag", `--${flag}: at most ${max}, got "${v}"`);
  return n;
}

function num(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n))
    throw new MerglotError("cli.flag", `--${flag}: expected a number, got "${v}"`);
  return n;
}

function oneOf<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) {
    throw new MerglotError("cli.flag", `--${flag}: expected one of ${allowed.join(", ")}, got "${v}"`);
  }
  return v as T;
}

/** The BERTScore embedding provider the flags ask for: transformers.js (--model) or our engine (--engine-model). */
function bertProvider(f: ScoreFlags): ScoreFilesOptions["provider"] {
  if (f.model !== undefined && f.engineModel !== undefined) {
    throw new MerglotError("cli.flag", "--model and --engine-model: give one embedding model, not both");
  }
  const modelDir = f.model;
  if (modelDir !== undefined) return () => loadTransformersProvider({ modelDir, outputName: f.outputName });
  const engineDir = f.engineModel;
  if (engineDir === undefined) return undefined;
  const layer = f.engineLayer === undefined ? undefined : int("engine-layer", f.engineLayer, 0);
  return async () => loadEngineProvider(engineDir, { layer });
}

export function toScoreOptions(f: ScoreFlags): ScoreFilesOptions {
  const zd = f.zeroDivision.toLowerCase() === "nan" ? NaN : num("zero-division", f.zeroDivision);
  let baselineValues: ScoreFilesOptions["baselineValues"];
  if (f.baseline !== undefined) {
    const parts = f.baseline.split(",").map((x) => num("baseline", x));
    if (parts.length !== 3)
      throw new MerglotError("cli.flag", `--baseline: expected P,R,F (three numbers), got "${f.baseline}"`);
    baselineValues = { precision: parts[0], recall: parts[1], f: parts[2] };
  }
  return {
    metric: f.metric,
    pred: f.pred,
    ref: f.ref,
    compare: f.compare,
    lang: f.lang,
    bootstrap: {
      samples: int("samples", f.samples, 1, MAX_RESAMPLES),
      seed: int("seed", f.seed, 0),
      confidence: num("confidence", f.confidence),
    },
    pairedMethod: oneOf("test", f.test, ["bootstrap", "randomization"] as const),
    pairedSamples:
      f.pairedSamples === undefined ? undefined : int("paired-samples", f.pairedSamples, 1, MAX_RESAMPLES),
    labels: f.labels === undefined ? undefined : f.labels.split(",").map((s) => s.trim()),
    average: oneOf("average", f.average, ["macro", "micro", "weighted"] as const),
    zeroDivision: zd,
    tokenizer: oneOf("tokenizer", f.tokenizer, ["multilingual", "rouge-score"] as const),
    stem: f.stem ?? false,
    provider: bertProvider(f),
    idf: f.idf ?? false,
    baselineModel:
      f.rescale === undefined || f.rescale === false ? undefined : f.rescale === true ? "default" : f.rescale,
    baselineLayer: f.layer === undefined ? undefined : int("layer", f.layer, 0),
    baselineValues,
    hallucination: {
      caseFold: f.caseFold ?? false,
      match: f.fuzzy === undefined || f.fuzzy === false ? "exact" : "fuzzy",
      threshold: typeof f.fuzzy === "string" ? num("fuzzy", f.fuzzy) : undefined,
    },
  };
}

/** `write` receives the report (default: stdout); tests pass their own. */
export function registerScore(program: Command, write: (text: string) => void = (t) => printOut(t)): void {
  program
    .command("score")
    .description("score predictions against references (JSONL) with one metric, with a bootstrap CI")
    .requiredOption(
      "--metric <name>",
      "accuracy, precision, recall, f1, classification, acc, acc_norm, acc_bytes, rouge, rouge1, rouge2, rougeL, rougeLsum, bertscore, hallucination",
    )
    .requiredOption("--pred <file>", "predictions, one JSON object per line")
    .requiredOption("--ref <file>", "references, one JSON object per line")
    .option("--lang <code>", "language of the texts (en, de, fr, ja, zh, …)")
    .option("--json", "print the full report as JSON")
    .option(
      "--compare <file>",
      "a second system's predictions: paired significance test of --pred against it",
    )
    .option("--test <method>", "paired test: bootstrap or randomization", "bootstrap")
    .option("--paired-samples <n>", "resamples / permutations of the paired test (default 10000)")
    .option("--samples <n>", "bootstrap resamples for the confidence interval", "1000")
    .option("--seed <n>", "seed of the resampling", "0")
    .option("--confidence <c>", "interval coverage; the test's level is 1 − c", "0.95")
    .option(
      "--labels <list>",
      "classification: comma-separated class labels (others in --pred count as wrong)",
    )
    .option("--average <kind>", "classification: macro, micro or weighted", "macro")
    .option("--zero-division <v>", "classification: value of 0/0 (0, 1 or nan)", "0")
    .option("--tokenizer <mode>", "rouge: multilingual or rouge-score", "multilingual")
    .option("--stem", "rouge: stem words (Porter for en as rouge-score; Snowball for de, fr)")
    .option("--model <dir>", "bertscore: local transformers.js model folder (never downloaded)")
    .option(
      "--engine-model <dir>",
      "bertscore: an HF-layout llama-family model folder, embedded with merglot's own engine (--engine-layer)",
    )
    .option("--engine-layer <n>", "bertscore: engine layer whose hidden states are used (default: last)")
    .option("--output-name <name>", "bertscore: model output with the token vectors", "last_hidden_state")
    .option("--idf", "bertscore: idf weights from the references")
    .option(
      "--rescale [model]",
      "bertscore: rescale with bert_score's published baseline (default model for --lang)",
    )
    .option("--layer <n>", "bertscore: layer of the published baseline")
    .option("--baseline <p,r,f>", "bertscore: rescale with these baseline values")
    .option("--case-fold", "hallucination: ignore case when matching")
    .option(
      "--fuzzy [threshold]",
      "hallucination: accept items whose token LCS covers ≥ threshold (default 0.8)",
    )
    .action(async (flags: ScoreFlags) => {
      const report = await scoreFiles(toScoreOptions(flags));
      write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    });
}
