/**
 * The merge search: an optimizer (cmaes.ts) proposes merge parameters; each candidate is one merge into a
 * scratch folder plus an evaluation on the VALIDATION rows of every language; the objective is the mean of
 * the task metric over languages, minus, with `max_drop`, the total shortfall below each language's floor
 * (its own adapter's validation score − max_drop): a penalty, so infeasible candidates rank below feasible
 * ones near them. The test split is read only after the search, to score the best merge once.
 *
 * Resume: the search works in `<OUT>.partial/`, appending one JSON line per finished candidate to
 * candidates.jsonl. A restarted search with the same spec replays the optimizer from the start: every
 * proposed point whose parameters are already in the log takes its logged scores (the cache keyed by the
 * parameters), so the optimizer, being deterministic for its seed and told values, walks the same path and
 * continues where the killed run stopped. Identical parameters within a run share one evaluation the same
 * way. At the end the best merge is re-merged (merges are deterministic) and everything is renamed to OUT.
 *
 * Parallel candidates (`jobs` > 1, pool.ts): the candidates of one `ask` (a CMA-ES generation of λ points)
 * are scored at the same time on worker processes, and the optimizer is told when all of them are done, in
 * the order it proposed them; each candidate is logged as soon as it finishes (in any order: the log is keyed
 * by candidate index). So the candidates, their scores and the best are the same for every `jobs`.
 */
import { createHash } from "node:crypto";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { stringify } from "yaml";
import { loadExamples } from "../data/load.js";
import { splitReads, type SplitRead } from "../data/split-log.js";
import type { Example } from "../data/example.js";
import { MerglotError } from "../errors.js";
import { sweepDebris } from "../output/debris.js";
import { checkOutput, OWNERS, openOutput, type OutputSpec } from "../output/index.js";
import { LoraAdapter } from "../formats/peft.js";
import { merge } from "../merge/engine.js";
import { resolveMethod } from "../merge/methods.js";
import { loaderColumns } from "../tasks/load.js";
import {
  recipeOf,
  scoreAdapter,
  taskOfSpec,
  type CandidateParams,
  type CandidateScores,
  type ModelValue,
} from "./candidate.js";
import { CandidatePool } from "./pool.js";
import { Cmaes, GridSearch, RandomSearch, StartFirst, type Bounds, type Optimizer } from "./cmaes.js";
import { filtersProblem, type ParamRange, type SearchSpec } from "./spec.js";

/** One searched coordinate. */
interface Dim {
  name: string;
  param: "weight" | "density" | "lambda";
  /** The language it applies to; undefined for a global value. */
  lang?: string;
  /** The module filter it applies to (weight, density); undefined for every module. */
  filter?: string;
  min: number;
  max: number;
}

export interface CandidateRecord {
  index: number;
  method: string;
  params: CandidateParams;
  /** Validation metric per language. */
  scores: Record<string, number>;
  mean: number;
  /** mean − penalty (what the optimizer maximises). */
  objective: number;
  feasible: boolean;
  /** True when the scores came from an earlier candidate with identical parameters. */
  cached: boolean;
  seconds: number;
}

export interface SearchResult {
  out: string;
  candidates: CandidateRecord[];
  best: CandidateRecord;
  /** Validation score of each language's own adapter (the floor's reference), when max_drop is set. */
  own: Record<string, number> | null;
  test: Record<string, number> | null;
  /** Splits read before the final test evaluation began. */
  searchReads: SplitRead[];
  resumed: number;
  /** The most candidates scored at once in this run (at most --jobs). */
  parallel: number;
}

export interface SearchOptions extends SearchWorkOptions {
  output: string;
  /** Replace an existing output that is not a search's (never an input). */
  replaceForeign?: boolean;
}

