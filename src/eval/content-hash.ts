/**
 * Content hashes of files and folders for result caches: SHA-256 over each file's relative path and bytes,
 * files in sorted order, read in chunks (a model of many gigabytes is never held in memory). Hashes are
 * remembered per process by (path, size, mtime), so one run hashes each file once.
 */
import { createHash } from "node:crypto";
import { closeSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { refuseSpecialFile } from "../fsutil.js";

const memo = new Map<string, string>();

/** sha256 of a file's bytes, memoised per (path, size, mtime) within this process. */
export function sha256File(path: string): string {
  const st = statSync(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}`;
  const known = memo.get(key);
  if (known) return known;
  refuseSpecialFile(path, "file.read");
  const h = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  const d = h.digest("hex");
  memo.set(key, d);
  return d;
}

function listFiles(root: string): string[] {
  if (!statSync(root).isDirectory()) return [root];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith(".")) continue; // temp files and hidden state are not content
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(root);
  return out;
}

/** One hash over the files of the given paths (files or folders, taken in the order given). */
export function hashPaths(paths: readonly string[]): string {
  const h = createHash("sha256");
  for (const root of paths) {
    h.update(`root\0${listFiles(root).length}\0`);
    for (const f of listFiles(root)) h.update(`${relative(root, f)}\0${sha256File(f)}\n`);
  }
  return h.digest("hex");
}
