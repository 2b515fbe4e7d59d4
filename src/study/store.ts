/**
 * The study folder on disk:
 *
 *   OUT_DIR/study.lock.json     what produced what (DVC's dvc.lock): every step's key, inputs, outputs,
 *                               wall time, device seconds, tokens and status
 *   OUT_DIR/results.json        the metrics, costs, update and similarity the report reads
 *   OUT_DIR/steps/<key>/        one finished step's outputs + step.json (its measurements)
 *   OUT_DIR/steps/.tmp-<key>-…  a step being written (never read; removed when a run starts)
 *   OUT_DIR/.study.pid          the process running the study (one run per folder at a time)
 *
 * Crash safety: a step writes into its temp folder; step.json is written last; then the folder is renamed
 * to steps/<key> (atomic). So steps/<key> existing means the step finished, whatever was killed when.
 * The lock file is a record written after the rename (temp file + rename too); a run killed between the
 * two finds steps/<key> on resume and records it then.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { MerglotError } from "../errors.js";
import { tempPathFor } from "../fsutil.js";

export const LOCK_FILE = "study.lock.json";
export const RESULTS_FILE = "results.json";
export const STEP_RECORD = "step.json";
const PID_FILE = ".study.pid";

export type StepStatus = "done" | "running" | "failed" | "pending";

/** A finished step's measurements, stored with its outputs (steps/<key>/step.json). */
export interface StepRecord {
  id: string;
  kind: string;
  key: string;
  /** Wall-clock seconds of the step. */
  wallS: number;
  /** CPU seconds of the process that ran it (user + system). */
  cpuS: number;
  /** Seconds the step held its device (the local executor holds one device for the step's wall time). */
  deviceS: number;
  device: string;
  executor: string;
  tokens: number | null;
  info: Record<string, unknown>;
  finishedAt: string;
  /** The merglot version that computed the step (absent in records written before versions were recorded). */
  merglot?: string;
}

export interface LockStep {
  kind: string;
  key: string;
  status: StepStatus;
  /** Reused from an earlier run in the latest run. */
  cached?: boolean;
  inputs: {
    files: Record<string, { path: string; sha256: string }>;
    steps: Record<string, { step: string; key: string }>;
  };
  outputs: string[];
  wallS?: number;
  cpuS?: number;
  deviceS?: number;
  device?: string;
  tokens?: number | null;
  info?: Record<string, unknown>;
  startedAt?: string;
  finishedAt?: string;
  error?: string;
}

export interface LockFile {
  version: 1;
  study: { name: string; source: string };
  updatedAt: string;
  steps: Record<string, LockStep>;
}

export function stepDir(outDir: string, key: string): string {
  return join(outDir, "steps", key);
}

/** A fresh temp folder for a step, in steps/ so the final rename stays on one file system. */
export function stepTempDir(outDir: string, key: string): string {
  const dir = join(
    outDir,
    "steps",
    `.tmp-${key.slice(0, 16)}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  );
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function readStepRecord(outDir: string, key: string): StepRecord | null {
  const p = join(stepDir(outDir, key), STEP_RECORD);
  if (!existsSync(p)) return null;
  return JSON.parse(readFileSync(p, "utf8")) as StepRecord;
}

/** Files a finished step wrote, relative to OUT_DIR (its record excluded). */
export function stepOutputs(outDir: string, key: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name !== STEP_RECORD) out.push(relative(outDir, p));
    }
  };
  walk(stepDir(outDir, key));
  return out;
}

/**
 * Finish a step: its record goes in last, then the folder takes its final name. When another process
 * finished the same step meanwhile (same key, same outputs), ours is dropped.
 */
export function commitStep(outDir: string, tmp: string, record: StepRecord): void {
  writeFileSync(join(tmp, STEP_RECORD), JSON.stringify(record, null, 1) + "\n");
  const target = stepDir(outDir, record.key);
  if (existsSync(join(target, STEP_RECORD))) {
    rmSync(tmp, { recursive: true, force: true });
    return;
  }
  rmSync(target, { recursive: true, force: true }); // a folder without its record is not a finished step
  renameSync(tmp, target);
}

/** Temp files of the lock and results writes (`.study.lock.json.tmp-…`, `.results.json.tmp-…`). */
function isStaleTemp(name: string): boolean {
  return name.startsWith(`.${LOCK_FILE}.tmp-`) || name.startsWith(`.${RESULTS_FILE}.tmp-`);
}

/** Remove temp folders and files left by killed runs. */
export function removeStaleTemps(outDir: string): void {
  for (const name of readdirSync(outDir)) if (isStaleTemp(name)) rmSync(join(outDir, name), { force: true });
  const dir = join(outDir, "steps");
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir))
    if (name.startsWith(".tmp-")) rmSync(join(dir, name), { recursive: true, force: true });
}

export function readLock(outDir: string): LockFile | null {
  const p = join(outDir, LOCK_FILE);
  if (!existsSync(p)) return null;
  try {
    const lock = JSON.parse(readFileSync(p, "utf8")) as LockFile;
    if (lock.version !== 1 || typeof lock.steps !== "object") throw new Error("format");
    return lock;
  } catch {
    throw new MerglotError("study.lock", `${p}: not a merglot study lock file (or damaged)`);
  }
}

/** Write a JSON file atomically (temp file + rename). */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, JSON.stringify(value, null, 1) + "\n");
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function writeLock(outDir: string, lock: LockFile): void {
  lock.updatedAt = new Date().toISOString();
  writeJsonAtomic(join(outDir, LOCK_FILE), lock);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The pid of a live run in this folder, or null. */
export function runningPid(outDir: string): number | null {
  const p = join(outDir, PID_FILE);
  if (!existsSync(p)) return null;
  const pid = Number(readFileSync(p, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid) ? pid : null;
}

/**
 * Claim the folder for this run. Refuses a folder another live run uses, a folder of another study and a
 * non-empty folder that is no study folder (unless `force`). Returns the release function.
 */
export function claimStudyDir(outDir: string, studyName: string, force: boolean): () => void {
  if (existsSync(outDir)) {
    if (!statSync(outDir).isDirectory())
      throw new MerglotError("study.output", `${outDir}: exists and is not a folder`);
    const pid = runningPid(outDir);
    if (pid !== null)
      throw new MerglotError(
        "study.output",
        `${outDir}: another merglot study run (pid ${pid}) is using this folder`,
      );
    const lock = existsSync(join(outDir, LOCK_FILE)) ? readLock(outDir) : null;
    if (!force) {
      if (lock && lock.study.name !== studyName)
        throw new MerglotError(
          "study.output",
          `${outDir}: holds the study "${lock.study.name}", not "${studyName}" (use --force to reuse the folder)`,
        );
      // A run killed before its first lock write leaves only what this module creates: still a study folder.
      const foreign = readdirSync(outDir).filter((n) => n !== "steps" && n !== PID_FILE && !isStaleTemp(n));
      if (!lock && foreign.length > 0)
        throw new MerglotError(
          "study.output",
          `${outDir}: not empty and not a study folder (use --force to use it anyway)`,
        );
    }
  }
  mkdirSync(join(outDir, "steps"), { recursive: true });
  const pidFile = join(outDir, PID_FILE);
  writeFileSync(pidFile, `${process.pid}\n`);
  return () => {
    try {
      if (readFileSync(pidFile, "utf8").trim() === String(process.pid)) rmSync(pidFile, { force: true });
    } catch {
      /* already gone */
    }
  };
}
