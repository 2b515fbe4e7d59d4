import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { MerglotError } from "./errors.js";

/** A sibling temp path for `target`: same directory, so the final rename is atomic. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${Date.now().toString(36)}`);
}

/** Refuse to clobber an existing output unless the user asked for it. */
export function ensureWritable(target: string, force: boolean): void {
  if (existsSync(target) && !force) {
    throw new MerglotError("output.exists", `${target}: output already exists (use --force to overwrite)`);
  }
}

/** Flush a file to disk by path (best effort on filesystems that do not support it). */
export function fsyncPath(path: string): void {
  let fd = -1;
  try {
    fd = openSync(path, "r");
    fsyncSync(fd);
  } catch {
    /* fsync is advisory here */
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** Move a finished temp file or folder into place, replacing what is there when `force`. */
export function commitTemp(tmp: string, target: string, force: boolean): void {
  if (existsSync(target)) {
    if (!force) {
      rmSync(tmp, { recursive: true, force: true });
      throw new MerglotError("output.exists", `${target}: output already exists (use --force to overwrite)`);
    }
    rmSync(target, { recursive: true, force: true });
  }
  renameSync(tmp, target);
}
