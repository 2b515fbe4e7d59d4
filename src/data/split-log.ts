/**
 * A record of which dataset splits were read, so that callers can prove a property of a whole run —
 * the merge search must show that "the test split is never read". Every loader call appends one entry
 * per split whose files it opened, both to a module-level log and to the caller's `onSplitRead`.
 */
export interface SplitRead {
  /** The dataset path given to the loader. */
  path: string;
  /** The config (subset) read, "default" for single-config data, undefined for a single file. */
  config?: string;
  /** The split whose files were read (for a single file: the split it was taken as). */
  split: string;
  /** The files opened. */
  files: string[];
}

const log: SplitRead[] = [];

export function recordSplitRead(read: SplitRead, listener?: (read: SplitRead) => void): void {
  const entry = { ...read, files: [...read.files] };
  log.push(entry);
  listener?.(entry);
}

/** Every split read since the process started (or since `clearSplitReads`), oldest first. */
export function splitReads(): readonly SplitRead[] {
  return log.map((r) => ({ ...r, files: [...r.files] }));
}

export function clearSplitReads(): void {
  log.length = 0;
}
