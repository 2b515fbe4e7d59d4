/**
 * Examples → token batches. `padding`: one example per row, rows padded to the batch's longest example.
 * `packing`: examples laid end to end in rows of exactly seqLen tokens (first fit, in order), each keeping
 * its own positions and attending only to itself. Examples longer than seqLen + 1 tokens are cut.
 * Batch order is shuffled per epoch from (seed, epoch), so any step's batch can be rebuilt on resume.
 */
import type { TokenBatch } from "../engine/model.js";
import { Rng } from "../engine/rng.js";
import type { Example } from "./data.js";

export type BatchMode = "padding" | "packing";

/** Inputs (ids without the last) and targets (ids shifted, −1 where not scored) of one example. */
function inputsAndTargets(e: Example, seqLen: number): { inputs: number[]; targets: number[] } {
  const ids = e.ids.slice(0, seqLen + 1);
  const inputs = ids.slice(0, -1);
  const targets = inputs.map((_, t) => (t + 1 >= e.scoreFrom ? ids[t + 1] : -1));
  return { inputs, targets };
}

/** Whether an example has anything to learn from after truncation. */
export function hasTargets(e: Example, seqLen: number): boolean {
  return inputsAndTargets(e, seqLen).targets.some((t) => t >= 0);
}

/** Rows of (inputs, targets, segments) for the whole data set, in example order. */
function buildRows(
  examples: Example[],
  seqLen: number,
  mode: BatchMode,
): { inputs: number[]; targets: number[]; segments: number[]; positions: number[] }[] {
  const rows: { inputs: number[]; targets: number[]; segments: number[]; positions: number[] }[] = [];
  for (const e of examples) {
    const { inputs, targets } = inputsAndTargets(e, seqLen);
    if (inputs.length === 0) continue;
    const last = rows.at(-1);
    if (mode === "packing" && last !== undefined && last.inputs.length + inputs.length <= seqLen) {
      const seg = last.segments.at(-1)! + 1;
      last.inputs.push(...inputs);
      last.targets.push(...targets);
      last.segments.push(...inputs.map(() => seg));
      last.positions.push(...inputs.map((_, t) => t));
    } else {
      rows.push({ inputs, targets, segments: inputs.map(() => 0), positions: inputs.map((_, t) => t) });
    }
  }
  return rows;
}

/** A batch with its counts of real (non-pad) and scored tokens. */
export interface TrainBatch {
  batch: TokenBatch;
  tokens: number;
  scored: number;
}

/** Fixed-content batches of `batchSize` rows (the last may be smaller), before shuffling. */
export function makeBatches(
  examples: Example[],
  opts: { batchSize: number; seqLen: number; mode: BatchMode },
): TrainBatch[] {
  const rows = buildRows(examples, opts.seqLen, opts.mode);
  const batches: TrainBatch[] = [];
  for (let i = 0; i < rows.length; i += opts.batchSize) {
    const group = rows.slice(i, i + opts.batchSize);
    const seq = opts.mode === "packing" ? opts.seqLen : Math.max(...group.map((r) => r.inputs.length));
    const n = group.length * seq;
    const b: TokenBatch = {
      batch: group.length,
      seq,
      tokens: new Int32Array(n),
      positions: new Int32Array(n),
      segments: opts.mode === "packing" ? new Int32Array(n).fill(-1) : null,
      targets: new Int32Array(n).fill(-1),
    };
    group.forEach((r, j) => {
      const o = j * seq;
      for (let t = 0; t < r.inputs.length; t++) {
        b.tokens[o + t] = r.inputs[t];
        b.targets[o + t] = r.targets[t];
        b.positions[o + t] = r.positions[t];
        if (b.segments !== null) b.segments[o + t] = r.segments[t];
      }
      // padding: pad tokens (id 0) sit after the content; causal attention keeps them out of real rows
      for (let t = r.inputs.length; t < seq; t++) b.positions[o + t] = t - r.inputs.length;
    });
    const tokens = group.reduce((a, r) => a + r.inputs.length, 0);
    const scored = b.targets.reduce((a, t) => a + (t >= 0 ? 1 : 0), 0);
    batches.push({ batch: b, tokens, scored });
  }
  return batches;
}

/** The batch order of one epoch: a permutation seeded by (seed, epoch). */
export function epochOrder(count: number, seed: number, epoch: number): number[] {
  return new Rng(seed, 0x0e90c, epoch).shuffle(Array.from({ length: count }, (_, i) => i));
}
