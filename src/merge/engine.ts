/**
 * The merge engine: plans, streams one module at a time across all input adapters (in parallel over worker
 * threads), writes the output adapter in module order and commits it atomically with its manifest.
 * Memory is bounded by (threads + window) modules in flight, never by the adapters' size.
 */
import { rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { MerglotError } from "../errors.js";
import { AdapterWriter, factorNames } from "../formats/peft.js";
import { convertAdapterToGguf } from "../formats/convert.js";
import { tempPathFor } from "../fsutil.js";
import { onInterrupt, unregisterDebris } from "../output/debris.js";
import { checkFreeSpace } from "../output/guard.js";
import { OWNERS } from "../output/owners.js";
import { checkOutput, openOutput, writeOutputFile, type OutputSpec } from "../output/slot.js";
import { releaseScratch } from "../tensor/workspace.js";
import { VERSION } from "../version.js";
import type { GlobalThresholds } from "./binder.js";
import { AdapterCache, ModuleMerger, type ComputeSettings, type Placement } from "./compute.js";
import {
  closeWeights,
  ggufBaseFor,
  openWeights,
  sameContentWarnings,
  samePathWarnings,
} from "./preflight.js";
import type { WorkerData } from "./worker.js";
import { globalThresholds } from "./global-density.js";
import { hashAll } from "./hashing.js";
import { planMerge, type MergePlan, type PlannedModule } from "./plan.js";
import { loadRecipe, parseRecipe, usesGlobalThresholds, type Recipe } from "./recipe.js";

export interface MergeOptions {
  /** Output folder; overrides the recipe's `output.path`. */
  output?: string;
  /** Replace an existing output that a merge wrote (it holds merge_manifest.json, or is a GGUF file). */
  force?: boolean;
  /** Replace an existing output even when merglot did not write it (never an input, see src/output). */
  replaceForeign?: boolean;
  /** Worker threads (default: available cores; 1 = in process). */
  threads?: number;
  allowBaseMismatch?: boolean;
  /** Called after each module is written. */
  onProgress?: (done: number, total: number, module: string) => void;
  /**
   * Stops the merge when aborted (e.g. from a SIGINT handler): workers finish their current step and exit
   * on their own, the temp output is removed, and the merge rejects with a MerglotError "merge.interrupted".
   * A caller must use this instead of exiting the process, which would terminate workers inside
   * onnxruntime (see runParallel). Merges on one thread see it between modules.
   */
  signal?: AbortSignal;
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

function interrupted(): MerglotError {
  return new MerglotError("merge.interrupted", "merge interrupted: nothing was written");
}

type WorkerReply = {
  seq: number;
  cancelled?: true;
  error?: {
    message: string;
    code: string | null;
    stack?: string;
    /** A file-system error's errno fields, so the output slot can name the user's path. */
    fs?: { code?: string; path?: string; syscall?: string } | null;
  };
} & ModuleResult;

function replyError(error: NonNullable<WorkerReply["error"]>): Error {
  const e = error.code
    ? new MerglotError(error.code, error.message)
    : Object.assign(new Error(error.message), error.fs ?? {});
  if (error.stack) e.stack = error.stack;
  return e;
}

/**
 * Runs modules on worker threads; results are handed back in module order through `consume`.
 *
 * On the first failure (a module's error, a worker's crash, or `consume` throwing) nothing more is sent,
 * the shared stop flag is raised so that running modules give up at their next step, and every worker is
 * asked to close and awaited until it has exited on its own; only then is the first error rethrown.
 * Workers are never terminated: `Worker.terminate()` while a worker is inside onnxruntime's synchronous
 * run makes the addon throw a C++ `Napi::Error` that nothing catches, which aborts the whole process
 * (exit 134), losing the real message and leaving the temp output behind.
 */
async function runParallel(
  modules: PlannedModule[],
  placements: Placement[],
  settings: ComputeSettings,
  threads: number,
  consume: (i: number, r: ModuleResult) => void,
  stop: Int32Array,
  signal?: AbortSignal,
): Promise<void> {
  const workerUrl = new URL("./worker.js", import.meta.url);
  const data: WorkerData = { settings, stop };
  const workers = Array.from({ length: threads }, () => new Worker(workerUrl, { workerData: data }));
  const exited = workers.map((w) => new Promise<void>((resolve) => w.once("exit", () => resolve())));
  const pending = new Map<number, ModuleResult>();
  const window = threads * 2;
  let nextToSend = 0;
  let nextToWrite = 0;
  let closing = false;
  const cleanups: (() => void)[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        Atomics.store(stop, 0, 1);
        reject(e);
      };
      const onAbort = () => fail(interrupted());
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      cleanups.push(() => signal?.removeEventListener("abort", onAbort));
      const idle: Worker[] = [];
      const send = (w: Worker) => {
        if (failed) return;
        if (nextToSend >= modules.length || nextToSend - nextToWrite >= window) {
          idle.push(w);
          return;
        }
        const seq = nextToSend++;
        w.postMessage({ seq, module: modules[seq], at: placements[seq] });
      };
      for (const w of workers) {
        w.on("error", fail);
        w.once("exit", (code) => {
          if (!closing) fail(new Error(`a merge worker stopped unexpectedly (exit code ${code})`));
        });
        w.on("message", (msg: WorkerReply) => {
          if (failed || msg.cancelled) return;
          if (msg.error) return fail(replyError(msg.error));
          pending.set(msg.seq, msg);
          try {
            while (pending.has(nextToWrite)) {
              const r = pending.get(nextToWrite)!;
              pending.delete(nextToWrite);
              consume(nextToWrite, r);
              nextToWrite++;
            }
          } catch (e) {
            return fail(e);
          }
          if (nextToWrite === modules.length) {
            resolve();
            return;
          }
          send(w);
          while (idle.length && nextToSend < modules.length && nextToSend - nextToWrite < window)
            send(idle.shift()!);
        });
        send(w);
      }
    });
  } finally {
    // Queued after any module a worker still holds: each one finishes (or abandons) it, then exits.
    closing = true;
    for (const c of cleanups) c();
    for (const w of workers) w.postMessage("close");
    await Promise.all(exited);
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
  const gguf = r.output.format === "gguf";
  const outSpec: OutputSpec = {
    path: output,
    kind: gguf ? "file" : "dir",
    inputs: [r.source, ...r.models.map((m) => m.path), ...(r.output.base ? [r.output.base] : [])],
    owner: gguf ? OWNERS.mergeGguf : OWNERS.merge,
    force,
    replaceForeign: opts.replaceForeign,
  };
  checkOutput(outSpec); // before any work: a refused output costs nothing
  // Every input's header, shapes and sizes are validated here, before any tensor data is read or hashed.
  const plan: MergePlan = planMerge(r, { allowBaseMismatch: opts.allowBaseMismatch });
  const ggufBase = gguf ? ggufBaseFor(r, plan) : undefined;
  // Small merges run in process by default: starting workers (and their native GEMM) costs more than they save.
  const work = plan.modules.reduce((s, m) => s + m.out * m.in * m.participants.length, 0);
  const auto = work < SMALL_MERGE_ENTRIES ? 1 : availableParallelism();
  const threads = Math.max(1, Math.min(opts.threads ?? auto, plan.modules.length));
  // One shared handle per input for every thread (and one per worker would multiply them).
  const fds = openWeights(plan);
  const stopHashing = new AbortController();
  const hashes = hashAll(
    plan.adapters.map((a) => a.weightsPath),
    stopHashing.signal,
  );
  hashes.catch(() => undefined); // awaited below; a failed merge must not leave an unhandled rejection
  const tPlan = performance.now();
  // SIGINT/SIGTERM/SIGHUP (through src/output) and the caller's signal stop the merge the same way: workers
  // finish their step and exit on their own; the process exits only once the merge has wound down.
  const stopMerge = new AbortController();
  const onCallerAbort = () => stopMerge.abort();
  if (opts.signal?.aborted) stopMerge.abort();
  opts.signal?.addEventListener("abort", onCallerAbort, { once: true });
  let wound: () => void = () => undefined;
  const woundDown = new Promise<void>((res) => (wound = res));
  const unregisterInterrupt = onInterrupt(() => {
    stopMerge.abort();
    return woundDown;
  });
  let writer: AdapterWriter | undefined;
  // A GGUF output is converted from a PEFT folder merged into a temp path beside it, removed afterwards.
  let peftDir: string | null = null;
  try {
    let global: GlobalThresholds | undefined;
    const baseSettings = settingsOf(r);
    if (r.densityScope === "global" && usesGlobalThresholds(r.method)) {
      const cache = new AdapterCache(
        r.models.map((m) => m.path),
        fds,
      );
      try {
        global = globalThresholds(plan.modules, baseSettings, cache);
      } finally {
        cache.close();
      }
    }
    const tGlobal = performance.now();
    // Each module's result is written by the thread that computed it, at its planned place in the file;
    // the main thread only records completion in module order (so finish() still proves every tensor landed).
    peftDir = gguf ? tempPathFor(output) : null;
    writer = new AdapterWriter(peftDir ?? openOutput(outSpec), plan.config, plan.specs);
    const w = writer;
    const layout = writer.weightsLayout();
    const last = layout.tensors[layout.tensors.length - 1];
    checkFreeSpace(output, (last ? last.position + last.bytes : 0) * (gguf ? 2 : 1));
    const position = new Map(layout.tensors.map((t) => [t.name, t.position]));
    const placements: Placement[] = plan.modules.map((m) => {
      const n = factorNames(m.name);
      return { aPos: position.get(n.a)!, bPos: position.get(n.b)! };
    });
    const settings = settingsOf(r, global, { path: layout.path, dtype: plan.dtype, display: output });
    settings.weightsFds = fds;
    let readMs = 0;
    let computeMs = 0;
    let writeMs = 0;
    const consume = (i: number, res: ModuleResult) => {
      const m = plan.modules[i]!;
      const names = factorNames(m.name);
      w.markWritten(names.a);
      w.markWritten(names.b);
      readMs += res.readMs;
      computeMs += res.computeMs;
      writeMs += res.writeMs;
      opts.onProgress?.(i + 1, plan.modules.length, m.name);
    };
    if (threads === 1) {
      const merger = new ModuleMerger(settings);
      try {
        plan.modules.forEach((m, i) => {
          if (stopMerge.signal.aborted) throw interrupted();
          consume(i, merger.run(m, placements[i]!));
        });
      } finally {
        merger.close();
        releaseScratch(); // in process, scratch would otherwise outlive the merge
      }
    } else {
      const stop = new Int32Array(new SharedArrayBuffer(4));
      await runParallel(plan.modules, placements, settings, threads, consume, stop, stopMerge.signal);
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
        rank_min: ranks.reduce((x, y) => Math.min(x, y)),
        rank_max: ranks.reduce((x, y) => Math.max(x, y)),
      },
      warnings: [
        ...plan.warnings,
        ...samePathWarnings(plan),
        ...sameContentWarnings(plan, inputHashes),
        ...r.unused.map((u) => `parameter "${u}" is not used by ${r.methodName}`),
      ],
      threads,
      timings,
    };
    const manifestText = JSON.stringify(manifest, null, 2) + "\n";
    writer.addFile("merge_manifest.json", manifestText);
    writer.finish();
    if (peftDir) {
      try {
        convertAdapterToGguf(peftDir, output, {
          base: ggufBase,
          dtype: r.output.dtype ? GGUF_DTYPES[r.output.dtype] : "F32",
          force,
          replaceForeign: opts.replaceForeign,
          inputs: outSpec.inputs,
        });
        writeOutputFile(
          { ...outSpec, path: `${output}.merge_manifest.json`, owner: OWNERS.mergeManifestFile },
          manifestText,
        );
      } finally {
        rmSync(peftDir, { recursive: true, force: true });
        unregisterDebris(peftDir);
      }
    }
    return {
      output,
      method: r.methodName,
      space: r.space,
      modules: plan.modules.length,
      adapters: plan.adapters.length,
      rank: { min: manifest.output.rank_min, max: manifest.output.rank_max },
      dtype: plan.dtype,
      warnings: manifest.warnings,
      timings: { ...timings, total_ms: round(performance.now() - t0) },
    };
  } catch (e) {
    stopHashing.abort();
    if (peftDir) rmSync(peftDir, { recursive: true, force: true });
    throw writer ? writer.fail(e) : e;
  } finally {
    closeWeights(fds);
    opts.signal?.removeEventListener("abort", onCallerAbort);
    unregisterInterrupt();
    wound();
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
