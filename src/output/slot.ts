/**
 * An output slot: the one way a command writes a file or folder the user named.
 *
 *   const out = openOutput({ path, kind: "dir", inputs, owner: folderWithMarker("merge", "merge_manifest.json"),
 *                            force, replaceForeign });   // checks; sweeps dead runs' debris; reserves a temp
 *   ... write everything under out.temp ...
 *   out.commit();                                      // atomic replacement; out.warning says if trash is left
 *   // on any error: throw out.fail(e)                 // removes the temp; names the user's path, not the temp
 *
 * Replacement is by rename only: new temp → ready; old → trash name next to it; new → target; trash deleted.
 * The target is at every moment the whole old output or the whole new one (between the two renames, for an
 * instant, nothing); a failed second rename puts the old output back. If deleting the trash fails, the new
 * output stays and `warning` names the leftover trash path. A single file over a single file is one rename.
 */
import { lstatSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { basename, dirname, relative, resolve, sep } from "node:path";
import { MerglotError } from "../errors.js";
import { debrisPathFor, registerDebris, removeTree, sweepDebris, unregisterDebris } from "./debris.js";
import { describeFsError, fsErrorIn, outputWriteError } from "./fs-errors.js";
import {
  checkFreeSpace,
  checkNotProtected,
  checkParentWritable,
  checkReplaceable,
  type Ownership,
  type ReplacePolicy,
} from "./guard.js";

export interface OutputSpec extends ReplacePolicy {
  /** The path the user gave. */
  path: string;
  /** "dir": `temp` is created as an empty folder; "file": `temp` is a free path for one file. */
  kind: "dir" | "file";
  /** Every path the command reads (folders or files): the output may never be, contain or replace them. */
  inputs: readonly string[];
  /** How an existing output written by this command is recognised (--force replaces only those). */
  owner: Ownership;
  /** Bytes the output will take, when known: refused up front if the file system has less free. */
  bytes?: number;
}

/**
 * All checks of `openOutput`, without reserving anything: call it before expensive work (planning, training)
 * so that a refused output costs nothing.
 */
export function checkOutput(spec: OutputSpec): void {
  checkNotProtected(spec.path, spec.inputs, spec);
  checkReplaceable(spec.path, spec.owner, spec);
  checkParentWritable(spec.path);
  if (spec.bytes !== undefined) checkFreeSpace(spec.path, spec.bytes);
}

/** Check the output, sweep dead runs' debris next to it, and reserve a registered temp path. */
export function openOutput(spec: OutputSpec): OutputSlot {
  checkOutput(spec);
  const parent = dirname(resolve(spec.path));
  try {
    mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw failure(spec.path, e);
  }
  sweepDebris(parent);
  return new OutputSlot(spec);
}

let warn: (message: string) => void = (m) => process.stderr.write(`merglot: warning: ${m}\n`);

/** Where slots report a replaced output that could not be deleted (default: one stderr line). */
export function onOutputWarning(sink: (message: string) => void): void {
  warn = sink;
}

function failure(path: string, e: unknown): Error {
  const fs = fsErrorIn(e);
  return fs ? outputWriteError(path, fs) : (e as Error);
}

export class OutputSlot {
  /** The user's path. */
  readonly path: string;
  /** Where the command writes; registered, so a signal or `fail` removes it. */
  readonly temp: string;
  /** Set by commit() when the replaced output could not be deleted: where it was left. */
  warning: string | null = null;
  private state: "open" | "committed" | "aborted" = "open";

  constructor(private readonly spec: OutputSpec) {
    this.path = spec.path;
    this.temp = debrisPathFor(spec.path, "tmp");
    registerDebris(this.temp, "tmp", spec.path);
    if (spec.kind === "dir") {
      try {
        mkdirSync(this.temp);
      } catch (e) {
        this.abort();
        throw failure(spec.path, e);
      }
    }
  }

  /** Move the finished temp into place (see the module comment); the slot is done afterwards. */
  commit(): void {
    if (this.state !== "open") throw new Error(`internal: output ${this.path} already ${this.state}`);
    try {
      // check again: the target may have appeared (or changed) while the result was computed
      const replacing = checkReplaceable(this.path, this.spec.owner, this.spec);
      checkNotProtected(this.path, this.spec.inputs, this.spec);
      let isDir = false;
      if (replacing) isDir = lstatSync(this.path).isDirectory();
      if (!replacing || (!isDir && this.spec.kind === "file")) {
        renameSync(this.temp, this.path); // one atomic rename (a file replaces a file or symlink in place)
      } else {
        this.swap();
      }
    } catch (e) {
      throw this.fail(e);
    }
    unregisterDebris(this.temp);
    this.state = "committed";
  }

  private swap(): void {
    const trash = debrisPathFor(this.path, "trash");
    registerDebris(trash, "trash", this.path);
    renameSync(this.path, trash);
    try {
      renameSync(this.temp, this.path);
    } catch (e) {
      try {
        renameSync(trash, this.path); // put the old output back
      } catch (back) {
        unregisterDebris(trash);
        const err = fsErrorIn(back);
        throw new MerglotError(
          "output.restore",
          `${this.path}: cannot write the output, and the previous output could not be moved back ` +
            `(${err ? describeFsError(err) : String(back)}): it is at ${trash}`,
        );
      }
      unregisterDebris(trash);
      throw e;
    }
    unregisterDebris(this.temp);
    try {
      removeTree(trash);
      unregisterDebris(trash);
    } catch (e) {
      // the new output is in place; what is left of the old one is named so the user can remove it
      unregisterDebris(trash);
      const err = fsErrorIn(e);
      this.warning =
        `${this.path}: replaced, but the previous output could not be deleted completely ` +
        `(${err ? describeFsError(err) : String(e)}): it is left at ${trash}`;
      warn(this.warning);
    }
  }

  /** Remove the temp path (safe to call more than once, and after commit). */
  abort(): void {
    if (this.state !== "open") return;
    this.state = "aborted";
    try {
      removeTree(this.temp);
    } catch {
      /* the next run's sweep removes it */
    }
    unregisterDebris(this.temp);
  }

  /**
   * Abort and turn `e` into the error to throw: a file-system error becomes one line naming the user's path
   * and the cause (never the temp path); anything else is returned as it is.
   */
  fail(e: unknown): Error {
    this.abort();
    const fs = fsErrorIn(e);
    if (!fs || (e instanceof MerglotError && e.code.startsWith("output."))) return e as Error;
    const where = (fs as { dest?: string }).dest ?? fs.path;
    return where === undefined || this.owns(where) ? outputWriteError(this.path, fs) : (e as Error);
  }

  /** Whether a path in an error is this output's (target, temp, trash, or inside them), not an input. */
  private owns(p: string): boolean {
    const rel = relative(dirname(resolve(this.path)), resolve(p));
    if (rel === "") return true;
    const first = rel.split(sep)[0]!;
    const base = basename(this.path);
    return first === base || (first.startsWith(".") && first.includes(`.${base}.`));
  }
}

/** Write a small text file (a manifest, a summary) as an output of its own, with the same policy. */
export function writeOutputFile(spec: Omit<OutputSpec, "kind">, text: string): void {
  const slot = openOutput({ ...spec, kind: "file" });
  try {
    writeFileSync(slot.temp, text);
    slot.commit();
  } catch (e) {
    throw slot.fail(e);
  }
}
