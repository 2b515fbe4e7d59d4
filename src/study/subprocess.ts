/**
 * A user's command as a real subprocess, for the executors that run one (`command`): `/bin/sh -c LINE` in a
 * process group of its own, stdout and stderr appended to one log file, an optional time limit.
 *
 * Why a group: a training command is a tree (sh → accelerate/torchrun → one worker per GPU); killing only the
 * shell would leave the workers holding the GPUs. The group is signalled as a whole: on a time limit, on an
 * interrupting signal of merglot (SIGINT / SIGTERM / SIGHUP: through src/output's handler, which then removes
 * the step's temp folder and exits 128 + n, so the study stays resumable), when merglot exits, and after the
 * shell ends (strays it started in the background must not outlive their step). A `kill -9` of merglot
 * cannot be caught: the group then runs on, and its output goes into a temp folder the next run removes.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readSync, statSync, writeSync } from "node:fs";
import { interruptedBy, onInterrupt, registerDebris, unregisterDebris } from "../output/debris.js";

export interface SubprocessOptions {
  /** The command line (already expanded and quoted), run by /bin/sh -c. */
  command: string;
  cwd: string;
  /** Added to merglot's own environment. */
  env?: Record<string, string>;
  /** stdout + stderr go here (appended). */
  logPath: string;
  /** Seconds before the group is stopped (SIGTERM, then SIGKILL after `killGraceS`). */
  timeoutS?: number;
  killGraceS?: number;
  /** A folder to remove if merglot is interrupted while the command runs (the step's temp folder). */
  removeOnInterrupt?: string;
}

export interface SubprocessResult {
  /** Exit code, or null when a signal ended the shell. */
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  wallS: number;
}

/** Signal a process group; false when it no longer exists. */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Run the command to its end. Resolves with how it ended (never rejects for a failing command: the caller
 * decides what a non-zero exit means). If merglot is interrupted meanwhile, the promise never settles: the
 * signal handler stops the group and exits the process.
 */
export function runSubprocess(o: SubprocessOptions): Promise<SubprocessResult> {
  const t0 = performance.now();
  const fd = openSync(o.logPath, "a");
  writeSync(fd, `# merglot: ${new Date().toISOString()} in ${o.cwd}\n# $ ${o.command}\n`);
  const child = (() => {
    try {
      return spawn("/bin/sh", ["-c", o.command], {
        cwd: o.cwd,
        env: { ...process.env, ...o.env },
        detached: true,
        stdio: ["ignore", fd, fd],
      });
    } finally {
      closeSync(fd); // the child holds its own copy
    }
  })();
  const pid = child.pid;
  const grace = (o.killGraceS ?? 10) * 1000;
  let exited = false;
  const exitWaiters: (() => void)[] = [];
  const stopGroup = (): Promise<void> => {
    if (pid === undefined || exited) return Promise.resolve();
    signalGroup(pid, "SIGTERM");
    const hard = setTimeout(() => signalGroup(pid, "SIGKILL"), grace);
    return new Promise((res) =>
      exitWaiters.push(() => {
        clearTimeout(hard);
        res();
      }),
    );
  };
  // Last resort when merglot exits while the group runs (an uncaught error, process.exit elsewhere).
  const onExit = () => {
    if (pid !== undefined && !exited) signalGroup(pid, "SIGKILL");
  };
  process.on("exit", onExit);
  const unregister = onInterrupt(stopGroup);
  if (o.removeOnInterrupt) registerDebris(o.removeOnInterrupt, "tmp", o.removeOnInterrupt);

  let timedOut = false;
  const timer =
    o.timeoutS !== undefined
      ? setTimeout(() => {
          timedOut = true;
          void stopGroup();
        }, o.timeoutS * 1000)
      : null;

  return new Promise<SubprocessResult>((resolve, reject) => {
    const finish = (code: number | null, signal: string | null) => {
      exited = true;
      if (timer) clearTimeout(timer);
      // Whatever the shell left running in its group ends with the step.
      if (pid !== undefined) signalGroup(pid, "SIGKILL");
      for (const w of exitWaiters.splice(0)) w();
      if (interruptedBy() !== null) return; // the signal handler finishes the run (and removes the temp)
      process.off("exit", onExit);
      unregister();
      if (o.removeOnInterrupt) unregisterDebris(o.removeOnInterrupt);
      resolve({ code, signal, timedOut, wallS: (performance.now() - t0) / 1000 });
    };
    child.once("error", (e) => {
      exited = true;
      if (timer) clearTimeout(timer);
      process.off("exit", onExit);
      unregister();
      if (o.removeOnInterrupt) unregisterDebris(o.removeOnInterrupt);
      reject(e);
    });
    child.once("exit", finish);
  });
}

/** The last `n` lines of a log (read from its end: logs of long trainings can be large). */
export function logTail(path: string, n: number): string[] {
  let text: string;
  try {
    const size = statSync(path).size;
    const keep = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(keep);
    const fd = openSync(path, "r");
    let got = 0;
    try {
      while (got < keep) {
        const r = readSync(fd, buf, got, keep - got, size - keep + got);
        if (r === 0) break;
        got += r;
      }
    } finally {
      closeSync(fd);
    }
    text = buf.subarray(0, got).toString("utf8");
  } catch {
    return [];
  }
  // What a terminal would show: a line redrawn with \r (progress bars) keeps its last state.
  const lines = text
    .split("\n")
    .map((l) => l.slice(l.lastIndexOf("\r", l.length - 2) + 1).replace(/\r$/, ""));
  if (lines.at(-1) === "") lines.pop();
  return lines.slice(-n);
}
