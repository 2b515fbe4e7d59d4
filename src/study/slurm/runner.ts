/**
 * The study's Slurm steps: submitted as jobs, watched, and handed back to the scheduler (run.ts) as finished
 * step records. Everything a job writes goes through `merglot study step` (step-job.ts), so a step is done
 * exactly when steps/<key>/step.json exists: the runner never writes a step's outputs.
 *
 *   OUT_DIR/slurm/jobs.json          step key → job id (`123`, or `123_4` for a task of an array), log, script
 *   OUT_DIR/slurm/scripts/NAME.sh    the sbatch script of each submission (readable, resubmittable)
 *   OUT_DIR/slurm/specs/KEY.json     what the job runs (the planned step and its input folders)
 *   OUT_DIR/slurm/logs/NAME-ID.log   the job's stdout and stderr
 *   OUT_DIR/slurm/tmp/JOBID-KEY/     a step being written by a job (renamed to steps/KEY when done)
 *   OUT_DIR/slurm/probe/             the shared-file-system check's marker and reply
 *
 * Submission: the trainings of a task (same base model) form one job array; every other step is one job;
 * a job waits for the jobs of the steps it reads (--dependency=afterok); steps already done are neither
 * submitted nor waited for. A step whose job is still queued or running (jobs.json + squeue) is re-attached,
 * never submitted twice. State: the step's output first, then squeue (queued or running), then
 * `scontrol show job` (how it ended). sacct is not needed.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MerglotError } from "../../errors.js";
import { escapeControl } from "../../escape.js";
import { onInterrupt } from "../../output/debris.js";
import type { PlannedStep, StepKind } from "../plan.js";
import { executorOf, type SlurmSettings, type Study } from "../schema.js";
import type { StepSpec } from "../step-job.js";
import { readStepRecord, stepDir, writeJsonAtomic, type StepRecord } from "../store.js";
import { sbatch, scancel, showJob, squeue, type FinishedJob, type QueuedJob } from "./client.js";
import { renderJobScript, renderProbeScript } from "./script.js";

/** A step not run because a step it reads failed (not a failure of its own). */
export class SkippedStep extends Error {}

interface JobEntry {
  step: string;
  job: string;
  log: string;
  script: string;
  submittedAt: string;
}

interface Registry {
  version: 1;
  jobs: Record<string, JobEntry>;
}

interface Tracked {
  key: string;
  step: PlannedStep;
  entry: JobEntry;
  settings: SlurmSettings;
  promise: Promise<StepRecord>;
  resolve: (r: StepRecord) => void;
  reject: (e: unknown) => void;
  /** When the job was first seen gone without the step's output (grace for file-system lag). */
  goneSince: number | null;
}

interface Probe {
  job: string;
  partition: string;
  marker: string;
  reply: string;
  goneSince: number | null;
}

/** Seconds between two squeue calls (files are checked every half second). */
function pollSeconds(): number {
  const v = Number(process.env.MERGLOT_SLURM_POLL_S);
  return Number.isFinite(v) && v > 0 ? v : 5;
}

/** How long squeue may fail in a row before the study stops with "Slurm unreachable". */
function unreachableSeconds(): number {
  const v = Number(process.env.MERGLOT_SLURM_UNREACHABLE_S);
  return Number.isFinite(v) && v > 0 ? v : 120;
}

/** Seconds a finished job's output may take to appear on this machine (NFS attribute caches). */
const OUTPUT_GRACE_S = 30;
const FILE_CHECK_MS = 500;
const LOG_TAIL_LINES = 6;

export const MAIN_JS = fileURLToPath(new URL("../../cli/main.js", import.meta.url));

/** Trainings of one task (and base model) form one array: `train/TASK` or `BASE/train/TASK`. */
export function arrayGroup(s: PlannedStep): string | null {
  if (s.kind !== "train") return null;
  const m = /^(.*?train\/[^/]+)(\/|$)/.exec(s.id);
  return m ? m[1]! : s.id;
}

