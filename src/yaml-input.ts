/**
 * The one way merglot reads its YAML files (recipes, studies, searches) and reports schema problems: a bounded
 * read (a folder, /dev/zero or a huge file is one clear line), duplicate keys refused, YAML errors by line and
 * column without echoing the text, an alias limit against alias bombs, a mapping at the top, and zod issues as
 * `<file>: <field path>: <problem>` with a misspelt key reported before the "missing field" it causes.
 */
import { parseDocument } from "yaml";
import type { z } from "zod";
import { MerglotError } from "./errors.js";
import { readTextFileBounded } from "./json-input.js";

/** More aliases than any hand-written file uses; an alias bomb needs far more. */
export const MAX_ALIAS_COUNT = 100;
/** A configuration file is a few kB; even 100,000 listed models stay far below this. */
const MAX_YAML_BYTES = 64 * 1024 * 1024;

/** Parse YAML text that must be a mapping; `what` describes it for the error ("a recipe must be …"). */
export function parseYamlMapping(
  text: string,
  source: string,
  code: string,
  what: string,
): Record<string, unknown> {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}: ` : "";
    const msg = e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
    throw new MerglotError(code, `${source}: ${where}${msg}`);
  }
  let obj: unknown;
  try {
    obj = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    if (e instanceof ReferenceError && /alias/i.test(e.message))
      throw new MerglotError(
        code,
        `${source}: too many YAML aliases (more than ${MAX_ALIAS_COUNT}): refused as a possible alias bomb`,
      );
    throw e;
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj))
    throw new MerglotError(code, `${source}: ${what}`);
  return obj as Record<string, unknown>;
}

/** Read a YAML file (bounded) that must be a mapping. */
export function readYamlMapping(
  path: string,
  code: string,
  what: string,
  missingCode = code,
): Record<string, unknown> {
  return parseYamlMapping(readTextFileBounded(path, MAX_YAML_BYTES, missingCode), path, code, what);
}

/** A zod issue path as written in the file: `models[0].parameters.density`. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || "(top level)";
}

/** The issue to report and its message: an unknown (misspelt) key first, since it usually causes the others. */
export function firstIssue(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues.find((i) => i.code === "unrecognized_keys") ?? error.issues[0]!;
  const message =
    issue.code === "unrecognized_keys"
      ? `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(", ")}`
      : issue.message;
  return { field: fieldPath(issue.path), message };
}
