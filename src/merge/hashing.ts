/**
 * The inputs' sha256 for the merge manifest, computed beside the merge and stopped as soon as the merge
 * fails (an input may be many GB: it must not keep being read after the error was reported).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { fileError } from "../output/fs-errors.js";

/** The file's sha256; rejects at the next 4 MB chunk once `signal` is aborted (leaving the loop closes the file). */
export async function sha256(path: string, signal: AbortSignal): Promise<string> {
  const h = createHash("sha256");
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) {
      if (signal.aborted) throw new Error(`${path}: hashing stopped because the merge failed`);
      h.update(chunk as Buffer);
    }
  } catch (e) {
    throw fileError(e, path, "computing its sha256");
  }
  return h.digest("hex");
}

/** The files' hashes, one file at a time (one extra open file however many inputs there are). */
export async function hashAll(paths: readonly string[], signal: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) out.push(await sha256(p, signal));
  return out;
}
