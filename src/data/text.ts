/**
 * Strict UTF-8 text reading for dataset files. A byte sequence that is not UTF-8 is an input error
 * (naming the file and the byte offset of the chunk where decoding failed), never silently replaced
 * with U+FFFD: a replaced character would change the rows, their hash and every score downstream.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { MerglotError } from "../errors.js";

const CHUNK = 1 << 20;

/** Decodes a file chunk by chunk (fatal decoder in streaming mode) and yields its text pieces. */
export function* utf8Chunks(file: string): Generator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  const fd = openSync(file, "r");
  const buf = Buffer.allocUnsafe(CHUNK);
  let offset = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      try {
        const text = decoder.decode(buf.subarray(0, n), { stream: n > 0 });
        if (text) yield text;
      } catch {
        throw new MerglotError(
          "data.encoding",
          `${file}: not valid UTF-8 (in bytes ${offset}..${offset + Math.max(n, 1) - 1}); save the file as UTF-8`,
        );
      }
      if (n === 0) return;
      offset += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** Yields the lines of a UTF-8 file with their 1-based line numbers ("\n" or "\r\n" endings). */
export function* utf8Lines(file: string): Generator<{ line: string; lineNo: number }> {
  let rest = "";
  let lineNo = 0;
  for (const chunk of utf8Chunks(file)) {
    rest += chunk;
    let start = 0;
    for (let nl = rest.indexOf("\n", start); nl >= 0; nl = rest.indexOf("\n", start)) {
      const end = nl > start && rest.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      yield { line: rest.slice(start, end), lineNo: ++lineNo };
      start = nl + 1;
    }
    rest = rest.slice(start);
  }
  if (rest.length > 0) yield { line: rest.endsWith("\r") ? rest.slice(0, -1) : rest, lineNo: ++lineNo };
}

/** Input text made safe for a one-line error message: control characters escaped, length capped. */
export function printable(s: string, max = 60): string {
  // eslint-disable-next-line no-control-regex
  const esc = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return esc.length > max ? `${esc.slice(0, max)}…` : esc;
}
