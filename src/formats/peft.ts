/**
 * PEFT LoRA adapter folders: `adapter_config.json` + `adapter_model.safetensors`.
 *
 * Reading groups the file's tensors into modules (one lora_A / lora_B pair each) and resolves the per-module
 * scaling exactly as PEFT does (rank_pattern / alpha_pattern keys matched as `(.*\.)?KEY$`, rsLoRA).
 * Writing is atomic: the folder is assembled under a temp name and renamed into place.
 * This module knows nothing about merging.
 */
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MerglotError } from "../errors.js";
import { describeValue, readJsonFile } from "../json-input.js";
import { openOutput, type OutputSlot } from "../output/slot.js";
import { OWNERS } from "../output/owners.js";
import {
  compilePatternKey,
  compileTargetRegex,
  matchPatternKey,
  targetModulesCover,
} from "./peft-patterns.js";
import {
  checkReadable,
  SafetensorsReader,
  SafetensorsWriter,
  type StDType,
  type TensorSpec,
} from "./safetensors.js";

export const CONFIG_FILE = "adapter_config.json";
export const WEIGHTS_FILE = "adapter_model.safetensors";
const PICKLE_FILE = "adapter_model.bin";
/** PEFT saves `base_model.model.` + the module path; the adapter name ("default") is stripped on save. */
export const PEFT_PREFIX = "base_model.model.";

export { matchPatternKey } from "./peft-patterns.js";

export type FloatDType = "F32" | "F16" | "BF16";

export interface PeftConfig {
  /** The JSON object as read, kept so that unknown fields survive a round trip. */
  raw: Record<string, unknown>;
  r: number;
  loraAlpha: number;
  targetModules: string[] | string | null;
  baseModel: string | null;
  useRslora: boolean;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  fanInFanOut: boolean;
}

export interface LoraModule {
  /** Module path inside the model, e.g. `model.layers.3.self_attn.q_proj`. */
  name: string;
  /** Decoder layer index when the path has one (`.layers.N.`, `.h.N.`, `.blocks.N.`). */
  layer: number | null;
  /** Last path component, e.g. `q_proj`. */
  kind: string;
  aName: string;
  bName: string;
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** Effective alpha and rank after rank_pattern / alpha_pattern. */
  alpha: number;
  scaling: number;
  dtype: StDType;
}

/** Scaling PEFT applies to B·A for one module: alpha/r, or alpha/sqrt(r) with rsLoRA. */
export function moduleScaling(
  config: PeftConfig,
  moduleName: string,
): { rank: number; alpha: number; scaling: number } {
  const rk = matchPatternKey(Object.keys(config.rankPattern), moduleName);
  const ak = matchPatternKey(Object.keys(config.alphaPattern), moduleName);
  const rank = rk !== undefined ? config.rankPattern[rk]! : config.r;
  const alpha = ak !== undefined ? config.alphaPattern[ak]! : config.loraAlpha;
  const scaling = config.useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
  return { rank, alpha, scaling };
}

function fail(path: string, msg: string): never {
  throw new MerglotError("peft.config", `${path}: ${msg}`);
}

function numberMap(path: string, field: string, v: unknown): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) fail(path, `field "${field}" must be an object of numbers`);
  // No prototype: a key such as "__proto__" stays an ordinary pattern key.
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (
      typeof x !== "number" ||
      !Number.isFinite(x) ||
      x <= 0 ||
      (field === "rank_pattern" && !Number.isInteger(x))
    ) {
      const what = field === "rank_pattern" ? "a positive integer" : "a positive number";
      fail(path, `field "${field}.${k}" must be ${what}, got ${describeValue(x)}`);
    }
    out[k] = x;
  }
  // PEFT matches these keys as regular expressions: an invalid one is an error (PEFT raises), never skipped.
  for (const k of Object.keys(out)) compilePatternKey(k, `${path}: field "${field}"`);
  return out;
}

