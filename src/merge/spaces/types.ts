import type { LowRank } from "../lowrank.js";
export type { OperatorBinder } from "../binder.js";

/** One adapter's factors for one module, with its recipe settings. */
export interface ModuleInput {
  /** Position of the adapter in the recipe's models list (seeds DARE's stream). */
  index: number;
  /** lora_A, rank × in, row-major. */
  a: Float32Array;
  /** lora_B, out × rank, row-major. */
  b: Float32Array;
  rank: number;
  /** PEFT scaling s_i of this module (α/r or α/√r). */
  scaling: number;
  weight: number;
  density: number;
}

/** Everything a space needs to merge one module. */
export interface ModuleJob {
  name: string;
  out: number;
  in: number;
  inputs: ModuleInput[];
  /** The rank the output module is declared with (results are padded or truncated to it). */
  targetRank: number;
}

export type SpaceResult = LowRank & { notes?: string[] };
