/**
 * Executors: what runs each kind of step. A step executor gets the step (kind, parameters), a fresh empty
 * folder to write its outputs into, the finished output folders of the steps it reads and the external
 * files it reads; it returns what it measured. It never renames, records or decides whether to run: the
 * scheduler does (run.ts), so every executor gets crash safety and caching for free.
 *
 * `local` runs every kind in this process with merglot's own library (trainer, merge engine, engine
 * runner). The extension point for `command` (a user's training command, e.g. TRL + PEFT, that writes a
 * PEFT folder) and `slurm` (job arrays) is `executorsFor`: they replace `train` (and possibly `evaluate`)
 * and keep the rest.
 *
 * Step output layout (inside the step's folder):
 *   prepare   train.jsonl ({"prompt","completion"} per line), test.jsonl (canonical examples)
 *   train     adapter/ (PEFT folder + training_log.json)
 *   merge     adapter/ (PEFT folder + merge_manifest.json)
 *   evaluate  metrics.json ({"metrics","ci","n"}), samples.jsonl (one line per test example)
 *   analyse   similarity.json ({"languages","modules": {"all"|kind: n × n cosine}})
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { languageVectorSimilarity } from "../analysis/similarity.js";
import type { Example } from "../data/example.js";
import { MerglotError } from "../errors.js";
import { LoraAdapter } from "../formats/peft.js";
import { merge } from "../merge/engine.js";
import { parseRecipe } from "../merge/recipe.js";
import { bootstrapMean, bootstrapStatistic } from "../eval/metrics/bootstrap.js";
import { classificationReport } from "../eval/metrics/classification.js";
import { rouge } from "../eval/metrics/rouge/rouge.js";
import { EngineRunner } from "../eval/runners/engine.js";
import { trainAdapter } from "../train/api.js";
import { TRAIN_DEFAULTS, type TrainConfig } from "../train/trainer.js";
import type { PlannedStep, StepKind } from "./plan.js";
import { renderExample, type TaskDef } from "./tasks.js";

export interface StepContext {
  /** Empty folder for the step's outputs (a temp folder the scheduler renames when the step returns). */
  outDir: string;
  /** Output folder of each upstream step, by the name the step gives it. */
  inputs: Record<string, string>;
  /** Progress inside the step (training steps, evaluated examples). */
  onProgress?: (done: number, total: number, what: string) => void;
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
}

export type Executors = Record<StepKind, StepExecutor>;

export interface ExecutorSettings {
  kind: "local";
  device: string;
}

/** The executors for a study's `executor` setting. */
export function executorsFor(settings: ExecutorSettings): Executors {
  switch (settings.kind) {
    case "local":
      return LOCAL_EXECUTORS;
  }
}

// ---------------------------------------------------------------------------------------------- prepare

/**
 * Canonical example JSONL (src/data/example.ts): one object per line with an id. Interim reader until the
 * dataset loaders (src/data) land; errors name the file and line.
 */
export function readExamples(path: string, lang: string): Example[] {
  const out: Example[] = [];
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (line.trim() === "") return;
      let o: unknown;
      try {
        o = JSON.parse(line);
      } catch {
        throw new MerglotError("study.data", `${path}:${i + 1}: invalid JSON`);
      }
      if (o === null || typeof o !== "object" || Array.isArray(o))
        throw new MerglotError("study.data", `${path}:${i + 1}: expected a JSON object`);
      const ex = o as Record<string, unknown>;
      if (ex.lang !== undefined && ex.lang !== lang)
        throw new MerglotError(
          "study.data",
          `${path}:${i + 1}: example of language ${JSON.stringify(ex.lang)} in the data of "${lang}"`,
        );
      const id = typeof ex.id === "string" || typeof ex.id === "number" ? String(ex.id) : `${lang}-${i}`;
      out.push({ ...ex, id, lang });
    });
  if (out.length === 0) throw new MerglotError("study.data", `${path}: no examples`);
  return out;
}

function take(examples: Example[], n: number | null, path: string, field: string): Example[] {
  if (n === null) return examples;
  if (examples.length < n)
    throw new MerglotError(
      "study.data",
      `${path}: ${examples.length} examples, but sizes.${field} asks for ${n}`,
    );
  return examples.slice(0, n);
}

function writeJsonl(path: string, rows: unknown[]): void {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
}

const prepare: StepExecutor = {
  async run(step, ctx) {
    const task = step.params.task as TaskDef;
    const lang = step.params.lang as string;
    const sizes = step.params.sizes as { train: number | null; test: number | null };
    const train = take(readExamples(step.files.train!, lang), sizes.train, step.files.train!, "train");
    if (step.files.extra) train.push(...readExamples(step.files.extra, lang));
    const test = take(readExamples(step.files.test!, lang), sizes.test, step.files.test!, "test");
    writeJsonl(
      join(ctx.outDir, "train.jsonl"),
      train.map((ex) => renderExample(task, ex, step.files.train!)),
    );
    for (const ex of test) renderExample(task, ex, step.files.test!); // refuse bad gold answers now
    writeJsonl(join(ctx.outDir, "test.jsonl"), test);
    return { info: { train: train.length, test: test.length } };
  },
};

// ------------------------------------------------------------------------------------------------ train

