/**
 * Executors: what runs each kind of step. A step executor gets the step (kind, parameters), a fresh empty
 * folder to write its outputs into, the finished output folders of the steps it reads and the external
 * files it reads; it returns what it measured. It never renames, records or decides whether to run: the
 * scheduler does (run.ts), so every executor gets crash safety and caching for free.
 *
 * `local` runs every kind in this process with merglot's own library (trainer, merge engine, engine
 * runner). `command` runs a train step as the user's command (e.g. TRL + PEFT on a GPU machine; see
 * command.ts for its template, subprocess.ts for the process, check-adapter.ts for what it must write).
 * `executorsFor` is the one place that maps the study's settings (`executor`, `executors.<kind>`) to the
 * executor of each step kind. `slurm` is no StepExecutor: its steps are submitted as jobs all at once
 * (slurm/runner.ts), each job running these local executors on a compute node (step-job.ts).
 *
 * Step output layout (inside the step's folder):
 *   prepare   train.jsonl, test.jsonl (the selected canonical examples)
 *   train     adapter/ (PEFT folder + training_log.json)
 *   merge     adapter/ (PEFT folder + merge_manifest.json)
 *   evaluate  metrics.json (evaluate()'s report, timing left out), samples.jsonl (one line per example)
 *   analyse   similarity.json ({"languages","modules": {"all"|kind: n × n cosine}})
 *   search    adapter/ (the best merge), search.json (every candidate; see src/search/search.ts)
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { languageVectorSimilarity } from "../analysis/similarity.js";
import type { Example } from "../data/example.js";
import { MerglotError } from "../errors.js";
import { LoraAdapter } from "../formats/peft.js";
import { merge } from "../merge/engine.js";
import { parseRecipe } from "../merge/recipe.js";
import { loadExamples } from "../data/load.js";
import { evaluate, type MetricsReport } from "../eval/evaluate.js";
import type { LlamaGpu } from "../eval/runners/llamacpp.js";
import { chatFormatOf } from "../tasks/chat.js";
import { loaderColumns, parseTask, type Task } from "../tasks/load.js";
import { renderExample } from "../tasks/render.js";
import { searchIn } from "../search/search.js";
import type { SearchSettings, SearchSpec } from "../search/spec.js";
import { trainAdapter } from "../train/api.js";
import { taskTrainingPairs } from "../train/task-data.js";
import { TRAIN_DEFAULTS, type TrainConfig } from "../train/trainer.js";
import { checkProducedAdapter } from "./check-adapter.js";
import { expandCommand, placeholderEnv, trainCommandValues } from "./command.js";
import type { PlannedStep, StepKind } from "./plan.js";
import type { ExecutorSetting } from "./schema.js";
import { logTail, runSubprocess } from "./subprocess.js";

export interface StepContext {
  /** Empty folder for the step's outputs (a temp folder the scheduler renames when the step returns). */
  outDir: string;
  /** Output folder of each upstream step, by the name the step gives it. */
  inputs: Record<string, string>;
  /** Progress inside the step (training steps, evaluated examples). */
  onProgress?: (done: number, total: number, what: string) => void;
  /** Where executors that run other programs keep the log of a failed step (OUT_DIR/logs). */
  logsDir?: string;
}

/** What a step measured (the scheduler adds wall and CPU time). */
export interface StepReport {
  /** Tokens processed (training: every token of every batch). */
  tokens?: number;
  /** Anything else worth recording in the lock file (example counts, training loss, …). */
  info?: Record<string, unknown>;
}

export interface StepExecutor {
  run(step: PlannedStep, ctx: StepContext): Promise<StepReport>;
  /**
   * The work happens outside this process (a subprocess, a cluster): the scheduler runs it here even with
   * --jobs > 1 instead of in a worker process (which exists to keep CPU-bound work off the event loop).
   */
  external?: boolean;
}

export type Executors = Record<StepKind, StepExecutor>;

/**
 * The executor of every step kind from the study's settings (`executors.<kind>`, else `executor`; schema.ts
 * resolves and checks them). `cwd`: where user commands run (the study file's folder, against which every
 * other path of the study resolves too).
 */
