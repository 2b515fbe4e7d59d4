/**
 * The study's per-language train/validation/test sets from one dataset (what `merglot data` writes and
 * `merglot train` reads). Each split present in the source is sampled from itself with the seeded
 * selection (src/data/sample.ts). A split the source lacks (esdurmus/wiki_lingua ships only `train`) is
 * carved from the source's `train`: its selection of test + validation + train rows, in key order, gives
 * the first rows to test, the next to validation and the rest to train — disjoint by construction. The
 * sections of one wiki_lingua article are keyed together and never split across two of the sets (a
 * later set skips the sections of an article an earlier one took, so it may come out a little short).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { MerglotError } from "../errors.js";
import { OWNERS, openOutput } from "../output/index.js";
import { SPLITS, type Example, type Split } from "./example.js";
import { exampleLine, examplesSha256 } from "./jsonl-out.js";
import { chooseConfig, loadExamples, streamExamples, type LoadOptions } from "./load.js";
import { scanLayout } from "./layout.js";
import { SeededSelection } from "./sample.js";

const CARVE_SPARE = 1000;

export type SplitSizes = Record<Split, number>;

/** The study's sizes: 5,000 / 500 / 500 examples per language, 3,000 / 500 / 500 for summarization. */
export function studySizes(task: string): SplitSizes {
  return task === "summarization"
    ? { train: 3000, validation: 500, test: 500 }
    : { train: 5000, validation: 500, test: 500 };
}

export interface PrepareOptions extends Omit<LoadOptions, "split" | "limit"> {
  /** Examples per split (default: `studySizes(task)`); a split with fewer rows gives all it has. */
  sizes?: SplitSizes;
}

export interface PreparedSplit {
  examples: Example[];
  sha256: string;
  /** The source split the rows came from (differs from the split's own name when carved). */
  from: string;
  files: string[];
}

export interface PreparedData {
  task: string;
  lang?: string;
  config: string;
  schema: string;
  seed: number;
  sizes: SplitSizes;
  splits: Record<Split, PreparedSplit>;
}

export async function prepareSplits(opts: PrepareOptions): Promise<PreparedData> {
  const sizes = opts.sizes ?? studySizes(opts.task);
  for (const s of SPLITS) {
    if (!Number.isInteger(sizes[s]) || sizes[s] < 1) {
      throw new MerglotError("data.sizes", `size of ${s} must be a positive integer, got ${sizes[s]}`);
    }
  }
  const seed = opts.seed ?? 0;
  const layout = scanLayout(opts.path);
  const config = chooseConfig(layout, opts.config, opts.lang);
  const available = layout.origin === "file" ? [] : [...layout.configs.get(config)!.keys()];
  const missing = SPLITS.filter((s) => !available.includes(s));
  const base = { ...opts, config: layout.origin === "file" ? undefined : config, seed };
  const splits = {} as Record<Split, PreparedSplit>;
  let schema = "canonical";
  // When some split must be carved, train is carved together with it (one pass), not read on its own.
  const carving = missing.length > 0;
  for (const s of SPLITS) {
    if (missing.includes(s) || (carving && s === "train")) continue;
    const r = await loadExamples({ ...base, split: s, limit: sizes[s] });
    splits[s] = { examples: r.examples, sha256: r.source.sha256, from: s, files: r.source.files };
    schema = r.source.schema;
  }
  if (carving) {
    if (layout.origin !== "file" && !available.includes("train")) {
      throw new MerglotError(
        "data.split",
        `${opts.path}: cannot make ${missing.join(", ")}: no split of that name and no train split to carve it from (available: ${available.join(", ") || "none"})`,
      );
    }
    // Carve order: test, then validation, then train (the first rows of the key order are the test set).
    const order = SPLITS.filter((s) => missing.includes(s) || s === "train").sort(
      (a, b) => ["test", "validation", "train"].indexOf(a) - ["test", "validation", "train"].indexOf(b),
    );
    const total = order.reduce((n, s) => n + sizes[s], 0);
    // Spare rows replace the sections a later set skips (only articles straddling a boundary have any).
    const selection = new SeededSelection(total + CARVE_SPARE, seed);
    const info = await streamExamples({ ...base, split: "train" }, (ex, group) => selection.add(ex, group));
    schema = info.schema;
    const rows = selection.entries();
    // An article cut into sections stays in the first split that takes any of its sections.
    const taken = new Set<string>();
    let at = 0;
    for (const s of order) {
      const part: Example[] = [];
      const mine = new Set<string>();
      for (; at < rows.length && part.length < sizes[s]; at++) {
        const { ex, group } = rows[at]!;
        if (group !== undefined && taken.has(group) && !mine.has(group)) continue;
        if (group !== undefined) mine.add(group);
        part.push(ex);
      }
      for (const g of mine) taken.add(g);
      splits[s] = { examples: part, sha256: examplesSha256(part), from: "train", files: info.files };
    }
  }
  for (const s of SPLITS) {
    if (splits[s].examples.length === 0) {
      const from = splits[s].from === s ? "" : ` (carved from ${splits[s].from})`;
      throw new MerglotError("data.empty", `${opts.path}: split "${s}"${from} has no rows${opts.lang ? ` for language "${opts.lang}"` : ""}`);
    }
  }
  return { task: opts.task, lang: opts.lang, config, schema, seed, sizes, splits };
}

/**
 * Writes `<out>/{train,validation,test}.jsonl` and `<out>/data_manifest.json` into a temp folder next to
 * `out`, then moves it into place (refusing to replace an existing `out` unless `force`).
 */
export function writePreparedData(
  out: string,
  data: PreparedData,
  source: string,
  force: boolean,
  replaceForeign = false,
): void {
  const slot = openOutput({ path: out, kind: "dir", inputs: [source], owner: OWNERS.data, force, replaceForeign });
  const tmp = slot.temp;
  try {
    for (const s of SPLITS) writeFileSync(join(tmp, `${s}.jsonl`), data.splits[s].examples.map(exampleLine).join(""));
    const manifest = {
      task: data.task,
      lang: data.lang ?? null,
      source,
      config: data.config,
      schema: data.schema,
      seed: data.seed,
      sizes: data.sizes,
      splits: Object.fromEntries(
        SPLITS.map((s) => [s, { count: data.splits[s].examples.length, sha256: data.splits[s].sha256, from: data.splits[s].from, files: data.splits[s].files }]),
      ),
    };
    writeFileSync(join(tmp, "data_manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    slot.commit();
  } catch (e) {
    throw slot.fail(e);
  }
}
