/**
 * Native matrix products through ONNX Runtime's CPU kernels (MLAS: AVX2/AVX-512 sgemm and dgemm, 40–160
 * GFLOP/s per core here versus 1–4 for JavaScript loops) — the one binding loader, model cache and run
 * path behind both the merge engine's linear algebra (tensor/gemm.ts) and the training / scoring engine
 * (engine/kernels.ts).
 *
 * We call the addon's synchronous session object (`onnxruntime-node/dist/binding.js`, typed in the
 * package's binding.d.ts) instead of the public `InferenceSession`: the public `run()` only wraps that
 * same call in a promise, and a synchronous product keeps the code above it plain. The addon is loaded
 * lazily and synchronously (a CommonJS require through backends.ts, on the first product), so the kernels
 * above stay synchronous, and a machine without the package (an optional peer dependency: 288 MB with
 * every platform's binary) or without a binary for its platform falls back to JavaScript kernels instead
 * of failing to import. ONNX Runtime ships its CPU binary inside the npm package.
 *
 * Each operation is a one-node ONNX graph (onnx.ts) with symbolic dimensions, built once per variant.
 * Inputs are passed without copies, and outputs are preallocated fetches: ORT writes straight into the
 * caller's array. That matters beyond the saved copy: on this project's VMs the first touch of fresh
 * memory costs ~5–7 ms per MB (page faults through the hypervisor), so results in ORT-allocated buffers
 * cost more than the arithmetic for large outputs.
 *
 * Two clients share this layer, each with its own switch and thread count (the one place they are
 * documented):
 *   - "linalg" (tensor/gemm.ts, the merge engine): `MERGLOT_GEMM=js` forces the JavaScript kernel.
 *     One intra-op thread by default: merges run one module per worker, and a second ORT thread
 *     measured slower than one on the 2-core machine. `configureGemm({ threads })` changes it.
 *   - "engine" (engine/kernels.ts: training, scoring): `MERGLOT_KERNELS=js` forces the JavaScript
 *     kernels. Threads: `MERGLOT_THREADS=N`, else the machine's cores (at most 8); `--threads` on the
 *     training CLI calls `setOrtThreads(n)`.
 * Results do not depend on the thread count (MLAS splits work over M and N, never over K).
 */
import { availableParallelism } from "node:os";
import { requireBackend } from "../backends.js";
import { ONNX_DOUBLE, ONNX_FLOAT, onnxModel, type OnnxNode, type OnnxValue } from "./onnx.js";

export type OrtClient = "linalg" | "engine";
type OrtArray = Float32Array | Float64Array;

interface OrtTensor {
  readonly data: unknown;
}
type OrtTensorCtor = new (type: "float32" | "float64", data: OrtArray, dims: number[]) => OrtTensor;
interface BindingSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, OrtTensor>, options: object): unknown;
  dispose(): void;
}
interface BindingModule {
  binding: { InferenceSession: new () => BindingSession };
  initOrt(): void;
}
interface OrtHandle {
  Tensor: OrtTensorCtor;
  binding: BindingModule["binding"];
}

const SWITCH: Record<OrtClient, string> = { linalg: "MERGLOT_GEMM", engine: "MERGLOT_KERNELS" };
const threads: Record<OrtClient, number> = { linalg: 1, engine: defaultEngineThreads() };
/** Sessions by variant and thread count, least recently used first. */
const sessions = new Map<string, BindingSession>();
const MAX_SESSIONS = 32;

let handle: OrtHandle | null | undefined; // undefined: not tried yet; null: unavailable
let loadError = "";

