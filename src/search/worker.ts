/**
 * A worker process of `merglot search --jobs N`: merges and evaluation are CPU-bound and synchronous, so
 * parallel candidates need processes (as the study's steps, src/study/child.ts). The parent sends one
 * candidate at a time and gets its scores or its error back. When the parent dies (kill -9) the IPC channel
 * closes and the worker exits instead of running on.
 */
import { isMerglotError } from "../errors.js";
import { scoreCandidate, type CandidateJob, type CandidateScores } from "./candidate.js";

export type WorkerMessage =
  | { type: "done"; result: CandidateScores }
  | { type: "error"; message: string; merglot: boolean; code: string };

function send(m: WorkerMessage): void {
  if (!process.connected) process.exit(1);
  process.send!(m);
}

process.on("disconnect", () => process.exit(0));
process.on("message", (job: CandidateJob) => {
  scoreCandidate(job).then(
    (result) => send({ type: "done", result }),
    (e: unknown) =>
      send({
        type: "error",
        message: (e as Error)?.message ?? String(e),
        merglot: isMerglotError(e),
        code: isMerglotError(e) ? e.code : "internal",
      }),
  );
});
