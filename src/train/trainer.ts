/**
 * The training loop shared by `train` (LoRA) and `pretrain` (all parameters): seeded epoch shuffles,
 * gradient accumulation with the loss normalised over every scored token of the optimiser step, global-norm
 * clipping, AdamW with warm-up and decay, periodic checkpoints, and exact resume.
 *
 * Exact resume: the batch order comes from (seed, epoch) and dropout from (seed, step, micro-batch), so a
 * checkpoint only needs the step, the parameters and the optimiser moments to continue bit for bit.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MerglotError } from "../errors.js";
import { folderWithMarker } from "../output/guard.js";
import { openOutput } from "../output/slot.js";
import { SafetensorsReader, writeSafetensors } from "../formats/safetensors.js";
import type { LlamaModel } from "../engine/model.js";
import { Rng } from "../engine/rng.js";
import { epochOrder, makeBatches, type BatchMode, type TrainBatch } from "./batching.js";
import type { Example } from "./data.js";
import { AdamW, clipGradNorm, learningRate, type Param, type Schedule } from "./optim.js";
import { readJsonFile } from "../json-input.js";

export interface TrainConfig {
  epochs: number;
  lr: number;
  batchSize: number;
  gradAccum: number;
  seqLen: number;
  mode: BatchMode;
  schedule: Schedule;
  /** Warm-up as a fraction of all steps (used when warmupSteps is not given). */
  warmupRatio: number;
  warmupSteps?: number;
  maxGradNorm: number;
  weightDecay: number;
  seed: number;
}

export const TRAIN_DEFAULTS: TrainConfig = {
  epochs: 1,
  lr: 2e-4,
  batchSize: 8,
  gradAccum: 1,
  seqLen: 256,
  mode: "padding",
  schedule: "linear",
  warmupRatio: 0,
  maxGradNorm: 1,
  weightDecay: 0,
  seed: 0,
};

export interface StepLog {
  step: number;
  epoch: number;
  /** Mean loss per scored token of this step. */
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  scoredTokens: number;
  elapsedS: number;
}

export interface TrainingLog {
  config: TrainConfig;
  totalSteps: number;
  steps: StepLog[];
  tokens: number;
  scoredTokens: number;
  wallTimeS: number;
  tokensPerS: number;
  finalLoss: number | null;
}

export interface RunOptions {
  /** Stop after this many optimiser steps in total (an interrupted run, for tests and time boxes). */
  stopAfterStep?: number;
  /** Write a checkpoint every this many steps into checkpointDir (and always at the end). */
  checkpointEvery?: number;
  checkpointDir?: string | null;
  /** A checkpoint folder (checkpoint-step-N) to continue from. */
  resumeFrom?: string | null;
  onStep?: (log: StepLog, totalSteps: number) => void;
}