function defaultEngineThreads(): number {
  const env = Number(process.env.MERGLOT_THREADS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(1, Math.min(availableParallelism(), 8));
}

/** Loads the addon once; returns null (and records why) when it cannot be used. */
function load(): OrtHandle | null {
  if (handle !== undefined) return handle;
  try {
    const ort = requireBackend<{ Tensor: OrtTensorCtor }>("onnxruntime-node");
    const bindingModule = requireBackend<BindingModule>("onnxruntime-node", "dist/binding.js");
    bindingModule.initOrt();
    handle = { Tensor: ort.Tensor, binding: bindingModule.binding };
  } catch (e) {
    // Not installed (an optional peer dependency, see backends.ts) or no binary for this platform: the
    // reason names the package and its install command; callers fall back to JavaScript kernels.
    handle = null;
    loadError = e instanceof Error ? e.message.split("\n")[0] : String(e);
  }
  return handle;
}

/** Whether `client`'s environment switch forces JavaScript kernels. */
export function ortSwitchedOff(client: OrtClient): boolean {
  return process.env[SWITCH[client]] === "js";
}

/** Whether the addon loads (ignoring the environment switches); on first call this loads it. */
export function ortAvailable(): boolean {
  return load() !== null;
}

/** Why the addon is unavailable ("" when it is available or untried). */
export function ortLoadError(): string {
  return loadError;
}

/**
 * Whether `client` uses the native kernels, its thread count, and why not when it does not. The default
 * client is the engine's, whose status the training CLI and benchmarks print.
 */
export function ortStatus(client: OrtClient = "engine"): {
  available: boolean;
  threads: number;
  reason: string | null;
} {
  if (ortSwitchedOff(client))
    return { available: false, threads: threads[client], reason: `disabled by ${SWITCH[client]}=js` };
  const ok = ortAvailable();
  return { available: ok, threads: threads[client], reason: ok ? null : loadError };
}

export function ortThreads(client: OrtClient): number {
  return threads[client];
}

/** Intra-op threads for `client`'s products from now on (default client: the engine's). */
export function setOrtThreads(n: number, client: OrtClient = "engine"): void {
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`setOrtThreads: ${n} is not a positive integer`);
  if (threads[client] === n) return;
  threads[client] = n;
  // Sessions of a thread count no client uses any more only hold idle thread pools.
  for (const [key, s] of sessions) {
    const t = Number(key.slice(key.lastIndexOf("@") + 1));
    if (t !== threads.linalg && t !== threads.engine) {
      s.dispose();
      sessions.delete(key);
    }
  }
}

function session(h: OrtHandle, variant: string, nThreads: number, build: () => Uint8Array): BindingSession {
  const key = `${variant}@${nThreads}`;
  let s = sessions.get(key);
  if (s !== undefined) {
    // Refresh recency so eviction drops the least recently used variant.
    sessions.delete(key);
    sessions.set(key, s);
    return s;
  }
  if (sessions.size >= MAX_SESSIONS) {
    const oldest = sessions.keys().next().value as string;
    sessions.get(oldest)!.dispose();
    sessions.delete(oldest);
  }
  const model = build();
  s = new h.binding.InferenceSession();
  s.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, {
    intraOpNumThreads: nThreads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "basic",
    // Idle pool threads must not spin: the JS thread does the element-wise work between products.
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  });
  sessions.set(key, s);
  return s;
}

export interface OrtGemmArgs<T extends OrtArray> {
  m: number;
  n: number;
  k: number;
  /** op(A) is m × k: A stored m × k, or k × m when transA. */
  a: T;
  /** op(B) is k × n: B stored k × n, or n × k when transB. */
  b: T;
  transA: boolean;
  transB: boolean;
  /** Stored as float32 attributes: callers pass values that float32 represents exactly. */
  alpha: number;
  beta: number;
  /** m × n addend, used when beta ≠ 0; must not share memory with `out`. */
  c: T | undefined;
  /** Destination, length ≥ m·n (the first m·n elements are written); must not overlap a, b or c. */
  out: T;
}

/**
 * out = alpha·op(A)·op(B) + beta·C on MLAS, row-major; the arrays' element type picks sgemm or dgemm.
 * `client` picks the thread count. Returns false (writing nothing) when the addon is unavailable; callers
 * apply their client's switch (`ortSwitchedOff`) themselves and keep m, n, k > 0.
 */
export function ortGemm<T extends OrtArray>(client: OrtClient, g: OrtGemmArgs<T>): boolean {
  const h = load();
  if (h === null) return false;
  const { m, n, k, transA, transB } = g;
  const f64 = g.a instanceof Float64Array;
  const type = f64 ? "float64" : "float32";
  const elemType = f64 ? ONNX_DOUBLE : ONNX_FLOAT;
  const withC = g.c !== undefined && g.beta !== 0;
  const beta = withC ? g.beta : 0;
  const variant = `gemm${f64 ? "d" : "s"}${transA ? "T" : "N"}${transB ? "T" : "N"}${withC ? "C" : ""}:${g.alpha}:${beta}`;
  const s = session(h, variant, threads[client], () => {
    const inputs = [
      { name: "A", elemType, dims: transA ? ["K", "M"] : ["M", "K"] },
      { name: "B", elemType, dims: transB ? ["N", "K"] : ["K", "N"] },
    ];
    if (withC) inputs.push({ name: "C", elemType, dims: ["M", "N"] });
    const node: OnnxNode = {
      op: "Gemm",
      inputs: inputs.map((i) => i.name),
      outputs: ["Y"],
      attrs: { transA: +transA, transB: +transB, alpha: { float: g.alpha }, beta: { float: beta } },
    };
    return onnxModel([node], inputs, [{ name: "Y", elemType, dims: ["M", "N"] }]);
  });
  const feeds: Record<string, OrtTensor> = {
    A: new h.Tensor(type, exact(g.a, m * k), transA ? [k, m] : [m, k]),
    B: new h.Tensor(type, exact(g.b, k * n), transB ? [n, k] : [k, n]),
  };
  if (withC) feeds.C = new h.Tensor(type, exact(g.c!, m * n), [m, n]);
  s.run(feeds, { Y: new h.Tensor(type, exact(g.out, m * n), [m, n]) }, {});
  return true;
}

