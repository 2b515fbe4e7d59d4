/**
 * `loadExamples`: one split of one dataset (a file, a folder of per-split files, or a downloaded hub
 * snapshot) as canonical examples, recognising the study's real dataset layouts without a column map.
 */
import { MerglotError } from "../errors.js";
import type { Example, Split } from "./example.js";
import { examplesSha256 } from "./jsonl-out.js";
import { configCandidates, langOfConfig } from "./languages.js";
import { scanLayout, type DatasetLayout } from "./layout.js";
import { readRows, type SourceRow } from "./readers/index.js";
import { SeededSelection } from "./sample.js";
import { canonicalSchema, detectSchema, isBuiltinTask, mappedSchema, BUILTIN_TASKS, type Schema } from "./schemas.js";
import { recordSplitRead, type SplitRead } from "./split-log.js";

export interface LoadOptions {
  /** A data file (.jsonl/.ndjson/.json/.csv/.tsv/.parquet) or a dataset folder. */
  path: string;
  /** A built-in task (sentiment, reasoning, summarization, extraction) or a custom task's name (needs `columns`). */
  task: string;
  /** Language code; selects the config (de → "de" or "german") and/or the rows (language column). */
  lang?: string;
  /** Default "test". Any split name the dataset has is accepted. */
  split?: Split | string;
  /** The dataset config (subset); default: the only one, the card's default, or the one named after `lang`. */
  config?: string;
  /** Keep this many examples, chosen by the seeded procedure (src/data/sample.ts); default: all, in file order. */
  limit?: number;
  /** Seed of the selection (default 0). */
  seed?: number;
  /** Canonical field → source column, for custom layouts (and the only way to load a custom task). */
  columns?: Record<string, string>;
  /** Called once per split whose files are opened (also kept in the module log, `splitReads()`). */
  onSplitRead?: (read: SplitRead) => void;
}

export interface LoadedExamples {
  examples: Example[];
  source: {
    /** The files read, in order. */
    files: string[];
    /** SHA-256 of the examples' canonical JSONL (exactly what `merglot data` writes for them). */
    sha256: string;
    /** "clapAI/MultiLingualSentiment", "tyqiangz/multilingual-sentiments", "yusuke1997/mCSQA", "GEM/wiki_lingua", "esdurmus/wiki_lingua" or "canonical". */
    schema: string;
    /** The config read ("" for a single file). */
    config: string;
    /** The split read. */
    split: string;
  };
}

/** The configs and splits a dataset path offers, without reading any rows. */
export function describeDataset(path: string): { configs: Record<string, string[]>; defaultConfig?: string } {
  const layout = scanLayout(path);
  const configs: Record<string, string[]> = {};
  for (const [c, splits] of layout.configs) configs[c] = [...splits.keys()].sort();
  return { configs, defaultConfig: layout.defaultConfig };
}

export function chooseConfig(layout: DatasetLayout, config: string | undefined, lang: string | undefined): string {
  const names = [...layout.configs.keys()];
  const list = names.join(", ");
  if (config !== undefined) {
    if (layout.origin === "file") return "";
    if (!layout.configs.has(config)) {
      throw new MerglotError("data.config", `${layout.root}: no config "${config}" (available: ${list})`);
    }
    return config;
  }
  if (names.length === 1) return names[0]!;
  if (lang) {
    for (const c of configCandidates(lang)) {
      const hit = names.find((n) => n.toLowerCase() === c.toLowerCase());
      if (hit) return hit;
    }
  }
  if (layout.defaultConfig) return layout.defaultConfig;
  throw new MerglotError(
    "data.config",
    `${layout.root}: ${lang ? `no config for language "${lang}"` : "several configs"}; choose one with config (available: ${list})`,
  );
}

