/**
 * Worker-thread entry: merges the modules it is sent, one at a time, writing each result straight into its
 * place in the output file, and reports timings. Adapters and scratch memory live as long as the worker.
 */
import { parentPort, workerData } from "node:worker_threads";
import { isMerglotError } from "../errors.js";
import { isFsError } from "../output/fs-errors.js";
import { ModuleMerger, type ComputeSettings, type Placement } from "./compute.js";
import type { PlannedModule } from "./plan.js";

const merger = new ModuleMerger(workerData as ComputeSettings);

parentPort!.on("message", (msg: { seq: number; module: PlannedModule; at: Placement } | "close") => {
  if (msg === "close") {
    merger.close();
    parentPort!.close();
    // between modules, so no native call is in flight; native thread pools would keep the thread alive
    process.exit(0);
  }
  try {
    parentPort!.postMessage({ seq: msg.seq, ...merger.run(msg.module, msg.at) });
  } catch (e) {
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