const trainStep: StepExecutor = {
  async run(step, ctx) {
    const { lora, train } = step.params as {
      lora: { r: number; alpha: number; targets: string[] };
      train: Partial<TrainConfig>;
    };
    // Training data: the prepared prompt/completion files of the step's inputs, in the plan's order.
    const names = Object.keys(ctx.inputs)
      .filter((n) => n.startsWith("data"))
      .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
    const dataPath = join(ctx.outDir, "train.jsonl");
    writeFileSync(
      dataPath,
      names.map((n) => readFileSync(join(ctx.inputs[n]!, "train.jsonl"), "utf8")).join(""),
    );
    try {
      const { log } = trainAdapter({
        baseDir: step.files.base!,
        dataPath,
        outDir: join(ctx.outDir, "adapter"),
        lora,
        train: { ...TRAIN_DEFAULTS, ...train },
        run: { onStep: (s, total) => ctx.onProgress?.(s.step, total, `loss ${s.loss.toFixed(4)}`) },
      });
      return {
        tokens: log.tokens,
        info: { steps: log.totalSteps, finalLoss: log.finalLoss, trainWallS: log.wallTimeS },
      };
    } finally {
      rmSync(dataPath, { force: true });
    }
  },
};

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

export interface EvalMetrics {
  n: number;
  metrics: Record<string, number>;
  ci: Record<string, { low: number; high: number; confidence: number }>;
}

async function evaluateChoice(
  runner: EngineRunner,
  task: TaskDef,
  test: Example[],
  where: string,
  opts: { samples: number; seed: number; confidence: number },
  ctx: StepContext,
): Promise<{ metrics: EvalMetrics; samples: unknown[] }> {
  const choices = task.choices!;
  const preds: string[] = [];
  const golds: string[] = [];
  const samples: unknown[] = [];
  for (let i = 0; i < test.length; i++) {
    const ex = test[i]!;
    const { prompt, completion } = renderExample(task, ex, where);
    const scores = await runner.logProbs(choices.map((c) => ({ prompt, continuation: c })));
    let best = 0;
    for (let c = 1; c < choices.length; c++) if (scores[c]!.logProb > scores[best]!.logProb) best = c;
    preds.push(choices[best]!.trim());
    golds.push(completion.trim());
    samples.push({
      id: ex.id,
      prediction: choices[best]!.trim(),
      gold: completion.trim(),
      logprobs: scores.map((s) => s.logProb),
    });
    ctx.onProgress?.(i + 1, test.length, "examples");
  }
  const labels = choices.map((c) => c.trim());
  const correct = preds.map((p, i) => (p === golds[i] ? 1 : 0));
  const bopts = { samples: opts.samples, seed: opts.seed, confidence: opts.confidence };
  const acc = bootstrapMean(correct, bopts);
  const f1 = bootstrapStatistic(
    test.length,
    (idx) => {
      const p = Array.from(idx, (k) => preds[k]!);
      const g = Array.from(idx, (k) => golds[k]!);
      return classificationReport(p, g, { labels }).macro.f;
    },
    bopts,
  );
  return {
    metrics: {
      n: test.length,
      metrics: { accuracy: acc.value, macro_f1: f1.value },
      ci: {
        accuracy: { low: acc.low, high: acc.high, confidence: acc.confidence },
        macro_f1: { low: f1.low, high: f1.high, confidence: f1.confidence },
      },
    },
    samples,
  };
}

async function evaluateGenerate(
  runner: EngineRunner,
  task: TaskDef,
  test: Example[],
  lang: string,
  where: string,
  opts: { samples: number; seed: number; confidence: number },
  ctx: StepContext,
): Promise<{ metrics: EvalMetrics; samples: unknown[] }> {
  const rendered = test.map((ex) => renderExample(task, ex, where));
  const outs: string[] = [];
  for (let i = 0; i < rendered.length; i++) {
    const [g] = await runner.generate([
      { prompt: rendered[i]!.prompt, maxTokens: task.max_tokens ?? 64, stop: ["\n"] },
    ]);
    outs.push(g!.text.trim());
    ctx.onProgress?.(i + 1, test.length, "examples");
  }
  const golds = rendered.map((r) => r.completion.trim());
  const r = await rouge(outs, golds, { lang, types: ["rougeL"], bootstrap: opts });
  const f = r.scores.rougeL!.fmeasure;
  return {
    metrics: {
      n: test.length,
      metrics: { rougeL: f.value },
      ci: { rougeL: { low: f.low, high: f.high, confidence: f.confidence } },
    },
    samples: test.map((ex, i) => ({
      id: ex.id,
      prediction: outs[i],
      gold: golds[i],
      rougeL: r.perItem[i]!.rougeL!.fmeasure,
    })),
  };
}

const evaluateStep: StepExecutor = {
  async run(step, ctx) {
    const task = step.params.task as TaskDef;
    const ev = step.params.evaluation as { bootstrap: number; seed: number; confidence: number };
    const lang = step.result!.lang;
    const testPath = join(ctx.inputs.data!, "test.jsonl");
    const test = readFileSync(testPath, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as Example);
    const runner = await EngineRunner.open({
      model: step.files.base!,
      adapters: adapterInputs(ctx).map((path) => ({ path })),
    });
    const opts = { samples: ev.bootstrap, seed: ev.seed, confidence: ev.confidence };
    try {
      const { metrics, samples } =
        task.type === "choice"
          ? await evaluateChoice(runner, task, test, step.id, opts, ctx)
          : await evaluateGenerate(runner, task, test, lang, step.id, opts, ctx);
      writeFileSync(join(ctx.outDir, "metrics.json"), JSON.stringify(metrics, null, 1) + "\n");
      writeJsonl(join(ctx.outDir, "samples.jsonl"), samples);
      return { info: { n: metrics.n } };
    } finally {
      await runner.close();
    }
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

export const LOCAL_EXECUTORS: Executors = {
  prepare,
  train: trainStep,
  merge: mergeStep,
  evaluate: evaluateStep,
  analyse,
};