/** The searched coordinates; for a method, without the density when the method uses none. */
function dimsOf(spec: SearchSpec, method?: string): Dim[] {
  const dims: Dim[] = [];
  const add = (param: Dim["param"], v: number | ParamRange) => {
    if (typeof v === "number") return;
    const langs = v.perLanguage ? spec.languages : [undefined];
    const filters = v.filters ?? [undefined];
    for (const lang of langs)
      for (const filter of filters) {
        const name = [param, lang, filter].filter((x) => x !== undefined).join(".");
        dims.push({ name, param, min: v.min, max: v.max, ...(lang && { lang }), ...(filter && { filter }) });
      }
  };
  add("weight", spec.weight);
  if (method === undefined || resolveMethod(method)!.method.usesDensity) add("density", spec.density);
  add("lambda", spec.lambda);
  return dims;
}

function paramsAt(spec: SearchSpec, dims: Dim[], method: string, x: readonly number[]): CandidateParams {
  const fixed = (v: number | ParamRange) => (typeof v === "number" ? v : NaN);
  // a method without a density is merged with the recipes' default 1 (it does not read it)
  const usesDensity = resolveMethod(method)!.method.usesDensity;
  const density = usesDensity ? fixed(spec.density) : 1;
  const p: CandidateParams = { method, weight: {}, density: {}, lambda: fixed(spec.lambda) };
  // a parameter searched per filter holds one value per filter, in the spec's order
  const perFilter = (v: number | ParamRange, dflt: number): ModelValue =>
    typeof v !== "number" && v.filters ? Object.fromEntries(v.filters.map((f) => [f, NaN])) : dflt;
  for (const l of spec.languages) {
    p.weight[l] = perFilter(spec.weight, fixed(spec.weight));
    p.density[l] = usesDensity ? perFilter(spec.density, density) : density;
  }
  dims.forEach((d, i) => {
    // 12 significant digits: a key that survives the JSON round trip of the log unchanged
    const v = Number(x[i]!.toPrecision(12));
    if (d.param === "lambda") {
      p.lambda = v;
      return;
    }
    for (const l of d.lang ? [d.lang] : spec.languages) {
      const values = p[d.param];
      if (d.filter) (values[l] as Record<string, number>)[d.filter] = v;
      else values[l] = v;
    }
  });
  return p;
}

/**
 * A parameter searched per module filter must reach every module: a module matching no filter would merge
 * with the default 1, outside the search, without anyone having asked for it.
 */
function checkFiltersCover(spec: SearchSpec): void {
  for (const [name, v] of [
    ["weight", spec.weight],
    ["density", spec.density],
  ] as const) {
    if (typeof v === "number" || !v.filters) continue;
    for (const l of spec.languages) {
      const a = LoraAdapter.open(spec.adapters[l]!);
      try {
        const problem = filtersProblem(
          v.filters,
          a.modules.map((m) => m.name),
        );
        if (problem)
          throw new MerglotError(
            "search.field",
            `${spec.source}: ${spec.at ?? ""}parameters.${name}.filters: the ${l} adapter (${spec.adapters[l]}): ${problem}`,
          );
      } finally {
        a.close();
      }
    }
  }
}

function keyOf(p: CandidateParams): string {
  return JSON.stringify(p);
}

/**
 * The optimizer of one method. Random and grid search learn nothing from scores, so they propose `jobs` points
 * per batch (the same sequence of points whatever the batch: results do not depend on --jobs) to keep every
 * worker busy; CMA-ES proposes its population.
 */
function optimizerFor(spec: SearchSpec, method: string, dims: Dim[], seed: number, jobs: number): Optimizer {
  const bounds: Bounds = { lo: dims.map((d) => d.min), hi: dims.map((d) => d.max) };
  const o = spec.optimizer;
  // the method's own start values first, then the common ones, then the range's centre
  const own = o.start?.methods?.[method];
  const start = o.start && dims.map((d) => own?.[d.param] ?? o.start![d.param] ?? (d.min + d.max) / 2);
  let opt: Optimizer;
  if (o.kind === "grid") opt = new GridSearch(bounds, o.gridPoints, jobs);
  else if (o.kind === "random") opt = new RandomSearch(bounds, seed, jobs);
  else {
    const widest = Math.max(...dims.map((d) => d.max - d.min));
    const sigma0 = o.sigma !== undefined && widest > 0 ? o.sigma * widest : undefined;
    opt = new Cmaes({ bounds, seed, lambda: o.population, x0: start, sigma0 });
  }
  return start ? new StartFirst(start, opt) : opt;
}

