/**
 * Evaluation: canonical examples + a task + a model → per-example samples and the task's metrics.
 *
 * Every example is rendered (src/tasks/render.ts, the same function training uses) and checked before the
 * model is loaded, so bad data fails fast and nothing is written. Multiple-choice tasks score each choice's
 * continuation log-probability (or, with mode "generate", parse a greedy answer); generation tasks decode
 * greedily within the task's token budget and stop strings. Requests go to the runner `batch` examples at
 * a time.
 *
 * With `outDir`, the results are written atomically (a temp folder renamed into place) as metrics.json and
 * samples.jsonl, with a content key of everything that determines them (model files, adapters, task file,
 * examples, runner settings). A re-run whose key matches the folder's returns the stored results at once;
 * any other existing folder is refused unless `force`.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Example } from "../data/example.js";
import { MerglotError } from "../errors.js";
import { checkOutput, OWNERS, openOutput, type OutputSpec } from "../output/index.js";
import { parseChoice, splitItems } from "../tasks/answers.js";
import { chatFormatOf } from "../tasks/chat.js";
import { loadTask, type Task } from "../tasks/load.js";
import { renderExample, type RenderedExample } from "../tasks/render.js";
import { VERSION } from "../version.js";
import { hashPaths } from "./content-hash.js";
import type { EmbeddingProvider } from "./metrics/bertscore/provider.js";
import type { BootstrapOptions } from "./metrics/bootstrap.js";
import { openRunner, runnerKindFor, type RunnerKind } from "./open-runner.js";
import type { LlamaGpu } from "./runners/llamacpp.js";
import type { EvalRunner } from "./runners/runner.js";
import { choiceMetrics, textMetrics, type ChoiceOutcome, type TextOutcome } from "./task-metrics.js";

export interface EvaluateOptions {
  /** Base model: HF folder (engine) or GGUF file (llama.cpp). */
  model: string;
  /** PEFT adapter folders applied on top of the base (scale 1 each). */
  adapters?: readonly string[];
  /** A loaded task, or a built-in task name / task YAML path. */
  task: Task | string;
  /** Language of the prompts (a key of the task's prompts). */
  lang: string;
  /** Canonical examples (src/data/example.ts), already sampled / limited. */
  examples: readonly Example[];
  /** Recorded in metrics.json. Default "test". */
  split?: string;
  /** Where the examples came from, for error messages. */
  dataSource?: string;
  /**
   * A runner kind (opened and closed here) or an open runner (used as is, left open): a token runner or a
   * serving engine's client (ServerRunner, whose `name` names the server, model and adapter).
   */
  runner?: RunnerKind | EvalRunner;
  /** Multiple-choice tasks: "score" (default) or "generate" (parse a generated answer). */
  mode?: "score" | "generate";
  /** Apply the model's chat template when it has one. Default true. */
  chatTemplate?: boolean;
  /** Examples per runner call (and parallel llama.cpp sequences). Default 8. */
  batch?: number;
  /** llama.cpp parity mode. Default false. */
  exact?: boolean;
  threads?: number;
  /** llama.cpp backend: "off" (CPU, the default), "auto", "cuda" or "vulkan". */
  gpu?: LlamaGpu;
  /** Embeddings for bertscore_f1 (left out without them). */
  bertscore?: EmbeddingProvider;
  bootstrap?: BootstrapOptions;
  /** Write metrics.json and samples.jsonl here (atomically; cached by content). */
  outDir?: string;
  /** Replace an existing outDir whose results are not for these inputs. */
  force?: boolean;
  /** Replace an existing outDir that is not an evaluation's output (never an input). */
  replaceForeign?: boolean;
  /** Cache folder for converted LoRA GGUFs. */
  cacheDir?: string;
  onProgress?: (done: number, total: number) => void;
}

/** metrics.json. */
export interface MetricsReport {
  task: string;
  lang: string;
  split: string;
  count: number;
  model: string;
  adapters: string[];
  runner: string;
  /** "score" or "generate" (multiple-choice tasks), "generate" (generation tasks). */
  mode: "score" | "generate";
  metrics: Record<string, number>;
  ci: Record<string, [number, number]>;
  /** Generated answers that named no choice (counted as wrong); present in generate mode of choice tasks. */
  parse_failures?: number;
  seconds: number;
  /** Tokens the model processed: prompts (BOS included), scored continuations and generated tokens. */
  tokens: number;
}