/** Parse and validate an `adapter_config.json` object. Unsupported variants are refused with a reason. */
export function parsePeftConfig(raw: unknown, path: string): PeftConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail(path, "must contain a JSON object");
  const o = raw as Record<string, unknown>;
  const peftType = o.peft_type ?? "LORA";
  if (peftType !== "LORA") fail(path, `peft_type ${describeValue(peftType)} is not supported (only LORA)`);
  if (o.use_dora === true) fail(path, "DoRA adapters (use_dora: true) are not supported yet");
  if (o.lora_bias === true) fail(path, "adapters with lora_bias: true are not supported yet");
  const r = o.r;
  if (typeof r !== "number" || !Number.isInteger(r) || r <= 0)
    fail(path, `field "r" must be a positive integer, got ${describeValue(r)}`);
  const alpha = o.lora_alpha ?? r;
  if (typeof alpha !== "number" || !Number.isFinite(alpha))
    fail(path, `field "lora_alpha" must be a number, got ${describeValue(alpha)}`);
  const tm = o.target_modules ?? null;
  if (
    tm !== null &&
    typeof tm !== "string" &&
    !(Array.isArray(tm) && tm.every((x) => typeof x === "string"))
  ) {
    fail(path, `field "target_modules" must be a string or a list of strings`);
  }
  // A string is a regular expression PEFT full-matches against module names: invalid is an error here.
  if (typeof tm === "string" && tm !== "all-linear")
    compileTargetRegex(tm, `${path}: field "target_modules"`);
  const base = o.base_model_name_or_path ?? null;
  if (base !== null && typeof base !== "string")
    fail(path, `field "base_model_name_or_path" must be a string`);
  for (const f of ["use_rslora", "fan_in_fan_out"] as const) {
    if (o[f] !== undefined && o[f] !== null && typeof o[f] !== "boolean")
      fail(path, `field "${f}" must be true or false`);
  }
  return {
    raw: o,
    r,
    loraAlpha: alpha,
    targetModules: tm as string[] | string | null,
    baseModel: base as string | null,
    useRslora: o.use_rslora === true,
    rankPattern: numberMap(path, "rank_pattern", o.rank_pattern),
    alphaPattern: numberMap(path, "alpha_pattern", o.alpha_pattern),
    fanInFanOut: o.fan_in_fan_out === true,
  };
}

const LAYER_RE = /\.(?:layers|h|blocks|layer)\.(\d+)\./;
const FACTOR_RE = /^(.*)\.lora_([AB])\.weight$/;

/** An opened adapter: config + modules; factors are read lazily, one tensor at a time. */
export class LoraAdapter {
  readonly path: string;
  readonly config: PeftConfig;
  readonly modules: readonly LoraModule[];
  private readonly file: SafetensorsReader;
  private readonly byName: Map<string, LoraModule>;

  private constructor(path: string, config: PeftConfig, file: SafetensorsReader, modules: LoraModule[]) {
    this.path = path;
    this.config = config;
    this.file = file;
    this.modules = modules;
    this.byName = new Map(modules.map((m) => [m.name, m]));
  }

  /**
   * Open an adapter folder (or its `adapter_model.safetensors` path). `weightsFd`: an already-open
   * descriptor of the weights file to read through (shared with other readers, not closed by `close()`).
   */
  static open(path: string, opts: { weightsFd?: number } = {}): LoraAdapter {
    let dir = path;
    if (existsSync(path) && statSync(path).isFile()) {
      dir = join(path, "..");
    }
    if (!existsSync(dir)) throw new MerglotError("peft.missing", `${path}: adapter folder not found`);
    if (!statSync(dir).isDirectory())
      throw new MerglotError("peft.missing", `${path}: not an adapter folder`);
    const weights = join(dir, WEIGHTS_FILE);
    const configPath = join(dir, CONFIG_FILE);
    if (!existsSync(weights)) {
      if (existsSync(join(dir, PICKLE_FILE))) {
        throw new MerglotError(
          "peft.pickle",
          `${join(dir, PICKLE_FILE)}: pickle weights are not read (unsafe and slow); convert once with PEFT: ` +
            `PeftModel.from_pretrained(base, "${dir}").save_pretrained(out, safe_serialization=True)`,
        );
      }
      throw new MerglotError("peft.missing", `${dir}: no ${WEIGHTS_FILE} in the adapter folder`);
    }
    if (!existsSync(configPath))
      throw new MerglotError("peft.missing", `${dir}: no ${CONFIG_FILE} in the adapter folder`);
    const rawConfig = readJsonFile(configPath, { code: "peft.config" });
    const config = parsePeftConfig(rawConfig, configPath);
    const file = SafetensorsReader.open(weights, { fd: opts.weightsFd });
    try {
      return new LoraAdapter(dir, config, file, groupModules(file, config, weights, configPath));
    } catch (e) {
      file.close();
      throw e;
    }
  }

