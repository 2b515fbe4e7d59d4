/**
 * Running a study: plan, skip what is cached, run the rest in dependency order (`jobs` at a time), record
 * every step in study.lock.json, then write results.json. See store.ts for why a kill at any moment is safe.
 *
 * With jobs = 1 steps run in this process; with jobs > 1 each step runs in a child process (child.ts), with
 * the machine's cores divided among them, since training is CPU-bound and synchronous. Outputs are the
 * same either way: every step is deterministic given its inputs.
 */
import { VERSION } from "../version.js";
import { fork, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MerglotError } from "../errors.js";
import type { ChildJob, ChildMessage } from "./child.js";
import { executorsFor, type StepContext, type StepReport } from "./executors.js";
import { planStudy, type PlannedStep } from "./plan.js";
import { buildResults, type Results } from "./results.js";
import { deviceOf, executorOf, type Study } from "./schema.js";
import { arrayGroup, SkippedStep, SlurmRunner } from "./slurm/runner.js";
import {
  claimStudyDir,
  commitStep,
  readLock,
  readStepRecord,
  removeStaleTemps,
  RESULTS_FILE,
  stepDir,
  stepOutputs,
  stepTempDir,
  writeJsonAtomic,
  writeLock,
  type LockFile,
  type LockStep,
  type StepRecord,
} from "./store.js";
import { dirname, join, resolve } from "node:path";

export interface RunOptions {
  outDir: string;
  jobs?: number;
  dryRun?: boolean;
  /** Glob over step ids (`*` within one path segment, `**` across); the matched steps and what they read. */
  only?: string;
  force?: boolean;
  onEvent?: (e: StudyEvent) => void;
}

export type StudyEvent =
  | { type: "plan"; total: number; cached: number; toRun: number }
  | { type: "start"; step: string; running: string[] }
  | { type: "progress"; step: string; done: number; total: number; what: string }
  | { type: "finish"; step: string; wallS: number; done: number; total: number; etaS: number | null }
  | { type: "cached"; step: string }
  /** Something the person running the study should know (Slurm jobs re-attached, cancelled). */
  | { type: "note"; message: string };

export interface PlanEntry {
  id: string;
  kind: string;
  key: string;
  state: "cached" | "run";
}

export interface RunSummary {
  outDir: string;
  dryRun: boolean;
  plan: PlanEntry[];
  ran: string[];
  cached: string[];
  wallS: number;
  results: Results | null;
}

/** `*` matches within one path segment, `**` across segments; anything else literally. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      re += ".*";
      i++;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The steps `only` selects plus everything they read (transitively), in plan order. */
export function selectSteps(steps: PlannedStep[], only: string | undefined): PlannedStep[] {
  if (!only) return steps;
  const re = globToRegExp(only);
  const byId = new Map(steps.map((s) => [s.id, s]));
  const keep = new Set<string>();
  const stack = steps.filter((s) => re.test(s.id)).map((s) => s.id);
  if (stack.length === 0) throw new MerglotError("study.only", `--only ${only}: no step matches`);
  while (stack.length) {
    const id = stack.pop()!;
    if (keep.has(id)) continue;
    keep.add(id);
    stack.push(...Object.values(byId.get(id)!.deps));
  }
  return steps.filter((s) => keep.has(s.id));
}

function lockEntry(s: PlannedStep, byId: Map<string, PlannedStep>): LockStep {
  return {
    kind: s.kind,
    key: s.key,
    status: "pending",
    inputs: {
      files: Object.fromEntries(
        Object.entries(s.files).map(([n, p]) => [n, { path: p, sha256: s.fileHashes[n]! }]),
      ),
      steps: Object.fromEntries(
        Object.entries(s.deps).map(([n, id]) => [n, { step: id, key: byId.get(id)!.key }]),
      ),
    },
    outputs: [],
  };
}

function recordInto(entry: LockStep, r: StepRecord, outDir: string, cached: boolean): void {
  entry.status = "done";
  entry.cached = cached;
  entry.outputs = stepOutputs(outDir, r.key);
  entry.wallS = r.wallS;
  entry.cpuS = r.cpuS;
  entry.deviceS = r.deviceS;
  entry.device = r.device;
  entry.tokens = r.tokens;
  entry.info = r.info;
  entry.finishedAt = r.finishedAt;
  delete entry.error;
}

