/**
 * One candidate of a merge search, scored: merge its recipe into a scratch folder, evaluate the merged adapter
 * on the validation examples of every language, remove the scratch folder. The same function runs in the
 * search's own process (`--jobs 1`) and in its worker processes (worker.ts), so a candidate's scores do not
 * depend on where it ran: merges and evaluations are deterministic.
 *
 * The examples are handed in, never loaded here: the search's process loads every split it uses, so its
 * split-read log (src/data/split-log.ts) is the complete record of what the search read.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Example } from "../data/example.js";
import { MerglotError } from "../errors.js";
import { evaluate } from "../eval/evaluate.js";
import { merge } from "../merge/engine.js";
import { debrisPathFor, registerDebris, removeTree, unregisterDebris } from "../output/debris.js";
import { resolveMethod } from "../merge/methods.js";
import { loadTask, parseTask, type Task } from "../tasks/load.js";
import type { SearchSpec } from "./spec.js";

/** A language's weight or density: one number, or one per module filter (in the spec's filter order). */
export type ModelValue = number | Record<string, number>;

export interface CandidateParams {
  method: string;
  weight: Record<string, ModelValue>;
  density: Record<string, ModelValue>;
  lambda: number;
}

/**
 * As a recipe writes it: a number, or mergekit's condition list in the spec's filter order (the first match
 * wins, so the order matters; an object's own key order would put integer-like names first).
 */
function settingOf(v: ModelValue, range: SearchSpec["weight"]): number | { filter: string; value: number }[] {
  if (typeof v === "number") return v;
  const filters = typeof range === "number" ? undefined : range.filters;
  return (filters ?? Object.keys(v)).map((filter) => ({ filter, value: v[filter]! }));
}

/** The plain recipe object of a candidate (absolute model paths). */
export function recipeOf(spec: SearchSpec, p: CandidateParams): Record<string, unknown> {
  const usesDensity = resolveMethod(p.method)!.method.usesDensity;
  return {
    merge_method: p.method,
    models: spec.languages.map((l) => ({
      model: spec.adapters[l]!,
      parameters: {
        weight: settingOf(p.weight[l]!, spec.weight),
        ...(usesDensity ? { density: settingOf(p.density[l]!, spec.density) } : {}),
      },
    })),
    parameters: { lambda: p.lambda },
    seed: spec.seed,
    output: { dtype: "float32" },
  };
}

const tasks = new Map<string, Task>();
/** The spec's task, loaded once per process. */
export function taskOfSpec(spec: SearchSpec): Task {
  const key = spec.taskText ?? spec.task;
  let t = tasks.get(key);
  if (!t) {
    t = spec.taskText !== undefined ? parseTask(spec.taskText, spec.task) : loadTask(spec.task);
    tasks.set(key, t);
  }
  return t;
}

/** The objective metric of one adapter on one language's examples. */
export async function scoreAdapter(
  spec: SearchSpec,
  lang: string,
  adapter: string,
  examples: readonly Example[],
  split: string,
): Promise<number> {
  const task = taskOfSpec(spec);
  const r = await evaluate({
    model: spec.base,
    adapters: [adapter],
    task,
    lang,
    examples,
    split,
    dataSource: spec.data[lang],
    runner: "engine",
  });
  const v = r.metrics[spec.metric];
  if (v === undefined)
    throw new MerglotError(
      "search.field",
      `${spec.source}: objective.metric: task ${task.definition.task} has no metric "${spec.metric}" (it has ${Object.keys(r.metrics).join(", ")})`,
    );
  return v;
}

export interface CandidateJob {
  spec: SearchSpec;
  params: CandidateParams;
  /**
   * The folder in which the candidate's scratch folder is made. The scratch folder itself is named by the
   * process that scores (a debris name: its pid and start time), so a worker orphaned by a killed search can
   * never remove the folder of the resumed search's candidate, and the resumed search sweeps only the
   * scratch of processes that are gone.
   */
  work: string;
  /** Validation examples by language. */
  validation: Record<string, Example[]>;
}

export interface CandidateScores {
  scores: Record<string, number>;
  seconds: number;
}

export async function scoreCandidate(job: CandidateJob): Promise<CandidateScores> {
  const { spec, params } = job;
  const started = performance.now();
  const scratch = debrisPathFor(join(job.work, "candidate"), "tmp");
  registerDebris(scratch, "tmp", scratch);
  try {
    mkdirSync(scratch);
    const adapter = join(scratch, "adapter");
    await merge(recipeOf(spec, params), { output: adapter, threads: 1 });
    const scores: Record<string, number> = {};
    for (const l of spec.languages)
      scores[l] = await scoreAdapter(spec, l, adapter, job.validation[l]!, "validation");
    return { scores, seconds: Number(((performance.now() - started) / 1000).toFixed(3)) };
  } finally {
    removeTree(scratch);
    unregisterDebris(scratch);
  }
}
