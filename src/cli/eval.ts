/**
 * `merglot eval`: a model (+ adapters) on one task and language → metrics.json and samples.jsonl. Thin: the
 * data comes from loadExamples (src/data), everything else from evaluate() (src/eval/evaluate.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { loadExamples } from "../data/load.js";
import { MerglotError } from "../errors.js";
import { loadEngineProvider } from "../eval/metrics/bertscore/engine-provider.js";
import type { EmbeddingProvider } from "../eval/metrics/bertscore/provider.js";
import { loadTransformersProvider } from "../eval/metrics/bertscore/transformers-provider.js";
import { evaluate, type EvaluateResult } from "../eval/evaluate.js";
import { localDetokenizer, type RunnerKind } from "../eval/open-runner.js";
import { LLAMA_GPUS, type LlamaGpu } from "../eval/runners/llamacpp.js";
import {
  parseServerLoras,
  SERVER_KINDS,
  ServerRunner,
  type ServerKind,
  type ServerRunnerOptions,
} from "../eval/runners/server.js";
import { loadTask, loaderColumns } from "../tasks/load.js";
import { progressBar } from "./progress.js";

interface EvalFlags {
  model: string;
  adapter: string[];
  task: string;
  lang: string;
  data: string;
  split: string;
  config?: string;
  limit?: string;
  seed: string;
  runner?: string;
  batch: string;
  mode: string;
  chatTemplate: boolean;
  bertscoreModel?: string;
  exact?: boolean;
  threads?: string;
  gpu: string;
  serverUrl?: string;
  serverKind?: string;
  serverModel?: string;
  serverLora?: string;
  concurrency: string;
  timeout: string;
  retries: string;
  output?: string;
  json?: boolean;
  force?: boolean;
  forceReplaceForeign?: boolean;
}

function positiveInt(flag: string, v: string): number {
  const x = Number(v);
  if (v.trim() === "" || !Number.isInteger(x) || x < 1)
    throw new MerglotError("cli.flag", `--${flag}: expected a positive integer, got "${v}"`);
  return x;
}

/** A BERTScore embedding model: a llama-family HF folder runs on the engine, others on transformers.js. */
async function bertscoreProvider(dir: string): Promise<EmbeddingProvider> {
  const configPath = join(dir, "config.json");
  if (!existsSync(configPath)) throw new MerglotError("cli.flag", `--bertscore-model ${dir}: no config.json`);
  let modelType: unknown;
  try {
    modelType = (JSON.parse(readFileSync(configPath, "utf8")) as { model_type?: unknown }).model_type;
  } catch {
    throw new MerglotError("cli.flag", `--bertscore-model ${dir}: config.json is not valid JSON`);
  }
  if (["llama", "mistral", "qwen2"].includes(String(modelType))) return loadEngineProvider(dir);
  return loadTransformersProvider({ modelDir: dir });
}

/** The server runner's options from the flags; null without --runner server (whose flags are then refused). */
function serverOptions(f: EvalFlags): ServerRunnerOptions | null {
  const given = (
    [
      ["server-url", f.serverUrl],
      ["server-kind", f.serverKind],
      ["server-model", f.serverModel],
      ["server-lora", f.serverLora],
    ] as const
  ).filter(([, v]) => v !== undefined);
  if (f.runner !== "server") {
    if (given.length) throw new MerglotError("cli.flag", `--${given[0]![0]} needs --runner server`);
    return null;
  }
  if (f.serverUrl === undefined)
    throw new MerglotError("cli.flag", `--runner server needs --server-url (e.g. http://127.0.0.1:8000)`);
  if (f.serverKind === undefined || !SERVER_KINDS.includes(f.serverKind as ServerKind))
    throw new MerglotError(
      "cli.flag",
      `--server-kind: expected vllm or llama-server, got ${f.serverKind === undefined ? "nothing" : `"${f.serverKind}"`}`,
    );
  if (f.adapter.length)
    throw new MerglotError(
      "cli.flag",
      `--adapter: the server applies the adapter; load it there and name it with --server-lora`,
    );
  if (f.exact || f.threads !== undefined || f.gpu !== "off")
    throw new MerglotError(
      "cli.flag",
      `--${f.exact ? "exact" : f.threads !== undefined ? "threads" : "gpu"} applies to the llama.cpp runner, not to a server`,
    );
  const kind = f.serverKind as ServerKind;
  const timeout = Number(f.timeout);
  if (f.timeout.trim() === "" || !Number.isFinite(timeout) || timeout <= 0)
    throw new MerglotError(
      "cli.flag",
      `--timeout: expected a positive number of seconds, got "${f.timeout}"`,
    );
  const retries = Number(f.retries);
  if (f.retries.trim() === "" || !Number.isInteger(retries) || retries < 0)
    throw new MerglotError("cli.flag", `--retries: expected a non-negative integer, got "${f.retries}"`);
  if (kind === "vllm" && f.serverLora !== undefined && f.serverLora.trim() === "")
    throw new MerglotError("cli.flag", `--server-lora: expected a LoRA module name`);
  return {
    url: f.serverUrl,
    kind,
    model: f.serverModel,
    lora:
      f.serverLora === undefined
        ? undefined
        : kind === "vllm"
          ? f.serverLora
          : parseServerLoras(f.serverLora),
    concurrency: positiveInt("concurrency", f.concurrency),
    timeoutMs: Math.round(timeout * 1000),
    retries,
  };
}