/** Long-lived worker processes (child.ts), one step at a time each. */
class WorkerPool {
  private idle: ChildProcess[] = [];
  private all: ChildProcess[] = [];
  constructor(private readonly threads: number) {}

  private spawn(): ChildProcess {
    const child = fork(fileURLToPath(new URL("./child.js", import.meta.url)), [], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, MERGLOT_THREADS: String(this.threads) },
    });
    this.all.push(child);
    return child;
  }

  /** Run one step on an idle worker (started when none is idle); resolves with its report and CPU seconds. */
  run(step: PlannedStep, ctx: StepContext): Promise<{ report: StepReport; cpuS: number }> {
    const child = this.idle.pop() ?? this.spawn();
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        child.off("message", onMessage);
        child.off("exit", onExit);
      };
      const onMessage = (m: ChildMessage) => {
        if (m.type === "progress") {
          ctx.onProgress?.(m.done, m.total, m.what);
          return;
        }
        cleanup();
        this.idle.push(child);
        if (m.type === "done") resolve({ report: m.report, cpuS: m.cpuS });
        else reject(m.merglot ? new MerglotError(m.code, m.message) : new Error(m.message));
      };
      const onExit = (code: number | null, signal: string | null) => {
        cleanup();
        this.all = this.all.filter((c) => c !== child);
        reject(new Error(`step ${step.id}: worker process ended (${signal ?? `exit ${code}`})`));
      };
      child.on("message", onMessage);
      child.on("exit", onExit);
      const job: ChildJob = { step, ctx: { outDir: ctx.outDir, inputs: ctx.inputs } };
      child.send(job);
    });
  }

  close(): void {
    for (const c of this.all) if (c.connected) c.disconnect();
    this.all = [];
    this.idle = [];
  }
}