/** The spec fields that decide the candidates (the budget may change between a kill and a resume). */
function specKey(spec: SearchSpec): string {
  const { budget: _b, source: _s, at: _a, finalTest: _f, ...rest } = spec;
  return createHash("sha256").update(JSON.stringify(rest)).digest("hex");
}

function readLog(path: string): CandidateRecord[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, "utf8");
  // a kill during an append leaves at most one partial last line: it is dropped (and re-evaluated)
  const lines = text.split("\n");
  lines.pop();
  return lines.filter((l) => l !== "").map((l) => JSON.parse(l) as CandidateRecord);
}

export interface SearchWorkOptions {
  force?: boolean;
  /** Candidates scored in parallel (worker processes); results do not depend on it. Default 1. */
  jobs?: number;
  onProgress?: (line: string) => void;
  /** After each candidate: candidates done, the candidate budget, the best objective so far. */
  onCandidate?: (done: number, total: number | undefined, best: number) => void;
}

/** What `searchIn` leaves in its folder: best-recipe.yaml, adapter/, search.json. */
export interface SearchOutcome extends Omit<SearchResult, "out"> {
  /** search.json's content. */
  json: Record<string, unknown>;
}

/**
 * The search itself, in the folder `work` (created or resumed; its candidates.jsonl and spec-key are removed
 * when it finishes). `merglot search` runs it in `<OUT>.partial` and renames that; a study's search step runs
 * it in a folder of its own next to the step cache.
 */