function fileLabel(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, "-");
}

/** The last lines of a job's log on one line (errors are one line), or a note that there is none. */
export function logTail(path: string, lines = LOG_TAIL_LINES): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return `no log at ${path} (the job never started, or the compute node cannot write to the study folder)`;
  }
  const tail = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .slice(-lines)
    .map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
  if (tail.length === 0) return `log ${path} is empty`;
  return `log ${path} ends with: ${escapeControl(tail.join(" | "))}`;
}

/**
 * Job states of a job that has not run yet (or waits to run again): whatever the squeue snapshot says, such a job
 * has not ended, so neither its step nor the shared-folder probe can be judged.
 */
const NOT_STARTED = new Set([
  "PENDING",
  "CONFIGURING",
  "REQUEUED",
  "REQUEUE_HOLD",
  "REQUEUE_FED",
  "SUSPENDED",
]);

/** Why a job ended without its step's output, in words. */
export function describeEnd(
  job: string,
  info: FinishedJob | null,
  settings: SlurmSettings,
  log: string,
): string {
  const head = `Slurm job ${job}`;
  let what: string;
  if (info === null) what = "is no longer known to Slurm (ended long ago, or the controller was restarted)";
  else {
    const oom =
      info.state === "OUT_OF_MEMORY" || /exceeded (job )?memory limit|oom[-_ ]kill/i.test(readTail(log));
    const [exit, signal] = info.exitCode.split(":");
    if (info.state === "TIMEOUT")
      what = `was killed at its time limit${settings.time !== undefined ? ` (time: ${settings.time})` : ""}`;
    else if (oom)
      what = `was killed for using more memory than it asked for${settings.mem !== undefined ? ` (mem: ${settings.mem})` : ""}`;
    else if (info.state === "FAILED")
      what =
        exit !== undefined && exit !== "0"
          ? `failed with exit code ${exit}`
          : `failed${signal && signal !== "0" ? ` (signal ${signal})` : ""}${info.reason && info.reason !== "None" ? ` (${info.reason})` : ""}`;
    else if (info.state === "CANCELLED") what = "was cancelled (scancel, or by an administrator)";
    else
      what = `ended in state ${info.state}${info.reason && info.reason !== "None" ? ` (${info.reason})` : ""}`;
  }
  return `${head} ${what}; ${logTail(log)}`;
}

function readTail(path: string): string {
  try {
    return readFileSync(path, "utf8").slice(-8192);
  } catch {
    return "";
  }
}

export interface SlurmRunnerOptions {
  outDir: string;
  study: Pick<Study, "name" | "source" | "executor" | "executors">;
  byId: Map<string, PlannedStep>;
  /** A line for the person running the study (cancelled jobs, re-attached jobs). */
  note?: (message: string) => void;
}

export class SlurmRunner {
  private readonly dir: string;
  private readonly tracked = new Map<string, Tracked>();
  private readonly probes: Probe[] = [];
  private readonly probed = new Set<string>();
  private registry: Registry;
  private queue = new Map<string, QueuedJob>();
  private timer: NodeJS.Timeout | null = null;
  private lastSqueue = 0;
  private unreachableSince: number | null = null;
  private polling = false;
  private unregisterInterrupt: (() => void) | null = null;
  private readonly note: (message: string) => void;