/** The files of (config, split), or an error listing the splits there are. */
export function splitFiles(layout: DatasetLayout, config: string, split: string): string[] {
  const splits = layout.configs.get(config)!;
  if (layout.origin === "file") {
    const [[named, files]] = [...splits] as [[string, string[]]];
    if (named !== "*" && named !== split) {
      throw new MerglotError(
        "data.split",
        `${layout.root}: its name marks it as the "${named}" split, not "${split}" (pass split "${named}" to read it)`,
      );
    }
    return files;
  }
  const files = splits.get(split);
  if (!files || files.length === 0) {
    const where = config === "default" && layout.configs.size === 1 ? "" : ` of config "${config}"`;
    throw new MerglotError(
      "data.split",
      `${layout.root}: no split "${split}"${where} (available: ${[...splits.keys()].sort().join(", ") || "none"})`,
    );
  }
  return files;
}

function checkTask(task: string, columns: Record<string, string> | undefined): void {
  if (isBuiltinTask(task) || columns) return;
  throw new MerglotError(
    "data.task",
    `unknown task "${task}" (built-in: ${BUILTIN_TASKS.join(", ")}; a custom task needs a column mapping)`,
  );
}

/** Streams the canonical examples of one (config, split); `sink` receives each one. */
export async function streamExamples(
  opts: LoadOptions,
  sink: (ex: Example) => void,
): Promise<{ files: string[]; schema: string; config: string; split: string }> {
  checkTask(opts.task, opts.columns);
  const split = opts.split ?? "test";
  const layout = scanLayout(opts.path);
  const config = chooseConfig(layout, opts.config, opts.lang);
  const files = splitFiles(layout, config, split);
  const configLang = config ? langOfConfig(config) : undefined;
  if (opts.lang && configLang && layout.origin !== "readme" && opts.config === undefined && configLang !== opts.lang) {
    // A folder-named config chosen because it was the only one: its name says another language.
    throw new MerglotError(
      "data.config",
      `${layout.root}: config "${config}" holds language "${configLang}", not "${opts.lang}"`,
    );
  }
  recordSplitRead(
    { path: opts.path, config: layout.origin === "file" ? undefined : config, split, files },
    opts.onSplitRead,
  );
  const rename = opts.columns ? mappedSchema(opts.task, opts.columns) : undefined;
  let schema: Schema | undefined;
  let index = 0;
  const lang = opts.lang ?? configLang;
  for (const file of files) {
    for await (const raw of readRows(file)) {
      const src: SourceRow = rename ? rename(raw) : raw;
      if (!isBuiltinTask(opts.task)) {
        const l = typeof src.row.lang === "string" && src.row.lang ? src.row.lang : lang;
        if (!l) throw new MerglotError("data.lang", `${file}: cannot tell the language of its rows; pass a language (--lang)`);
        if (opts.lang && l !== opts.lang) {
          index++;
          continue;
        }
        const id = typeof src.row.id === "string" && src.row.id ? src.row.id : `${l}-${split}-${index}`;
        sink({ ...src.row, id, lang: l });
        index++;
        continue;
      }
      schema ??= rename ? canonicalSchema(opts.task) : detectSchema(opts.task, Object.keys(src.row), file);
      for (const ex of schema.convert(src, { split, index, lang, only: opts.lang })) sink(ex);
      index++;
    }
  }
  return { files, schema: schema?.name ?? "canonical", config, split };
}

export async function loadExamples(opts: LoadOptions): Promise<LoadedExamples> {
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit > 0)) {
    throw new MerglotError("data.limit", `limit must be a positive integer, got ${opts.limit}`);
  }
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new MerglotError("data.seed", `seed must be an integer, got ${seed}`);
  const all: Example[] = [];
  const selection = opts.limit !== undefined ? new SeededSelection(opts.limit, seed) : undefined;
  const info = await streamExamples(opts, (ex) => (selection ? selection.add(ex) : all.push(ex)));
  const examples = selection ? selection.result() : all;
  if (examples.length === 0) {
    const what = opts.lang ? ` for language "${opts.lang}"` : "";
    const cfg = info.config && info.config !== "default" ? ` of config "${info.config}"` : "";
    throw new MerglotError("data.empty", `${opts.path}: split "${info.split}"${cfg} has no rows${what}`);
  }
  return {
    examples,
    source: { files: info.files, sha256: examplesSha256(examples), schema: info.schema, config: info.config, split: info.split },
  };
}