export function executorsFor(settings: Record<StepKind, ExecutorSetting>, opts: { cwd: string }): Executors {
  const out = {} as Executors;
  for (const kind of Object.keys(LOCAL_EXECUTORS) as StepKind[]) {
    const s = settings[kind];
    switch (s.kind) {
      case "local":
        out[kind] = LOCAL_EXECUTORS[kind];
        break;
      case "command":
        if (kind !== "train") throw new Error(`internal: a command executor for ${kind} steps`);
        out[kind] = commandTrain(s, opts.cwd);
        break;
      case "slurm":
        // submitted as jobs by slurm/runner.ts; the job runs the local executor on a compute node
        out[kind] = LOCAL_EXECUTORS[kind];
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- prepare

function writeJsonl(path: string, rows: unknown[]): void {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
}

function readJsonl<T>(path: string): T[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as T);
}

function taskOf(step: PlannedStep): Task {
  return parseTask(step.params.task as string, step.context?.taskSource ?? step.id);
}

/** Canonical examples of one split, through the dataset loaders (the task's columns, seeded selection). */
async function load(
  task: Task,
  path: string,
  lang: string,
  split: string,
  limit: number | null,
  seed: number,
) {
  const loaded = await loadExamples({
    path,
    task: task.definition.task,
    lang,
    split,
    columns: loaderColumns(task),
    ...(limit !== null ? { limit } : {}),
    seed,
  });
  if (limit !== null && loaded.examples.length < limit)
    throw new MerglotError(
      "study.data",
      `${path}: ${loaded.examples.length} ${split} examples, but sizes.${split} asks for ${limit}`,
    );
  return loaded.examples;
}

/** The examples each language trains and is tested on, as canonical JSONL (train.jsonl, test.jsonl). */
const prepare: StepExecutor = {
  async run(step, ctx) {
    const task = taskOf(step);
    const lang = step.params.lang as string;
    const seed = step.params.seed as number;
    const sizes = step.params.sizes as { train: number | null; test: number | null };
    const train = await load(task, step.files.train!, lang, "train", sizes.train, seed);
    if (step.files.extra) train.push(...(await load(task, step.files.extra, lang, "train", null, seed)));
    const test = await load(task, step.files.test!, lang, "test", sizes.test, seed);
    // Refuse bad rows now (missing fields, a gold answer that is no label), not in the middle of training.
    for (const [rows, where] of [
      [train, step.files.train!],
      [test, step.files.test!],
    ] as const)
      for (const ex of rows) renderExample(task, ex, { lang, chat: null, where });
    writeJsonl(join(ctx.outDir, "train.jsonl"), train);
    writeJsonl(join(ctx.outDir, "test.jsonl"), test);
    return { info: { train: train.length, test: test.length } };
  },
};

// ------------------------------------------------------------------------------------------------ train

/** The examples a train step reads: its inputs' train.jsonl, in the plan's order (data0, data1, …). */
function trainExamples(ctx: StepContext): Example[] {
  const names = Object.keys(ctx.inputs)
    .filter((n) => n.startsWith("data"))
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  return names.flatMap((n) => readJsonl<Example>(join(ctx.inputs[n]!, "train.jsonl")));
}

/** Each example in its own language's prompt, through the base model's chat template (as evaluation). */
function trainPairs(step: PlannedStep, examples: Example[]) {
  return taskTrainingPairs(taskOf(step), examples, { chat: chatFormatOf(step.files.base!), where: step.id });
}

/** A LoRA adapter on the prepared examples of its inputs (several languages for `combined`). */
const trainStep: StepExecutor = {
  async run(step, ctx) {
    const { lora, train } = step.params as {
      lora: { r: number; alpha: number; targets: string[] };
      train: Partial<TrainConfig>;
    };
    const examples = trainExamples(ctx);
    const pairs = trainPairs(step, examples);
    const { log } = trainAdapter({
      baseDir: step.files.base!,
      dataPath: step.id,
      pairs,
      outDir: join(ctx.outDir, "adapter"),
      lora,
      train: { ...TRAIN_DEFAULTS, ...train },
      run: { onStep: (s, total) => ctx.onProgress?.(s.step, total, `loss ${s.loss.toFixed(4)}`) },
    });
    return {
      tokens: log.tokens,
      info: {
        examples: examples.length,
        steps: log.totalSteps,
        finalLoss: log.finalLoss,
        trainWallS: log.wallTimeS,
      },
    };
  },
};

// ------------------------------------------------------------------------------------------ train: command

/** Lines of a failed command's log shown with the error. */
const LOG_TAIL_LINES = 20;

/**
 * Where a failed step's log is kept: OUT_DIR/logs/<step id>.log (its temp folder is removed when it fails).
 * Without a logs folder (a library caller), next to the step's temp folder.
 */
function keptLogPath(step: PlannedStep, ctx: StepContext): string {
  return ctx.logsDir ? join(ctx.logsDir, `${step.id}.log`) : `${ctx.outDir}.command.log`;
}

function keepLog(log: string, step: PlannedStep, ctx: StepContext): string {
  const kept = keptLogPath(step, ctx);
  mkdirSync(dirname(kept), { recursive: true });
  copyFileSync(log, kept);
  return kept;
}

/** Tokens and final loss, where the training program records them: merglot's training_log.json, or TRL's
 *  trainer_state.json (`num_tokens`, `loss` in log_history; in the output folder or its last checkpoint). */
function trainingRecord(adapterDir: string): { tokens?: number; finalLoss?: number } {
  const own = join(adapterDir, "training_log.json");
  try {
    if (existsSync(own)) {
      const log = JSON.parse(readFileSync(own, "utf8")) as { tokens?: unknown; finalLoss?: unknown };
      return {
        ...(typeof log.tokens === "number" ? { tokens: log.tokens } : {}),
        ...(typeof log.finalLoss === "number" ? { finalLoss: log.finalLoss } : {}),
      };
    }
    const checkpoints = readdirSync(adapterDir)
      .filter((n) => /^checkpoint-\d+$/.test(n))
      .sort((a, b) => Number(a.slice(11)) - Number(b.slice(11)));
    for (const dir of [adapterDir, ...checkpoints.reverse().map((c) => join(adapterDir, c))]) {
      const p = join(dir, "trainer_state.json");
      if (!existsSync(p)) continue;
      const history = (JSON.parse(readFileSync(p, "utf8")) as { log_history?: Record<string, unknown>[] })
        .log_history;
      if (!Array.isArray(history)) return {};
      const out: { tokens?: number; finalLoss?: number } = {};
      for (const h of history) {
        if (typeof h.num_tokens === "number") out.tokens = h.num_tokens;
        if (typeof h.loss === "number") out.finalLoss = h.loss;
      }
      return out;
    }
  } catch {
    /* a record we cannot read is no reason to fail a step whose adapter passed its check */
  }
  return {};
}

/**
 * A train step as the user's command: its inputs written into the step's folder (canonical examples and
 * rendered prompt/completion pairs), the template expanded, the command run (subprocess.ts), then the adapter
 * it wrote to {output_dir} = <step>/adapter checked (check-adapter.ts) before the step counts as done.
 */
export function commandTrain(
  setting: Pick<Extract<ExecutorSetting, { kind: "command" }>, "command" | "env" | "timeout">,
  cwd: string,
): StepExecutor {
  return {
    external: true,
    async run(step, ctx) {
      const { lora } = step.params as { lora: { r: number; alpha: number; targets: string[] } };
      const examples = trainExamples(ctx);
      const pairs = trainPairs(step, examples);
      const inputs = join(ctx.outDir, "inputs");
      const pairsDir = join(inputs, "pairs");
      mkdirSync(pairsDir, { recursive: true });
      const paths = {
        trainJsonl: join(inputs, "train.jsonl"),
        trainPairsJsonl: join(pairsDir, "train.jsonl"),
        trainPairsDir: pairsDir,
        outputDir: join(ctx.outDir, "adapter"),
        stepDir: ctx.outDir,
      };
      writeJsonl(paths.trainJsonl, examples);
      writeJsonl(paths.trainPairsJsonl, pairs);
      const values = trainCommandValues(step, paths);
      const log = join(ctx.outDir, "command.log");
      ctx.onProgress?.(0, 1, "command running");
      const r = await runSubprocess({
        command: expandCommand(setting.command, values),
        cwd,
        env: { ...placeholderEnv(values), ...setting.env },
        logPath: log,
        timeoutS: setting.timeout,
        removeOnInterrupt: ctx.outDir,
      }).catch((e: unknown) => {
        // /bin/sh itself could not start (no such working folder, no /bin/sh): not the command's fault
        throw new MerglotError("study.command", `could not start /bin/sh in ${cwd}: ${(e as Error).message}`);
      });
      if (r.code !== 0 || r.timedOut) {
        const kept = keepLog(log, step, ctx);
        const how = r.timedOut
          ? `ran past its time limit of ${setting.timeout} s (executors.train.timeout) and was stopped`
          : r.signal !== null
            ? `was ended by ${r.signal}`
            : `exited with code ${r.code}`;
        const tail = logTail(kept, LOG_TAIL_LINES);
        throw new MerglotError("study.command", `the training command ${how}; its log: ${kept}`, {
          detail: `last ${tail.length} lines of the log:\n${tail.join("\n")}`,
        });
      }
      let check;
      try {
        // named as the user wrote it: the step's temp folder is gone when they read the message
        check = checkProducedAdapter(paths.outputDir, {
          base: step.files.base!,
          ...lora,
          label: "{output_dir}",
        });
      } catch (e) {
        if (!(e instanceof MerglotError)) throw e;
        const kept = keepLog(log, step, ctx);
        throw new MerglotError(e.code, `the training command succeeded but ${e.message}; its log: ${kept}`);
      }
      rmSync(keptLogPath(step, ctx), { force: true }); // a failure log of an earlier run is stale now
      const rec = trainingRecord(paths.outputDir);
      return {
        ...(rec.tokens !== undefined ? { tokens: rec.tokens } : {}),
        info: {
          examples: examples.length,
          modules: check.modules,
          commandWallS: r.wallS,
          ...(rec.finalLoss !== undefined ? { finalLoss: rec.finalLoss } : {}),
        },
      };
    },
  };
}

// ------------------------------------------------------------------------------------------------ merge

/** Upstream adapters of a merge or evaluate step, in the plan's order (adapter0, adapter1, …). */
function adapterInputs(ctx: StepContext): string[] {
  return Object.keys(ctx.inputs)
    .filter((n) => /^adapter\d+$/.test(n))
    .sort((a, b) => Number(a.slice(7)) - Number(b.slice(7)))
    .map((n) => join(ctx.inputs[n]!, "adapter"));
}

const mergeStep: StepExecutor = {
  async run(step, ctx) {
    const p = step.params as {
      method: string;
      weights: number[];
      density: number;
      seed: number;
      rank: unknown;
    };
    const models = adapterInputs(ctx).map((path, i) => ({
      model: path,
      parameters: { weight: p.weights[i]!, density: p.density },
    }));
    const recipe = parseRecipe(
      {
        merge_method: p.method,
        models,
        seed: p.seed,
        ...(p.rank !== null ? { output: { rank: p.rank } } : {}),
      },
      step.id,
      ctx.outDir,
    );
    const summary = await merge(recipe, {
      output: join(ctx.outDir, "adapter"),
      threads: 1,
      onProgress: (d, t, m) => ctx.onProgress?.(d, t, m),
    });
    return { info: { modules: summary.modules, rank: summary.rank, warnings: summary.warnings } };
  },
};

// --------------------------------------------------------------------------------------------- evaluate

/** metrics.json of an evaluate step: evaluate()'s report without its timing (which goes to the lock file). */
export type StepMetrics = Omit<MetricsReport, "seconds" | "model" | "adapters">;

const evaluateStep: StepExecutor = {
  async run(step, ctx) {
    const ev = step.params.evaluation as {
      bootstrap: number;
      seed: number;
      confidence: number;
      gpu?: LlamaGpu;
    };
    const lang = step.params.lang as string;
    const examples = readJsonl<Example>(join(ctx.inputs.data!, "test.jsonl"));
    const r = await evaluate({
      model: step.files.base!,
      adapters: adapterInputs(ctx),
      task: taskOf(step),
      lang,
      examples,
      dataSource: step.id,
      bootstrap: { samples: ev.bootstrap, seed: ev.seed, confidence: ev.confidence },
      gpu: ev.gpu,
      onProgress: (d, t) => ctx.onProgress?.(d, t, "examples"),
    });
    // Paths and seconds differ between runs of the same inputs; the step's outputs must not.
    const { samples, cached: _cached, seconds, model: _model, adapters: _adapters, ...report } = r;
    const metrics: StepMetrics = report;
    writeFileSync(join(ctx.outDir, "metrics.json"), JSON.stringify(metrics, null, 1) + "\n");
    writeJsonl(join(ctx.outDir, "samples.jsonl"), samples);
    return { tokens: r.tokens, info: { n: r.count, evalSeconds: seconds } };
  },
};

// ---------------------------------------------------------------------------------------------- analyse

/** Cosine similarity of the language vectors: all modules together, then each module kind alone. */
export function similarityByKind(paths: string[]): Record<string, number[][]> {
  const ad = LoraAdapter.open(paths[0]!);
  const kinds = [...new Set(ad.modules.map((m) => m.kind))].sort();
  ad.close();
  const n = paths.length;
  const matrix = (c: Float64Array) =>
    Array.from({ length: n }, (_, i) => Array.from(c.slice(i * n, i * n + n)));
  const out: Record<string, number[][]> = { all: matrix(languageVectorSimilarity(paths).cosine) };
  for (const kind of kinds)
    out[kind] = matrix(languageVectorSimilarity(paths, { modules: (m) => m.kind === kind }).cosine);
  return out;
}

const analyse: StepExecutor = {
  async run(step, ctx) {
    const languages = step.params.languages as string[];
    const modules = similarityByKind(adapterInputs(ctx));
    writeFileSync(
      join(ctx.outDir, "similarity.json"),
      JSON.stringify({ languages, modules }, null, 1) + "\n",
    );
    return {};
  },
};

// ----------------------------------------------------------------------------------------------- search

/**
 * The merge search of one task (src/search/): candidates scored on the validation files only; the step's
 * outputs are the best merge (adapter/) and search.json. Its candidate log lives in a folder next to the
 * step cache (`steps/.search-<key>`), not in the step's temp folder, so a killed study resumes the search
 * where it stopped instead of starting it over; the folder is removed when the search finishes.
 */
const searchStep: StepExecutor = {
  async run(step, ctx) {
    const p = step.params as {
      task: string;
      languages: string[];
      metric: string;
      settings: SearchSettings;
    };
    const adapters = adapterInputs(ctx);
    const spec: SearchSpec = {
      source: step.id,
      at: "search.",
      base: step.files.base!,
      task: step.context?.taskSource ?? step.id,
      taskText: p.task,
      languages: p.languages,
      adapters: Object.fromEntries(p.languages.map((l, i) => [l, adapters[i]!])),
      data: Object.fromEntries(p.languages.map((l) => [l, step.files[`validation_${l}`]!])),
      metric: p.metric,
      ...p.settings,
      finalTest: false,
    };
    const work = join(dirname(ctx.outDir), `.search-${step.key.slice(0, 16)}`);
    const r = await searchIn(spec, work, {
      jobs: Number(step.context?.jobs ?? 1),
      onCandidate: (done, total, best) => ctx.onProgress?.(done, total ?? done, `best ${best.toFixed(4)}`),
    });
    for (const f of ["adapter", "search.json"]) renameSync(join(work, f), join(ctx.outDir, f));
    rmSync(work, { recursive: true, force: true });
    return {
      info: { candidates: r.candidates.length, resumed: r.resumed, best: r.best.objective, metric: p.metric },
    };
  },
};

export const LOCAL_EXECUTORS: Executors = {
  prepare,
  train: trainStep,
  merge: mergeStep,
  evaluate: evaluateStep,
  analyse,
  search: searchStep,
};