  get(name: string): LoraModule | undefined {
    return this.byName.get(name);
  }

  /** lora_A of a module as a row-major r × in Float32Array (into `out` when given: reusing buffers avoids
   *  the cost of touching fresh memory, which dominates reading at GB scale). */
  readA(m: LoraModule, out?: Float32Array): Float32Array {
    return this.file.readFloat32(m.aName, out);
  }

  /** lora_B of a module as a row-major out × r Float32Array (into `out` when given). */
  readB(m: LoraModule, out?: Float32Array): Float32Array {
    return this.file.readFloat32(m.bName, out);
  }

  get weightsPath(): string {
    return this.file.path;
  }

  close(): void {
    this.file.close();
  }
}

function groupModules(
  file: SafetensorsReader,
  config: PeftConfig,
  path: string,
  configPath: string,
): LoraModule[] {
  const pairs = new Map<string, { a?: string; b?: string }>();
  for (const t of file.tensors) {
    if (t.name.includes("lora_magnitude_vector")) {
      throw new MerglotError(
        "peft.dora",
        `${path}: tensor "${t.name}" is a DoRA magnitude; DoRA is not supported yet`,
      );
    }
    if (/\.lora_B\.bias$/.test(t.name)) {
      throw new MerglotError(
        "peft.bias",
        `${path}: tensor "${t.name}" is a LoRA bias (lora_bias); not supported yet`,
      );
    }
    const m = FACTOR_RE.exec(t.name);
    if (!m) {
      if (/lora_embedding_[AB]/.test(t.name)) {
        throw new MerglotError(
          "peft.embedding",
          `${path}: tensor "${t.name}" is an embedding LoRA; not supported yet`,
        );
      }
      throw new MerglotError(
        "peft.tensor",
        `${path}: tensor "${t.name}" is not a LoRA factor (expected <module>.lora_A.weight / .lora_B.weight); ` +
          `modules_to_save and other extra tensors are not supported`,
      );
    }
    const mod = m[1]!.startsWith(PEFT_PREFIX) ? m[1]!.slice(PEFT_PREFIX.length) : m[1]!;
    const entry = pairs.get(mod) ?? {};
    if (m[2] === "A") entry.a = t.name;
    else entry.b = t.name;
    pairs.set(mod, entry);
  }
  const modules: LoraModule[] = [];
  for (const [name, { a, b }] of pairs) {
    if (!a || !b) {
      throw new MerglotError(
        "peft.unpaired",
        `${path}: module "${name}" has lora_${a ? "A" : "B"} but no lora_${a ? "B" : "A"}`,
      );
    }
    const ta = file.get(a)!;
    const tb = file.get(b)!;
    if (ta.shape.length !== 2 || tb.shape.length !== 2) {
      throw new MerglotError(
        "peft.shape",
        `${path}: module "${name}": lora_A and lora_B must be 2-D (got [${ta.shape}] and [${tb.shape}])`,
      );
    }
    const [rank, inF] = ta.shape as [number, number];
    const [outF, rankB] = tb.shape as [number, number];
    if (rank !== rankB) {
      throw new MerglotError(
        "peft.shape",
        `${path}: module "${name}": lora_A has rank ${rank} but lora_B has rank ${rankB}`,
      );
    }
    for (const t of [ta, tb]) {
      checkReadable(t, path); // before any work: a declared 128 GB factor is refused at open, not mid-merge
      if (t.dtype !== "F32" && t.dtype !== "F16" && t.dtype !== "BF16" && t.dtype !== "F64") {
        throw new MerglotError(
          "peft.dtype",
          `${path}: tensor "${t.name}" has dtype ${t.dtype}; LoRA factors must be floating point`,
        );
      }
    }
    if (!targetModulesCover(config.targetModules, name, `${configPath}: field "target_modules"`)) {
      // PEFT creates LoRA layers only where target_modules says and drops other weights when loading: the
      // adapter would mean one thing here and another in PEFT, so it is refused.
      throw new MerglotError(
        "peft.targets",
        `${path}: module "${name}" has LoRA weights but target_modules (${describeTargets(config.targetModules)}) ` +
          `in ${CONFIG_FILE} does not cover it, so PEFT would not load them; fix target_modules or remove the weights`,
      );
    }
    const s = moduleScaling(config, name);
    if (s.rank !== rank) {
      throw new MerglotError(
        "peft.rank",
        `${path}: module "${name}" has rank ${rank} in the weights but ${s.rank} in ${CONFIG_FILE} (r / rank_pattern)`,
      );
    }
    const layerMatch = LAYER_RE.exec(`.${name}.`);
    modules.push({
      name,
      layer: layerMatch ? Number(layerMatch[1]) : null,
      kind: name.slice(name.lastIndexOf(".") + 1),
      aName: a,
      bName: b,
      rank,
      inFeatures: inF,
      outFeatures: outF,
      alpha: s.alpha,
      scaling: s.scaling,
      dtype: ta.dtype,
    });
  }
  return modules.sort(compareModules);
}