/** One line of samples.jsonl. */
export interface Sample {
  id: string;
  /** The exact model input text, after the chat template (the runner adds BOS when the model wants it). */
  prompt: string;
  gold: string;
  /** The predicted label / choice, or the generated answer; null for an unparsable generated choice. */
  prediction: string | null;
  /** Scored choices: each continuation string exactly as scored and its log-probability. */
  choices?: { text: string; logprob: number }[];
  /** Generated text, as the model wrote it (stop string cut off). */
  generation?: string;
  parse_error?: boolean;
  /** Extraction: the items read from the generation. */
  items?: string[];
  [metric: string]: unknown;
}

export interface EvaluateResult extends MetricsReport {
  samples: Sample[];
  /** True when the results came from outDir's cache. */
  cached: boolean;
}

const KEY_FILE = ".merglot-eval-key";

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1)
    throw new MerglotError("eval.option", `${name} must be a positive integer, got ${v}`);
  return v;
}

/** The content key of an evaluation: everything its results depend on. */
function cacheKey(o: EvaluateOptions, task: Task, runnerId: string, mode: string, chat: boolean): string {
  const h = createHash("sha256");
  const part = (name: string, value: string) => h.update(`${name}\0${value}\0`);
  part("merglot", VERSION);
  part("model", hashPaths([o.model]));
  for (const a of o.adapters ?? []) part("adapter", hashPaths([a]));
  part("task", task.text);
  part("lang", o.lang);
  part("split", o.split ?? "test");
  part("runner", runnerId);
  part("exact", String(o.exact ?? false));
  // A GPU's arithmetic differs from the CPU's; the CPU (the default) adds nothing, so older keys still hold.
  if ((o.gpu ?? "off") !== "off") part("gpu", o.gpu!);
  part("mode", mode);
  part("chat", String(chat));
  part("bertscore", o.bertscore?.name ?? "");
  part("bootstrap", JSON.stringify(o.bootstrap ?? {}));
  for (const ex of o.examples) part("row", JSON.stringify(ex));
  return h.digest("hex");
}