  constructor(private readonly opts: SlurmRunnerOptions) {
    this.dir = join(opts.outDir, "slurm");
    this.note = opts.note ?? (() => {});
    // The folder goes into #SBATCH lines, which sbatch splits at spaces.
    // eslint-disable-next-line no-control-regex -- refusing control characters is the point
    if (/[\s\u0000-\u001f\u007f'"\\]/.test(opts.outDir))
      throw new MerglotError(
        "study.slurm",
        `${escapeControl(opts.outDir)}: the slurm executor needs a study folder path without spaces, quotes or control characters (it goes into #SBATCH lines)`,
      );
    this.registry = this.readRegistry();
  }

  private readRegistry(): Registry {
    const p = join(this.dir, "jobs.json");
    if (!existsSync(p)) return { version: 1, jobs: {} };
    try {
      const r = JSON.parse(readFileSync(p, "utf8")) as Registry;
      if (r.version !== 1 || typeof r.jobs !== "object") throw new Error("format");
      return r;
    } catch {
      throw new MerglotError(
        "study.slurm",
        `${p}: not a merglot job list (or damaged); remove it to start afresh`,
      );
    }
  }

  private saveRegistry(): void {
    writeJsonAtomic(join(this.dir, "jobs.json"), this.registry);
  }

  /** Ask Slurm for the queue once (a clear error when it cannot be reached) and tidy what dead jobs left. */
  async init(): Promise<void> {
    for (const d of ["scripts", "specs", "logs", "tmp", "probe"])
      mkdirSync(join(this.dir, d), { recursive: true });
    try {
      this.queue = await squeue();
    } catch (e) {
      throw new MerglotError("study.slurm", `Slurm unreachable: ${(e as Error).message}`);
    }
    this.lastSqueue = Date.now();
    // Temp folders of jobs no longer queued or running (killed, failed): never renamed, safe to remove.
    for (const name of readdirSync(join(this.dir, "tmp"))) {
      const jobId = name.split("-")[0]!;
      if (!this.queue.has(jobId)) rmSync(join(this.dir, "tmp", name), { recursive: true, force: true });
    }
  }

  /**
   * Submit the given steps (or re-attach to their queued or running jobs). Each step's upstream steps must
   * be done or watched by this runner (or be earlier in `steps`). Resolves with one promise per step id:
   * its record when its output appears; a MerglotError naming the job when the job ends without it; a
   * SkippedStep when a step it reads failed.
   */
  async submit(steps: PlannedStep[]): Promise<Map<string, Promise<StepRecord>>> {
    const out = new Map<string, Promise<StepRecord>>();
    const fresh: PlannedStep[] = [];
    const attached: string[] = [];
    for (const s of steps) {
      const t = this.tracked.get(s.key);
      if (t) {
        out.set(s.id, t.promise);
        continue;
      }
      const prev = this.registry.jobs[s.key];
      if (prev && this.queue.has(prev.job)) {
        out.set(s.id, this.track(s, prev).promise);
        attached.push(`${s.id} (job ${prev.job})`);
        continue;
      }
      if (fresh.some((f) => f.key === s.key)) continue; // same key twice in one batch: one job
      fresh.push(s);
    }
    if (attached.length) this.note(`slurm: re-attached to ${attached.length} queued or running job(s)`);

    let remaining = fresh;
    while (remaining.length) {
      const waiting = new Set(remaining.map((s) => s.id));
      const ready = remaining.filter((s) => Object.values(s.deps).every((d) => !waiting.has(d)));
      if (ready.length === 0) throw new Error("internal: Slurm steps wait for each other in a cycle");
      const groups = new Map<string, PlannedStep[]>();
      for (const s of ready) {
        const g = arrayGroup(s) ?? `step:${s.id}`;
        groups.set(g, [...(groups.get(g) ?? []), s]);
      }
      for (const [g, members] of groups) await this.submitGroup(g.startsWith("step:") ? null : g, members);
      remaining = remaining.filter((s) => !ready.includes(s));
    }
    for (const s of steps) if (!out.has(s.id)) out.set(s.id, this.tracked.get(s.key)!.promise);
    this.schedule();
    return out;
  }

  private settingsOf(kind: StepKind): SlurmSettings {
    const e = executorOf(this.opts.study, kind);
    if (e.kind !== "slurm") throw new Error(`internal: ${kind} steps do not run on Slurm`);
    return e;
  }

  /** The job a watched upstream step runs in, or null when the step is done. */
  private jobOf(stepId: string): string | null {
    const s = this.opts.byId.get(stepId)!;
    if (readStepRecord(this.opts.outDir, s.key)) return null;
    const t = this.tracked.get(s.key);
    if (!t) throw new Error(`internal: ${stepId} is neither done nor a Slurm job`);
    return t.entry.job;
  }

  private async submitGroup(array: string | null, members: PlannedStep[]): Promise<void> {
    const kind = members[0]!.kind;
    const settings = this.settingsOf(kind);
    const devices = Math.max(1, settings.gpus ?? 0);
    const device = settings.device ?? ((settings.gpus ?? 0) > 0 ? "gpu" : "cpu");
    const specs = members.map((s) => {
      const spec: StepSpec = {
        version: 1,
        study: this.opts.study.name,
        outDir: this.opts.outDir,
        step: s,
        inputs: Object.fromEntries(
          Object.entries(s.deps).map(([n, id]) => [
            n,
            stepDir(this.opts.outDir, this.opts.byId.get(id)!.key),
          ]),
        ),
        executor: "slurm",
        device,
        devices,
        ...(settings.command !== undefined && kind === "train"
          ? {
              command: {
                command: settings.command,
                cwd: dirname(resolve(this.opts.study.source)),
              },
            }
          : {}),
      };
      const path = join(this.dir, "specs", `${s.key}.json`);
      writeJsonAtomic(path, spec);
      return { path, stepId: s.id };
    });
    const after = [
      ...new Set(
        members.flatMap((s) =>
          Object.values(s.deps)
            .map((d) => this.jobOf(d))
            .filter((j) => j !== null),
        ),
      ),
    ] as string[];
    const label = array ?? members[0]!.id;
    const file = fileLabel(label);
    const log = join(this.dir, "logs", array !== null ? `${file}-%A_%a.log` : `${file}-%j.log`);
    // a later submission for the same label (a resumed study) gets its own script: jobs.json points at both
    let script = join(this.dir, "scripts", `${file}.sh`);
    for (let n = 2; existsSync(script); n++) script = join(this.dir, "scripts", `${file}-${n}.sh`);
    writeFileSync(
      script,
      renderJobScript({
        name: `merglot:${label}`,
        log,
        specs,
        after,
        settings,
        node: process.execPath,
        main: MAIN_JS,
        study: this.opts.study.name,
      }),
      { mode: 0o755 },
    );
    await this.probe(settings);
    let jobId: string;
    try {
      jobId = await sbatch(script, ["--chdir", this.opts.outDir]);
    } catch (e) {
      throw new MerglotError(
        "study.slurm",
        `step ${members[0]!.id}: could not submit ${script}: ${(e as Error).message}`,
      );
    }
    const now = new Date().toISOString();
    members.forEach((s, i) => {
      const job = array !== null ? `${jobId}_${i}` : jobId;
      const entry: JobEntry = {
        step: s.id,
        job,
        log: log.replace("%A", jobId).replace("%a", String(i)).replace("%j", jobId),
        script,
        submittedAt: now,
      };
      this.registry.jobs[s.key] = entry;
      this.track(s, entry);
    });
    this.saveRegistry();
  }

  /** One tiny job per partition: can a compute node see the study folder? */
  private async probe(settings: SlurmSettings): Promise<void> {
    const partition = settings.partition ?? "(default)";
    if (this.probed.has(partition)) return;
    this.probed.add(partition);
    const token = `${process.pid}-${Date.now().toString(36)}-${fileLabel(partition)}`;
    const marker = join(this.dir, "probe", token);
    const reply = `${marker}.seen`;
    writeFileSync(marker, "merglot shared file system check\n");
    const script = join(this.dir, "scripts", `probe-${fileLabel(partition)}.sh`);
    writeFileSync(script, renderProbeScript({ marker, reply, settings, study: this.opts.study.name }), {
      mode: 0o755,
    });
    let job: string;
    try {
      job = await sbatch(script);
    } catch (e) {
      throw new MerglotError("study.slurm", `could not submit ${script}: ${(e as Error).message}`);
    }
    this.probes.push({ job, partition, marker, reply, goneSince: null });
  }

  private track(s: PlannedStep, entry: JobEntry): Tracked {
    let resolve!: (r: StepRecord) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<StepRecord>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const t: Tracked = {
      key: s.key,
      step: s,
      entry,
      settings: this.settingsOf(s.kind),
      promise,
      resolve,
      reject,
      goneSince: null,
    };
    this.tracked.set(s.key, t);
    if (this.unregisterInterrupt === null) this.unregisterInterrupt = onInterrupt(() => this.cancelAll());
    return t;
  }

  private schedule(): void {
    if (this.timer !== null || this.polling) return;
    if (this.tracked.size === 0) {
      this.stopWatching();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.polling = true;
      this.poll()
        .catch((e: unknown) => this.failAll(e))
        .finally(() => {
          this.polling = false;
          this.schedule();
        });
    }, FILE_CHECK_MS);
  }

  private finish(t: Tracked): boolean {
    const r = readStepRecord(this.opts.outDir, t.key);
    if (!r) return false;
    this.tracked.delete(t.key);
    t.resolve(r);
    return true;
  }

  private async poll(): Promise<void> {
    for (const t of [...this.tracked.values()]) this.finish(t);
    if (this.tracked.size === 0 && this.probes.length === 0) return;
    if (Date.now() - this.lastSqueue < pollSeconds() * 1000) return;
    try {
      this.queue = await squeue();
      this.lastSqueue = Date.now();
      this.unreachableSince = null;
    } catch (e) {
      this.lastSqueue = Date.now();
      this.unreachableSince ??= Date.now();
      if (Date.now() - this.unreachableSince > unreachableSeconds() * 1000)
        this.failAll(
          new MerglotError(
            "study.slurm",
            `Slurm unreachable for ${unreachableSeconds()} s (${(e as Error).message}); jobs already submitted may still run: run the study again to re-attach to them`,
          ),
        );
      return;
    }
    await this.checkProbes();
    for (const t of [...this.tracked.values()]) {
      if (!this.tracked.has(t.key)) continue; // skipped meanwhile
      if (this.queue.has(t.entry.job)) {
        t.goneSince = null;
        continue;
      }
      if (this.finish(t)) continue;
      const info = await showJob(t.entry.job);
      if (this.finish(t)) continue;
      if (info !== null && NOT_STARTED.has(info.state)) continue; // missing from the snapshot, still waiting
      if (info?.state === "COMPLETED" || info?.state === "RUNNING" || info?.state === "COMPLETING") {
        // the job ended well: its output may still be on its way through the file system
        t.goneSince ??= Date.now();
        if (Date.now() - t.goneSince < OUTPUT_GRACE_S * 1000) continue;
        this.fail(
          t,
          new MerglotError(
            "study.slurm",
            `step ${t.step.id}: Slurm job ${t.entry.job} completed, but its output ${stepDir(this.opts.outDir, t.key)} is not visible here after ${OUTPUT_GRACE_S} s: the study folder must be on a file system shared by this machine and the compute nodes; ${logTail(t.entry.log)}`,
          ),
        );
        continue;
      }
      if (info?.state === "CANCELLED" && /^Dependency/.test(info.reason)) {
        this.skip(t, `a step it reads failed (Slurm cancelled job ${t.entry.job})`);
        continue;
      }
      // a job killed (time, memory) never removed its temp folder
      if (info?.jobId) this.removeJobTemps(info.jobId);
      this.fail(
        t,
        new MerglotError(
          "study.slurm",
          `step ${t.step.id}: ${describeEnd(t.entry.job, info, t.settings, t.entry.log)}`,
        ),
      );
    }
  }

  private async checkProbes(): Promise<void> {
    for (const p of [...this.probes]) {
      if (this.queue.has(p.job)) continue;
      if (existsSync(p.reply)) {
        this.probes.splice(this.probes.indexOf(p), 1);
        rmSync(p.marker, { force: true });
        rmSync(p.reply, { force: true });
        continue;
      }
      // The probe exits non-zero when it cannot see the marker: conclusive at once. When it exited 0, its
      // reply may still be on its way through the file system.
      const info = await showJob(p.job);
      // not in the squeue snapshot, yet not ended (submitted after it, or under another user's id)
      if (info !== null && NOT_STARTED.has(info.state)) continue;
      const saw = info !== null && info.state === "COMPLETED" && info.exitCode.startsWith("0:");
      if (saw || info === null) {
        p.goneSince ??= Date.now();
        if (Date.now() - p.goneSince < OUTPUT_GRACE_S * 1000) continue;
      }
      this.probes.splice(this.probes.indexOf(p), 1);
      await this.cancelAll(false);
      this.failAll(
        new MerglotError(
          "study.slurm",
          `Slurm job ${p.job} (the shared file system check, partition ${p.partition}) could not see ${p.marker}${info ? ` (job state ${info.state})` : ""}: the study folder ${this.opts.outDir} must be on a file system shared by this machine and the compute nodes`,
        ),
      );
    }
  }

  private removeJobTemps(jobId: string): void {
    const dir = join(this.dir, "tmp");
    for (const name of readdirSync(dir))
      if (name.startsWith(`${jobId}-`)) rmSync(join(dir, name), { recursive: true, force: true });
  }

  /** Steps (watched) that read the step `id`, directly or through others. */
  private dependents(id: string): Tracked[] {
    const reads = (s: PlannedStep, seen = new Set<string>()): boolean =>
      Object.values(s.deps).some((d) => {
        if (d === id) return true;
        if (seen.has(d)) return false;
        seen.add(d);
        return reads(this.opts.byId.get(d)!, seen);
      });
    return [...this.tracked.values()].filter((t) => reads(t.step));
  }

  private fail(t: Tracked, e: unknown): void {
    this.tracked.delete(t.key);
    t.reject(e);
    const deps = this.dependents(t.step.id);
    for (const d of deps) this.skip(d, `step ${t.step.id} failed`);
    // Slurm would cancel them too (kill-on-invalid-dep), only later
    void scancel(deps.map((d) => d.entry.job)).catch(() => undefined);
  }

  private skip(t: Tracked, why: string): void {
    if (!this.tracked.delete(t.key)) return;
    t.reject(new SkippedStep(`step ${t.step.id}: not run: ${why}`));
  }

  private failAll(e: unknown): void {
    for (const t of [...this.tracked.values()]) {
      this.tracked.delete(t.key);
      t.reject(e);
    }
    this.probes.length = 0;
  }

  /** Cancel every job this run watches (Ctrl-C); the study stays resumable. */
  async cancelAll(say = true): Promise<void> {
    const jobs = [...new Set([...this.tracked.values()].map((t) => t.entry.job))];
    const probes = this.probes.map((p) => p.job);
    try {
      await scancel([...jobs, ...probes]);
      if (say && jobs.length)
        this.note(`slurm: cancelled ${jobs.length} job(s) of the study; run it again to resume`);
    } catch (e) {
      this.note(`slurm: could not cancel the study's jobs (${(e as Error).message}): ${jobs.join(" ")}`);
    }
  }

  private stopWatching(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.unregisterInterrupt?.();
    this.unregisterInterrupt = null;
  }

  /** Stop watching (the run is over). Jobs keep running; a later run re-attaches. */
  close(): void {
    this.stopWatching();
  }
}
