/**
 * Slurm's client commands (sbatch, squeue, scontrol, scancel) as functions: run with a time limit, their
 * failures turned into one clear MerglotError (command missing, controller unreachable, rejected job).
 * sacct is never used: it needs slurmdbd, which many clusters (and the test cluster) do not run. A finished
 * job stays visible to `scontrol show job` for MinJobAge seconds (default 300), which is all we need.
 */
import { execFile } from "node:child_process";
import { MerglotError } from "../../errors.js";
import { escapeControl } from "../../escape.js";

/** How long one client command may take (a busy controller answers in seconds). */
const COMMAND_TIMEOUT_MS = 60_000;

export interface QueuedJob {
  /** `123` or `123_4` (one line per array task: squeue -r). */
  id: string;
  /** The unique numeric id of the job (of the array task, for arrays). */
  jobId: string;
  state: string;
  reason: string;
}

export interface FinishedJob {
  /** The unique numeric id (of the array task, for arrays). */
  jobId: string;
  state: string;
  reason: string;
  /** `exit:signal` as scontrol prints it. */
  exitCode: string;
}

/** Run one client command; resolves with its stdout. */
export function slurmCommand(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
        if (e.code === "ENOENT")
          return reject(
            new MerglotError(
              "study.slurm",
              `${cmd}: command not found: the slurm executor needs Slurm's client commands (sbatch, squeue, scontrol, scancel) on PATH`,
            ),
          );
        if (e.killed)
          return reject(
            new MerglotError(
              "study.slurm",
              `${cmd} did not answer within ${COMMAND_TIMEOUT_MS / 1000} s: is the Slurm controller (slurmctld) reachable?`,
            ),
          );
        const lines = stderr
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => l !== "");
        const last = lines.length ? lines[lines.length - 1]! : `exit code ${String(e.code)}`;
        reject(new MerglotError("study.slurm", `${cmd} failed: ${escapeControl(last)}`));
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Submit a batch script (a file); resolves with the job id. */
export async function sbatch(script: string, extraArgs: string[] = []): Promise<string> {
  const out = await slurmCommand("sbatch", ["--parsable", ...extraArgs, script]);
  // --parsable prints "ID" or "ID;CLUSTER"
  const id = out.trim().split(";")[0]!;
  if (!/^\d+$/.test(id))
    throw new MerglotError(
      "study.slurm",
      `sbatch ${script}: unexpected answer "${escapeControl(out.trim())}"`,
    );
  return id;
}

/** This user's jobs that Slurm still holds as queued or running (array tasks one by one). */
export async function squeue(): Promise<Map<string, QueuedJob>> {
  const out = await slurmCommand("squeue", ["--me", "-h", "-r", "-o", "%i|%A|%T|%r"]);
  const jobs = new Map<string, QueuedJob>();
  for (const line of out.split("\n")) {
    const [id, jobId, state, reason] = line.trim().split("|");
    if (!id || !jobId || !state) continue;
    const job = { id, jobId, state, reason: reason ?? "" };
    jobs.set(id, job);
    jobs.set(jobId, job); // an array task can be asked for by either name
  }
  return jobs;
}

/** How a job ended, from the controller's memory; null when it no longer knows the job. */
export async function showJob(id: string): Promise<FinishedJob | null> {
  let out: string;
  try {
    out = await slurmCommand("scontrol", ["-o", "show", "job", id]);
  } catch (e) {
    if (e instanceof MerglotError && /invalid job id/i.test(e.message)) return null;
    throw e;
  }
  const field = (name: string) => new RegExp(`(?:^|\\s)${name}=(\\S*)`).exec(out)?.[1] ?? "";
  return {
    jobId: field("JobId"),
    state: field("JobState"),
    reason: field("Reason"),
    exitCode: field("ExitCode"),
  };
}

/** Cancel jobs (array tasks as `123_4`); a job that already ended is no error. */
export async function scancel(ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await slurmCommand("scancel", ids);
}