function summary(r: EvaluateResult, out: string | undefined): string {
  const fmt = (x: number) => x.toFixed(4);
  const lines = [
    `${r.task} (${r.lang}, ${r.split}, ${r.count} examples, ${r.runner}, ${r.mode})${r.cached ? " [cached]" : ""}`,
  ];
  for (const [name, v] of Object.entries(r.metrics)) {
    const ci = r.ci[name];
    lines.push(`  ${name.padEnd(18)} ${fmt(v)}${ci ? `  [${fmt(ci[0])}, ${fmt(ci[1])}]` : ""}`);
  }
  if (r.parse_failures !== undefined)
    lines.push(`  ${r.parse_failures} generated answers named no choice (counted wrong)`);
  lines.push(`  ${r.seconds} s, ${r.tokens} tokens${out ? `; wrote ${out}` : ""}`);
  return lines.join("\n") + "\n";
}

export function registerEval(program: Command): void {
  program
    .command("eval")
    .description("evaluate a model (+ adapters) on a task in one language: metrics.json + samples.jsonl")
    .requiredOption("--model <path>", "base model: HF folder (engine) or GGUF file (llama.cpp)")
    .option(
      "--adapter <dir>",
      "PEFT adapter folder (repeatable; converted to a llama.cpp LoRA GGUF on the fly for a GGUF base)",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .requiredOption(
      "--task <name|file>",
      "sentiment, reasoning, summarization, extraction, or a task YAML file",
    )
    .requiredOption("--lang <code>", "language (en, de, fr, ja, zh, or one the task file adds)")
    .requiredOption(
      "--data <path>",
      "data file or dataset folder (canonical JSONL, CSV/TSV, Parquet, HF snapshot)",
    )
    .option("--split <name>", "split to evaluate", "test")
    .option("--config <name>", "dataset config (default: chosen from --lang)")
    .option("--limit <n>", "evaluate n examples, drawn by the seeded selection")
    .option("--seed <n>", "seed of the --limit selection", "0")
    .option(
      "--runner <kind>",
      "engine | llamacpp | server (default: engine for a folder, llamacpp for a GGUF)",
    )
    .option("--batch <n>", "examples per model call (llama.cpp: parallel sequences)", "8")
    .option(
      "--mode <mode>",
      "multiple-choice tasks: score (log-probabilities) or generate (parse an answer)",
      "score",
    )
    .option("--no-chat-template", "use the plain task prompt even when the model has a chat template")
    .option("--bertscore-model <dir>", "embedding model for bertscore_f1 (summarization)")
    .option("--exact", "llama.cpp parity mode (no flash attention, F32 KV cache)")
    .option("--threads <n>", "llama.cpp threads")
    .option(
      "--gpu <backend>",
      "llama.cpp backend: off (CPU) | auto | cuda | vulkan (GPU binaries: README)",
      "off",
    )
    .option("--server-url <url>", "--runner server: the server's base URL, e.g. http://127.0.0.1:8000")
    .option("--server-kind <kind>", "--runner server: vllm | llama-server")
    .option(
      "--server-model <name>",
      "--runner server, vLLM: the served model name (default: the one it lists)",
    )
    .option(
      "--server-lora <adapter>",
      "--runner server: vLLM LoRA module name; llama-server adapter ids ID[:SCALE],… (default: base model)",
    )
    .option("--concurrency <n>", "--runner server: requests in flight", "8")
    .option("--timeout <s>", "--runner server: seconds per request before it is retried", "300")
    .option("--retries <n>", "--runner server: retries of a failed request (backoff 0.5 s, doubling)", "3")
    .option("-o, --output <dir>", "write metrics.json and samples.jsonl here")
    .option("--json", "print metrics.json")
    .option("--force", "overwrite an output folder that holds other results")
    .option(
      "--force-replace-foreign",
      "replace an existing output folder even if merglot did not write it (never an input)",
    )
    .action(async (f: EvalFlags) => {
      if (f.runner !== undefined && !["engine", "llamacpp", "server"].includes(f.runner))
        throw new MerglotError(
          "cli.flag",
          `--runner: expected engine, llamacpp or server, got "${f.runner}"`,
        );
      if (!LLAMA_GPUS.includes(f.gpu as LlamaGpu))
        throw new MerglotError("cli.flag", `--gpu: expected ${LLAMA_GPUS.join(", ")}, got "${f.gpu}"`);
      const server = serverOptions(f);
      if (f.mode !== "score" && f.mode !== "generate")
        throw new MerglotError("cli.flag", `--mode: expected score or generate, got "${f.mode}"`);
      const batch = positiveInt("batch", f.batch);
      const limit = f.limit === undefined ? undefined : positiveInt("limit", f.limit);
      const seed = Number(f.seed);
      if (!Number.isSafeInteger(seed) || seed < 0)
        throw new MerglotError("cli.flag", `--seed: expected a non-negative integer, got "${f.seed}"`);
      const threads = f.threads === undefined ? undefined : positiveInt("threads", f.threads);
      const task = loadTask(f.task);
      // The language must have a prompt before any data is read.
      if (!task.definition.prompts[f.lang]) {
        throw new MerglotError(
          "task.lang",
          `task ${task.definition.task} has no prompt for language "${f.lang}" (it has ${Object.keys(task.definition.prompts).join(", ")}); ` +
            `copy ${task.source}, add prompts.${f.lang}, and pass the copy with --task`,
        );
      }
      const loaded = await loadExamples({
        path: f.data,
        task: task.definition.task,
        lang: f.lang,
        split: f.split,
        config: f.config,
        limit,
        seed,
        columns: loaderColumns(task),
      });
      const bertscore =
        f.bertscoreModel !== undefined && task.definition.metrics.includes("bertscore_f1")
          ? await bertscoreProvider(f.bertscoreModel)
          : undefined;
      // The server is reached (and its model, adapter and tokenizer checked) before the first request.
      const serverRunner = server
        ? await ServerRunner.open({ ...server, detokenize: await localDetokenizer(f.model) })
        : null;
      const bar = f.json ? null : progressBar("eval");
      const t0 = performance.now();
      let result: EvaluateResult;
      try {
        result = await evaluate({
          model: f.model,
          adapters: f.adapter,
          task,
          lang: f.lang,
          examples: loaded.examples,
          split: loaded.source.split,
          dataSource: f.data,
          runner: serverRunner ?? (f.runner as RunnerKind | undefined),
          mode: f.mode,
          chatTemplate: f.chatTemplate,
          // A server gets at least --concurrency requests at a time.
          batch: server ? Math.max(batch, server.concurrency!) : batch,
          exact: f.exact,
          threads,
          gpu: f.gpu as LlamaGpu,
          bertscore,
          outDir: f.output,
          force: f.force,
          replaceForeign: f.forceReplaceForeign,
          onProgress: (done, total) => {
            const s = (performance.now() - t0) / 1000;
            bar?.update(done, total, `examples | ${(s > 0 ? done / s : 0).toFixed(2)} examples/s`);
          },
        });
      } finally {
        bar?.stop();
        await serverRunner?.close();
      }
      if (f.json) {
        const { samples: _s, cached: _c, ...report } = result;
        process.stdout.write(JSON.stringify(report, null, 2) + "\n");
      } else process.stdout.write(summary(result, f.output));
    });
}
