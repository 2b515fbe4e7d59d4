/**
 * Worker-thread entry: merges the modules it is sent, one at a time, writing each result straight into its
 * place in the output file, and reports timings. Adapters and scratch memory live as long as the worker.
 *
 * Stopping is cooperative: the main thread never terminates a worker (terminating one while it is inside
 * onnxruntime aborts the whole process, see engine.ts). It raises the shared stop flag, which a running
 * module polls between its steps, and then sends "close"; the worker answers the modules still queued as
 * cancelled, releases its files and exits on its own.
 */
import { parentPort, workerData } from "node:worker_threads";
import { isMerglotError } from "../errors.js";
import { isFsError } from "../output/fs-errors.js";
import { MergeCancelled, ModuleMerger, type ComputeSettings, type Placement } from "./compute.js";
import type { PlannedModule } from "./plan.js";

export interface WorkerData {
  settings: ComputeSettings;
  /** Shared stop flag: element 0 is set to 1 when the merge has failed. */
  stop: Int32Array;
}

const { settings, stop } = workerData as WorkerData;
const stopped = () => Atomics.load(stop, 0) !== 0;
let merger: ModuleMerger | null = null;

parentPort!.on("message", (msg: { seq: number; module: PlannedModule; at: Placement } | "close") => {
  if (msg === "close") {
    merger?.close();
    parentPort!.close();
    // Between modules, so no native call is in flight; native thread pools would keep the thread alive, hence
    // process.exit. After a short grace: Node 20 aborts the whole process (node_platform.cc ForIsolate:
    // "(data.first) != nullptr", seen once in CI) when a worker's isolate is torn down while V8 still runs a
    // background optimizing compile for it; the jobs of a just-finished module end within milliseconds.
    setTimeout(() => process.exit(0), 30);
    return;
  }
  try {
    if (stopped()) throw new MergeCancelled();
    merger ??= new ModuleMerger(settings);
    parentPort!.postMessage({ seq: msg.seq, ...merger.run(msg.module, msg.at, stopped) });
  } catch (e) {
    if (e instanceof MergeCancelled) {
      parentPort!.postMessage({ seq: msg.seq, cancelled: true });
      return;
    }
    const err = e as Error;
    parentPort!.postMessage({
      seq: msg.seq,
      error: {
        message: err.message,
        code: isMerglotError(e) ? e.code : null,
        stack: err.stack,
        // a file-system error (disk full, read-only) keeps its errno fields, so the CLI can name the output
        fs: isFsError(e) ? { code: e.code, path: e.path, syscall: e.syscall } : null,
      },
    });
  }
});
