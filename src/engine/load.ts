/**
 * HF-layout model folders: `config.json` + `model.safetensors`, or shards listed in
 * `model.safetensors.index.json`. Loading reads one tensor at a time into the model's arrays; saving writes
 * a single `model.safetensors` (float32 unless asked otherwise) next to `config.json`, atomically.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MerglotError } from "../errors.js";
import { openOutput, type OutputSlot } from "../output/slot.js";
import { OWNERS } from "../output/owners.js";
import { SafetensorsReader, writeSafetensors } from "../formats/safetensors.js";
import { parseModelConfig, toHfConfig, type ModelConfig } from "./config.js";
import { LlamaModel, type DType } from "./model.js";
import { readJsonFile } from "../json-input.js";

function readJson(path: string): unknown {
  if (!existsSync(path)) throw new MerglotError("model.missing", `${path}: file not found`);
  return readJsonFile(path, { code: "model.json" });
}

export function readModelConfig(dir: string): ModelConfig {
  const path = join(dir, "config.json");
  return parseModelConfig(readJson(path), path);
}

/** tensor name → shard file, for a single file or a sharded checkpoint. */
function weightFiles(dir: string): Map<string, string> {
  const single = join(dir, "model.safetensors");
  const index = join(dir, "model.safetensors.index.json");
  const out = new Map<string, string>();
  if (existsSync(index)) {
    const raw = readJson(index) as { weight_map?: Record<string, unknown> };
    if (
      typeof raw !== "object" ||
      raw === null ||
      typeof raw.weight_map !== "object" ||
      raw.weight_map === null
    ) {
      throw new MerglotError("model.index", `${index}: no "weight_map" object`);
    }
    for (const [name, file] of Object.entries(raw.weight_map)) {
      if (typeof file !== "string" || file.includes("/") || file.includes("\\")) {
        throw new MerglotError(
          "model.index",
          `${index}: weight_map entry "${name}" must name a file in the folder`,
        );
      }
      out.set(name, join(dir, file));
    }
    return out;
  }
  if (existsSync(single)) {
    const r = SafetensorsReader.open(single);
    try {
      for (const t of r.tensors) out.set(t.name, single);
    } finally {
      r.close();
    }
    return out;
  }
  if (existsSync(join(dir, "pytorch_model.bin"))) {
    throw new MerglotError(
      "model.pickle",
      `${dir}: only pytorch_model.bin found; pickle weights are not read — save the model with safe_serialization=True`,
    );
  }
  throw new MerglotError("model.missing", `${dir}: no model.safetensors or model.safetensors.index.json`);
}

/** Load a model folder. Weights in F32, F16 or BF16 are converted to the engine's dtype. */
export function loadModel(dir: string, opts: { dtype?: DType } = {}): LlamaModel {
  const config = readModelConfig(dir);
  const model = new LlamaModel(config, opts.dtype ?? "f32");
  const files = weightFiles(dir);
  const wanted = model.namedParameters();
  const byFile = new Map<string, typeof wanted>();
  for (const p of wanted) {
    const file = files.get(p.name);
    if (file === undefined) {
      throw new MerglotError("model.tensor", `${dir}: tensor "${p.name}" is missing from the checkpoint`);
    }
    if (!byFile.has(file)) byFile.set(file, []);
    byFile.get(file)!.push(p);
  }
  for (const [file, params] of byFile) {
    const r = SafetensorsReader.open(file);
    try {
      for (const p of params) {
        const entry = r.get(p.name);
        if (entry === undefined)
          throw new MerglotError(
            "model.tensor",
            `${file}: tensor "${p.name}" listed in the index is not in the file`,
          );
        const shape = entry.shape.join("×");
        if (shape !== p.shape.join("×")) {
          throw new MerglotError(
            "model.shape",
            `${file}: tensor "${p.name}" has shape [${shape}], config.json implies [${p.shape.join("×")}]`,
          );
        }
        if (p.data instanceof Float32Array) r.readFloat32(p.name, p.data);
        else p.data.set(r.readFloat32(p.name));
      }
    } finally {
      r.close();
    }
  }
  return model;
}

/**
 * Write a model folder (config.json + model.safetensors) atomically; `extraFiles` are copied in as text.
 * `dir` may be an `OutputSlot` carrying a command's output policy; a plain path refuses an existing one
 * unless `force`.
 */
export function saveModel(
  model: LlamaModel,
  dir: string | OutputSlot,
  opts: { force?: boolean; dtype?: "F32" | "F16" | "BF16"; extraFiles?: Record<string, string> } = {},
): void {
  const slot =
    typeof dir === "string"
      ? openOutput({ path: dir, kind: "dir", inputs: [], owner: OWNERS.unchecked, force: opts.force })
      : dir;
  const tmp = slot.temp;
  try {
    writeFileSync(join(tmp, "config.json"), JSON.stringify(toHfConfig(model.config), null, 2) + "\n");
    writeSafetensors(
      join(tmp, "model.safetensors"),
      model.namedParameters().map((p) => ({
        name: p.name,
        dtype: opts.dtype ?? "F32",
        shape: p.shape,
        data: p.data instanceof Float32Array ? p.data : Float32Array.from(p.data),
      })),
      { format: "pt" },
    );
    for (const [name, text] of Object.entries(opts.extraFiles ?? {})) writeFileSync(join(tmp, name), text);
    slot.commit();
  } catch (e) {
    throw slot.fail(e);
  }
}
