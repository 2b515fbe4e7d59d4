/**
 * Control characters in input data (tensor and module names, pattern keys, file names) made visible for a
 * terminal; see src/cli/terminal.ts, where everything the CLI prints goes through these. Here, below every
 * layer, so that library code that formats text for people (inspect's table) escapes what it quotes.
 */

/** C0 controls, DEL, C1 controls, bidi marks, embeddings, overrides and isolates, line/paragraph separators. */
// eslint-disable-next-line no-control-regex -- matching control characters is this module's job
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same set less the newline: for multi-line output (tables, pretty JSON), whose own newlines stay. */
const CONTROL_BUT_NEWLINE =
  // eslint-disable-next-line no-control-regex -- as above
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const SHORT: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" };

function escapeOne(c: string): string {
  return SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** `s` with every control character (newlines included) as a visible escape: for one-line messages and names. */
export function escapeControl(s: string): string {
  return s.replace(CONTROL, escapeOne);
}

/** `text` with every control character except the newline escaped: for multi-line output. */
export function escapeOutput(text: string): string {
  return text.replace(CONTROL_BUT_NEWLINE, escapeOne);
}
