/**
 * Checks and resources a merge settles before any tensor is read: where a GGUF output's base config comes
 * from, which inputs are the same adapter listed twice, and the shared handles every thread reads through.
 */
import { closeSync, existsSync, openSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { fileError } from "../output/fs-errors.js";
import { isMerglotError, MerglotError } from "../errors.js";
import { readLlamaConfig } from "../formats/gguf-model.js";
import type { MergePlan } from "./plan.js";
import type { Recipe } from "./recipe.js";

/**
 * The base model folder (or config.json) a GGUF output is converted against: `output.base`, else the first
 * adapter's `base_model_name_or_path` when that is a local folder with a config.json. Read and validated
 * now, so that a missing or broken base fails before the merge, naming the recipe field.
 */
export function ggufBaseFor(r: Recipe, plan: MergePlan): string {
  const field = `${r.source}: output.base`;
  if (r.output.base !== null) {
    try {
      readLlamaConfig(r.output.base);
    } catch (e) {
      if (isMerglotError(e)) throw new MerglotError(e.code, `${field}: ${e.message}`);
      throw e;
    }
    return r.output.base;
  }
  const first = plan.adapters[0]!;
  const named = first.baseModel;
  const candidates =
    named === null ? [] : isAbsolute(named) ? [named] : [resolve(named), resolve(first.path, named)];
  for (const c of candidates) {
    if (existsSync(c) && statSync(c).isDirectory() && existsSync(join(c, "config.json"))) {
      try {
        readLlamaConfig(c);
      } catch (e) {
        if (isMerglotError(e)) throw new MerglotError(e.code, `${field}: ${e.message}`);
        throw e;
      }
      return c;
    }
  }
  throw new MerglotError(
    "recipe.field",
    `${field}: output.format gguf needs the base model's config.json (architecture and head counts): set ` +
      `output.base to the base model folder` +
      (named === null
        ? ""
        : ` (the adapters' base_model_name_or_path ${JSON.stringify(named)} is not a local folder with a config.json)`),
  );
}

/** Warnings for recipe entries that name the same adapter folder (after resolving links). */
export function samePathWarnings(plan: MergePlan): string[] {
  const seen = new Map<string, number>();
  const warnings: string[] = [];
  plan.adapters.forEach((a, i) => {
    let real: string;
    try {
      real = realpathSync(a.weightsPath);
    } catch {
      real = a.weightsPath;
    }
    const first = seen.get(real);
    if (first === undefined) seen.set(real, i);
    else
      warnings.push(
        `models[${i}] (${a.path}) is the same adapter as models[${first}]: it is merged ${countOf(plan, real)} times`,
      );
  });
  return warnings;
}

function countOf(plan: MergePlan, real: string): number {
  return plan.adapters.filter((a) => {
    try {
      return realpathSync(a.weightsPath) === real;
    } catch {
      return a.weightsPath === real;
    }
  }).length;
}

/** Warnings for different files with identical weights (same sha256): copies of one adapter. */
export function sameContentWarnings(plan: MergePlan, hashes: readonly string[]): string[] {
  const byHash = new Map<string, number>();
  const warnings: string[] = [];
  const real = plan.adapters.map((a) => {
    try {
      return realpathSync(a.weightsPath);
    } catch {
      return a.weightsPath;
    }
  });
  hashes.forEach((h, i) => {
    const first = byHash.get(h);
    if (first === undefined) byHash.set(h, i);
    else if (real[first] !== real[i])
      warnings.push(
        `models[${i}] (${plan.adapters[i]!.path}) has the same weights as models[${first}] ` +
          `(${plan.adapters[first]!.path}): a copy of one adapter is merged twice`,
      );
  });
  return warnings;
}

/**
 * Opens every input's weights file once, for all threads. Running out of descriptors is reported with
 * the adapter that could not be opened and a hint; what was opened is closed again.
 */
export function openWeights(plan: MergePlan): number[] {
  const fds: number[] = [];
  try {
    for (const a of plan.adapters) {
      try {
        fds.push(openSync(a.weightsPath, "r"));
      } catch (e) {
        throw fileError(e, a.weightsPath, "opening the adapter weights");
      }
    }
  } catch (e) {
    closeWeights(fds);
    throw e;
  }
  return fds;
}

export function closeWeights(fds: number[]): void {
  for (const fd of fds.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      /* already unusable; nothing else to release */
    }
  }
}
