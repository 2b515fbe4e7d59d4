/**
 * `merglot study status OUT_DIR`: the lock file read back — steps done, running, failed and to do, with the
 * times recorded. A step the lock says is running while no run holds the folder was interrupted (killed);
 * the next `study run` does it again. A finished output folder is the truth (store.ts), so a step whose
 * folder exists counts as done even if the run died before recording it.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { MerglotError } from "../errors.js";
import { readLock, runningPid, STEP_RECORD, stepDir } from "./store.js";

export interface StatusStep {
  id: string;
  kind: string;
  status: "done" | "running" | "interrupted" | "failed" | "to do";
  wallS: number | null;
  deviceS: number | null;
  error?: string;
}

export interface StudyStatus {
  study: string;
  outDir: string;
  runningPid: number | null;
  counts: Record<StatusStep["status"], number>;
  steps: StatusStep[];
  /** Σ recorded wall and device seconds of the finished steps. */
  wallS: number;
  deviceS: number;
}

export function studyStatus(outDir: string): StudyStatus {
  const lock = readLock(outDir);
  if (!lock)
    throw new MerglotError(
      "study.status",
      `${outDir}: no study.lock.json (not a study folder, or never run)`,
    );
  const pid = runningPid(outDir);
  const steps: StatusStep[] = Object.entries(lock.steps).map(([id, e]) => {
    const finished = existsSync(join(stepDir(outDir, e.key), STEP_RECORD));
    let status: StatusStep["status"];
    if (finished) status = "done";
    else if (e.status === "running") status = pid !== null ? "running" : "interrupted";
    else if (e.status === "failed") status = "failed";
    else status = "to do";
    return {
      id,
      kind: e.kind,
      status,
      wallS: finished ? (e.wallS ?? null) : null,
      deviceS: finished ? (e.deviceS ?? null) : null,
      ...(e.error && status === "failed" ? { error: e.error } : {}),
    };
  });
  const counts = { done: 0, running: 0, interrupted: 0, failed: 0, "to do": 0 };
  for (const s of steps) counts[s.status]++;
  return {
    study: lock.study.name,
    outDir,
    runningPid: pid,
    counts,
    steps,
    wallS: steps.reduce((a, s) => a + (s.wallS ?? 0), 0),
    deviceS: steps.reduce((a, s) => a + (s.deviceS ?? 0), 0),
  };
}