/** target_modules for a message: the list itself when short, else its length. */
function describeTargets(t: readonly string[] | string | null): string {
  const text = JSON.stringify(t);
  return text.length <= 120
    ? text
    : Array.isArray(t)
      ? `a list of ${t.length} names`
      : "a long regular expression";
}

/** Model order: by layer index, then a fixed order of module kinds, then name. */
export function compareModules(x: { name: string; layer: number | null; kind: string }, y: typeof x): number {
  const lx = x.layer ?? -1;
  const ly = y.layer ?? -1;
  if (lx !== ly) return lx - ly;
  const kx = KIND_ORDER.indexOf(x.kind);
  const ky = KIND_ORDER.indexOf(y.kind);
  if (kx !== ky) return (kx < 0 ? 99 : kx) - (ky < 0 ? 99 : ky);
  return x.name < y.name ? -1 : x.name > y.name ? 1 : 0;
}
const KIND_ORDER = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

export interface AdapterConfigInput {
  r: number;
  lora_alpha: number;
  /** Module names / suffixes (written sorted), or a regular expression PEFT full-matches. */
  target_modules: string[] | string;
  base_model_name_or_path: string | null;
  use_rslora?: boolean;
  lora_dropout?: number;
  rank_pattern?: Record<string, number>;
  alpha_pattern?: Record<string, number>;
  fan_in_fan_out?: boolean;
  task_type?: string | null;
  [extra: string]: unknown;
}

/** A complete adapter_config.json object with PEFT's defaults for the fields we do not set. */
export function adapterConfigJson(c: AdapterConfigInput): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_dropout: 0,
    modules_to_save: null,
    peft_type: "LORA",
    rank_pattern: {},
    revision: null,
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: false,
    ...c,
    target_modules: Array.isArray(c.target_modules) ? [...c.target_modules].sort() : c.target_modules,
  };
}

/** PEFT's tensor names for one module's factors. */
export function factorNames(moduleName: string): { a: string; b: string } {
  return { a: `${PEFT_PREFIX}${moduleName}.lora_A.weight`, b: `${PEFT_PREFIX}${moduleName}.lora_B.weight` };
}

