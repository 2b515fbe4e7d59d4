/**
 * One error type for every problem caused by the user's input (a file, a field, a flag).
 * The CLI prints `merglot: <message>` for these and exits non-zero without a stack trace;
 * any other exception is a bug and is reported as such.
 */
export class MerglotError extends Error {
  /** A short machine-readable kind, e.g. "safetensors.header", "recipe.field". */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MerglotError";
    this.code = code;
  }
}

export function isMerglotError(e: unknown): e is MerglotError {
  return e instanceof MerglotError;
}
