/**
 * The real layouts of the study's datasets, recognised by their columns, and the canonical layout
 * (src/data/example.ts). Each schema turns one source row into zero or more canonical examples
 * (zero: a row of another language; several: wiki_lingua articles hold one pair per section).
 */
import { MerglotError } from "../errors.js";
import { SENTIMENT_LABELS, type Example } from "./example.js";
import { LANGUAGE_NAMES } from "./languages.js";
import type { SourceRow } from "./readers/index.js";
import { printable } from "./text.js";

export const BUILTIN_TASKS = ["sentiment", "reasoning", "summarization", "extraction"] as const;
export type BuiltinTask = (typeof BUILTIN_TASKS)[number];

export function isBuiltinTask(task: string): task is BuiltinTask {
  return (BUILTIN_TASKS as readonly string[]).includes(task);
}

/** Where a row is going: its split, its position in the split, and the language that applies. */
export interface RowContext {
  split: string;
  /** 0-based position of the row among the split's rows, across its files in order. */
  index: number;
  /** The language of the config (tyqiangz "german" → "de"), or the caller's `lang`. */
  lang?: string;
  /** Keep only rows of this language (schemas with a language column, or canonical rows with `lang`). */
  only?: string;
}

export interface Schema {
  name: string;
  task: string;
  /** Columns that must all be present for this schema to be recognised. */
  signature: string[];
  /** Columns that must all be absent (to tell apart layouts sharing a signature). */
  absent?: string[];
  /** One source row gives several examples (sampled together as a group, see sample.ts). */
  grouped?: boolean;
  convert(src: SourceRow, ctx: RowContext): Example[];
}

const at = (src: SourceRow, field: string): string => `${src.file} ${src.where} field "${field}"`;

function str(src: SourceRow, field: string): string {
  const v = src.row[field];
  if (v === undefined) {
    throw new MerglotError(
      "data.column",
      `${src.file} ${src.where}: missing field "${field}" (fields found: ${Object.keys(src.row).map((x) => printable(x, 40)).join(", ")})`,
    );
  }
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  throw new MerglotError("data.field", `${at(src, field)}: expected text, got ${v === null ? "null" : typeof v}`);
}

function needLang(src: SourceRow, ctx: RowContext): string {
  if (ctx.lang) return ctx.lang;
  throw new MerglotError("data.lang", `${src.file}: cannot tell the language of its rows; pass a language (--lang)`);
}

function rowId(src: SourceRow, ctx: RowContext, lang: string, field?: string): string {
  const v = field ? src.row[field] : undefined;
  if (typeof v === "string" && v !== "") return v;
  if (typeof v === "number") return String(v);
  return `${lang}-${ctx.split}-${ctx.index}`;
}

function sentimentLabel(src: SourceRow, field: string, ids: boolean): string {
  const v = src.row[field];
  if (typeof v === "string") {
    const l = v.trim().toLowerCase();
    if ((SENTIMENT_LABELS as readonly string[]).includes(l)) return l;
  } else if (ids && typeof v === "number" && Number.isInteger(v) && v >= 0 && v < SENTIMENT_LABELS.length) {
    return SENTIMENT_LABELS[v]!;
  }
  const shown = typeof v === "string" ? `"${printable(v)}"` : String(v);
  const set = ids ? "0=positive, 1=neutral, 2=negative" : SENTIMENT_LABELS.join(", ");
  throw new MerglotError("data.label", `${at(src, field)}: label ${shown} is outside the label set (${set})`);
}

const LETTERS = ["A", "B", "C", "D", "E"];

function fiveChoices(src: SourceRow, field: string, texts: unknown): string[] {
  if (!Array.isArray(texts) || !texts.every((t) => typeof t === "string")) {
    throw new MerglotError("data.field", `${at(src, field)}: expected a list of choice texts`);
  }
  if (texts.length !== LETTERS.length) {
    throw new MerglotError(
      "data.choices",
      `${at(src, field)}: ${texts.length} choices, expected ${LETTERS.length} (A–E)`,
    );
  }
  return texts as string[];
}

/** `{label: [...], text: [...]}` (Arrow struct of lists) or `[{label, text}, …]` (list of structs). */
function structOfLists(v: unknown, keys: string[]): Record<string, unknown[]> | undefined {
  if (Array.isArray(v)) {
    if (!v.every((x) => x && typeof x === "object")) return undefined;
    return Object.fromEntries(keys.map((k) => [k, v.map((x) => (x as Record<string, unknown>)[k])]));
  }
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (keys.every((k) => Array.isArray(o[k]))) return o as Record<string, unknown[]>;
  }
  return undefined;
}

