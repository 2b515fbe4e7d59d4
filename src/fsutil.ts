import { closeSync, existsSync, fsyncSync, renameSync, rmSync } from "node:fs";
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

/** Flush, close and rename a finished temp file into place; if any step fails the temp file is removed. */
export function commitTempFile(fd: number, tmp: string, target: string): void {
  try {
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, target);
  } catch (e) {
    discardTempFile(-1, tmp);
    throw e;
  }
}

/** Close a temp file (ignoring errors: it is unusable anyway) and remove it. Safe to call more than once. */
export function discardTempFile(fd: number, tmp: string): void {
  if (fd >= 0) {
    try {
      closeSync(fd);
    } catch {
      /* removing the file is what matters */
    }
  }
  rmSync(tmp, { force: true });
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
