/**
 * One error type for every problem caused by the user's input (a file, a field, a flag).
 * The CLI prints `merglot: <message>` for these and exits non-zero without a stack trace;
 * any other exception is a bug and is reported as such.
 */
export class MerglotError extends Error {
  /** A short machine-readable kind, e.g. "safetensors.header", "recipe.field". */
  readonly code: string;
  /** More lines for the person reading the message (e.g. the tail of a failed command's log), or undefined. */
  readonly detail?: string;
  constructor(code: string, message: string, options?: { cause?: unknown; detail?: string }) {
    super(message, options);
    this.name = "MerglotError";
    this.code = code;
    if (options?.detail !== undefined) this.detail = options.detail;
  }
}

export function isMerglotError(e: unknown): e is MerglotError {
  return e instanceof MerglotError;
}
