/**
 * File-system failures (errno errors) turned into one clear line that names the user's path and the cause,
 * with a hint where the user can act on it. Used where a library step knows which of the user's files it
 * was working on (an input adapter, the output folder), so that the message never names an internal temp
 * path or repeats the error code.
 */
import { MerglotError } from "./errors.js";

const CAUSES: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large for the file system",
  EROFS: "read-only file system",
  EIO: "input/output error",
  EMFILE: "too many open files (raise the limit with `ulimit -n`, or merge fewer adapters at once)",
  ENFILE: "too many open files in the system (close other programs or raise the system limit)",
  ENOMEM: "out of memory",
};

/** Whether `e` is a Node.js system error (it has a string errno code such as "ENOSPC"). */
export function isErrnoError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === "string" && "errno" in e;
}

/** The cause of an errno error in words ("no space left on device"); the bare code for rare ones. */
export function errnoCause(e: NodeJS.ErrnoException): string {
  return CAUSES[e.code!] ?? `system error ${e.code}`;
}

/**
 * `e` as a MerglotError "<path>: <cause> (<doing>)" when it is an errno error; anything else (a
 * MerglotError already, or a bug) is returned unchanged for the caller to rethrow.
 */
export function fileError(e: unknown, path: string, doing?: string): unknown {
  if (!isErrnoError(e)) return e;
  return new MerglotError(
    `fs.${e.code!.toLowerCase()}`,
    `${path}: ${errnoCause(e)}${doing ? ` (${doing})` : ""}`,
    {
      cause: e,
    },
  );
}
