/**
 * JSON from files the user points us at, handled as hostile input.
 *
 * - Errors never echo the file: Node's JSON.parse messages quote the text around the error
 *   (`Unexpected token 'r', "root:x:0:0"... is not valid JSON`), so a config symlinked to /etc/shadow would
 *   print its first bytes. We report the line and column and a reason of our own instead.
 * - Nesting is bounded before anything recursive touches the value (JSON.stringify, structuredClone and the
 *   YAML/zod walkers overflow the stack around 10,000 levels; no real config is deeper than a dozen).
 * - Files are size-checked before they are read, so a huge or endless file (a FIFO, /dev/zero) is refused
 *   instead of exhausting memory.
 * - `describeValue` names what a value is without serialising it (bounded, never recursive).
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { MerglotError } from "./errors.js";
import { fileError } from "./output/fs-errors.js";

/** Deepest nesting accepted in any JSON input (objects and arrays together). */
export const MAX_JSON_DEPTH = 512;

export interface JsonSyntaxProblem {
  /** 0-based offset into the text. */
  offset: number;
  reason: string;
}

const TOO_DEEP = "nested too deeply";
const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
/** A literal or number at `lastIndex` (sticky). */
const SCALAR = /(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/y;

/**
 * Check `text` against the JSON grammar without building anything; returns the first problem (with its
 * offset) or undefined. Iterative, so any depth is safe to scan; depth above `maxDepth` is a problem.
 */
export function findJsonProblem(text: string, maxDepth = MAX_JSON_DEPTH): JsonSyntaxProblem | undefined {
  const n = text.length;
  let i = 0;
  // Each open container: "{" or "[". `expect` says what may come next.
  const stack: number[] = [];
  type Expect = "value" | "valueOrClose" | "key" | "keyOrClose" | "colon" | "commaOrClose" | "end";
  let expect: Expect = "value";
  const problem = (reason: string): JsonSyntaxProblem => ({ offset: Math.min(i, n), reason });
  const afterValue = (): Expect => (stack.length === 0 ? "end" : "commaOrClose");
  while (true) {
    while (i < n && WS.has(text.charCodeAt(i))) i++;
    if (i >= n) {
      return expect === "end" ? undefined : problem("unexpected end of input");
    }
    const c = text.charCodeAt(i);
    switch (expect) {
      case "end":
        return problem("unexpected text after the JSON value");
      case "colon":
        if (c !== 0x3a) return problem("expected ':' after an object key");
        i++;
        expect = "value";
        continue;
      case "commaOrClose": {
        const top = stack[stack.length - 1]!;
        if (c === 0x2c) {
          i++;
          expect = top === 0x7b ? "key" : "value";
        } else if ((c === 0x7d && top === 0x7b) || (c === 0x5d && top === 0x5b)) {
          i++;
          stack.pop();
          expect = afterValue();
        } else {
          return problem(top === 0x7b ? "expected ',' or '}' in an object" : "expected ',' or ']' in a list");
        }
        continue;
      }
      case "key":
      case "keyOrClose":
        if (c === 0x7d && expect === "keyOrClose") {
          i++;
          stack.pop();
          expect = afterValue();
          continue;
        }
        if (c !== 0x22) return problem("expected a double-quoted object key");
        {
          const p = scanString(text, i);
          if (typeof p !== "number") return p;
          i = p;
        }
        expect = "colon";
        continue;
      case "value":
      case "valueOrClose":
        if (c === 0x5d && expect === "valueOrClose") {
          i++;
          stack.pop();
          expect = afterValue();
          continue;
        }
        if (c === 0x7b || c === 0x5b) {
          if (stack.length >= maxDepth) return problem(TOO_DEEP);
          stack.push(c);
          i++;
          expect = c === 0x7b ? "keyOrClose" : "valueOrClose";
          continue;
        }
        if (c === 0x22) {
          const p = scanString(text, i);
          if (typeof p !== "number") return p;
          i = p;
        } else {
          SCALAR.lastIndex = i;
          const r = SCALAR.exec(text);
          if (!r) return problem("unexpected character");
          i += r[0].length;
        }
        expect = afterValue();
        continue;
    }
  }
}

/** End offset (exclusive) of the string literal starting at `start`, or the problem in it. */
function scanString(text: string, start: number): number | JsonSyntaxProblem {
  let i = start + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c < 0x20) return { offset: i, reason: "control character inside a string" };
    if (c === 0x5c) {
      const e = text.charCodeAt(i + 1);
      if (e === 0x75) {
        if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6)))
          return { offset: i, reason: "bad \\u escape in a string" };
        i += 6;
        continue;
      }
      if (!'"\\/bfnrt'.includes(String.fromCharCode(e)) || Number.isNaN(e))
        return { offset: i, reason: "bad escape in a string" };
      i += 2;
      continue;
    }
    i++;
  }
  return { offset: text.length, reason: "unterminated string" };
}

