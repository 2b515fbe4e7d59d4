/**
 * LoRA on the decoder's linear modules: attach freshly initialised factors (PEFT's initialisation: A
 * Kaiming-uniform with a = √5, i.e. U(−1/√in, 1/√in), B zero), load a PEFT adapter folder (unmerged, or
 * merged into the base weights), merge, and export PEFT-named tensors.
 */
import { MerglotError } from "../errors.js";
import { readAdapter, type AdapterConfigInput } from "../formats/peft.js";
import { gemm } from "./kernels.js";
import type { LoraWeights } from "./layers.js";
import { LINEAR_KINDS, type LinearKind, type LlamaModel } from "./model.js";
import type { Rng } from "./rng.js";

export interface LoraSpec {
  r: number;
  alpha: number;
  /** Module kinds (q_proj … down_proj) or "all-linear". */
  targets: string[];
  /** rsLoRA: scaling α/√r instead of α/r. */
  rslora?: boolean;
  /** Dropout on the LoRA branch input during training. */
  dropout?: number;
}

/** PEFT's scaling: α/r, or α/√r with rsLoRA. */
export function loraScaling(r: number, alpha: number, rslora = false): number {
  return rslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** Expand and check target names; "all-linear" means every linear module except the LM head (as PEFT). */
export function resolveTargets(targets: string[]): LinearKind[] {
  const out = new Set<LinearKind>();
  for (const t of targets) {
    if (t === "all-linear") {
      for (const k of LINEAR_KINDS) out.add(k);
    } else if ((LINEAR_KINDS as readonly string[]).includes(t)) {
      out.add(t as LinearKind);
    } else {
      throw new MerglotError(
        "lora.targets",
        `unknown LoRA target module "${t}" (expected all-linear or some of ${LINEAR_KINDS.join(", ")})`,
      );
    }
  }
  if (out.size === 0) throw new MerglotError("lora.targets", "no LoRA target modules given");
  return LINEAR_KINDS.filter((k) => out.has(k));
}

function checkSpec(spec: LoraSpec): void {
  if (!Number.isInteger(spec.r) || spec.r < 1)
    throw new MerglotError("lora.r", `LoRA rank r must be a positive integer, got ${spec.r}`);
  if (!Number.isFinite(spec.alpha))
    throw new MerglotError("lora.alpha", `LoRA alpha must be a number, got ${spec.alpha}`);
  const p = spec.dropout ?? 0;
  if (!(p >= 0 && p < 1)) throw new MerglotError("lora.dropout", `LoRA dropout must lie in [0, 1), got ${p}`);
}

/**
 * Attach new trainable LoRA factors to every targeted module (replacing any attached ones). The random
 * stream is consumed module by module in canonical order, so the same seed gives the same factors.
 */
export function attachLora(model: LlamaModel, spec: LoraSpec, rng: Rng): void {
  checkSpec(spec);
  const kinds = new Set(resolveTargets(spec.targets));
  const A = model.ctor;
  const scaling = loraScaling(spec.r, spec.alpha, spec.rslora);
  for (const layer of model.layers) {
    for (const kind of LINEAR_KINDS) {
      const lin = layer.linears[kind];
      if (!kinds.has(kind)) {
        lin.lora = null;
        continue;
      }
      const bound = 1 / Math.sqrt(lin.inF);
      const a = new A(spec.r * lin.inF);
      for (let i = 0; i < a.length; i++) a[i] = (2 * rng.uniform() - 1) * bound;
      lin.lora = {
        r: spec.r,
        scaling,
        dropout: spec.dropout ?? 0,
        a,
        b: new A(lin.outF * spec.r),
        gradA: new A(a.length),
        gradB: new A(lin.outF * spec.r),
      };
    }
  }
  model.releaseWorkspace();
}

/** Remove every LoRA from the model. */
export function detachLora(model: LlamaModel): void {
  for (const lin of model.linears()) lin.lora = null;
  model.releaseWorkspace();
}

/** Fold every attached LoRA into its base weight (W += scaling·B·A) and detach it. */
export function mergeLora(model: LlamaModel): void {
  for (const lin of model.linears()) {
    const l = lin.lora;
    if (l === null) continue;
    const scaledB = new model.ctor(l.b.length);
    for (let i = 0; i < l.b.length; i++) scaledB[i] = l.b[i] * l.scaling;
    gemm(false, false, lin.outF, lin.inF, l.r, scaledB, l.a, lin.weight, true);
    lin.lora = null;
  }
  model.releaseWorkspace();
}

/** The attached LoRA factors as PEFT-named tensors (float32 copies). */
export function loraTensors(model: LlamaModel): { name: string; shape: number[]; data: Float32Array }[] {
  const out: { name: string; shape: number[]; data: Float32Array }[] = [];
  for (const lin of model.linears()) {
    const l = lin.lora;
    if (l === null) continue;
    out.push({
      name: `base_model.model.${lin.name}.lora_A.weight`,
      shape: [l.r, lin.inF],
      data: Float32Array.from(l.a),
    });
    out.push({
      name: `base_model.model.${lin.name}.lora_B.weight`,
      shape: [lin.outF, l.r],
      data: Float32Array.from(l.b),
    });
  }
  return out;
}

/** The adapter_config.json fields for a spec (PEFT's defaults for the rest come from formats/peft.ts). */
export function loraAdapterConfig(spec: LoraSpec, baseModel: string | null): AdapterConfigInput {
  return {
    r: spec.r,
    lora_alpha: spec.alpha,
    target_modules: resolveTargets(spec.targets),
    base_model_name_or_path: baseModel,
    use_rslora: spec.rslora ?? false,
    lora_dropout: spec.dropout ?? 0,
  };
}

/** Every attached LoRA's trainable tensors (for optimisers and checkpoints), in canonical order. */
export function loraParameters(
  model: LlamaModel,
): { name: string; data: LoraWeights["a"]; grad: LoraWeights["a"] | null }[] {
  const out: { name: string; data: LoraWeights["a"]; grad: LoraWeights["a"] | null }[] = [];
  for (const lin of model.linears()) {
    const l = lin.lora;
    if (l === null) continue;
    out.push({ name: `${lin.name}.lora_A`, data: l.a, grad: l.gradA });
    out.push({ name: `${lin.name}.lora_B`, data: l.b, grad: l.gradB });
  }
  return out;
}

/**
 * Load a PEFT adapter folder onto the model: attached unmerged (frozen, no gradients) or merged into the
 * base weights. Each adapter module must exist in the model with matching shapes.
 */
export function loadAdapter(model: LlamaModel, dir: string, opts: { merge?: boolean } = {}): void {
  const { adapter, modules } = readAdapter(dir);
  const byName = new Map(model.linears().map((l) => [l.name, l]));
  for (const { module: m, a, b } of modules) {
    const lin = byName.get(m.name);
    if (lin === undefined) {
      throw new MerglotError(
        "lora.module",
        `${adapter.path}: adapter module "${m.name}" does not exist in the model`,
      );
    }
    if (m.inFeatures !== lin.inF || m.outFeatures !== lin.outF) {
      throw new MerglotError(
        "lora.shape",
        `${adapter.path}: module "${m.name}" is ${m.outFeatures}×${m.inFeatures} in the adapter but ${lin.outF}×${lin.inF} in the model`,
      );
    }
    if (lin.lora !== null) {
      throw new MerglotError(
        "lora.module",
        `${adapter.path}: module "${m.name}" already carries a LoRA (merge or detach it first)`,
      );
    }
    lin.lora = {
      r: m.rank,
      scaling: m.scaling,
      dropout: 0,
      a: model.ctor === Float32Array ? a : Float64Array.from(a),
      b: model.ctor === Float32Array ? b : Float64Array.from(b),
      gradA: null,
      gradB: null,
    };
  }
  model.releaseWorkspace();
  if (opts.merge) mergeLora(model);
}
