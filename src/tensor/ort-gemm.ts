/**
 * Native GEMM through onnxruntime's CPU kernel (MLAS: AVX2/AVX-512 sgemm and dgemm, ~40–150 GFLOP/s on
 * one core here versus ~4 for JavaScript).
 *
 * We call the addon's synchronous session object (`onnxruntime-node/dist/binding.js`, typed in the
 * package's binding.d.ts) instead of the public `InferenceSession`: the public `run()` only wraps that
 * same synchronous call in a promise, and a synchronous GEMM keeps the linear algebra above it plain
 * code. The addon is loaded lazily with `createRequire`, so a platform without the binary (or an
 * install that lacks the package) falls back to the JavaScript kernel instead of failing to import.
 *
 * Sessions run with one intra-op thread by default: the merge engine already runs one module per
 * worker, and a second ORT thread measured slower than one on this 2-core machine. Results do not
 * depend on the thread count (MLAS splits work over M and N, never over K).
 */
import { createRequire } from "node:module";
import { gemmModel, ONNX_DOUBLE, ONNX_FLOAT } from "./onnx-gemm-model.js";

type OrtArray = Float32Array | Float64Array;

interface OrtTensorLike {
  readonly data: OrtArray;
  readonly dims: readonly number[];
}
interface OrtTensorConstructor {
  new (type: "float32" | "float64", data: OrtArray, dims: readonly number[]): OrtTensorLike;
}
interface BindingSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(
    feeds: Record<string, OrtTensorLike>,
    fetches: Record<string, null>,
    options: object,
  ): Record<string, OrtTensorLike>;
  dispose(): void;
}
interface BindingModule {
  binding: { InferenceSession: new () => BindingSession };
  initOrt(): void;
}

interface OrtHandle {
  Tensor: OrtTensorConstructor;
  binding: BindingModule["binding"];
}

let handle: OrtHandle | null | undefined; // undefined: not tried yet; null: unavailable
let loadError = "";
let threads = 1;
const sessions = new Map<string, BindingSession>();
const MAX_SESSIONS = 32;

/** Loads the addon once; returns null (and records why) when it cannot be used. */
function load(): OrtHandle | null {
  if (handle !== undefined) return handle;
  try {
    const require = createRequire(import.meta.url);
    const ort = require("onnxruntime-node") as { Tensor: OrtTensorConstructor };
    const bindingModule = require("onnxruntime-node/dist/binding.js") as BindingModule;
    bindingModule.initOrt();
    handle = { Tensor: ort.Tensor, binding: bindingModule.binding };
  } catch (e) {
    handle = null;
    loadError = e instanceof Error ? e.message.split("\n")[0] : String(e);
  }
  return handle;
}

/** Whether the native kernel can be used; on first call this loads the addon. */
export function ortAvailable(): boolean {
  return load() !== null;
}

/** Why the native kernel is unavailable ("" when it is available or untried). */
export function ortLoadError(): string {
  return loadError;
}

/** Intra-op threads for sessions created from now on (existing sessions are dropped). */
export function setOrtThreads(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`setOrtThreads: ${n} is not a positive integer`);
  if (n === threads) return;
  threads = n;
  for (const s of sessions.values()) s.dispose();
  sessions.clear();
}

export function ortThreads(): number {
  return threads;
}

function sessionFor(
  h: OrtHandle,
  f64: boolean,
  transA: boolean,
  transB: boolean,
  alpha: number,
  beta: number,
  withC: boolean,
): BindingSession {
  const key = `${f64 ? "d" : "s"}${+transA}${+transB}${withC ? "c" : ""}:${alpha}:${beta}`;
  let s = sessions.get(key);
  if (s !== undefined) {
    // Refresh recency so the eviction below drops the least recently used configuration.
    sessions.delete(key);
    sessions.set(key, s);
    return s;
  }
  if (sessions.size >= MAX_SESSIONS) {
    const oldest = sessions.keys().next().value as string;
    sessions.get(oldest)!.dispose();
    sessions.delete(oldest);
  }
  const model = gemmModel({ elemType: f64 ? ONNX_DOUBLE : ONNX_FLOAT, transA, transB, alpha, beta, withC });
  s = new h.binding.InferenceSession();
  s.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "disabled",
    // The arena keeps ORT's (chunk-sized, see gemm.ts) output buffers for reuse between calls.
    enableCpuMemArena: true,
  });
  sessions.set(key, s);
  return s;
}

export interface OrtGemmArgs<T extends OrtArray> {
  m: number;
  n: number;
  k: number;
  a: T;
  b: T;
  transA: boolean;
  transB: boolean;
  /** Must be exactly representable in float32 (ONNX stores alpha/beta as float attributes). */
  alpha: number;
  beta: number;
  c: T | undefined;
}

/**
 * Y = alpha·op(A)·op(B) + beta·C on the native kernel; the arrays' element type picks sgemm or dgemm.
 * Inputs are passed without copying (typed-array views are fine); the result is a fresh array.
 * Callers check `ortAvailable()` first and keep m, n, k > 0.
 */
export function ortGemm<T extends OrtArray>(g: OrtGemmArgs<T>): T {
  const h = load();
  if (h === null) throw new Error(`onnxruntime is unavailable: ${loadError}`);
  const f64 = g.a instanceof Float64Array;
  const type = f64 ? "float64" : "float32";
  const withC = g.c !== undefined && g.beta !== 0;
  const s = sessionFor(h, f64, g.transA, g.transB, g.alpha, withC ? g.beta : 0, withC);
  const feeds: Record<string, OrtTensorLike> = {
    A: new h.Tensor(type, g.a, g.transA ? [g.k, g.m] : [g.m, g.k]),
    B: new h.Tensor(type, g.b, g.transB ? [g.n, g.k] : [g.k, g.n]),
  };
  if (withC) feeds.C = new h.Tensor(type, g.c!, [g.m, g.n]);
  const out = s.run(feeds, { Y: null }, {}).Y;
  return out.data as T;
}