function validate(cfg: TrainConfig): void {
  const posInt = (k: keyof TrainConfig) => {
    const v = cfg[k] as number;
    if (!Number.isInteger(v) || v < 1)
      throw new MerglotError("train.option", `--${kebab(k)} must be a positive integer, got ${v}`);
  };
  posInt("epochs");
  posInt("batchSize");
  posInt("gradAccum");
  posInt("seqLen");
  if (!(cfg.lr > 0)) throw new MerglotError("train.option", `--lr must be positive, got ${cfg.lr}`);
  if (!(cfg.warmupRatio >= 0 && cfg.warmupRatio < 1))
    throw new MerglotError("train.option", `--warmup must lie in [0, 1), got ${cfg.warmupRatio}`);
  if (!(cfg.maxGradNorm >= 0))
    throw new MerglotError("train.option", `--max-grad-norm must be ≥ 0, got ${cfg.maxGradNorm}`);
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** What a checkpoint must match to be resumed: the options, the data and the parameter set. */
function fingerprint(cfg: TrainConfig, examples: Example[], params: Param[]): string {
  const h = createHash("sha256");
  h.update(JSON.stringify(cfg));
  for (const e of examples) h.update(`${e.scoreFrom}:${e.ids.join(",")};`);
  for (const p of params) h.update(`${p.name}:${p.data.length};`);
  return h.digest("hex");
}

interface Plan {
  batches: TrainBatch[];
  stepsPerEpoch: number;
  totalSteps: number;
  warmup: number;
}

function plan(examples: Example[], cfg: TrainConfig): Plan {
  const batches = makeBatches(examples, { batchSize: cfg.batchSize, seqLen: cfg.seqLen, mode: cfg.mode });
  if (batches.length === 0) throw new MerglotError("data.empty", "the training data holds no usable example");
  const stepsPerEpoch = Math.ceil(batches.length / cfg.gradAccum);
  const totalSteps = stepsPerEpoch * cfg.epochs;
  const warmup = cfg.warmupSteps ?? Math.ceil(cfg.warmupRatio * totalSteps);
  return { batches, stepsPerEpoch, totalSteps, warmup };
}

/** Train `params` (which must be the model's parameters that carry gradients) on `examples`. */
export function runTraining(
  model: LlamaModel,
  params: Param[],
  examples: Example[],
  cfg: TrainConfig,
  run: RunOptions = {},
): TrainingLog {
  validate(cfg);
  const p = plan(examples, cfg);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: cfg.weightDecay });
  const fp = fingerprint(cfg, examples, params);
  let log: TrainingLog = {
    config: cfg,
    totalSteps: p.totalSteps,
    steps: [],
    tokens: 0,
    scoredTokens: 0,
    wallTimeS: 0,
    tokensPerS: 0,
    finalLoss: null,
  };
  let startStep = 0;
  if (run.resumeFrom) {
    log = loadCheckpoint(run.resumeFrom, params, opt, fp);
    startStep = log.steps.length;
  }
  const t0 = process.hrtime.bigint();
  const wallBefore = log.wallTimeS;
  const stopAt = Math.min(p.totalSteps, run.stopAfterStep ?? p.totalSteps);
  let order: number[] = [];
  let orderEpoch = -1;
  for (let step = startStep; step < stopAt; step++) {
    const epoch = Math.floor(step / p.stepsPerEpoch);
    if (epoch !== orderEpoch) {
      order = epochOrder(p.batches.length, cfg.seed, epoch);
      orderEpoch = epoch;
    }
    const first = (step % p.stepsPerEpoch) * cfg.gradAccum;
    const micro = order.slice(first, first + cfg.gradAccum).map((i) => p.batches[i]);
    const scored = micro.reduce((a, b) => a + b.scored, 0);
    model.zeroGradients();
    let lossSum = 0;
    micro.forEach((mb, j) => {
      const r = model.forwardBackward(mb.batch, {
        lossScale: scored > 0 ? 1 / scored : 0,
        rng: new Rng(cfg.seed, 0xd809, step, j),
      });
      lossSum += r.loss;
    });
    const gradNorm = clipGradNorm(params, cfg.maxGradNorm);
    const lr = learningRate(cfg.schedule, cfg.lr, step, p.totalSteps, p.warmup);
    opt.step(lr);
    const tokens = micro.reduce((a, b) => a + b.tokens, 0);
    log.tokens += tokens;
    log.scoredTokens += scored;
    const elapsedS = wallBefore + Number(process.hrtime.bigint() - t0) / 1e9;
    const s: StepLog = {
      step: step + 1,
      epoch,
      loss: scored > 0 ? lossSum / scored : 0,
      lr,
      gradNorm,
      tokens,
      scoredTokens: scored,
      elapsedS,
    };
    log.steps.push(s);
    log.wallTimeS = elapsedS;
    log.tokensPerS = log.tokens / Math.max(1e-9, elapsedS);
    log.finalLoss = s.loss;
    run.onStep?.(s, p.totalSteps);
    const every = run.checkpointEvery ?? 0;
    if (run.checkpointDir && ((every > 0 && (step + 1) % every === 0) || step + 1 === stopAt)) {
      saveCheckpoint(run.checkpointDir, step + 1, params, opt, log, fp);
    }
  }
  return log;
}

