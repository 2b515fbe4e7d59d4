/**
 * `extends: OTHER.yaml` in a study file: the study is the other file's document with this file's keys laid over
 * it, so a variant of a study (the demo's search and every-method studies) states only what it changes and its
 * unchanged steps keep their keys (and cached results).
 *
 * Merge rule, applied recursively: a mapping merges key by key; anything else (a list, a scalar) replaces the
 * base's value whole; `null` removes the key. The base file must sit in the same folder, because the relative
 * paths in both files are read from the extending file's folder. Chains are allowed; a cycle is refused.
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { MerglotError } from "../errors.js";
import { readYamlMapping } from "../yaml-input.js";

const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** `over` laid over `base` by the merge rule above (neither is modified). */
export function overlay(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isMapping(v) && isMapping(out[k])) out[k] = overlay(out[k], v);
    else out[k] = v;
  }
  return out;
}

/** The study document of `path` with its `extends` chain resolved, and the base files it read (nearest first). */
export function readStudyDocument(
  path: string,
  chain: readonly string[] = [],
): { doc: Record<string, unknown>; bases: string[] } {
  const doc = readYamlMapping(
    path,
    "study.yaml",
    "a study must be a YAML mapping (base_model, tasks, …)",
    "study.missing",
  );
  const ext = doc.extends;
  if (ext === undefined) return { doc, bases: [] };
  if (typeof ext !== "string" || ext === "")
    throw new MerglotError("study.yaml", `${path}: extends: expected the file name of another study`);
  const here = resolve(path);
  const basePath = resolve(dirname(here), ext);
  if (dirname(basePath) !== dirname(here))
    throw new MerglotError(
      "study.yaml",
      `${path}: extends: ${ext}: the base study must be in the same folder (the relative paths of both files are read from this one's folder)`,
    );
  if (basePath === here || chain.includes(basePath))
    throw new MerglotError(
      "study.yaml",
      `${path}: extends: ${ext}: a cycle (${[...chain, here, basePath].join(" → ")})`,
    );
  if (!existsSync(basePath))
    throw new MerglotError("study.missing", `${path}: extends: ${ext}: study file not found`);
  const { extends: _e, ...rest } = doc;
  const base = readStudyDocument(basePath, [...chain, here]);
  return { doc: overlay(base.doc, rest), bases: [ext, ...base.bases] };
}