const clap: Schema = {
  name: "clapAI/MultiLingualSentiment",
  task: "sentiment",
  signature: ["text", "label", "source", "domain", "language"],
  convert(src, ctx) {
    // Codes ("de") as the card lists; a full name ("German") is mapped to its code as well.
    const raw = str(src, "language").trim();
    const lang = LANGUAGE_NAMES[raw.toLowerCase()] ?? raw;
    if (ctx.only && lang !== ctx.only) return [];
    return [{ id: rowId(src, ctx, lang), lang, text: str(src, "text"), label: sentimentLabel(src, "label", false) }];
  },
};

const tyqiangz: Schema = {
  name: "tyqiangz/multilingual-sentiments",
  task: "sentiment",
  signature: ["text", "label", "source"],
  absent: ["language", "lang"],
  convert(src, ctx) {
    const lang = needLang(src, ctx);
    return [{ id: rowId(src, ctx, lang), lang, text: str(src, "text"), label: sentimentLabel(src, "label", true) }];
  },
};

const mcsqa: Schema = {
  name: "yusuke1997/mCSQA",
  task: "reasoning",
  signature: ["id", "question", "choices", "answerKey"],
  convert(src, ctx) {
    const lang = needLang(src, ctx);
    const ch = structOfLists(src.row.choices, ["label", "text"]);
    if (!ch) throw new MerglotError("data.field", `${at(src, "choices")}: expected {label: [...], text: [...]}`);
    const texts = fiveChoices(src, "choices.text", ch.text);
    const labels = ch.label!.map(String);
    if (labels.length !== texts.length) {
      throw new MerglotError("data.choices", `${at(src, "choices")}: ${labels.length} labels for ${texts.length} texts`);
    }
    const key = str(src, "answerKey");
    const pos = labels.indexOf(key);
    if (pos < 0) {
      throw new MerglotError(
        "data.label",
        `${at(src, "answerKey")}: answer "${printable(key)}" is outside the choice labels (${labels.join(", ")})`,
      );
    }
    return [{ id: rowId(src, ctx, lang, "id"), lang, question: str(src, "question"), choices: texts, answer: LETTERS[pos]! }];
  },
};

const gemWikiLingua: Schema = {
  name: "GEM/wiki_lingua",
  task: "summarization",
  signature: ["gem_id", "source", "target"],
  convert(src, ctx) {
    const rowLang = src.row.source_language;
    const lang = typeof rowLang === "string" && rowLang ? rowLang : needLang(src, ctx);
    if (ctx.only && lang !== ctx.only) return [];
    return [{ id: rowId(src, ctx, lang, "gem_id"), lang, document: str(src, "source"), summary: str(src, "target") }];
  },
};

const esdurmusWikiLingua: Schema = {
  name: "esdurmus/wiki_lingua",
  task: "summarization",
  signature: ["url", "article"],
  grouped: true,
  convert(src, ctx) {
    const lang = needLang(src, ctx);
    const art = structOfLists(src.row.article, ["section_name", "document", "summary"]);
    if (!art) {
      throw new MerglotError("data.field", `${at(src, "article")}: expected {section_name: [...], document: [...], summary: [...]}`);
    }
    const n = art.document!.length;
    if (art.summary!.length !== n) {
      throw new MerglotError("data.field", `${at(src, "article")}: ${n} documents but ${art.summary!.length} summaries`);
    }
    const out: Example[] = [];
    for (let i = 0; i < n; i++) {
      const document = art.document![i];
      const summary = art.summary![i];
      if (typeof document !== "string" || typeof summary !== "string") {
        throw new MerglotError("data.field", `${at(src, "article")}: section ${i} lacks document or summary text`);
      }
      out.push({ id: `${lang}-${ctx.split}-${ctx.index}-${i}`, lang, document, summary });
    }
    return out;
  },
};

