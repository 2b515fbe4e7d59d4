/**
 * What `merglot inspect` reports: for an adapter folder, one row per LoRA module (shape, rank, alpha,
 * scaling, dtype and ‖ΔW‖_F from the factors); for any other .safetensors file, one row per tensor.
 * Reading streams one module at a time.
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { deltaFrobeniusNorm } from "../analysis/delta-norm.js";
import { MerglotError } from "../errors.js";
import { escapeControl, escapeOutput } from "../escape.js";
import { CONFIG_FILE, LoraAdapter, WEIGHTS_FILE } from "../formats/peft.js";
import { GgufReader, type GgufValue } from "../formats/gguf.js";
import { DTYPE_SIZE, SafetensorsReader } from "../formats/safetensors.js";

export interface InspectModule {
  name: string;
  layer: number | null;
  kind: string;
  in: number;
  out: number;
  rank: number;
  alpha: number;
  scaling: number;
  dtype: string;
  deltaNorm: number;
}

export interface InspectTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
}

export interface InspectReport {
  kind: "adapter" | "safetensors" | "gguf";
  path: string;
  baseModel?: string | null;
  r?: number;
  loraAlpha?: number;
  useRslora?: boolean;
  targetModules?: string[] | string | null;
  modules?: InspectModule[];
  tensors?: InspectTensor[];
  metadata?: Record<string, string>;
  /** GGUF key/value metadata, long arrays summarised (e.g. the tokenizer's vocabulary). */
  ggufMetadata?: Record<string, string | number | boolean>;
  ggufVersion?: number;
  totals: { tensors: number; parameters: number; bytes: number };
}

function isAdapterPath(path: string): string | null {
  if (statSync(path).isDirectory()) return path;
  if (basename(path) === WEIGHTS_FILE && existsSync(join(dirname(path), CONFIG_FILE))) return dirname(path);
  return null;
}

export function inspectPath(path: string, opts: { norms?: boolean } = {}): InspectReport {
  if (!existsSync(path)) throw new MerglotError("inspect.missing", `${path}: no such file or folder`);
  const dir = isAdapterPath(path);
  if (dir !== null) return inspectAdapter(dir, opts.norms ?? true);
  if (path.endsWith(".gguf")) return inspectGguf(path);
  if (!path.endsWith(".safetensors")) {
    throw new MerglotError(
      "inspect.format",
      `${path}: not an adapter folder, a .safetensors or a .gguf file`,
    );
  }
  const f = SafetensorsReader.open(path);
  try {
    const tensors = f.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: [...t.shape],
      bytes: t.end - t.begin,
    }));
    return {
      kind: "safetensors",
      path,
      tensors,
      metadata: f.metadata,
      totals: {
        tensors: tensors.length,
        parameters: tensors.reduce((s, t) => s + t.bytes / DTYPE_SIZE[t.dtype as keyof typeof DTYPE_SIZE], 0),
        bytes: f.fileSize,
      },
    };
  } finally {
    f.close();
  }
}

/** A GGUF value as one short printable item; arrays longer than 8 items are summarised. */
function ggufValueSummary(v: GgufValue): string | number | boolean {
  if (v.type === "array") {
    const items = v.value as unknown[];
    if (items.length > 8) return `[${v.itemType} × ${items.length}]`;
    return JSON.stringify(items, (_k, x: unknown) => (typeof x === "bigint" ? Number(x) : x));
  }
  return typeof v.value === "bigint" ? Number(v.value) : v.value;
}

function inspectGguf(path: string): InspectReport {
  const f = GgufReader.open(path);
  try {
    const ggufMetadata: Record<string, string | number | boolean> = {};
    for (const [k, v] of f.metadata) ggufMetadata[k] = ggufValueSummary(v);
    const tensors = f.tensors.map((t) => ({
      name: t.name,
      dtype: t.type,
      shape: [...t.shape],
      bytes: t.byteLength,
    }));
    return {
      kind: "gguf",
      path,
      ggufVersion: f.version,
      ggufMetadata,
      tensors,
      totals: {
        tensors: tensors.length,
        parameters: f.tensors.reduce((s, t) => s + t.elementCount, 0),
        bytes: f.fileSize,
      },
    };
  } finally {
    f.close();
  }
}

