/**
 * Content hashes for step keys (DVC-style: contents, never timestamps). A file hashes its bytes; a folder
 * hashes the sorted list of (relative path, file hash) of every file in it, so renaming or editing any file
 * changes it. Files are read in 1 MB chunks so a multi-GB base model never sits in memory.
 */
import { createHash } from "node:crypto";
import { closeSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const memo = new Map<string, string>();

export function sha256Text(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

/** sha256 of a file's bytes, memoised per (path, size, mtime) within this process. */
export function sha256File(path: string): string {
  const st = statSync(path);
  const memoKey = `${path}\0${st.size}\0${st.mtimeMs}`;
  const hit = memo.get(memoKey);
  if (hit) return hit;
  const h = createHash("sha256");
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, "r");
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  const d = h.digest("hex");
  memo.set(memoKey, d);
  return d;
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
