/**
 * Which files hold which (config, split) of a dataset folder — a file tree written by
 * `huggingface-cli download --repo-type dataset`, a `git clone` of the dataset repository (main or
 * refs/convert/parquet), or a plain folder of per-split files. Resolution follows the hub, in order:
 *
 * 1. README.md YAML front matter `configs:` (`config_name`, `data_files` in all four of its forms,
 *    `data_dir`, `default`): those configs only.
 * 2. Otherwise configs are folders: the root itself ("default") when it holds data files directly or in
 *    `data/` or in split-named folders, else each top-level folder holding data files.
 * Inside one config folder, the first rule that assigns any file wins (files it does not assign are
 * left out, as on the hub):
 *    a. `<split>/<file>`: every data file sits exactly one folder down (the refs/convert/parquet layout);
 *    b. `<split>-NNNNN-of-NNNNN.<ext>` shards, or `train-*` / `validation-*` / `test-*` names;
 *    c. split keywords in folder names, then in file names, delimited by non-word characters
 *       (`-._ `, digits, or the path start/end): train|training, validation|valid|val|dev,
 *       test|testing|eval|evaluation;
 *    d. everything is `train`.
 * Hidden entries (".x", "__x") and the hub's metadata files are never data.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, relative, sep } from "node:path";
import { parse as parseYaml } from "yaml";
import { MerglotError } from "../errors.js";
import { globToRegExp } from "./glob.js";
import { formatOf } from "./readers/index.js";

export interface DatasetLayout {
  root: string;
  /** config → split → absolute file paths (sorted). For a single file: config "" and split "*" or its name's split. */
  configs: Map<string, Map<string, string[]>>;
  /** The config the dataset card marks `default: true`, if any. */
  defaultConfig?: string;
  /** Where the layout came from, for messages: "README.md configs", "folders", "file". */
  origin: "readme" | "folders" | "file";
}

const IGNORED = new Set([
  "readme.md",
  "config.json",
  "dataset_info.json",
  "dataset_infos.json",
  "dataset_dict.json",
  "state.json",
]);

export const SPLIT_KEYWORDS: Record<string, string[]> = {
  train: ["train", "training"],
  validation: ["validation", "valid", "dev", "val"],
  test: ["test", "testing", "eval", "evaluation"],
};

const SEP = "[-._ 0-9]";

function keywordRegExp(keyword: string): RegExp {
  return new RegExp(`^(?:.*${SEP})?${keyword}(?:${SEP}.*)?$`);
}

const KEYWORD_RES = Object.entries(SPLIT_KEYWORDS).map(
  ([split, kws]) => [split, kws.map(keywordRegExp)] as [string, RegExp[]],
);

/** The canonical split a name says by the hub's keyword rule, if any. */
export function splitFromName(name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [split, res] of KEYWORD_RES) if (res.some((r) => r.test(lower))) return split;
  return undefined;
}

/** Data files under `dir`, as sorted '/'-separated relative paths. */
function listDataFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith(".") || name.startsWith("__")) continue;
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && !IGNORED.has(name.toLowerCase()) && formatOf(name)) {
        out.push(relative(dir, p).split(sep).join("/"));
      }
    }
  };
  walk(dir);
  return out.sort();
}

function add(m: Map<string, string[]>, split: string, file: string): void {
  const list = m.get(split);
  if (list) list.push(file);
  else m.set(split, [file]);
}

const SHARD = /^(\w+(?:\.\w+)*)-\d{5}-of-\d{5}/;
const PREFIX = /^(train|validation|test)-/;

/** Rules a–d above, over the data files of one config folder (relative paths). */
export function inferSplits(files: string[]): Map<string, string[]> {
  // a. <split>/<file>
  if (files.length > 0 && files.every((f) => f.split("/").length === 2)) {
    const m = new Map<string, string[]>();
    for (const f of files) add(m, f.split("/")[0]!, f);
    return m;
  }
  // b. sharded or split-prefixed file names
  let m = new Map<string, string[]>();
  for (const f of files) {
    const name = basename(f);
    const hit = SHARD.exec(name) ?? PREFIX.exec(name);
    if (hit) add(m, hit[1]!, f);
  }
  if (m.size > 0) return m;
  // c. keywords in folder names, then in file names
  m = new Map();
  for (const f of files) {
    const dirs = f.split("/").slice(0, -1);
    for (const d of dirs) {
      const s = splitFromName(d);
      if (s) {
        add(m, s, f);
        break;
      }
    }
  }
  if (m.size > 0) return m;
  for (const f of files) {
    const s = splitFromName(basename(f));
    if (s) add(m, s, f);
  }
  if (m.size > 0) return m;
  // d. one split
  return files.length > 0 ? new Map([["train", [...files]]]) : new Map();
}

function absolute(root: string, m: Map<string, string[]>): Map<string, string[]> {
  return new Map([...m].map(([s, fs]) => [s, fs.map((f) => join(root, ...f.split("/")))]));
}