function inspectAdapter(dir: string, norms: boolean): InspectReport {
  const a = LoraAdapter.open(dir);
  try {
    // one pair of buffers sized for the largest module, reused for every module
    const maxA = Math.max(0, ...a.modules.map((m) => m.rank * m.inFeatures));
    const maxB = Math.max(0, ...a.modules.map((m) => m.rank * m.outFeatures));
    const bufA = new Float32Array(norms ? maxA : 0);
    const bufB = new Float32Array(norms ? maxB : 0);
    const modules: InspectModule[] = a.modules.map((m) => ({
      name: m.name,
      layer: m.layer,
      kind: m.kind,
      in: m.inFeatures,
      out: m.outFeatures,
      rank: m.rank,
      alpha: m.alpha,
      scaling: m.scaling,
      dtype: m.dtype,
      deltaNorm: norms
        ? deltaFrobeniusNorm(
            a.readA(m, bufA.subarray(0, m.rank * m.inFeatures)),
            a.readB(m, bufB.subarray(0, m.rank * m.outFeatures)),
            m.rank,
            m.inFeatures,
            m.outFeatures,
            m.scaling,
          )
        : NaN,
    }));
    const parameters = modules.reduce((s, m) => s + m.rank * (m.in + m.out), 0);
    return {
      kind: "adapter",
      path: dir,
      baseModel: a.config.baseModel,
      r: a.config.r,
      loraAlpha: a.config.loraAlpha,
      useRslora: a.config.useRslora,
      targetModules: a.config.targetModules,
      modules,
      totals: { tensors: modules.length * 2, parameters, bytes: statSync(a.weightsPath).size },
    };
  } finally {
    a.close();
  }
}

function human(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

function table(header: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The human-readable form printed by `merglot inspect`. Names come from the file: control characters in them
 *  are escaped (a name with ESC or CR must not rewrite the terminal, one with a newline must not fake a row). */
export function formatReport(r: InspectReport): string {
  const esc = escapeControl;
  const out: string[] = [];
  if (r.kind === "adapter") {
    out.push(`adapter   ${esc(r.path)}`);
    out.push(`base      ${esc(r.baseModel ?? "(not set)")}`);
    out.push(
      `r=${r.r}  lora_alpha=${r.loraAlpha}${r.useRslora ? "  rsLoRA" : ""}  target_modules=${escapeOutput(JSON.stringify(r.targetModules))}`,
    );
    out.push("");
    out.push(
      table(
        ["module", "shape (out×in)", "rank", "alpha", "scaling", "dtype", "‖ΔW‖_F"],
        r.modules!.map((m) => [
          esc(m.name),
          `${m.out}×${m.in}`,
          String(m.rank),
          String(m.alpha),
          m.scaling.toPrecision(4),
          esc(m.dtype),
          Number.isNaN(m.deltaNorm) ? "-" : m.deltaNorm.toPrecision(5),
        ]),
        [false, true, true, true, true, false, true],
      ),
    );
  } else {
    out.push(`${r.kind === "gguf" ? `gguf v${r.ggufVersion}` : "safetensors"}   ${esc(r.path)}`);
    if (r.metadata && Object.keys(r.metadata).length)
      out.push(`metadata      ${escapeOutput(JSON.stringify(r.metadata))}`);
    for (const [k, v] of Object.entries(r.ggufMetadata ?? {})) out.push(`  ${esc(k)} = ${esc(String(v))}`);
    out.push("");
    out.push(
      table(
        ["tensor", "dtype", "shape", "bytes"],
        r.tensors!.map((t) => [esc(t.name), esc(t.dtype), `[${t.shape.join(", ")}]`, human(t.bytes)]),
        [false, false, true, true],
      ),
    );
  }
  out.push("");
  out.push(
    `total: ${r.kind === "adapter" ? `${r.modules!.length} modules, ` : ""}${r.totals.tensors} tensors, ` +
      `${r.totals.parameters.toLocaleString("en-US")} parameters, ${human(r.totals.bytes)}`,
  );
  return out.join("\n");
}