function readCached(outDir: string, key: string): EvaluateResult | null {
  const keyPath = join(outDir, KEY_FILE);
  if (!existsSync(keyPath) || readFileSync(keyPath, "utf8").trim() !== key) return null;
  try {
    const report = JSON.parse(readFileSync(join(outDir, "metrics.json"), "utf8")) as MetricsReport;
    const samples = readFileSync(join(outDir, "samples.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Sample);
    return { ...report, samples, cached: true };
  } catch {
    return null;
  }
}

/** Evaluate a model (+ adapters) on a task's examples. */
export async function evaluate(o: EvaluateOptions): Promise<EvaluateResult> {
  const task = typeof o.task === "string" ? loadTask(o.task) : o.task;
  const def = task.definition;
  const batch = positiveInt("batch", o.batch ?? 8);
  if (o.examples.length === 0)
    throw new MerglotError("eval.empty", `${o.dataSource ?? "data"}: no examples to evaluate`);
  const mode: "score" | "generate" = def.output_type === "generate_until" ? "generate" : (o.mode ?? "score");
  if (mode === "generate" && !def.generation)
    throw new MerglotError(
      "eval.mode",
      `task ${def.task} has no generation settings, so it cannot run in generate mode`,
    );
  const own = typeof o.runner === "object" ? o.runner : null;
  if (own?.cannotScore && def.output_type === "multiple_choice" && mode === "score") {
    const generate = def.generation ? `, or --mode generate (task ${def.task} has generation settings)` : "";
    throw new MerglotError(
      "eval.runner",
      `task ${def.task} is scored by the log-probabilities of its choices, which ${own.cannotScore}; ` +
        `use the llamacpp or engine runner (--runner llamacpp|engine)${generate}`,
    );
  }
  const kind = own ? null : runnerKindFor(o.model, o.runner as RunnerKind | undefined);
  if (kind === "engine" && (o.gpu ?? "off") !== "off")
    throw new MerglotError(
      "eval.option",
      `gpu ${o.gpu} applies to the llama.cpp runner (a GGUF model); the engine runs on the CPU`,
    );
  const chat = o.chatTemplate === false ? null : chatFormatOf(o.model);
  const render = (c: typeof chat) =>
    o.examples.map((ex) => renderExample(task, ex, { lang: o.lang, chat: c, where: o.dataSource }));
  let rendered = render(chat);
  const seen = new Set<string>();
  for (const r of rendered) {
    if (seen.has(r.id))
      throw new MerglotError("data.id", `${o.dataSource ?? "data"}: example id "${r.id}" occurs twice`);
    seen.add(r.id);
  }
  const runnerId = own ? own.name : kind!;
  let key = "";
  if (o.outDir) {
    key = cacheKey(o, task, runnerId, mode, chat !== null);
    const hit = readCached(o.outDir, key);
    if (hit) return hit;
    checkOutput(outputSpec(o, o.outDir));
  }
  const started = performance.now();
  const runner =
    own ??
    (await openRunner({
      model: o.model,
      adapters: o.adapters,
      runner: kind!,
      exact: o.exact,
      threads: o.threads,
      gpu: o.gpu,
      sequences: batch,
      cacheDir: o.cacheDir,
    }));
  // The runner is the authority on BOS: if it disagrees with what the model files said, render again so that
  // BOS is still never doubled (nor dropped).
  if (chat && chat.addsBos !== (runner.bos !== null)) {
    rendered = render({ ...chat, addsBos: runner.bos !== null });
  }
  let out: {
    samples: Sample[];
    metrics: Record<string, number>;
    ci: Record<string, [number, number]>;
    tokens: number;
    parseFailures?: number;
  };
  try {
    out =
      def.output_type === "multiple_choice"
        ? await runChoices(task, rendered, runner, mode, batch, o)
        : await runGeneration(task, rendered, runner, batch, o);
  } finally {
    if (!own) await runner.close();
  }
  const report: MetricsReport = {
    task: def.task,
    lang: o.lang,
    split: o.split ?? "test",
    count: rendered.length,
    model: o.model,
    adapters: [...(o.adapters ?? [])],
    runner: runnerId,
    mode,
    metrics: out.metrics,
    ci: out.ci,
    ...(out.parseFailures !== undefined ? { parse_failures: out.parseFailures } : {}),
    seconds: Math.round((performance.now() - started) / 10) / 100,
    tokens: out.tokens,
  };
  if (o.outDir) writeOutputs(outputSpec(o, o.outDir), report, out.samples, key);
  return { ...report, samples: out.samples, cached: false };
}

/** The policy for an evaluation's output folder: its own results may be replaced with `force`. */
function outputSpec(o: EvaluateOptions, outDir: string): OutputSpec {
  return {
    path: outDir,
    kind: "dir",
    inputs: [o.model, ...(o.adapters ?? [])],
    owner: OWNERS.eval,
    force: o.force ?? false,
    replaceForeign: o.replaceForeign ?? false,
  };
}

function writeOutputs(spec: OutputSpec, report: MetricsReport, samples: Sample[], key: string): void {
  const slot = openOutput(spec);
  try {
    writeFileSync(join(slot.temp, "metrics.json"), JSON.stringify(report, null, 2) + "\n");
    writeFileSync(join(slot.temp, "samples.jsonl"), samples.map((s) => JSON.stringify(s)).join("\n") + "\n");
    writeFileSync(join(slot.temp, KEY_FILE), key + "\n");
    slot.commit();
  } catch (e) {
    throw slot.fail(e);
  }
}

async function inBatches<T>(
  items: readonly T[],
  batch: number,
  o: EvaluateOptions,
  work: (chunk: readonly T[]) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < items.length; i += batch) {
    await work(items.slice(i, i + batch));
    o.onProgress?.(Math.min(items.length, i + batch), items.length);
  }
}

async function runChoices(
  task: Task,
  rendered: readonly RenderedExample[],
  runner: EvalRunner,
  mode: "score" | "generate",
  batch: number,
  o: EvaluateOptions,
) {
  const def = task.definition;
  const outcomes: ChoiceOutcome[] = [];
  const samples: Sample[] = [];
  let tokens = 0;
  let parseFailures = 0;
  await inBatches(rendered, batch, o, async (chunk) => {
    if (mode === "score") {
      const requests = chunk.flatMap((r) =>
        r.continuations!.map((c) => ({ prompt: r.prompt, continuation: c })),
      );
      const scores = await runner.logProbs(requests);
      let k = 0;
      for (const r of chunk) {
        const logprobs = r.continuations!.map(() => scores[k++]!.logProb);
        const conts = scores.slice(k - logprobs.length, k);
        tokens += conts[0]!.promptTokens + conts.reduce((a, s) => a + s.tokens.length, 0);
        let best = 0;
        for (let i = 1; i < logprobs.length; i++) if (logprobs[i]! > logprobs[best]!) best = i;
        outcomes.push({ goldIndex: r.goldIndex!, predicted: best, logprobs, choices: r.choices! });
        samples.push({
          id: r.id,
          prompt: r.prompt,
          gold: r.gold,
          prediction: def.labels ? def.labels[best]! : r.choices![best]!,
          choices: r.continuations!.map((text, i) => ({ text, logprob: logprobs[i]! })),
        });
      }
    } else {
      const gens = await runner.generate(
        chunk.map((r) => ({
          prompt: r.prompt,
          maxTokens: def.generation!.max_tokens,
          stop: def.generation!.stop,
        })),
      );
      chunk.forEach((r, i) => {
        const g = gens[i]!;
        tokens += g.promptTokens + g.tokens.length;
        const predicted = parseChoice(g.text, r.choices!, def.labels);
        if (predicted === null) parseFailures++;
        outcomes.push({ goldIndex: r.goldIndex!, predicted, choices: r.choices! });
        samples.push({
          id: r.id,
          prompt: r.prompt,
          gold: r.gold,
          prediction:
            predicted === null ? null : def.labels ? def.labels[predicted]! : r.choices![predicted]!,
          generation: g.text,
          parse_error: predicted === null,
        });
      });
    }
  });
  const m = choiceMetrics(def, outcomes, { lang: o.lang, bootstrap: o.bootstrap });
  samples.forEach((s, i) => Object.assign(s, m.perExample[i]));
  return {
    samples,
    metrics: m.metrics,
    ci: m.ci,
    tokens,
    ...(mode === "generate" ? { parseFailures } : {}),
  };
}

async function runGeneration(
  task: Task,
  rendered: readonly RenderedExample[],
  runner: EvalRunner,
  batch: number,
  o: EvaluateOptions,
) {
  const def = task.definition;
  const outcomes: TextOutcome[] = [];
  const samples: Sample[] = [];
  let tokens = 0;
  const extraction = def.doc_to_source !== undefined;
  await inBatches(rendered, batch, o, async (chunk) => {
    const gens = await runner.generate(
      chunk.map((r) => ({
        prompt: r.prompt,
        maxTokens: def.generation!.max_tokens,
        stop: def.generation!.stop,
      })),
    );
    chunk.forEach((r, i) => {
      const g = gens[i]!;
      tokens += g.promptTokens + g.tokens.length;
      const prediction = g.text.trim();
      const outcome: TextOutcome = { prediction, reference: r.gold };
      const sample: Sample = { id: r.id, prompt: r.prompt, gold: r.gold, prediction, generation: g.text };
      if (extraction) {
        outcome.source = r.source;
        outcome.items = splitItems(g.text);
        outcome.referenceItems = r.referenceItems;
        sample.items = outcome.items;
      }
      outcomes.push(outcome);
      samples.push(sample);
    });
  });
  const m = await textMetrics(def, outcomes, {
    lang: o.lang,
    bootstrap: o.bootstrap,
    bertscore: o.bertscore,
  });
  samples.forEach((s, i) => Object.assign(s, m.perExample[i]));
  return { samples, metrics: m.metrics, ci: m.ci, tokens };
}
