/**
 * The check a training step's adapter must pass when someone else's program wrote it (a `command`, a Slurm
 * job): before the step counts as done, the folder must be a PEFT LoRA adapter that merglot's own reader
 * (formats/peft.ts) opens, trained with exactly the requested rank, alpha and target modules on the requested
 * base model, with every tensor of the base model's shape and finite. A wrong adapter caught here costs one
 * clear message; caught later it would silently skew every merge and score built on it.
 *
 * Targets follow PEFT: the config's `target_modules` (list of names or suffixes, a full-match regular
 * expression, or "all-linear" = every linear module but the output head) must cover exactly the requested
 * modules, and the weights file must hold one lora_A / lora_B pair for each of them in every layer, no more.
 *
 * Base model rule (`base_model_name_or_path`): the adapter must name its base, and the name is compatible with
 * the study's base folder when it is (1) the same path (after resolving), or (2) a name whose last part equals
 * the folder's name, case-insensitively (`meta-llama/Llama-3.1-8B` for `/models/Llama-3.1-8B`: TRL writes the
 * HF id it loaded), or (3) the HF id of a hub-cache snapshot folder (`…/models--meta-llama--Llama-3.1-8B/
 * snapshots/<sha>`). For a GGUF base the name is not compared (the command trains from an HF checkpoint that
 * the GGUF was converted from); the shapes are checked against the GGUF's metadata instead.
 */
import { existsSync, realpathSync, statSync } from "node:fs";
import { basename, resolve } from "node:path";
import { resolveTargets } from "../engine/lora.js";
import { LINEAR_KINDS } from "../engine/model.js";
import { isMerglotError, MerglotError } from "../errors.js";
import { baseShapeFromGguf } from "../eval/open-runner.js";
import { moduleShape } from "../formats/convert.js";
import { readLlamaConfig, type LlamaModelConfig } from "../formats/gguf-model.js";
import { CONFIG_FILE, LoraAdapter, WEIGHTS_FILE } from "../formats/peft.js";
import { targetModulesCover } from "../formats/peft-patterns.js";

export interface AdapterRequest {
  /** The study's base model: an HF folder or a GGUF file. */
  base: string;
  r: number;
  alpha: number;
  /** "all-linear" or module kinds (q_proj, …), as training.target_modules. */
  targets: string[];
  /** How messages name the folder (default: its path), e.g. "{output_dir}" when the folder is a temp one. */
  label?: string;
}

export interface AdapterCheck {
  /** Modules with a LoRA (layers × target kinds). */
  modules: number;
  /** base_model_name_or_path as the adapter states it. */
  baseModel: string | null;
}

function bad(what: string): never {
  throw new MerglotError("study.adapter", what);
}

const ATTENTION = new Set(["q_proj", "k_proj", "v_proj", "o_proj"]);

/** Module path of one linear module in an HF llama-family model (PEFT names modules by these paths). */
function modulePath(layer: number, kind: string): string {
  return `model.layers.${layer}.${ATTENTION.has(kind) ? "self_attn" : "mlp"}.${kind}`;
}

/** The last part of a path or hub id, without trailing slashes, lower-cased. */
function lastPart(p: string): string {
  return basename(p.replace(/[/\\]+$/, "")).toLowerCase();
}

