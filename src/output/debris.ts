/**
 * Temporary and trash paths: how they are named, the process-wide registry of the live ones, their removal on
 * SIGINT / SIGTERM / SIGHUP, and the sweep of what dead processes left behind (SIGKILL, power loss).
 *
 * Names (always next to the output, so that renames stay on one file system):
 *   .NAME.tmp-PID-START-RAND     a result being written
 *   .NAME.trash-PID-START-RAND   a replaced output waiting to be deleted
 * PID is the writing process, START its start time (clock ticks since boot, from /proc/PID/stat; "0" where
 * /proc does not exist), RAND a random token. A path is stale when no process PID exists, or when one exists
 * but started at another time (the PID was reused). A live process's paths are never touched.
 */
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, renameSync, rmdirSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** Start time of process `pid` as a base-36 token, or null where it cannot be read (no /proc, no process). */
export function processStartToken(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name (field 2) may hold spaces and parentheses: count fields after the last ")"
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = fields[19]; // field 22 overall: starttime
    return ticks && /^\d+$/.test(ticks) ? BigInt(ticks).toString(36) : null;
  } catch {
    return null;
  }
}

const SELF_START = processStartToken(process.pid) ?? "0";

/** Whether the process that wrote a debris name (pid + start token) is still running. */
export function isOwnerAlive(pid: number, start: string | null): boolean {
  if (pid === process.pid) return start === null || start === SELF_START;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: the process exists but belongs to someone else
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (start === null || start === "0") return true;
  const now = processStartToken(pid);
  return now === null || now === start;
}

export type DebrisKind = "tmp" | "trash";

const DEBRIS = /^\.(.+)\.(tmp|trash)-(\d+)-([0-9a-z]+)(?:-(?!peft$)([0-9a-z]+))?(?:-peft)?$/;

/** A fresh debris-style name next to `target` for this process. Not registered: see `registerDebris`. */
export function debrisPathFor(target: string, kind: DebrisKind): string {
  const rand = randomBytes(5).toString("hex");
  return join(dirname(target), `.${basename(target)}.${kind}-${process.pid}-${SELF_START}-${rand}`);
}

/**
 * Parse a debris name. The older form `.NAME.tmp-PID-TIME[-peft]` (written before the start token existed)
 * is recognised too; for it only the PID can be checked.
 */
export function parseDebrisName(
  name: string,
): { target: string; kind: DebrisKind; pid: number; start: string | null } | null {
  const m = DEBRIS.exec(name);
  if (!m) return null;
  return {
    target: m[1]!,
    kind: m[2] as DebrisKind,
    pid: Number(m[3]),
    start: m[5] === undefined ? null : m[4]!,
  };
}

/**
 * Delete a file or folder tree, reporting the first real error. (`rmSync(…, { recursive: true })` turns an
 * EPERM on an immutable file into a misleading ENOTDIR.) A missing path is not an error.
 */
export function removeTree(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  if (st.isDirectory()) {
    for (const name of readdirSync(path)) removeTree(join(path, name));
    rmdirSync(path);
  } else {
    unlinkSync(path);
  }
}

// ---- the registry of this process's live debris paths -------------------------------------------------

interface Entry {
  kind: DebrisKind;
  /** For trash: the output it was moved away from (restored on a signal when nothing took its place). */
  target: string;
}

const live = new Map<string, Entry>();
let cleanupEnabled = false;
let listening = false;

const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;
type Sig = keyof typeof SIGNALS | "SIGPIPE";
/** Exit status of a run stopped by its stdout/stderr reader going away: 128 + SIGPIPE, as a C tool would report. */
const EXIT_CODES: Record<Sig, number> = { ...SIGNALS, SIGPIPE: 13 };

/** Record a temp or trash path of this run, so that a signal removes (or restores) it. */
export function registerDebris(path: string, kind: DebrisKind, target: string): void {
  live.set(path, { kind, target });
  syncListeners();
}

/** The path is gone or committed: a signal must no longer touch it. */
export function unregisterDebris(path: string): void {
  live.delete(path);
  syncListeners();
}

/** The paths this process is writing now (for tests and diagnostics). */
export function liveDebris(): string[] {
  return [...live.keys()];
}

/**
 * Remove (or, for a trash path whose output is missing, restore) every live path of this run; returns how
 * many there were.
 */
export function cleanupLiveDebris(): number {
  const n = live.size;
  // newest first: a temp created inside another temp goes before its folder
  for (const [path, e] of [...live].reverse()) {
    try {
      if (e.kind === "trash" && !existsSync(e.target)) renameSync(path, e.target);
      else removeTree(path);
    } catch {
      /* best effort: the next run's sweep finds what is left */
    }
    live.delete(path);
  }
  syncListeners();
  return n;
}

