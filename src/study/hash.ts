/**
 * Content hashes for step keys (DVC-style: contents, never timestamps). A file hashes its bytes; a folder
 * hashes the sorted list of (relative path, file hash) of every file in it, so renaming or editing any file
 * changes it. Files are hashed by src/eval/content-hash.ts (chunked, memoised per process).
 */
import { createHash } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { sha256File } from "../eval/content-hash.js";

export function sha256Text(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

function listFiles(dir: string, root: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) listFiles(p, root, out);
    else if (e.isFile()) out.push(relative(root, p));
  }
}

/** sha256 of a file, or of a folder's files (relative paths and contents), whichever `path` is. */
export function sha256Path(path: string): string {
  if (!statSync(path).isDirectory()) return sha256File(path);
  const files: string[] = [];
  listFiles(path, path, files);
  return sha256Text(files.map((f) => `${f}\0${sha256File(join(path, f))}`).join("\n"));
}

/** Stable JSON: object keys sorted, so equal parameters always hash equally. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}