export async function searchIn(
  spec: SearchSpec,
  work: string,
  opts: SearchWorkOptions = {},
): Promise<SearchOutcome> {
  const log = opts.onProgress ?? (() => undefined);
  const jobs = Math.max(1, opts.jobs ?? 1);
  const dims = dimsOf(spec);
  if (dims.length === 0)
    throw new MerglotError(
      "search.field",
      `${spec.source}: parameters: nothing to search; give weight, density or lambda a {min, max} range (min = max scores one fixed setting)`,
    );
  checkFiltersCover(spec);
  const task = taskOfSpec(spec);
  for (const l of spec.languages)
    if (!task.definition.prompts[l])
      throw new MerglotError("task.lang", `task ${task.definition.task} has no prompt for language "${l}"`);

  const key = specKey(spec);
  const keyPath = join(work, "spec-key");
  if (existsSync(work) && (!existsSync(keyPath) || readFileSync(keyPath, "utf8") !== key)) {
    if (!opts.force)
      throw new MerglotError(
        "output.exists",
        `${work}: an unfinished search of another spec is there (use --force to discard it)`,
      );
    rmSync(work, { recursive: true, force: true });
  }
  mkdirSync(work, { recursive: true });
  // the scratch folders of a killed search's processes (a worker still running keeps its own)
  sweepDebris(work);
  writeFileSync(keyPath, key);
  const logPath = join(work, "candidates.jsonl");
  const logged = new Map(readLog(logPath).map((r) => [r.index, r]));
  // rewrite without a torn last line, so later appends start on a fresh line
  writeFileSync(logPath, [...logged.values()].map((r) => JSON.stringify(r) + "\n").join(""));

  const total = spec.budget.candidates;
  const perMethod = total === undefined ? Infinity : Math.floor(total / spec.methods.length);
  if (perMethod < 1)
    throw new MerglotError(
      "search.field",
      `${spec.source}: budget.candidates: ${total} is fewer than one per method (${spec.methods.length})`,
    );

  const readsBefore = splitReads().length;
  const validation: Record<string, Example[]> = {};
  for (const l of spec.languages) {
    const loaded = await loadExamples({
      path: spec.data[l]!,
      task: task.definition.task,
      lang: l,
      split: "validation",
      limit: spec.limit,
      seed: spec.seed,
      columns: loaderColumns(task),
    });
    validation[l] = loaded.examples;
  }

  let own: Record<string, number> | null = null;
  if (spec.maxDrop !== undefined) {
    own = {};
    for (const l of spec.languages)
      own[l] = await scoreAdapter(spec, l, spec.adapters[l]!, validation[l]!, "validation");
  }
  const recordOf = (
    index: number,
    p: CandidateParams,
    r: CandidateScores,
    cached: boolean,
  ): CandidateRecord => {
    const mean = spec.languages.reduce((s, l) => s + r.scores[l]!, 0) / spec.languages.length;
    let shortfall = 0;
    if (own) for (const l of spec.languages) shortfall += Math.max(0, own[l]! - spec.maxDrop! - r.scores[l]!);
    return {
      index,
      method: p.method,
      params: p,
      scores: r.scores,
      mean,
      objective: mean - shortfall,
      feasible: shortfall === 0,
      cached,
      seconds: cached ? 0 : r.seconds,
    };
  };

  // scores by parameters: the log's, then every candidate evaluated in this run (identical parameters are
  // scored once; a duplicate waits for the first one's scores)
  const cache = new Map<string, Promise<CandidateScores>>();
  for (const r of logged.values())
    if (!r.cached) cache.set(keyOf(r.params), Promise.resolve({ scores: r.scores, seconds: r.seconds }));
  const candidates: CandidateRecord[] = [];
  let best: CandidateRecord | null = null;
  let bestSoFar: CandidateRecord | null = null; // in completion order, for the progress line
  const spentBefore = [...logged.values()].reduce((s, r) => s + r.seconds, 0);
  const t0 = performance.now();
  const elapsed = () => spentBefore + (performance.now() - t0) / 1000;
  const pool = new CandidatePool(spec, validation, work, jobs);
  let finished = 0;

  /** One candidate: its logged record, or its (possibly shared) scores, logged as soon as they are known. */
  const run = async (index: number, p: CandidateParams): Promise<CandidateRecord> => {
    const k = keyOf(p);
    const prior = logged.get(index);
    if (prior && keyOf(prior.params) !== k)
      throw new MerglotError(
        "search.resume",
        `${logPath}: candidate ${index} in the log has other parameters than the replay proposes; the log is not from this search (use --force to start over)`,
      );
    let rec: CandidateRecord;
    if (prior) rec = prior;
    else {
      const shared = cache.get(k);
      if (shared) rec = recordOf(index, p, await shared, true);
      else {
        const scored = pool.score(p);
        cache.set(k, scored);
        rec = recordOf(index, p, await scored, false);
      }
      appendFileSync(logPath, JSON.stringify(rec) + "\n");
    }
    finished++;
    if (!bestSoFar || rec.objective > bestSoFar.objective) bestSoFar = rec;
    log(
      `[${finished}${total ? `/${total}` : ""}] #${index + 1} ${p.method} ${spec.metric} ${rec.mean.toFixed(4)} objective ${rec.objective.toFixed(4)}` +
        `${prior ? " (replayed)" : rec.cached ? " (cached)" : ""} | best so far ${bestSoFar.objective.toFixed(4)} at #${bestSoFar.index + 1} | ${elapsed().toFixed(1)} s`,
    );
    opts.onCandidate?.(finished, total, bestSoFar.objective);
    return rec;
  };

  let index = 0;
  let stop = false;
  try {
    for (const [mi, method] of spec.methods.entries()) {
      const methodDims = dimsOf(spec, method);
      const opt = optimizerFor(spec, method, methodDims, spec.seed + mi, jobs);
      let used = 0;
      while (!stop && used < perMethod) {
        const batch = opt.ask();
        if (batch.length === 0) break;
        const xs = batch.slice(0, perMethod - used);
        // a generation's candidates run in parallel; the optimizer's update waits for all of them
        const running: Promise<CandidateRecord>[] = [];
        for (const x of xs) {
          const p = paramsAt(spec, methodDims, method, x);
          const needsWorker = !logged.has(index) && !cache.has(keyOf(p));
          if (needsWorker) await pool.free();
          // the time budget is checked before each start, so at least one candidate always runs
          if (spec.budget.seconds !== undefined && index > 0 && elapsed() >= spec.budget.seconds) {
            stop = true;
            break;
          }
          const r = run(index, p);
          // a failure is reported once, by the Promise.all below
          r.catch(() => undefined);
          running.push(r);
          index++;
          used++;
        }
        const recs = await Promise.all(running);
        for (const rec of recs) {
          candidates.push(rec);
          if (!best || rec.objective > best.objective) best = rec;
        }
        // a batch cut short by the budget is not told: the optimizer state is only ever advanced by whole batches
        if (recs.length < batch.length) break;
        opt.tell(
          batch,
          recs.map((r) => -r.objective),
        );
      }
      if (stop) break;
    }
  } finally {
    pool.close();
  }
  if (!best) throw new MerglotError("search.budget", `${spec.source}: the budget allowed no candidate`);
  const bestRec: CandidateRecord = best;
  const searchReads = splitReads().slice(readsBefore);

  // the best merge, re-merged deterministically, then (for merglot search) its test score
  const adapterDir = join(work, "adapter");
  rmSync(adapterDir, { recursive: true, force: true });
  await merge(recipeOf(spec, bestRec.params), { output: adapterDir, force: true, threads: 1 });
  let test: Record<string, number> | null = null;
  if (spec.finalTest) {
    test = {};
    for (const l of spec.languages) {
      const loaded = await loadExamples({
        path: spec.data[l]!,
        task: task.definition.task,
        lang: l,
        split: "test",
        columns: loaderColumns(task),
      });
      test[l] = await scoreAdapter(spec, l, adapterDir, loaded.examples, "test");
    }
  }
  const json = {
    optimizer: spec.optimizer.kind,
    seed: spec.seed,
    metric: spec.metric,
    split: "validation",
    languages: spec.languages,
    methods: spec.methods,
    dimensions: dims.map((d) => ({ name: d.name, min: d.min, max: d.max })),
    own_adapters_validation: own,
    // the loaders' record of every split the search read before any test evaluation
    split_reads: searchReads.map((r) => ({ path: r.path, split: r.split })),
    best: {
      index: bestRec.index,
      params: bestRec.params,
      scores: bestRec.scores,
      mean: bestRec.mean,
      objective: bestRec.objective,
    },
    test: test && {
      scores: test,
      mean: spec.languages.reduce((s, l) => s + test![l]!, 0) / spec.languages.length,
    },
    candidates,
  };
  writeFileSync(join(work, "search.json"), JSON.stringify(json, null, 2) + "\n");
  rmSync(keyPath);
  rmSync(logPath);
  return {
    candidates,
    best: bestRec,
    own,
    test,
    searchReads,
    resumed: logged.size,
    parallel: pool.peakBusy,
    json,
  };
}

