/**
 * Where candidates are scored: in this process (`jobs` = 1) or on `jobs` long-lived worker processes
 * (worker.ts), each candidate in its own scratch folder. The kernels' threads are divided among the workers
 * (MERGLOT_THREADS), as the study's worker pool does.
 */
import { fork, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import type { Example } from "../data/example.js";
import { MerglotError } from "../errors.js";
import { scoreCandidate, type CandidateParams, type CandidateScores } from "./candidate.js";
import type { SearchSpec } from "./spec.js";
import type { WorkerMessage } from "./worker.js";

export class CandidatePool {
  private readonly idle: { child: ChildProcess | null }[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly waiting: (() => void)[] = [];
  /** The most candidates that were being scored at once (shows whether --jobs was put to use). */
  peakBusy = 0;

  constructor(
    private readonly spec: SearchSpec,
    private readonly validation: Record<string, Example[]>,
    /** Folder for the workers' scratch folders. */
    private readonly work: string,
    readonly jobs: number,
  ) {
    const threads = Math.max(1, Math.floor(availableParallelism() / jobs));
    for (let i = 0; i < jobs; i++) {
      let child: ChildProcess | null = null;
      if (jobs > 1) {
        child = fork(fileURLToPath(new URL("./worker.js", import.meta.url)), [], {
          stdio: ["ignore", "inherit", "inherit", "ipc"],
          env: { ...process.env, MERGLOT_THREADS: String(threads) },
        });
        this.children.push(child);
      }
      this.idle.push({ child });
    }
  }

  /** Resolves when a worker is free (the caller then calls `score` at once). */
  async free(): Promise<void> {
    if (this.idle.length > 0) return;
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  async score(params: CandidateParams): Promise<CandidateScores> {
    const w = this.idle.shift();
    if (!w) throw new Error("internal: CandidatePool.score without a free worker");
    this.peakBusy = Math.max(this.peakBusy, this.jobs - this.idle.length);
    const job = {
      spec: this.spec,
      params,
      work: this.work,
      validation: this.validation,
    };
    try {
      if (!w.child) return await scoreCandidate(job);
      const child = w.child;
      return await new Promise<CandidateScores>((resolve, reject) => {
        const cleanup = () => {
          child.off("message", onMessage);
          child.off("exit", onExit);
        };
        const onMessage = (m: WorkerMessage) => {
          cleanup();
          if (m.type === "done") resolve(m.result);
          else reject(m.merglot ? new MerglotError(m.code, m.message) : new Error(m.message));
        };
        const onExit = (code: number | null, signal: string | null) => {
          cleanup();
          reject(new Error(`search worker process ended (${signal ?? `exit ${code}`})`));
        };
        child.on("message", onMessage);
        child.on("exit", onExit);
        child.send(job);
      });
    } finally {
      this.idle.push(w);
      this.waiting.shift()?.();
    }
  }

  close(): void {
    for (const c of this.children) if (c.connected) c.disconnect();
  }
}