/**
 * Batched out[s] = op(A[s])·op(B[s]) for s < batch, float32, matrices stored back to back with the
 * shapes of ortGemm. Returns false (writing nothing) when the addon is unavailable.
 */
export function ortBatchedMatMul(
  client: OrtClient,
  transA: boolean,
  transB: boolean,
  batch: number,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
): boolean {
  const h = load();
  if (h === null) return false;
  const variant = `bmm${transA ? "T" : "N"}${transB ? "T" : "N"}`;
  const s = session(h, variant, threads[client], () => {
    const nodes: OnnxNode[] = [];
    let x = "A";
    let y = "B";
    if (transA) {
      nodes.push({ op: "Transpose", inputs: ["A"], outputs: ["At"], attrs: { perm: [0, 2, 1] } });
      x = "At";
    }
    if (transB) {
      nodes.push({ op: "Transpose", inputs: ["B"], outputs: ["Bt"], attrs: { perm: [0, 2, 1] } });
      y = "Bt";
    }
    nodes.push({ op: "MatMul", inputs: [x, y], outputs: ["Y"] });
    const elemType = ONNX_FLOAT;
    return onnxModel(
      nodes,
      [
        { name: "A", elemType, dims: transA ? ["S", "K", "M"] : ["S", "M", "K"] },
        { name: "B", elemType, dims: transB ? ["S", "N", "K"] : ["S", "K", "N"] },
      ],
      [{ name: "Y", elemType, dims: ["S", "M", "N"] }],
    );
  });
  const T = h.Tensor;
  s.run(
    {
      A: new T("float32", exact(a, batch * m * k), transA ? [batch, k, m] : [batch, m, k]),
      B: new T("float32", exact(b, batch * n * k), transB ? [batch, n, k] : [batch, k, n]),
    },
    { Y: new T("float32", exact(out, batch * m * n), [batch, m, n]) },
    {},
  );
  return true;
}

/** One float32 input or output of a small graph: its data (exactly the element count of `dims`) and shape. */
export interface OrtIo {
  name: string;
  data: Float32Array;
  dims: number[];
}

/**
 * Runs a small float32 graph — built once per `variant` by `build` (nodes, and the inputs' and outputs'
 * symbolic shapes) — on `feeds`, writing straight into `fetches` (which must not overlap the feeds). For the
 * engine's element-wise kernels whose exponentials MLAS vectorises (softmax, log-sum-exp, sigmoid). Returns
 * false (writing nothing) when the addon is unavailable.
 */
export function ortRunGraph(
  client: OrtClient,
  variant: string,
  build: () => { nodes: OnnxNode[]; inputs: OnnxValue[]; outputs: OnnxValue[] },
  feeds: OrtIo[],
  fetches: OrtIo[],
): boolean {
  const h = load();
  if (h === null) return false;
  const s = session(h, `graph:${variant}`, threads[client], () => {
    const g = build();
    return onnxModel(g.nodes, g.inputs, g.outputs);
  });
  const T = h.Tensor;
  const tensors = (xs: OrtIo[]) =>
    Object.fromEntries(xs.map((x) => [x.name, new T("float32", x.data, x.dims)])) as Record<
      string,
      OrtTensor
    >;
  s.run(tensors(feeds), tensors(fetches), {});
  return true;
}

/** `x` itself when it has exactly `len` elements, else a view of its first `len` (ORT checks sizes). */
function exact<T extends OrtArray>(x: T, len: number): T {
  return (x.length === len ? x : x.subarray(0, len)) as T;
}
