/**
 * `density_scope: global`: trim keeps floor(ρ·N) entries over ALL of one adapter's task tensors together (as
 * in the TIES and KnOTS papers), not per tensor. The threshold is found exactly with the same radix select as
 * per-tensor trim, streamed over modules (the task tensors are recomputed per pass, never held together):
 * pass 1 histograms the high 16 bits of |x|, pass 2 the low 16 bits inside the chosen bin, and — only when
 * the threshold is a non-zero magnitude shared by several entries — pass 3 hands the tie quota out in module
 * order (lower flat index wins, as everywhere).
 */
import { thresholdKey, type GlobalThresholds } from "./binder.js";
import { AdapterCache, loadJob, type ComputeSettings } from "./compute.js";
import { countEqualMagnitude, histogram, topBin, type TrimThreshold } from "./operators.js";
import type { PlannedModule } from "./plan.js";
import { denseDelta } from "./spaces/delta.js";
import { coreBasis } from "./spaces/core.js";
import { knotsBasis } from "./spaces/knots.js";
import type { ModuleJob } from "./spaces/types.js";

/** The task tensors of one module per key, in participant order. */
export function taskTensors(job: ModuleJob, space: ComputeSettings["space"]): Map<string, Float32Array[]> {
  if (space === "factors") {
    return new Map([
      ["lora_A", job.inputs.map((x) => x.a)],
      ["lora_B", job.inputs.map((x) => x.b)],
    ]);
  }
  if (space === "knots") return new Map([["knots", knotsBasis(job).tasks]]);
  if (space === "core") return new Map([["core", coreBasis(job).tasks]]);
  return new Map([["delta", job.inputs.map((x) => denseDelta(x, job.out, job.in))]]);
}

interface Acc {
  n: number;
  hi: Float64Array;
  lo?: Float64Array;
  bin?: { bin: number; above: number };
  t?: TrimThreshold;
}

export function globalThresholds(
  modules: PlannedModule[],
  settings: ComputeSettings,
  cache: AdapterCache,
): GlobalThresholds {
  const accs = new Map<string, Acc>(); // `${adapter}/${key}`
  const each = (fn: (m: PlannedModule, adapter: number, key: string, x: Float32Array) => void) => {
    for (const m of modules) {
      const job = loadJob(m, settings, cache);
      for (const [key, xs] of taskTensors(job, settings.space))
        xs.forEach((x, p) => fn(m, job.inputs[p]!.index, key, x));
    }
  };
  each((_m, i, key, x) => {
    const id = `${i}/${key}`;
    let acc = accs.get(id);
    if (!acc) accs.set(id, (acc = { n: 0, hi: new Float64Array(65536) }));
    acc.n += x.length;
    histogram(x, null, acc.hi);
  });
  const needLow = new Map<string, Acc>();
  for (const [id, acc] of accs) {
    const density = settings.models[Number(id.split("/")[0])]!.density;
    // recipe.ts refuses per-module densities with the global scope
    if (typeof density !== "number") throw new Error("global density scope with a per-module density");
    const k = Math.floor(density * acc.n);
    if (k >= acc.n) acc.t = { bits: 0, ties: Number.MAX_SAFE_INTEGER };
    else if (k <= 0) acc.t = { bits: 0xffffffff, ties: 0 };
    else {
      acc.bin = topBin(acc.hi, k);
      acc.lo = new Float64Array(65536);
      acc.n = k; // from here on: the number of entries to keep
      needLow.set(id, acc);
    }
  }
  if (needLow.size) {
    each((_m, i, key, x) => {
      const acc = needLow.get(`${i}/${key}`);
      if (acc) histogram(x, acc.bin!.bin, acc.lo!);
    });
    for (const acc of needLow.values()) {
      const l = topBin(acc.lo!, acc.n - acc.bin!.above);
      acc.t = { bits: ((acc.bin!.bin << 16) | l.bin) >>> 0, ties: acc.n - acc.bin!.above - l.above };
    }
  }
  const out: GlobalThresholds = new Map();
  const tied = [...accs].filter(([, a]) => a.t!.bits !== 0 && a.t!.bits !== 0xffffffff && a.t!.ties > 0);
  const remaining = new Map(tied.map(([id, a]) => [id, a.t!.ties]));
  if (tied.length) {
    each((m, i, key, x) => {
      const id = `${i}/${key}`;
      const left = remaining.get(id);
      if (left === undefined) return;
      const t = accs.get(id)!.t!;
      const quota = Math.min(left, countEqualMagnitude(x, t.bits));
      remaining.set(id, left - quota);
      out.set(thresholdKey(i, key, m.name), { bits: t.bits, ties: quota });
    });
  }
  for (const m of modules) {
    for (const i of m.participants) {
      for (const [id, acc] of accs) {
        const [ai, key] = id.split("/");
        if (Number(ai) !== i) continue;
        const k = thresholdKey(i, key!, m.name);
        if (!out.has(k)) out.set(k, remaining.has(id) ? { bits: acc.t!.bits, ties: 0 } : acc.t!);
      }
    }
  }
  return out;
}