/** README.md front matter, or undefined when there is none. */
function frontMatter(readme: string): Record<string, unknown> | undefined {
  const text = readFileSync(readme, "utf8");
  const m = /^---\r?\n([\s\S]*?)\r?\n---\s*(?:\r?\n|$)/.exec(text);
  if (!m) return undefined;
  try {
    const v = parseYaml(m[1]!) as unknown;
    return v && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
  } catch (e) {
    throw new MerglotError("data.readme", `${readme}: YAML front matter does not parse (${(e as Error).message.split("\n")[0]})`);
  }
}

function patternsOf(dataFiles: unknown, where: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const strings = (v: unknown): string[] => {
    if (typeof v === "string") return [v];
    if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
    throw new MerglotError("data.readme", `${where}: data_files paths must be a string or a list of strings`);
  };
  if (typeof dataFiles === "string") out.set("train", [dataFiles]);
  else if (Array.isArray(dataFiles)) {
    for (const item of dataFiles) {
      if (typeof item === "string") add(out, "train", item);
      else if (item && typeof item === "object" && "split" in item && "path" in item) {
        const { split, path } = item as { split: unknown; path: unknown };
        for (const p of strings(path)) add(out, String(split), p);
      } else throw new MerglotError("data.readme", `${where}: each data_files entry needs "split" and "path"`);
    }
  } else if (dataFiles && typeof dataFiles === "object") {
    for (const [split, v] of Object.entries(dataFiles)) for (const p of strings(v)) add(out, split, p);
  } else throw new MerglotError("data.readme", `${where}: data_files must be a string, a list or a mapping`);
  return out;
}

function layoutFromReadme(root: string, configs: unknown, readme: string): DatasetLayout {
  if (!Array.isArray(configs)) throw new MerglotError("data.readme", `${readme}: "configs" must be a list`);
  const all = listDataFiles(root);
  const layout: DatasetLayout = { root, configs: new Map(), origin: "readme" };
  for (const c of configs) {
    if (!c || typeof c !== "object") throw new MerglotError("data.readme", `${readme}: each configs entry must be a mapping`);
    const { config_name, data_files, data_dir, default: isDefault } = c as Record<string, unknown>;
    const name = typeof config_name === "string" ? config_name : "default";
    const where = `${readme} config "${name}"`;
    const dir = typeof data_dir === "string" ? data_dir.replace(/^\.?\/+|\/+$/g, "") : "";
    const inDir = dir ? all.filter((f) => f.startsWith(dir + "/")) : all;
    let splits: Map<string, string[]>;
    if (data_files === undefined) {
      splits = inferSplits(inDir.map((f) => (dir ? f.slice(dir.length + 1) : f)));
      splits = new Map([...splits].map(([s, fs]) => [s, fs.map((f) => (dir ? `${dir}/${f}` : f))]));
    } else {
      splits = new Map();
      for (const [split, pats] of patternsOf(data_files, where)) {
        const res = pats.map((p) => globToRegExp((dir ? `${dir}/` : "") + p.replace(/^\.?\/+/, "")));
        splits.set(split, all.filter((f) => res.some((r) => r.test(f))));
      }
    }
    layout.configs.set(name, absolute(root, splits));
    if (isDefault === true) layout.defaultConfig = name;
  }
  return layout;
}

/** Scan a dataset path (a file or a folder) into configs and splits. Reads no data. */
export function scanLayout(path: string): DatasetLayout {
  if (!existsSync(path)) throw new MerglotError("data.path", `${path}: no such file or folder`);
  if (statSync(path).isFile()) {
    if (!formatOf(path)) {
      throw new MerglotError("data.format", `${path}: unknown data file type (expected .jsonl, .ndjson, .json, .csv, .tsv or .parquet)`);
    }
    const split = splitFromName(basename(path).replace(/\.[^.]*$/, "")) ?? "*";
    return { root: path, configs: new Map([["", new Map([[split, [path]]])]]), origin: "file" };
  }
  const readme = join(path, "README.md");
  if (existsSync(readme)) {
    const fm = frontMatter(readme);
    if (fm && fm.configs !== undefined) return layoutFromReadme(path, fm.configs, readme);
  }
  const layout: DatasetLayout = { root: path, configs: new Map(), origin: "folders" };
  const all = listDataFiles(path);
  const top = new Set(all.map((f) => f.split("/")[0]!));
  const flat = all.some((f) => !f.includes("/"));
  const splitDirs = [...top].some((d) => d === "data" || splitFromName(d) !== undefined);
  if (flat || splitDirs) {
    layout.configs.set("default", absolute(path, inferSplits(all)));
    return layout;
  }
  for (const dir of [...top].sort()) {
    const files = all.filter((f) => f.startsWith(dir + "/")).map((f) => f.slice(dir.length + 1));
    layout.configs.set(dir, absolute(join(path, dir), inferSplits(files)));
  }
  return layout;
}
