/**
 * File-system errors as words a user can act on. Node's own messages start with the code and end with the
 * system call and a path ("ENOTEMPTY: directory not empty, rmdir '/x/.out.tmp-1-2'"); the CLI prints the
 * user's path once and the cause once, so the code and the (often temporary) path are dropped here.
 */
import { MerglotError } from "../errors.js";

const CAUSES: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large for the file system",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
  ENOTEMPTY: "directory not empty",
  EEXIST: "already exists",
  EBUSY: "resource busy",
  EMFILE: "too many open files (raise the limit with `ulimit -n`, or merge fewer adapters at once)",
  ENFILE: "too many open files in the system (close other programs or raise the system limit)",
  ENOMEM: "out of memory",
  EIO: "input/output error",
  EXDEV: "cannot move across file systems",
  ENAMETOOLONG: "name too long",
  ELOOP: "too many levels of symbolic links",
};

/** A Node system error (it carries an errno code). */
export function isFsError(e: unknown): e is NodeJS.ErrnoException {
  return (
    e instanceof Error &&
    typeof (e as NodeJS.ErrnoException).code === "string" &&
    /^E[A-Z]+$/.test((e as NodeJS.ErrnoException).code!)
  );
}

/** The cause of a system error in plain words, without the code, the system call or the path. */
export function describeFsError(err: NodeJS.ErrnoException): string {
  const known = err.code ? CAUSES[err.code] : undefined;
  if (known) return known;
  // "ECODE: words, syscall 'path'" → "words"; anything else is shown as it is, minus a leading code
  const m = /^[A-Z0-9_]+: (.*?)(?:, [a-z_0-9]+(?: '.*')?)?$/s.exec(err.message);
  const text = m ? m[1]! : err.message;
  return text.replace(new RegExp(`^${err.code ?? "\\0"}:?\\s*`), "") || (err.code ?? "error");
}

/** The system error inside `e` (itself, or the cause of a MerglotError that wraps one). */
export function fsErrorIn(e: unknown): NodeJS.ErrnoException | null {
  if (isFsError(e)) return e;
  if (e instanceof Error && isFsError(e.cause)) return e.cause;
  return null;
}

/** One line for a failed write of the user's output `path`. */
export function outputWriteError(path: string, err: NodeJS.ErrnoException): MerglotError {
  return new MerglotError("output.write", `${path}: cannot write the output: ${describeFsError(err)}`, {
    cause: err,
  });
}

/**
 * `e` as a MerglotError "<path>: <cause> (<doing>)" when it is a system error, for a library step that knows
 * which of the user's files it was working on (an input adapter); anything else (a MerglotError already, or a
 * bug) is returned unchanged for the caller to rethrow.
 */
export function fileError(e: unknown, path: string, doing?: string): unknown {
  if (!isFsError(e)) return e;
  return new MerglotError(
    `fs.${e.code!.toLowerCase()}`,
    `${path}: ${describeFsError(e)}${doing ? ` (${doing})` : ""}`,
    { cause: e },
  );
}
