/**
 * Worker-thread entry: merges the modules it is sent, one at a time, and posts back the factors
 * (transferring their buffers). Adapters are opened once per worker.
 */
import { parentPort, workerData } from "node:worker_threads";
import { isMerglotError } from "../errors.js";
import { AdapterCache, computeJob, loadJob, type ComputeSettings } from "./compute.js";
import type { PlannedModule } from "./plan.js";

const settings = workerData as ComputeSettings;
const cache = new AdapterCache(settings.models.map((m) => m.path));
const global = settings.global ? new Map(settings.global) : undefined;

parentPort!.on("message", (msg: { seq: number; module: PlannedModule } | "close") => {
  if (msg === "close") {
    cache.close();
    parentPort!.close();
    return;
  }
  try {
    const t0 = performance.now();
    const job = loadJob(msg.module, settings, cache);
    const t1 = performance.now();
    const r = computeJob(job, settings, global);
    const t2 = performance.now();
    parentPort!.postMessage(
      { seq: msg.seq, a: r.a, b: r.b, rank: r.rank, readMs: t1 - t0, computeMs: t2 - t1 },
      [r.a.buffer as ArrayBuffer, r.b.buffer as ArrayBuffer],
    );
  } catch (e) {
    const err = e as Error;
    parentPort!.postMessage({
      seq: msg.seq,
      error: { message: err.message, code: isMerglotError(e) ? e.code : null, stack: err.stack },
    });
  }
});
