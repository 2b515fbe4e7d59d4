/**
 * The merge engine: plans, streams one module at a time across all input adapters (in parallel over worker
 * threads), writes the output adapter in module order and commits it atomically with its manifest.
 * Memory is bounded by (threads + window) modules in flight, never by the adapters' size.
 */
import { createHash } from "node:crypto";
import { createReadStream, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { MerglotError } from "../errors.js";
import { AdapterWriter, factorNames } from "../formats/peft.js";
import { convertAdapterToGguf } from "../formats/convert.js";
import { ensureWritable, tempPathFor } from "../fsutil.js";
import { releaseScratch } from "../tensor/workspace.js";
import { VERSION } from "../version.js";
import type { GlobalThresholds } from "./binder.js";
import { AdapterCache, ModuleMerger, type ComputeSettings, type Placement } from "./compute.js";
import { globalThresholds } from "./global-density.js";
import { planMerge, type MergePlan, type PlannedModule } from "./plan.js";
import { loadRecipe, parseRecipe, type Recipe } from "./recipe.js";

export interface MergeOptions {
  /** Output folder; overrides the recipe's `output.path`. */
  output?: string;
  force?: boolean;
  /** Worker threads (default: available cores; 1 = in process). */
  threads?: number;
  allowBaseMismatch?: boolean;
  /** Called after each module is written. */
  onProgress?: (done: number, total: number, module: string) => void;
}

export interface MergeSummary {
  output: string;
  method: string;
  space: string;
  modules: number;
  adapters: number;
  rank: { min: number; max: number };
  dtype: string;
  warnings: string[];
  timings: Record<string, number>;
}

const GGUF_DTYPES = { float32: "F32", float16: "F16", bfloat16: "BF16" } as const;

/** Below this many task-tensor entries in total, the default is a single in-process thread. */
const SMALL_MERGE_ENTRIES = 4_000_000;

interface ModuleResult {
  readMs: number;
  computeMs: number;
  writeMs: number;
}

function settingsOf(
  recipe: Recipe,
  global?: GlobalThresholds,
  output?: ComputeSettings["output"],
): ComputeSettings {
  return {
    methodName: recipe.methodName,
    space: recipe.space,
    seed: recipe.seed,
    rescale: recipe.rescale,
    lambda: recipe.lambda,
    signMethod: recipe.signMethod,
    methodParams: recipe.methodParams,
    models: recipe.models,
    global: global ? [...global] : undefined,
    output,
  };
}

async function sha256(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Runs modules on worker threads; results are handed back in module order through `consume`. */
async function runParallel(
  modules: PlannedModule[],
  placements: Placement[],
  settings: ComputeSettings,
  threads: number,
  consume: (i: number, r: ModuleResult) => void,
): Promise<void> {
  const workerUrl = new URL("./worker.js", import.meta.url);
  const workers = Array.from({ length: threads }, () => new Worker(workerUrl, { workerData: settings }));
  const pending = new Map<number, ModuleResult>();
  const window = threads * 2;
  let nextToSend = 0;
  let nextToWrite = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const send = (w: Worker) => {
        if (failed) return;
        if (nextToSend >= modules.length || nextToSend - nextToWrite >= window) {
          idle.push(w);
          return;
        }
        const seq = nextToSend++;
        w.postMessage({ seq, module: modules[seq], at: placements[seq] });
      };
      const idle: Worker[] = [];
      for (const w of workers) {
        w.on("error", (e) => {
          failed = true;
          reject(e);
        });
        w.on(
          "message",
          (
            msg: {
              seq: number;
              error?: { message: string; code: string | null; stack?: string };
            } & ModuleResult,
          ) => {
            if (failed) return;
            if (msg.error) {
              failed = true;
              const e = msg.error.code
                ? new MerglotError(msg.error.code, msg.error.message)
                : new Error(msg.error.message);
              if (msg.error.stack) e.stack = msg.error.stack;
              reject(e);
              return;
            }
            pending.set(msg.seq, msg);
            try {
              while (pending.has(nextToWrite)) {
                const r = pending.get(nextToWrite)!;
                pending.delete(nextToWrite);
                consume(nextToWrite, r);
                nextToWrite++;
              }
            } catch (e) {
              failed = true;
              reject(e);
              return;
            }
            if (nextToWrite === modules.length) {
              resolve();
              return;
            }
            send(w);
            while (idle.length && nextToSend < modules.length && nextToSend - nextToWrite < window)
              send(idle.shift()!);
          },
        );
        send(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Merge as a recipe says. `recipe` may be a path to a YAML file, a parsed Recipe or a plain recipe object. */
export async function merge(
  recipe: Recipe | string | Record<string, unknown>,
  opts: MergeOptions = {},
): Promise<MergeSummary> {
  const t0 = performance.now();
  const r: Recipe =
    typeof recipe === "string"
      ? loadRecipe(recipe)
      : "method" in recipe && "source" in recipe
        ? (recipe as Recipe)
        : parseRecipe(recipe, "<recipe>", process.cwd());
  const output = opts.output ?? r.output.path;
  if (!output)
    throw new MerglotError("merge.output", `${r.source}: no output path: pass -o OUT_DIR or set output.path`);
  const force = opts.force ?? false;
  ensureWritable(output, force);
  const gguf = r.output.format === "gguf";
  // A GGUF output is converted from a PEFT folder merged beside it, which is removed afterwards.
  const peftDir = gguf ? tempPathFor(output) + "-peft" : output;
  const plan: MergePlan = planMerge(r, { allowBaseMismatch: opts.allowBaseMismatch });
  // Small merges run in process by default: starting workers (and their native GEMM) costs more than they save.
  const work = plan.modules.reduce((s, m) => s + m.out * m.in * m.participants.length, 0);
  const auto = work < SMALL_MERGE_ENTRIES ? 1 : availableParallelism();
  const threads = Math.max(1, Math.min(opts.threads ?? auto, plan.modules.length));
  const hashes = Promise.all(plan.adapters.map((a) => sha256(a.weightsPath)));
  hashes.catch(() => undefined); // awaited below; a failed merge must not leave an unhandled rejection
  const tPlan = performance.now();

  let global: GlobalThresholds | undefined;
  const baseSettings = settingsOf(r);
  if (
    r.densityScope === "global" &&
    r.method.usesDensity &&
    r.method.name !== "dare_linear" &&
    r.method.name !== "dare_ties"
  ) {
    const cache = new AdapterCache(r.models.map((m) => m.path));
    try {
      global = globalThresholds(plan.modules, baseSettings, cache);
    } finally {
      cache.close();
    }
  }
  const tGlobal = performance.now();
  // Each module's result is written by the thread that computed it, at its planned place in the file;
  // the main thread only records completion in module order (so finish() still proves every tensor landed).
  const writer = new AdapterWriter(peftDir, plan.config, plan.specs, gguf || force);
  const layout = writer.weightsLayout();
  const position = new Map(layout.tensors.map((t) => [t.name, t.position]));
  const placements: Placement[] = plan.modules.map((m) => {
    const n = factorNames(m.name);
    return { aPos: position.get(n.a)!, bPos: position.get(n.b)! };
  });
  const settings = settingsOf(r, global, { path: layout.path, dtype: plan.dtype });
  let readMs = 0;
  let computeMs = 0;
  let writeMs = 0;
  const consume = (i: number, res: ModuleResult) => {
    const m = plan.modules[i]!;
    const names = factorNames(m.name);
    writer.markWritten(names.a);
    writer.markWritten(names.b);
    readMs += res.readMs;
    computeMs += res.computeMs;
    writeMs += res.writeMs;
    opts.onProgress?.(i + 1, plan.modules.length, m.name);
  };
  try {
    if (threads === 1) {
      const merger = new ModuleMerger(settings);
      try {
        plan.modules.forEach((m, i) => consume(i, merger.run(m, placements[i]!)));
      } finally {
        merger.close();
        releaseScratch(); // in process, scratch would otherwise outlive the merge
      }
    } else {
      await runParallel(plan.modules, placements, settings, threads, consume);
    }
    const tMerge = performance.now();
    const inputHashes = await hashes;
    const tHash = performance.now();
    const timings = {
      plan_ms: round(tPlan - t0),
      global_threshold_ms: round(tGlobal - tPlan),
      merge_ms: round(tMerge - tGlobal),
      read_ms_total_over_threads: round(readMs),
      compute_ms_total_over_threads: round(computeMs),
      write_ms_total_over_threads: round(writeMs),
      hash_wait_ms: round(tHash - tMerge),
    };
    const ranks = plan.modules.map((m) => m.targetRank);
    const manifest = {
      tool: "merglot",
      version: VERSION,
      recipe: r.raw,
      resolved: {
        merge_method: r.methodName,
        space: r.space,
        density_scope: r.densityScope,
        sign_method: r.signMethod,
        rescale: r.rescale,
        lambda: r.lambda,
        seed: r.seed,
        models: r.models,
      },
      inputs: plan.adapters.map((a, i) => ({
        path: a.path,
        sha256: inputHashes[i],
        base_model: a.baseModel,
      })),
      output: {
        dtype: plan.dtype,
        modules: plan.modules.length,
        rank_min: Math.min(...ranks),
        rank_max: Math.max(...ranks),
      },
      warnings: [...plan.warnings, ...r.unused.map((u) => `parameter "${u}" is not used by ${r.methodName}`)],
      threads,
      timings,
    };
    const manifestText = JSON.stringify(manifest, null, 2) + "\n";
    writer.addFile("merge_manifest.json", manifestText);
    writer.finish();
    if (gguf) {
      try {
        convertAdapterToGguf(peftDir, output, {
          base: r.output.base ?? undefined,
          dtype: r.output.dtype ? GGUF_DTYPES[r.output.dtype] : "F32",
          force,
        });
        writeFileSync(`${output}.merge_manifest.json`, manifestText);
      } finally {
        rmSync(peftDir, { recursive: true, force: true });
      }
    }
    return {
      output,
      method: r.methodName,
      space: r.space,
      modules: plan.modules.length,
      adapters: plan.adapters.length,
      rank: { min: Math.min(...ranks), max: Math.max(...ranks) },
      dtype: plan.dtype,
      warnings: manifest.warnings,
      timings: { ...timings, total_ms: round(performance.now() - t0) },
    };
  } catch (e) {
    writer.abort();
    throw e;
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