function samePath(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    return existsSync(a) && realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** Whether base_model_name_or_path `named` names the study's base folder `base` (rule in the header). */
export function baseNameCompatible(named: string, base: string): boolean {
  if (samePath(named, base)) return true;
  if (lastPart(named) === lastPart(base)) return true;
  const cache = /models--([^/\\]+?)--([^/\\]+)[/\\]snapshots[/\\]/.exec(resolve(base) + "/");
  return cache !== null && named.toLowerCase() === `${cache[1]}/${cache[2]}`.toLowerCase();
}

function baseConfig(base: string): { config: LlamaModelConfig; gguf: boolean } {
  const gguf = statSync(base).isFile();
  return gguf ? { config: baseShapeFromGguf(base).config!, gguf } : { config: readLlamaConfig(base), gguf };
}

/**
 * Check the adapter folder `dir` a training program wrote against what the study asked for. Throws a
 * MerglotError saying what is wrong (the caller names the step); returns what it found.
 */
export function checkProducedAdapter(dir: string, req: AdapterRequest): AdapterCheck {
  const label = req.label ?? dir;
  if (!existsSync(dir))
    bad(`no adapter was written: ${label} does not exist (a PEFT folder must be written there)`);
  if (!statSync(dir).isDirectory()) bad(`${label}: not a folder (a PEFT folder must be written there)`);
  for (const f of [CONFIG_FILE, WEIGHTS_FILE])
    if (!existsSync(resolve(dir, f)))
      bad(
        `${label}: no ${f}: not a PEFT LoRA folder (adapter_config.json + adapter_model.safetensors; with PEFT: save_pretrained(dir, safe_serialization=True))`,
      );
  let adapter: LoraAdapter;
  try {
    adapter = LoraAdapter.open(dir);
  } catch (e) {
    if (isMerglotError(e)) bad(`the adapter is not usable: ${e.message}`);
    throw e;
  }
  try {
    return checkOpened(adapter, req, label);
  } finally {
    adapter.close();
  }
}

function checkOpened(adapter: LoraAdapter, req: AdapterRequest, label: string): AdapterCheck {
  const c = adapter.config;
  const where = `${label}/${CONFIG_FILE}`;
  if (c.r !== req.r) bad(`${where}: r is ${c.r}, but the study trains rank ${req.r} (training.r)`);
  if (c.loraAlpha !== req.alpha)
    bad(`${where}: lora_alpha is ${c.loraAlpha}, but the study trains alpha ${req.alpha} (training.alpha)`);
  if (c.useRslora)
    bad(`${where}: use_rslora is true (scaling α/√r), but the study trains plain LoRA (scaling α/r)`);
  if (c.fanInFanOut)
    bad(`${where}: fan_in_fan_out is true (GPT-2 Conv1D layout), not a llama-family adapter`);

  const { config: base, gguf } = baseConfig(req.base);
  if (!gguf) {
    if (c.baseModel === null)
      bad(`${where}: names no base model (base_model_name_or_path); the study's base is ${req.base}`);
    if (!baseNameCompatible(c.baseModel, req.base))
      bad(
        `${where}: base_model_name_or_path is "${c.baseModel}", but the study's base is ${req.base} ` +
          `(accepted: the same path, a name ending in "${basename(req.base)}", or the HF id of a hub-cache snapshot)`,
      );
  }

  let kinds: string[];
  try {
    kinds = resolveTargets(req.targets);
  } catch (e) {
    if (isMerglotError(e)) bad(`training.target_modules: ${e.message}`);
    throw e;
  }
  const asked = req.targets.join(", ");
  const expected = new Set<string>();
  for (let layer = 0; layer < base.numLayers; layer++)
    for (const kind of LINEAR_KINDS) {
      const name = modulePath(layer, kind);
      const wanted = kinds.includes(kind);
      if (wanted) expected.add(name);
      // target_modules absent: PEFT chose its per-architecture default; the weights decide below.
      if (c.targetModules === null) continue;
      const covered = targetModulesCover(c.targetModules, name, `${where}: field "target_modules"`);
      const tm = JSON.stringify(c.targetModules);
      if (wanted && !covered)
        bad(`${where}: target_modules ${tm} does not cover ${name}, but the study targets ${asked}`);
      if (!wanted && covered)
        bad(`${where}: target_modules ${tm} also covers ${name}, which the study does not target (${asked})`);
    }

  const weights = `${label}/${WEIGHTS_FILE}`;
  for (const m of adapter.modules) {
    if (!expected.has(m.name))
      bad(
        `${weights}: has a LoRA for module ${m.name}, which the study's targets (${asked}) on the base's ${base.numLayers} layers do not include`,
      );
    if (m.rank !== req.r)
      bad(`${weights}: module ${m.name} has rank ${m.rank}, but the study trains rank ${req.r}`);
    if (m.alpha !== req.alpha)
      bad(
        `${weights}: module ${m.name} has alpha ${m.alpha} (alpha_pattern), but the study trains alpha ${req.alpha}`,
      );
    const want = moduleShape(base, m.name);
    if (want && (want[0] !== m.outFeatures || want[1] !== m.inFeatures))
      bad(
        `${weights}: module ${m.name} is ${m.outFeatures} × ${m.inFeatures}, but the base model (${req.base}) has ${want[0]} × ${want[1]}`,
      );
  }
  const have = new Set(adapter.modules.map((m) => m.name));
  for (const name of expected)
    if (!have.has(name)) bad(`${weights}: has no LoRA for module ${name} (the study targets ${asked})`);

  // Every tensor through merglot's reader (dtype, size), and finite: a diverged training writes NaN.
  let buf: Float32Array | undefined;
  for (const m of adapter.modules)
    for (const [factor, read] of [
      ["lora_A", (o?: Float32Array) => adapter.readA(m, o)],
      ["lora_B", (o?: Float32Array) => adapter.readB(m, o)],
    ] as const) {
      const size = factor === "lora_A" ? m.rank * m.inFeatures : m.outFeatures * m.rank;
      buf = buf && buf.length >= size ? buf : new Float32Array(size);
      const x = read(buf.subarray(0, size));
      for (let i = 0; i < x.length; i++)
        if (!Number.isFinite(x[i]!))
          bad(
            `${weights}: module ${m.name}: ${factor} holds a non-finite value (NaN or infinity): the training diverged`,
          );
    }
  return { modules: adapter.modules.length, baseModel: c.baseModel };
}
