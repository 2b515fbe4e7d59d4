/**
 * Low-level temp-file helpers for writers of single files (safetensors, GGUF). Temp paths are named and
 * registered by src/output (so signals and later runs clean them up); policy for the user's outputs
 * (protected paths, ownership, atomic replacement of folders) lives in src/output/slot.ts.
 */
import { closeSync, existsSync, fsyncSync, renameSync, rmSync, statSync } from "node:fs";
import { MerglotError } from "./errors.js";
import { debrisPathFor, registerDebris, unregisterDebris } from "./output/debris.js";

/** A registered sibling temp path for `target`: same directory, so the final rename is atomic. */
export function tempPathFor(target: string): string {
  const tmp = debrisPathFor(target, "tmp");
  registerDebris(tmp, "tmp", target);
  return tmp;
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
    unregisterDebris(tmp);
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
  try {
    rmSync(tmp, { force: true });
  } finally {
    unregisterDebris(tmp);
  }
}

/**
 * Refuse a named pipe, socket or device where a file is read by offset (safetensors, GGUF) or hashed: opening
 * a FIFO blocks until some process writes to it, so without this a mistyped path would hang the run forever.
 * A path that cannot be stat'ed is left to the caller's open, which reports it.
 */
export function refuseSpecialFile(path: string, code: string): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    return;
  }
  const kind = st.isFIFO()
    ? "a named pipe"
    : st.isSocket()
      ? "a socket"
      : st.isCharacterDevice() || st.isBlockDevice()
        ? "a device"
        : null;
  if (kind) throw new MerglotError(code, `${path}: is ${kind}, not a regular file`);
}