/** 1-based line and column of `offset` in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Parse JSON text read from `where` (a file, or `file:line`). Syntax errors and excessive nesting throw a
 * MerglotError with `code` that names the position and a reason, never the text. `multiline: false` (JSONL
 * lines) reports the column only.
 */
export function parseJsonText(
  text: string,
  where: string,
  opts: { code?: string; maxDepth?: number; multiline?: boolean } = {},
): unknown {
  const code = opts.code ?? "json.parse";
  const maxDepth = opts.maxDepth ?? MAX_JSON_DEPTH;
  const fail = (problem: JsonSyntaxProblem): never => {
    const at = lineColumn(text, problem.offset);
    const pos = opts.multiline === false ? `column ${at.column}` : `line ${at.line}, column ${at.column}`;
    if (problem.reason === TOO_DEEP) {
      throw new MerglotError(code, `${where}: JSON nested deeper than ${maxDepth} levels (at ${pos})`);
    }
    throw new MerglotError(code, `${where}: not valid JSON (${problem.reason} at ${pos})`);
  };
  let value: unknown;
  try {
    value = JSON.parse(text); // native and fast; its message is never shown (it quotes the text)
  } catch {
    fail(findJsonProblem(text, maxDepth) ?? { offset: 0, reason: "rejected by the JSON parser" });
  }
  // Only a text longer than maxDepth can nest deeper than it; then find where (the grammar is already fine).
  if (text.length > maxDepth) {
    const deep = findTooDeep(text, maxDepth);
    if (deep !== undefined) fail({ offset: deep, reason: TOO_DEEP });
  }
  return value;
}

/** Offset of the first bracket that opens level maxDepth + 1 in valid JSON `text`, or undefined. */
function findTooDeep(text: string, maxDepth: number): number | undefined {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // skip the string: valid JSON, so every backslash escapes the next character
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) return i;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return undefined;
}

/**
 * Read a file of at most `maxBytes` as UTF-8, refusing folders and oversized content with a MerglotError
 * naming `path` (checked on the open descriptor, so a symlink swap cannot slip past). A regular file's size is
 * checked before reading; a pipe or device is read only up to the bound (so /dev/zero is refused, not
 * read forever).
 */
export function readTextFileBounded(path: string, maxBytes: number, code = "file.read"): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT") throw new MerglotError(code, `${path}: no such file`);
    if (err.code === "EACCES" || err.code === "EPERM")
      throw new MerglotError(code, `${path}: permission denied`);
    if (err.code === "EISDIR") throw new MerglotError(code, `${path}: is a folder, not a file`);
    throw fileError(e, path, "reading"); // e.g. too many open files: never reported as a malformed file
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new MerglotError(code, `${path}: is a folder, not a file`);
    const tooLarge = (size: string): never => {
      throw new MerglotError(
        code,
        `${path}: ${size} is more than the ${maxBytes} bytes accepted for this file`,
      );
    };
    if (st.isFile()) {
      if (st.size > maxBytes) tooLarge(`${st.size} bytes`);
    }
    // A pipe or device (`--pred <(jq …)`, /dev/stdin) has no size: read in chunks up to the bound.
    const chunks: Buffer[] = [];
    let total = 0;
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const k = readSync(fd, chunk, 0, chunk.length, null);
      if (k === 0) break;
      total += k;
      if (total > maxBytes) tooLarge("its content");
      chunks.push(Buffer.from(chunk.subarray(0, k)));
    }
    return Buffer.concat(chunks, total).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** Largest text file read whole (a JavaScript string holds at most ~512 MiB): datasets, predictions. */
export const MAX_TEXT_FILE_BYTES = 500 * 1024 * 1024;

/** Default bound for small JSON files (configs, tokenizer configs, training state): 64 MiB. */
export const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

/** Read and parse a JSON file (bounded size and depth; errors name the file and position only). */
export function readJsonFile(
  path: string,
  opts: { code?: string; maxBytes?: number; maxDepth?: number } = {},
): unknown {
  const text = readTextFileBounded(path, opts.maxBytes ?? MAX_CONFIG_BYTES, opts.code);
  return parseJsonText(text, path, opts);
}

/** What a JSON value is, for error messages: short scalars shown, containers and long strings only named. */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return v.length <= 40 ? JSON.stringify(v) : "a long string";
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return typeof v;
}
