/**
 * The checks made before an output is written: never an input or a folder above the work (always refused),
 * never a path merglot did not write unless the user says so explicitly, and a parent folder that can take
 * the result. See `Ownership` for how each command recognises its own outputs.
 */
import {
  accessSync,
  closeSync,
  constants,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  realpathSync,
  statfsSync,
  statSync,
} from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import { MerglotError } from "../errors.js";
import { describeFsError, isFsError } from "./fs-errors.js";

/**
 * How a command recognises an output it wrote itself: `--force` replaces only such outputs (and empty
 * folders); anything else needs `--force-replace-foreign`.
 */
export interface Ownership {
  /** The command, for messages ("merge", "train"). */
  command: string;
  /** What proves ownership, for messages ("no merge_manifest.json"). */
  missing: string;
  /** Whether the existing path (followed if it is a symlink) is such an output. */
  owns(path: string): boolean;
}

/** A folder output recognised by a file merglot always writes into it (e.g. merge_manifest.json). */
export function folderWithMarker(command: string, marker: string): Ownership {
  return {
    command,
    missing: `no ${marker}`,
    owns: (path) => {
      try {
        if (!statSync(path).isDirectory()) return false;
        return readdirSync(path).length === 0 || statSync(join(path, marker)).isFile();
      } catch {
        return false;
      }
    },
  };
}

/** A single-file output recognised by its leading magic bytes (e.g. "GGUF"). */
export function fileWithMagic(command: string, magic: string): Ownership {
  return {
    command,
    missing: `not a ${magic} file`,
    owns: (path) => {
      let fd = -1;
      try {
        if (!statSync(path).isFile()) return false;
        fd = openSync(path, "r");
        const buf = Buffer.alloc(magic.length);
        return readSync(fd, buf, 0, buf.length, 0) === buf.length && buf.toString("latin1") === magic;
      } catch {
        return false;
      } finally {
        if (fd >= 0) closeSync(fd);
      }
    },
  };
}

/** What the user allowed for an existing output. */
export interface ReplacePolicy {
  /** --force: replace an existing output this command wrote. */
  force?: boolean;
  /** --force-replace-foreign: replace whatever is there (still never an input). */
  replaceForeign?: boolean;
}

/** `path` as an absolute path whose existing part is resolved through symlinks (the path need not exist). */
export function realPathOf(path: string): string {
  const abs = resolve(path);
  let head = abs;
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail.reverse());
    } catch {
      const up = dirname(head);
      if (up === head) return abs;
      tail.push(basename(head));
      head = up;
    }
  }
}

function inside(child: string, parent: string): boolean {
  return child !== parent && child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

/** The forms a path takes: as written (absolute), where its last component lives, and what it points to. */
function forms(path: string): string[] {
  const abs = resolve(path);
  const out = new Set([abs, join(realPathOf(dirname(abs)), basename(abs)), realPathOf(abs)]);
  return [...out];
}

function refuse(target: string, why: string): never {
  throw new MerglotError("output.protected", `${target}: refusing to write the output there: ${why}`);
}

/**
 * Refuse an output that is, contains, or (when it would replace something, or `--force` is given) lies
 * inside one of `inputs`, and one that is the root folder, the current folder or a folder above it.
 * Symlinks are resolved on both sides. No flag overrides this.
 */
export function checkNotProtected(
  target: string,
  inputs: readonly string[],
  policy: ReplacePolicy = {},
): void {
  const t = forms(target);
  const cwdForms = new Set([resolve(process.cwd()), realPathOf(process.cwd())]);
  for (const f of t) {
    if (dirname(f) === f) refuse(target, "it is the root folder");
    for (const c of cwdForms) {
      if (f === c) refuse(target, "it is the current folder");
      if (inside(c, f)) refuse(target, "it contains the current folder");
    }
  }
  const replacing = existsOrLink(target) || policy.force === true || policy.replaceForeign === true;
  for (const input of inputs) {
    const iForms = new Set([resolve(input), realPathOf(input)]);
    for (const f of t) {
      for (const i of iForms) {
        if (f === i) refuse(target, `it is an input (${input})`);
        if (inside(i, f)) refuse(target, `it contains an input (${input})`);
        if (replacing && inside(f, i)) refuse(target, `it lies inside an input (${input})`);
      }
    }
  }
}

function existsOrLink(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Decide about an existing output: returns whether something is there to replace; throws when the policy
 * does not allow replacing it.
 */
export function checkReplaceable(target: string, owner: Ownership, policy: ReplacePolicy): boolean {
  if (!existsOrLink(target)) return false;
  const owned = owner.owns(target);
  if (policy.replaceForeign) return true;
  if (owned && policy.force) return true;
  if (owned)
    throw new MerglotError("output.exists", `${target}: output already exists (use --force to overwrite)`);
  throw new MerglotError(
    "output.foreign",
    `${target}: already exists and is not a merglot ${owner.command} output (${owner.missing}); ` +
      `pass --force-replace-foreign to replace it`,
  );
}

/** The nearest existing folder at or above `dir`. */
function existingAncestor(dir: string): string {
  let d = resolve(dir);
  while (!existsOrLink(d)) {
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  return d;
}

/** Check, before any expensive work, that the folder that will hold `target` can be written. */
export function checkParentWritable(target: string): void {
  const anc = existingAncestor(dirname(resolve(target)));
  try {
    if (!statSync(anc).isDirectory()) {
      throw new MerglotError("output.parent", `${target}: cannot write the output: ${anc} is not a folder`);
    }
    accessSync(anc, constants.W_OK | constants.X_OK);
  } catch (e) {
    if (isFsError(e)) {
      throw new MerglotError("output.write", `${target}: cannot write the output: ${describeFsError(e)}`, {
        cause: e,
      });
    }
    throw e;
  }
}

/** Refuse early when the file system that will hold `target` has less than `bytes` free. */
export function checkFreeSpace(target: string, bytes: number): void {
  let free: number;
  try {
    const s = statfsSync(existingAncestor(dirname(resolve(target))));
    free = Number(s.bavail) * Number(s.bsize);
  } catch {
    return; // not knowable here: the write itself reports a full disk
  }
  if (free < bytes) {
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    throw new MerglotError(
      "output.space",
      `${target}: cannot write the output: no space left on device (needs ${mib(bytes)}, ${mib(free)} free)`,
    );
  }
}