/**
 * Streaming, atomic adapter-folder writer: declare every tensor up front, write them in order, then
 * `finish()` moves the whole folder into place (src/output). Nothing appears at the target unless finish()
 * succeeds. Give it an `OutputSlot` to apply a command's output policy; a plain path gets the library
 * default (refuse an existing path unless `force`).
 */
export class AdapterWriter {
  readonly dir: string;
  private readonly slot: OutputSlot;
  private readonly tmpDir: string;
  private readonly weights: SafetensorsWriter;
  private done = false;

  constructor(
    target: string | OutputSlot,
    config: Record<string, unknown>,
    specs: TensorSpec[],
    force = false,
    metadata: Record<string, string> = { format: "pt" },
  ) {
    this.slot =
      typeof target === "string"
        ? openOutput({ path: target, kind: "dir", inputs: [], owner: OWNERS.unchecked, force })
        : target;
    this.dir = this.slot.path;
    this.tmpDir = this.slot.temp;
    try {
      writeFileSync(join(this.tmpDir, CONFIG_FILE), JSON.stringify(config, null, 2) + "\n");
      this.weights = new SafetensorsWriter(join(this.tmpDir, WEIGHTS_FILE), specs, metadata);
    } catch (e) {
      throw this.slot.fail(e);
    }
  }

  writeTensor(name: string, data: Float32Array): void {
    this.weights.writeTensor(name, data);
  }

  /** The weights temp file and where each tensor goes in it, for writers in other threads. */
  weightsLayout(): { path: string; tensors: ReturnType<SafetensorsWriter["layout"]> } {
    return { path: this.weights.tempPath, tensors: this.weights.layout() };
  }

  /** Record that another thread wrote the next tensor at its layout position. */
  markWritten(name: string): void {
    this.weights.markWritten(name);
  }

  /** Add a small extra file (e.g. merge_manifest.json) to the folder before it is committed. */
  addFile(name: string, contents: string): void {
    writeFileSync(join(this.tmpDir, name), contents);
  }

  finish(): void {
    this.weights.finish();
    this.slot.commit();
    this.done = true;
  }

  abort(): void {
    if (this.done) return;
    try {
      this.weights.abort();
    } catch {
      /* the folder is removed below anyway */
    }
    this.slot.abort();
  }

  /** Abort, and turn `e` into the error to report (file-system errors name the target, not a temp path). */
  fail(e: unknown): Error {
    this.abort();
    return this.slot.fail(e);
  }
}

/** Write a whole adapter folder from in-memory tensors (small adapters: tests, training outputs). */
export function writeAdapter(
  dir: string | OutputSlot,
  a: {
    config: AdapterConfigInput;
    tensors: { name: string; shape: number[]; data: Float32Array }[];
    dtype?: FloatDType;
    force?: boolean;
    extraFiles?: Record<string, string>;
  },
): void {
  const dtype = a.dtype ?? "F32";
  const w = new AdapterWriter(
    dir,
    adapterConfigJson(a.config),
    a.tensors.map((t) => ({ name: t.name, dtype, shape: t.shape })),
    a.force ?? false,
  );
  try {
    for (const t of a.tensors) w.writeTensor(t.name, t.data);
    for (const [name, text] of Object.entries(a.extraFiles ?? {})) w.addFile(name, text);
    w.finish();
  } catch (e) {
    throw w.fail(e);
  }
}

/** Convenience for readers that want everything of a small adapter at once. */
export function readAdapter(path: string): {
  adapter: LoraAdapter;
  modules: { module: LoraModule; a: Float32Array; b: Float32Array }[];
} {
  const adapter = LoraAdapter.open(path);
  try {
    return {
      adapter,
      modules: adapter.modules.map((m) => ({ module: m, a: adapter.readA(m), b: adapter.readB(m) })),
    };
  } finally {
    adapter.close();
  }
}