/** Canonical rows: what `merglot data` writes, and any file whose columns are named (or mapped) so. */
export function canonicalSchema(task: BuiltinTask): Schema {
  const fields: Record<BuiltinTask, string[]> = {
    sentiment: ["text", "label"],
    reasoning: ["question", "choices", "answer"],
    summarization: ["document", "summary"],
    extraction: ["text"],
  };
  return {
    name: "canonical",
    task,
    signature: fields[task],
    convert(src, ctx) {
      const rowLang = src.row.lang;
      const lang = typeof rowLang === "string" && rowLang ? rowLang : needLang(src, ctx);
      if (ctx.only && lang !== ctx.only) return [];
      const id = rowId(src, ctx, lang, "id");
      switch (task) {
        case "sentiment":
          return [{ id, lang, text: str(src, "text"), label: sentimentLabel(src, "label", false) }];
        case "reasoning": {
          const choices = fiveChoices(src, "choices", src.row.choices);
          const answer = str(src, "answer").trim().toUpperCase();
          if (!LETTERS.includes(answer)) {
            throw new MerglotError(
              "data.label",
              `${at(src, "answer")}: answer "${printable(str(src, "answer"))}" is outside the label set (A, B, C, D, E)`,
            );
          }
          return [{ id, lang, question: str(src, "question"), choices, answer }];
        }
        case "summarization":
          return [{ id, lang, document: str(src, "document"), summary: str(src, "summary") }];
        case "extraction": {
          const ex: Example = { id, lang, text: str(src, "text") };
          const items = src.row.items;
          if (items !== undefined && items !== null) {
            if (!Array.isArray(items) || !items.every((x) => typeof x === "string")) {
              throw new MerglotError("data.field", `${at(src, "items")}: expected a list of strings`);
            }
            ex.items = items;
          }
          return [ex];
        }
      }
    },
  };
}

const REAL: Schema[] = [clap, tyqiangz, mcsqa, gemWikiLingua, esdurmusWikiLingua];

/**
 * The schema of a split from its columns: a real dataset's layout first, else the canonical one.
 * A missing canonical column is the error, naming it and listing the columns found.
 */
export function detectSchema(task: BuiltinTask, columns: string[], file: string): Schema {
  const have = new Set(columns);
  for (const s of REAL) {
    if (s.task !== task) continue;
    if (s.signature.every((c) => have.has(c)) && !(s.absent ?? []).some((c) => have.has(c))) return s;
  }
  const c = canonicalSchema(task);
  const missing = c.signature.filter((f) => !have.has(f));
  if (missing.length > 0) {
    const known = REAL.filter((s) => s.task === task).map((s) => s.name);
    throw new MerglotError(
      "data.column",
      `${file}: missing column "${missing[0]}" for task ${task} (columns found: ${columns.map((x) => printable(x, 40)).join(", ") || "none"}; ` +
        `expected the canonical columns ${c.signature.join(", ")}${known.length ? `, or the layout of ${known.join(" / ")}` : ""}; ` +
        `map other names with columns)`,
    );
  }
  return c;
}

/** A custom task's rows: the mapped fields as they are, plus id and lang (task templates read them by name). */
export function customSchema(task: string): Schema {
  return {
    name: "canonical",
    task,
    signature: [],
    convert(src, ctx) {
      const rowLang = src.row.lang;
      const lang = typeof rowLang === "string" && rowLang ? rowLang : needLang(src, ctx);
      if (ctx.only && lang !== ctx.only) return [];
      return [{ ...src.row, id: rowId(src, ctx, lang, "id"), lang }];
    },
  };
}

function identityColumns(row: SourceRow["row"]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ["id", "lang"]) if (k in row) out[k] = row[k];
  return out;
}

/** A schema that renames columns (canonical field → source column) and then reads the result. */
export function mappedSchema(task: string, columns: Record<string, string>): (src: SourceRow) => SourceRow {
  return (src) => {
    // A custom task keeps only its mapped fields, plus the file's own id and lang: its samples must carry the
    // user's ids (a mapping may still rename them, e.g. id: uid).
    const row: Record<string, unknown> = isBuiltinTask(task) ? { ...src.row } : identityColumns(src.row);
    for (const [field, column] of Object.entries(columns)) {
      if (!(column in src.row)) {
        throw new MerglotError(
          "data.column",
          `${src.file} ${src.where}: missing column "${printable(column, 40)}" (mapped to ${field}; columns found: ${Object.keys(src.row).map((x) => printable(x, 40)).join(", ")})`,
        );
      }
      row[field] = src.row[column];
    }
    return { ...src, row };
  };
}
