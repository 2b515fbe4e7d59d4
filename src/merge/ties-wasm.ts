/**
 * The WebAssembly SIMD form of the fused TIES kernel (source: wasm/ties.ts, built into dist/src/wasm/ties.wasm by
 * `npm run build`): trim + elect + disjoint mean four entries at a time, with the same bits as fused.ts.
 *
 * Why: the JavaScript kernel does ~7 ns per entry and adapter (trimmed signs and zeros defeat V8's scalar code
 * even branch-free); the SIMD kernel ~1.5 ns (bench/ties-kernels.ts). TIES in the delta space touches every
 * entry of every ΔW_i, 7·10⁹ entries × 5 adapters for an 8B model.
 *
 * WebAssembly reads only its own memory. The task tensors are placed there by the caller (inputSlots: the
 * delta space forms its ΔW chunks straight into them) or copied in. Views on that memory become detached when
 * it grows, so it grows only (growMemory) before any view is handed out, and never while a
 * caller holds slots for the same shape. One instance per thread (module state, like every scratch here).
 *
 * `MERGLOT_WASM=js` in the environment keeps the JavaScript kernels (the reference this one is tested against);
 * a missing or invalid .wasm file (a tree built with tsc alone) does the same, with the reason in tiesWasmStatus().
 */
import { growMemory, lazyInstance, wasmLoadError } from "../tensor/wasm.js";
import type { SignMethod, Tensor, TrimThreshold } from "./operators.js";

const B = 2048;

interface Exports {
  memory: WebAssembly.Memory;
  tiesMerge(
    xs: number,
    m: number,
    n: number,
    thr: number,
    ties: number,
    w: number,
    frequency: number,
    out: number,
    work: number,
  ): void;

  histHigh(x: number, n: number, c0: number, c1: number): void;
  histLow(x: number, n: number, high: number, c0: number): void;
}

// Two instances, so the histogram's whole-tensor slot and the merge's chunk slots never move each other.
const load = lazyInstance<Exports>("ties");
const loadHist = lazyInstance<Exports>("ties");

/** Whether the SIMD kernels run, and why not when they do not. */
export function tiesWasmStatus(): { available: boolean; reason: string | null } {
  const k = load();
  return { available: k !== null, reason: k === null ? wasmLoadError("ties") : null };
}

/** Both instances start with two u32[65536] histogram count arrays (histogramWasm). */
const COUNTS_1 = 65536 * 4;
const COUNTS_END = 2 * 65536 * 4;

/** Merge instance layout for m adapters × n entries: counts, metadata, work blocks, output, the m input slots. */
function layout(m: number, n: number) {
  const thr = COUNTS_END;
  const ties = align(thr + 4 * m);
  const w = ties + 8 * m;
  const xs = w + 8 * m;
  const work = align(xs + 4 * m);
  const out = align(work + B * (8 + 8 + 4 + 4 * m));
  const inputs = align(out + 4 * n);
  return { thr, ties, w, xs, work, out, inputs, end: inputs + 4 * m * n };
}

function align(x: number): number {
  return (x + 63) & ~63;
}

/**
 * Float32 views of m input slots of n entries in the kernel's memory, for a caller that forms its task
 * tensors in place (no copy in tiesMergeWasm). Null when the kernel is unavailable. Valid until the next
 * inputSlots call with a larger shape.
 */
export function inputSlots(m: number, n: number): Float32Array[] | null {
  const k = load();
  if (k === null) return null;
  const l = layout(m, n);
  if (!growMemory(k.memory, l.end)) return null;
  return Array.from({ length: m }, (_, i) => new Float32Array(k.memory.buffer, l.inputs + 4 * n * i, n));
}

/**
 * disjoint mean under the elected sign of trim(x_i) (thresholds t_i, whose tie quotas are consumed as in
 * applyThresholdRange), written into `out`: the bits of fusedDisjointMerge with a trim RangeOperator. False
 * (nothing written, quotas untouched) when the kernel is unavailable.
 */
