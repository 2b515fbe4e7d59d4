/**
 * One study step run on its own, from a step spec file: what a Slurm job runs on a compute node
 * (`merglot study step SPEC`). The parent `study run` plans the step, writes its spec
 * (OUT_DIR/slurm/specs/<key>.json) and submits the job; the job runs the local executor of the step's kind
 * into a temp folder of the study folder and renames it to steps/<key> with its step.json, exactly as the
 * local scheduler does (store.ts): steps/<key> existing means the step finished, whatever was killed when.
 * The parent never writes a Slurm step's outputs; it watches for them and records them in study.lock.json.
 */
import { VERSION } from "../version.js";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { MerglotError } from "../errors.js";
import { commandTrain, LOCAL_EXECUTORS } from "./executors.js";
import type { PlannedStep } from "./plan.js";
import { commitStep, readStepRecord, type StepRecord } from "./store.js";

export interface StepSpec {
  version: 1;
  study: string;
  /** The study folder (absolute; the same path on every node of a shared file system). */
  outDir: string;
  step: PlannedStep;
  /** Output folder of each upstream step, by the name the step gives it. */
  inputs: Record<string, string>;
  executor: string;
  device: string;
  /** Devices the job holds (GPUs, at least 1): device-seconds = wall seconds × devices. */
  devices: number;
  /**
   * A train step run by the user's command inside the job (`executors.train: {kind: slurm, command}`), and the
   * folder its relative paths are resolved against (the study file's).
   */
  command?: { command: string; env?: Record<string, string>; timeout?: number; cwd: string };
}

/** Where a job writes its step before the rename: in the study folder (one file system), outside steps/. */
export function jobTempDir(outDir: string, jobTag: string, key: string): string {
  return join(outDir, "slurm", "tmp", `${jobTag}-${key.slice(0, 16)}`);
}

function readSpec(path: string): StepSpec {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new MerglotError(
      "study.step",
      `${path}: step spec not readable on ${hostname()}: the study folder must be on a file system shared by the submitting machine and the compute nodes`,
    );
  }
  try {
    const spec = JSON.parse(text) as StepSpec;
    if (spec.version !== 1 || typeof spec.step?.key !== "string") throw new Error("format");
    return spec;
  } catch {
    throw new MerglotError("study.step", `${path}: not a merglot step spec (or damaged)`);
  }
}

/**
 * Run the step of a spec file; returns its record (the existing one when the step was already done).
 * `log` receives progress lines (the job's log file).
 */
export async function runStepJob(specPath: string, log: (line: string) => void): Promise<StepRecord> {
  const spec = readSpec(specPath);
  const { step, outDir } = spec;
  if (!existsSync(join(outDir, "steps")))
    throw new MerglotError(
      "study.step",
      `${outDir}: study folder not visible on ${hostname()}: it must be on a file system shared by the submitting machine and the compute nodes`,
    );
  const existing = readStepRecord(outDir, step.key);
  if (existing) {
    log(`step ${step.id}: already done (${step.key})`);
    return existing;
  }
  const jobTag = process.env.SLURM_JOB_ID !== undefined ? `${process.env.SLURM_JOB_ID}` : `pid${process.pid}`;
  const tmp = jobTempDir(outDir, jobTag, step.key);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  log(`step ${step.id} (${step.key}) on ${hostname()}`);
  const w0 = performance.now();
  const cpu0 = process.cpuUsage();
  let lastPct = -1;
  try {
    const executor =
      spec.command && step.kind === "train"
        ? commandTrain(spec.command, spec.command.cwd)
        : LOCAL_EXECUTORS[step.kind];
    const report = await executor.run(step, {
      outDir: tmp,
      inputs: spec.inputs,
      onProgress: (done, total, what) => {
        // a line per 10 %: enough to see where a killed job was, without flooding the log
        const pct = total > 0 ? Math.floor((10 * done) / total) : 0;
        if (pct !== lastPct) {
          lastPct = pct;
          log(`  ${done}/${total} ${what}`);
        }
      },
    });
    const c = process.cpuUsage(cpu0);
    const wallS = (performance.now() - w0) / 1000;
    const record: StepRecord = {
      id: step.id,
      kind: step.kind,
      key: step.key,
      wallS,
      cpuS: (c.user + c.system) / 1e6,
      deviceS: wallS * spec.devices,
      device: spec.device,
      executor: spec.executor,
      tokens: report.tokens ?? null,
      info: {
        ...(report.info ?? {}),
        ...(process.env.SLURM_JOB_ID !== undefined ? { slurmJob: process.env.SLURM_JOB_ID } : {}),
      },
      finishedAt: new Date().toISOString(),
      merglot: VERSION,
    };
    commitStep(outDir, tmp, record);
    log(`step ${step.id}: done in ${wallS.toFixed(1)} s`);
    return record;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof MerglotError) throw new MerglotError(e.code, `step ${step.id}: ${e.message}`);
    throw e;
  }
}
