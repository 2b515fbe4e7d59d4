/**
 * Reading the JSONL files that `merglot score` takes: one JSON object per line, blank lines ignored. Every
 * problem is reported with the file and line number, because a bad line 4,812 is otherwise hard to find.
 * Field accessors take the parsed record plus its location and throw a MerglotError naming both.
 */
import { MerglotError } from "../../errors.js";
import { describeValue, MAX_TEXT_FILE_BYTES, parseJsonText, readTextFileBounded } from "../../json-input.js";

export interface JsonlRecord {
  file: string;
  /** 1-based line number in the file. */
  line: number;
  value: Record<string, unknown>;
}

export function readJsonl(file: string): JsonlRecord[] {
  const text = readTextFileBounded(file, MAX_TEXT_FILE_BYTES, "jsonl.read");
  const out: JsonlRecord[] = [];
  const lines = text.split("\n");
  lines.forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") return;
    const value = parseJsonText(line, `${file}:${i + 1}`, { code: "jsonl.parse", multiline: false });
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new MerglotError(
        "jsonl.record",
        `${file}:${i + 1}: expected a JSON object, got ${describeValue(value)}`,
      );
    }
    out.push({ file, line: i + 1, value: value as Record<string, unknown> });
  });
  if (out.length === 0) throw new MerglotError("metrics.empty", `${file}: no records (the file is empty)`);
  return out;
}

function where(r: JsonlRecord): string {
  return `${r.file}:${r.line}`;
}

function field(r: JsonlRecord, name: string, aliases: readonly string[] = []): unknown {
  for (const key of [name, ...aliases]) if (key in r.value) return r.value[key];
  const names = [name, ...aliases].map((k) => `"${k}"`).join(" or ");
  throw new MerglotError("jsonl.field", `${where(r)}: missing field ${names}`);
}

export function stringField(r: JsonlRecord, name: string, aliases: readonly string[] = []): string {
  const v = field(r, name, aliases);
  if (typeof v !== "string")
    throw new MerglotError(
      "jsonl.field",
      `${where(r)}: field "${name}" must be a string, got ${describeValue(v)}`,
    );
  return v;
}

export function labelField(r: JsonlRecord, name: string): string | number {
  const v = field(r, name);
  if (typeof v === "string" || (typeof v === "number" && Number.isFinite(v))) return v;
  throw new MerglotError(
    "jsonl.field",
    `${where(r)}: field "${name}" must be a string or a number, got ${describeValue(v)}`,
  );
}

export function numberListField(r: JsonlRecord, name: string, aliases: readonly string[] = []): number[] {
  const v = field(r, name, aliases);
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
    throw new MerglotError(
      "jsonl.field",
      `${where(r)}: field "${name}" must be a non-empty list of finite numbers`,
    );
  }
  return v as number[];
}

export function stringListField(r: JsonlRecord, name: string, aliases: readonly string[] = []): string[] {
  const v = field(r, name, aliases);
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
    throw new MerglotError("jsonl.field", `${where(r)}: field "${name}" must be a list of strings`);
  }
  return v as string[];
}

export function goldField(r: JsonlRecord, name: string): number | number[] {
  const v = field(r, name);
  const ok = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x) && x >= 0;
  if (ok(v)) return v;
  if (Array.isArray(v) && v.length > 0 && v.every(ok)) return v;
  throw new MerglotError(
    "jsonl.field",
    `${where(r)}: field "${name}" must be a choice index (integer ≥ 0) or a list of them, got ${describeValue(v)}`,
  );
}

/** Checks that two files pair up: same number of records and, where both lines carry an "id", equal ids. */
export function checkAligned(a: readonly JsonlRecord[], b: readonly JsonlRecord[]): void {
  if (a.length !== b.length) {
    throw new MerglotError(
      "metrics.length",
      `${a[0].file} has ${a.length} records but ${b[0].file} has ${b.length}; they must pair up line by line`,
    );
  }
  for (let i = 0; i < a.length; i++) {
    const ia = a[i].value.id;
    const ib = b[i].value.id;
    if (ia !== undefined && ib !== undefined && JSON.stringify(ia) !== JSON.stringify(ib)) {
      throw new MerglotError(
        "metrics.alignment",
        `record ${i + 1}: ${where(a[i])} has id ${describeValue(ia)} but ${where(b[i])} has id ${describeValue(ib)}`,
      );
    }
  }
}
