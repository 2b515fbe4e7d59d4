/**
 * Everything the CLI prints goes through here, because what it prints contains input data: tensor and module
 * names, pattern keys, file names, JSON values. A name holding ESC, BEL or CR could retitle, clear or rewrite
 * the user's terminal (or hide a line of a log); bidirectional overrides can make a printed name read as
 * another. Such characters are printed as visible escapes instead.
 *
 * The escapes are the JSON ones (`\n`, `\t`, `\u001b`, `\u202e`), so escaping JSON text keeps it valid JSON
 * with the same value: JSON.stringify already escapes C0 controls inside strings, and the characters it leaves
 * raw (DEL, C1 controls, bidi controls) can only occur inside strings, where `\uXXXX` means the same thing.
 */

import { escapeControl, escapeOutput } from "../escape.js";

export { escapeControl, escapeOutput };

/** Print to stdout; control characters in `text` are escaped (its newlines kept). */
export function printOut(text: string): void {
  process.stdout.write(escapeOutput(text));
}

/** Print one message line to stderr as `merglot: <message>`; the message cannot span lines or carry controls. */
export function printMessage(message: string): void {
  process.stderr.write(`merglot: ${shorten(escapeControl(message))}\n`);
}

/** Longest message printed whole; a longer one (a crafted 10 MB tensor name) keeps its start and end. */
const MAX_MESSAGE = 2000;

function shorten(s: string): string {
  if (s.length <= MAX_MESSAGE) return s;
  const keep = MAX_MESSAGE / 2;
  return `${s.slice(0, keep)} … (${s.length - 2 * keep} characters omitted) … ${s.slice(-keep)}`;
}

/** Print to stderr; control characters in `text` are escaped (its newlines kept). */
export function printErr(text: string): void {
  process.stderr.write(escapeOutput(text));
}