const STATE_FILE = "trainer_state.json";
const TENSORS_FILE = "trainer_tensors.safetensors";
const CHECKPOINT_OWNER = folderWithMarker("train", STATE_FILE);

/** Write checkpoint-step-N atomically and remove older checkpoints in the same folder. */
function saveCheckpoint(
  dir: string,
  step: number,
  params: Param[],
  opt: AdamW,
  log: TrainingLog,
  fp: string,
): void {
  const target = join(dir, `checkpoint-step-${step}`);
  // a checkpoint of this step from an earlier run is replaced; inputs: none (the trainer holds its state)
  const slot = openOutput({ path: target, kind: "dir", inputs: [], owner: CHECKPOINT_OWNER, force: true });
  const tmp = slot.temp;
  try {
    const tensors = params.flatMap((p, k) => [
      {
        name: `param.${p.name}`,
        dtype: "F32" as const,
        shape: [p.data.length],
        data: p.data instanceof Float32Array ? p.data : Float32Array.from(p.data),
      },
      { name: `adam_m.${p.name}`, dtype: "F32" as const, shape: [p.data.length], data: opt.m[k] },
      { name: `adam_v.${p.name}`, dtype: "F32" as const, shape: [p.data.length], data: opt.v[k] },
    ]);
    writeSafetensors(join(tmp, TENSORS_FILE), tensors);
    writeFileSync(
      join(tmp, STATE_FILE),
      JSON.stringify({ format: "merglot-trainer-1", fingerprint: fp, adamT: opt.t, log }, null, 1),
    );
    slot.commit();
  } catch (e) {
    throw slot.fail(e);
  }
  for (const name of readdirSync(dir)) {
    const m = /^checkpoint-step-(\d+)$/.exec(name);
    if (m && Number(m[1]) !== step) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

/** The newest checkpoint-step-N folder inside `dir`, or `dir` itself when it is one. */
export function latestCheckpoint(dir: string): string | null {
  if (existsSync(join(dir, STATE_FILE))) return dir;
  if (!existsSync(dir)) return null;
  let best: { step: number; path: string } | null = null;
  for (const name of readdirSync(dir)) {
    const m = /^checkpoint-step-(\d+)$/.exec(name);
    if (m && (best === null || Number(m[1]) > best.step))
      best = { step: Number(m[1]), path: join(dir, name) };
  }
  return best?.path ?? null;
}

function loadCheckpoint(path: string, params: Param[], opt: AdamW, fp: string): TrainingLog {
  const dir = latestCheckpoint(path);
  if (dir === null)
    throw new MerglotError(
      "train.resume",
      `${path}: no checkpoint found (expected ${STATE_FILE} or checkpoint-step-N folders)`,
    );
  const parsedState = readJsonFile(join(dir, STATE_FILE), { code: "train.resume" });
  const state = (typeof parsedState === "object" && parsedState !== null ? parsedState : {}) as {
    format?: string;
    fingerprint?: string;
    adamT?: number;
    log?: TrainingLog;
  };
  if (state.format !== "merglot-trainer-1" || !state.log || typeof state.adamT !== "number") {
    throw new MerglotError("train.resume", `${join(dir, STATE_FILE)}: not a merglot trainer checkpoint`);
  }
  if (state.fingerprint !== fp) {
    throw new MerglotError(
      "train.resume",
      `${dir}: the checkpoint was made with other training options, data or parameters; resume with the same ones`,
    );
  }
  const r = SafetensorsReader.open(join(dir, TENSORS_FILE));
  try {
    params.forEach((p, k) => {
      const data = r.readFloat32(`param.${p.name}`);
      p.data.set(data);
      r.readFloat32(`adam_m.${p.name}`, opt.m[k]);
      r.readFloat32(`adam_v.${p.name}`, opt.v[k]);
    });
  } finally {
    r.close();
  }
  opt.t = state.adamT;
  return state.log;
}