export function tiesMergeWasm(
  xs: readonly Tensor[],
  thresholds: readonly TrimThreshold[],
  weights: readonly number[],
  signMethod: SignMethod,
  out: Tensor,
): boolean {
  const k = load();
  if (k === null) return false;
  const m = xs.length;
  const n = xs[0]!.length;
  const l = layout(m, n);
  // Inputs already in this memory (formed in their slots, maybe of a larger shape) are read where they are;
  // a mix would have copies overwrite them, and growing would detach them: both go to the JavaScript kernel.
  const inMemory = xs.filter((x) => x.buffer === k.memory.buffer).length;
  if (inMemory === m) {
    if (xs.some((x) => x.byteOffset < l.inputs)) return false;
  } else if (inMemory > 0 || !growMemory(k.memory, l.end)) return false;
  const buf = k.memory.buffer;
  const ptrs = new Uint32Array(buf, l.xs, m);
  const thr = new Uint32Array(buf, l.thr, m);
  const ties = new Float64Array(buf, l.ties, m);
  const w = new Float64Array(buf, l.w, m);
  for (let i = 0; i < m; i++) {
    if (inMemory === m) ptrs[i] = xs[i]!.byteOffset;
    else {
      ptrs[i] = l.inputs + 4 * n * i;
      new Float32Array(buf, ptrs[i]!, n).set(xs[i]!);
    }
    thr[i] = thresholds[i]!.bits; // ≥ 0x7fffffff keeps nothing, as in applyThresholdRange
    ties[i] = thresholds[i]!.ties;
    w[i] = weights[i]!;
  }
  k.tiesMerge(l.xs, m, n, l.thr, l.ties, l.w, signMethod === "frequency" ? 1 : 0, l.out, l.work);
  out.set(new Float32Array(buf, l.out, n));
  for (let i = 0; i < m; i++) thresholds[i]!.ties = ties[i]!;
  return true;
}

// ------------------------------------------------------------------ histograms for the trim threshold

/** The histogram instance: counts, then one tensor slot. */
const HIST_SLOT = COUNTS_END;

/**
 * A float32 view of n entries in the histogram kernel's memory, for a caller that forms a whole task tensor
 * there before its threshold is computed (no copy in histogramWasm). Null when the kernel is unavailable.
 * Valid until the next histogramSlot call with a larger n.
 */
export function histogramSlot(n: number): Float32Array | null {
  const k = loadHist();
  if (k === null || !growMemory(k.memory, HIST_SLOT + 4 * n)) return null;
  return new Float32Array(k.memory.buffer, HIST_SLOT, n);
}

/**
 * histogram() of operators.ts (same counts): adds to `hist` the histogram of the high 16 bits of |x|
 * (`high` null) or of the low 16 bits of the entries whose high bits equal `high`. False when unavailable.
 */
export function histogramWasm(x: Tensor, high: number | null, hist: Float64Array): boolean {
  // a tensor formed in the merge instance's slots (KnOTS tasks) is counted there, in place
  const merge = load();
  const inMerge = merge !== null && x.buffer === merge.memory.buffer;
  const k = inMerge ? merge : loadHist();
  if (k === null) return false;
  const n = x.length;
  let ptr: number;
  if (x.buffer === k.memory.buffer && x.byteOffset >= COUNTS_END) ptr = x.byteOffset;
  else if (inMerge)
    return false; // never the case for views handed out here
  else {
    if (!growMemory(k.memory, HIST_SLOT + 4 * n)) return false;
    new Float32Array(k.memory.buffer, HIST_SLOT, n).set(x);
    ptr = HIST_SLOT;
  }
  const c0 = new Uint32Array(k.memory.buffer, 0, 65536);
  if (high === null) {
    k.histHigh(ptr, n, 0, COUNTS_1);
    const c1 = new Uint32Array(k.memory.buffer, COUNTS_1, 65536);
    for (let b = 0; b < 65536; b++) hist[b]! += c0[b]! + c1[b]!;
  } else {
    k.histLow(ptr, n, high, 0);
    for (let b = 0; b < 65536; b++) hist[b]! += c0[b]!;
  }
  return true;
}