export async function runStudy(study: Study, options: RunOptions): Promise<RunSummary> {
  const t0 = performance.now();
  // Absolute: step inputs are handed to executors (and recipes) that resolve paths against other folders.
  const opts = { ...options, outDir: resolve(options.outDir) };
  const jobs = Math.max(1, opts.jobs ?? 1);
  const emit = opts.onEvent ?? (() => {});
  const all = planStudy(study);
  const steps = selectSteps(all, opts.only);
  const byId = new Map(all.map((s) => [s.id, s]));
  const isDone = (s: PlannedStep) => readStepRecord(opts.outDir, s.key) !== null;
  const plan: PlanEntry[] = steps.map((s) => ({
    id: s.id,
    kind: s.kind,
    key: s.key,
    state: isDone(s) ? "cached" : "run",
  }));
  if (opts.dryRun) {
    return { outDir: opts.outDir, dryRun: true, plan, ran: [], cached: [], wallS: 0, results: null };
  }

  const release = claimStudyDir(opts.outDir, study.name, opts.force ?? false);
  try {
    removeStaleTemps(opts.outDir);
    const previous = readLock(opts.outDir);
    const lock: LockFile = {
      version: 1,
      study: { name: study.name, source: study.source },
      updatedAt: "",
      steps: {},
    };
    // Steps of this study not selected by --only keep their previous record.
    for (const s of all) {
      const prev = previous?.steps[s.id];
      lock.steps[s.id] = prev && prev.key === s.key ? prev : lockEntry(s, byId);
      if (lock.steps[s.id]!.status === "running") lock.steps[s.id]!.status = "pending";
    }
    const cached: string[] = [];
    for (const s of steps) {
      const r = readStepRecord(opts.outDir, s.key);
      if (r) {
        recordInto(lock.steps[s.id]!, r, opts.outDir, true);
        cached.push(s.id);
        emit({ type: "cached", step: s.id });
      } else lock.steps[s.id] = lockEntry(s, byId);
    }
    writeLock(opts.outDir, lock);
    const todo = steps.filter((s) => !cached.includes(s.id));
    emit({ type: "plan", total: steps.length, cached: cached.length, toRun: todo.length });

    const executors = executorsFor(study.executors, { cwd: dirname(resolve(study.source)) });
    const ownThreads = study.executor.kind === "local" ? study.executor.threads : undefined;
    const threads = ownThreads ?? Math.max(1, Math.floor(availableParallelism() / jobs));
    const pool = jobs > 1 ? new WorkerPool(threads) : null;
    // Steps whose kind runs on Slurm are submitted as jobs (all at once, with dependencies), the rest here.
    const onSlurm = (s: PlannedStep) => executorOf(study, s.kind).kind === "slurm";
    const slurm = todo.some(onSlurm)
      ? new SlurmRunner({
          outDir: opts.outDir,
          study,
          byId,
          note: (message) => emit({ type: "note", message }),
        })
      : null;
    const done = new Set(cached);
    const running = new Map<string, Promise<void>>();
    const ran: string[] = [];
    const wallByKind = new Map<string, number[]>();
    let failure: unknown = null;

    const eta = (): number | null => {
      const allWalls = [...wallByKind.values()].flat();
      if (allWalls.length === 0) return null;
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const fallback = mean(allWalls);
      let rest = 0;
      for (const s of todo)
        if (!done.has(s.id)) rest += wallByKind.has(s.kind) ? mean(wallByKind.get(s.kind)!) : fallback;
      return rest / jobs;
    };

    const slurmRunning = () => [...running.keys()].filter((id) => onSlurm(byId.get(id)!)).length;

    const start = (s: PlannedStep) => {
      const tmp = stepTempDir(opts.outDir, s.key);
      const inputs = Object.fromEntries(
        Object.entries(s.deps).map(([n, id]) => [n, stepDir(opts.outDir, byId.get(id)!.key)]),
      );
      const ctx: StepContext = {
        outDir: tmp,
        inputs,
        onProgress: (d, t, what) => emit({ type: "progress", step: s.id, done: d, total: t, what }),
        logsDir: join(opts.outDir, "logs"),
      };
      const entry = lock.steps[s.id]!;
      entry.status = "running";
      entry.startedAt = new Date().toISOString();
      writeLock(opts.outDir, lock);
      emit({ type: "start", step: s.id, running: [...running.keys(), s.id] });
      const w0 = performance.now();
      const cpu0 = process.cpuUsage();
      // Work done outside this process (a user's command) needs no worker process to keep it off the loop.
      const work =
        jobs === 1 || executors[s.kind].external
          ? executors[s.kind].run(s, ctx).then((report) => {
              const c = process.cpuUsage(cpu0);
              return { report, cpuS: (c.user + c.system) / 1e6 };
            })
          : pool!.run(s, ctx);
      const p = work.then(
        ({ report, cpuS }) => {
          const wallS = (performance.now() - w0) / 1000;
          const settings = executorOf(study, s.kind);
          const record: StepRecord = {
            id: s.id,
            kind: s.kind,
            key: s.key,
            wallS,
            cpuS,
            deviceS: wallS,
            device: deviceOf(settings),
            executor: settings.kind,
            tokens: report.tokens ?? null,
            info: report.info ?? {},
            finishedAt: new Date().toISOString(),
            merglot: VERSION,
          };
          commitStep(opts.outDir, tmp, record);
          recordInto(entry, record, opts.outDir, false);
          writeLock(opts.outDir, lock);
          done.add(s.id);
          ran.push(s.id);
          wallByKind.set(s.kind, [...(wallByKind.get(s.kind) ?? []), wallS]);
          running.delete(s.id);
          emit({ type: "finish", step: s.id, wallS, done: done.size, total: steps.length, etaS: eta() });
        },
        (e: unknown) => {
          rmSync(tmp, { recursive: true, force: true });
          entry.status = "failed";
          entry.error = (e as Error)?.message ?? String(e);
          writeLock(opts.outDir, lock);
          running.delete(s.id);
          // Name the step: the executor's message names the file or field, not where in the study it was.
          failure ??=
            e instanceof MerglotError
              ? new MerglotError(e.code, `step ${s.id}: ${e.message}`, { detail: e.detail })
              : e;
        },
      );
      running.set(s.id, p);
    };

    /** Submit Slurm steps (in plan order); the scheduler then waits for them like for local steps. */
    const startSlurm = async (batch: PlannedStep[]) => {
      const now = new Date().toISOString();
      for (const s of batch) {
        const entry = lock.steps[s.id]!;
        entry.status = "running";
        entry.startedAt = now;
        emit({ type: "start", step: s.id, running: [...running.keys(), s.id] });
      }
      writeLock(opts.outDir, lock);
      const promises = await slurm!.submit(batch);
      for (const s of batch) {
        const entry = lock.steps[s.id]!;
        const p = promises.get(s.id)!.then(
          (record) => {
            recordInto(entry, record, opts.outDir, false);
            writeLock(opts.outDir, lock);
            done.add(s.id);
            ran.push(s.id);
            wallByKind.set(s.kind, [...(wallByKind.get(s.kind) ?? []), record.wallS]);
            running.delete(s.id);
            emit({
              type: "finish",
              step: s.id,
              wallS: record.wallS,
              done: done.size,
              total: steps.length,
              etaS: eta(),
            });
          },
          (e: unknown) => {
            running.delete(s.id);
            if (e instanceof SkippedStep) {
              entry.status = "pending";
              writeLock(opts.outDir, lock);
              return;
            }
            entry.status = "failed";
            entry.error = (e as Error)?.message ?? String(e);
            writeLock(opts.outDir, lock);
            failure ??= e;
          },
        );
        running.set(s.id, p);
      }
    };

    try {
      await slurm?.init();
      for (;;) {
        if (failure === null) {
          // Slurm steps: every step whose inputs are done or come from Slurm jobs (waited for by afterok).
          if (slurm) {
            const batch: PlannedStep[] = [];
            const queued = new Set<string>();
            for (const s of todo) {
              if (!onSlurm(s) || done.has(s.id) || running.has(s.id)) continue;
              const ready = Object.values(s.deps).every(
                (d) => done.has(d) || queued.has(d) || (running.has(d) && onSlurm(byId.get(d)!)),
              );
              if (!ready) continue;
              const r = readStepRecord(opts.outDir, s.key);
              if (r) {
                recordInto(lock.steps[s.id]!, r, opts.outDir, true);
                done.add(s.id);
                cached.push(s.id);
                emit({ type: "cached", step: s.id });
                continue;
              }
              batch.push(s);
              queued.add(s.id);
            }
            // The trainings of a task go out as one job array: none before all of them can go.
            const waiting = new Set(
              todo
                .filter((s) => onSlurm(s) && !done.has(s.id) && !running.has(s.id) && !queued.has(s.id))
                .map((s) => arrayGroup(s))
                .filter((g): g is string => g !== null),
            );
            if (waiting.size) {
              const inWaiting = (s: PlannedStep) => {
                const g = arrayGroup(s);
                return g !== null && waiting.has(g);
              };
              const held = new Set(batch.filter(inWaiting).map((s) => s.id));
              // (and nothing that reads a held training: it would have no job to wait for)
              for (const s of batch) if (Object.values(s.deps).some((d) => held.has(d))) held.add(s.id);
              batch.splice(0, batch.length, ...batch.filter((s) => !held.has(s.id)));
            }
            if (batch.length)
              await startSlurm(batch).catch((e: unknown) => {
                for (const s of batch)
                  if (!running.has(s.id)) {
                    lock.steps[s.id]!.status = "pending";
                  }
                writeLock(opts.outDir, lock);
                failure ??= e;
              });
          }
          for (const s of todo) {
            if (running.size - slurmRunning() >= jobs) break;
            if (done.has(s.id) || running.has(s.id) || onSlurm(s)) continue;
            if (!Object.values(s.deps).every((d) => done.has(d))) continue;
            // Another step with the same key (e.g. identical base models of a size ablation) already made it.
            const r = readStepRecord(opts.outDir, s.key);
            if (r) {
              recordInto(lock.steps[s.id]!, r, opts.outDir, true);
              done.add(s.id);
              cached.push(s.id);
              emit({ type: "cached", step: s.id });
              continue;
            }
            start(s);
          }
        }
        if (running.size === 0) break;
        await Promise.race(running.values());
      }
    } finally {
      pool?.close();
      slurm?.close();
    }
    if (failure !== null) throw failure;
    const results = buildResults(study, all, opts.outDir);
    writeJsonAtomic(join(opts.outDir, RESULTS_FILE), results);
    return {
      outDir: opts.outDir,
      dryRun: false,
      plan,
      ran,
      cached,
      wallS: (performance.now() - t0) / 1000,
      results,
    };
  } finally {
    release();
  }
}