export async function runSearch(spec: SearchSpec, opts: SearchOptions): Promise<SearchResult> {
  const out = opts.output;
  const outSpec: OutputSpec = {
    path: out,
    kind: "dir",
    inputs: [spec.source, spec.base, ...Object.values(spec.adapters), ...Object.values(spec.data)],
    owner: OWNERS.search,
    force: opts.force ?? false,
    replaceForeign: opts.replaceForeign ?? false,
  };
  checkOutput(outSpec); // before any work: a refused output costs nothing
  const work = `${out}.partial`;
  const r = await searchIn(spec, work, opts);
  const recipe = recipeOf(spec, r.best.params);
  const rel = (p: string) => relative(out, p) || ".";
  (recipe.models as { model: string }[]).forEach((m) => (m.model = rel(m.model)));
  writeFileSync(
    join(work, "best-recipe.yaml"),
    `# The best merge found by merglot search (${spec.optimizer.kind}, seed ${spec.seed}); model paths are relative to this file.\n` +
      stringify(recipe),
  );
  // the finished work folder becomes the output through the output module's atomic replacement
  const slot = openOutput(outSpec);
  try {
    rmSync(slot.temp, { recursive: true });
    renameSync(work, slot.temp);
    slot.commit();
  } catch (e) {
    throw slot.fail(e);
  }
  const { json: _json, ...rest } = r;
  return { out, ...rest };
}
