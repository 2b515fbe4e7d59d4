/** JSON Lines (one object per line; blank lines skipped) and JSON-array files. */
import { MerglotError } from "../../errors.js";
import { parseJsonText } from "../../json-input.js";
import { utf8Chunks, utf8Lines } from "../text.js";
import type { SourceRow } from "./row.js";

function asObject(v: unknown, file: string, where: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new MerglotError("data.row", `${file} ${where}: expected a JSON object, got ${Array.isArray(v) ? "an array" : typeof v === "object" ? "null" : `a ${typeof v}`}`);
  }
  return v as Record<string, unknown>;
}

export function* readJsonl(file: string): Generator<SourceRow> {
  for (const { line, lineNo } of utf8Lines(file)) {
    if (line.trim() === "") continue;
    const where = `line ${lineNo}`;
    // parse errors give the position and a reason of our own, never the line's text
    const v = parseJsonText(line, `${file} ${where}`, { code: "data.json" });
    yield { row: asObject(v, file, where), file, where };
  }
}

/**
 * A `.json` file is either JSON Lines (what the hub's own exports write) or one JSON array of objects.
 * The array form is parsed whole, so it is meant for small files.
 */
export function* readJson(file: string): Generator<SourceRow> {
  let head = "";
  for (const chunk of utf8Chunks(file)) {
    head += chunk;
    if (head.trim() !== "") break;
  }
  if (!head.trimStart().startsWith("[")) {
    yield* readJsonl(file);
    return;
  }
  let text = "";
  for (const chunk of utf8Chunks(file)) text += chunk;
  const v = parseJsonText(text, file, { code: "data.json", multiline: true });
  const rows = v as unknown[];
  for (let i = 0; i < rows.length; i++) {
    const where = `item ${i}`;
    yield { row: asObject(rows[i], file, where), file, where };
  }
}