/**
 * Let SIGINT, SIGTERM and SIGHUP remove this run's temp paths and exit with 128 + the signal's number
 * (130, 143, 129). Called once by the CLI; a library user decides for their own process.
 *
 * The handlers are installed only while a temp path is live: Node runs signal handlers between tasks, so a
 * handler installed during a long synchronous computation (training) would delay Ctrl-C until its end;
 * outside the writing phases the default action (immediate exit) applies and there is nothing to clean.
 */
export function enableSignalCleanup(onSignal?: (signal: string, removed: boolean) => void): void {
  cleanupEnabled = true;
  notify = onSignal ?? null;
  syncListeners();
}

let notify: ((signal: string, removed: boolean) => void) | null = null;
let interrupted: Sig | null = null;
const stoppers = new Set<() => Promise<unknown>>();

/** How long an interrupted run waits for its stoppers (worker threads finishing their module). */
const STOP_WAIT_MS = 30_000;

/**
 * Register work to stop before an interrupted run exits (e.g. asking worker threads to finish their current
 * module and exit: a worker killed inside native code can abort the whole process). Returns the unregister
 * function. A second signal does not wait.
 */
export function onInterrupt(stop: () => Promise<unknown>): () => void {
  stoppers.add(stop);
  syncListeners();
  return () => {
    stoppers.delete(stop);
    syncListeners();
  };
}

/** The signal that interrupted this run, if one did (errors raised while stopping are then not reported). */
export function interruptedBy(): string | null {
  return interrupted;
}

function handler(signal: Sig): void {
  // temp paths live when the signal came: the stoppers may remove them themselves while winding down
  const hadDebris = live.size > 0;
  const exit = () => {
    const removed = cleanupLiveDebris() > 0 || hadDebris;
    // a closed pipe is the reader's choice (`merglot … | head`): stop quietly, as Unix tools do
    if (signal !== "SIGPIPE") notify?.(signal, removed);
    process.exit(128 + EXIT_CODES[signal]);
  };
  if (interrupted !== null || stoppers.size === 0) {
    exit();
    return;
  }
  interrupted = signal;
  const waits = [...stoppers].map((s) => s().catch(() => undefined));
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise((res) => (timer = setTimeout(res, STOP_WAIT_MS)));
  void Promise.race([Promise.all(waits), limit]).then(() => {
    clearTimeout(timer);
    exit();
  });
}

/**
 * The reader of stdout or stderr went away (EPIPE: `merglot inspect … | head`). Node ignores SIGPIPE, so
 * without this the next write throws an unhandled stream error with a stack trace. Stop the run like an
 * interrupt (workers wound down, temp paths removed) and exit 141 without a message.
 */
export function stopOnBrokenPipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    if (interrupted === null) handler("SIGPIPE");
  });
}

function syncListeners(): void {
  // stoppers too: work outside this process (a study's Slurm jobs) must be stopped on Ctrl-C
  const want = cleanupEnabled && (live.size > 0 || stoppers.size > 0 || interrupted !== null);
  if (want === listening) return;
  listening = want;
  for (const s of Object.keys(SIGNALS) as Sig[]) {
    if (want) process.on(s, handler);
    else process.removeListener(s, handler);
  }
}

// ---- the sweep ------------------------------------------------------------------------------------------

/**
 * Remove what dead merglot processes left in `dir`: their temp paths are deleted; a trash path whose output
 * is missing (the process died between the two renames of a replacement) is renamed back, so the old output
 * returns. Returns the paths handled. Errors are ignored: sweeping is a courtesy, never a reason to fail.
 */
export function sweepDebris(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const done: string[] = [];
  // trash first, so that a restored output is not mistaken for a missing one later
  const parsed = names
    .map((n) => ({ n, p: parseDebrisName(n) }))
    .filter((x) => x.p !== null)
    .sort((a, b) => (a.p!.kind === b.p!.kind ? 0 : a.p!.kind === "trash" ? -1 : 1));
  for (const { n, p } of parsed) {
    const path = join(dir, n);
    if (live.has(path) || isOwnerAlive(p!.pid, p!.start)) continue;
    try {
      const target = join(dir, p!.target);
      if (p!.kind === "trash" && !existsSync(target)) renameSync(path, target);
      else removeTree(path);
      done.push(path);
    } catch {
      /* left for a later run */
    }
  }
  return done;
}
