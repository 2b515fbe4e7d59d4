/**
 * A worker process for study steps (`--jobs N > 1`): CPU-bound training blocks its event loop, so parallel
 * steps need processes. The parent sends one step at a time; the worker runs the local executor into the
 * step's temp folder and answers with its report (or the error); the parent renames and records. Workers
 * live for the whole run (starting Node and the kernels once, not per step). When the parent dies
 * (kill -9), the IPC channel closes and the worker stops at its next progress point instead of running on.
 */
import { isMerglotError } from "../errors.js";
import { LOCAL_EXECUTORS, type StepContext } from "./executors.js";
import type { PlannedStep } from "./plan.js";

export interface ChildJob {
  step: PlannedStep;
  ctx: Omit<StepContext, "onProgress">;
}

export type ChildMessage =
  | { type: "progress"; done: number; total: number; what: string }
  | { type: "done"; report: import("./executors.js").StepReport; cpuS: number }
  | { type: "error"; message: string; merglot: boolean; code: string };

function send(m: ChildMessage): void {
  if (!process.connected) process.exit(1); // the study run is gone: nobody will record this step
  process.send!(m);
}

process.on("disconnect", () => process.exit(0));
process.on("message", (job: ChildJob) => {
  const cpu0 = process.cpuUsage();
  let lastSent = 0;
  const ctx: StepContext = {
    ...job.ctx,
    onProgress: (done, total, what) => {
      const now = Date.now();
      if (done === total || now - lastSent > 200) {
        lastSent = now;
        send({ type: "progress", done, total, what });
      } else if (!process.connected) process.exit(1);
    },
  };
  LOCAL_EXECUTORS[job.step.kind].run(job.step, ctx).then(
    (report) => {
      const c = process.cpuUsage(cpu0);
      send({ type: "done", report, cpuS: (c.user + c.system) / 1e6 });
    },
    (e: unknown) => {
      const err = e as Error;
      send({
        type: "error",
        message: err?.message ?? String(e),
        merglot: isMerglotError(e),
        code: isMerglotError(e) ? e.code : "internal",
      });
    },
  );
});
