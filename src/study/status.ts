/**
 * `merglot study status OUT_DIR`: the lock file read back — steps done, running, failed and to do, with the
 * times recorded. A step the lock says is running while no run holds the folder was interrupted (killed);
 * the next `study run` does it again. A finished output folder is the truth (store.ts), so a step whose
 * folder exists counts as done even if the run died before recording it.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MerglotError } from "../errors.js";
import { VERSION } from "../version.js";
import { readLock, runningPid, STEP_RECORD, stepDir, type StepRecord } from "./store.js";

/** The version a step record names; "unrecorded" for older records (and for one that cannot be read). */
function versionOf(recordPath: string): string {
  try {
    return (JSON.parse(readFileSync(recordPath, "utf8")) as StepRecord).merglot ?? "unrecorded";
  } catch {
    return "unrecorded";
  }
}

export interface StatusStep {
  id: string;
  /** Its step folder is steps/<key>. */
  key: string;
  kind: string;
  status: "done" | "running" | "interrupted" | "failed" | "to do";
  wallS: number | null;
  deviceS: number | null;
  /** The merglot version that computed a finished step; "unrecorded" for records older than the field. */
  merglot: string | null;
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
  /** This merglot's version, and how many finished steps other versions computed (by version). */
  version: string;
  otherVersions: Record<string, number>;
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
    const recordPath = join(stepDir(outDir, e.key), STEP_RECORD);
    const finished = existsSync(recordPath);
    let status: StatusStep["status"];
    if (finished) status = "done";
    else if (e.status === "running") status = pid !== null ? "running" : "interrupted";
    else if (e.status === "failed") status = "failed";
    else status = "to do";
    return {
      id,
      key: e.key,
      kind: e.kind,
      status,
      wallS: finished ? (e.wallS ?? null) : null,
      deviceS: finished ? (e.deviceS ?? null) : null,
      merglot: finished ? versionOf(recordPath) : null,
      ...(e.error && status === "failed" ? { error: e.error } : {}),
    };
  });
  const counts = { done: 0, running: 0, interrupted: 0, failed: 0, "to do": 0 };
  for (const s of steps) counts[s.status]++;
  const otherVersions: Record<string, number> = {};
  for (const s of steps)
    if (s.merglot !== null && s.merglot !== VERSION)
      otherVersions[s.merglot] = (otherVersions[s.merglot] ?? 0) + 1;
  return {
    study: lock.study.name,
    outDir,
    runningPid: pid,
    counts,
    steps,
    wallS: steps.reduce((a, s) => a + (s.wallS ?? 0), 0),
    deviceS: steps.reduce((a, s) => a + (s.deviceS ?? 0), 0),
    version: VERSION,
    otherVersions,
  };
}
