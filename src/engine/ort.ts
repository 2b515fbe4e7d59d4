/**
 * The fast GEMM path: ONNX Runtime's CPU kernels (MLAS), reached through onnxruntime-node's synchronous
 * native binding so that the engine's forward and backward stay plain synchronous code.
 *
 * Why: plain JS loops reach about 1–3 GFLOP/s here; MLAS reaches 80–160 GFLOP/s on one core and uses both
 * cores (bench/train.ts prints the figures). ONNX Runtime ships its CPU binary inside the npm package, so
 * it installs without downloads. Each operation is a one-node ONNX graph with symbolic dimensions, built
 * once per variant; inputs are passed without copies and outputs are written into caller-owned arrays.
 *
 * Set MERGLOT_KERNELS=js to disable it (the JS kernels are then used everywhere).
 */
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { onnxModel, type OnnxNode } from "./onnx.js";

interface OrtTensor {
  readonly data: unknown;
}
type OrtTensorCtor = new (type: "float32", data: Float32Array, dims: number[]) => OrtTensor;
interface BindingSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(
    feeds: Record<string, OrtTensor>,
    fetches: Record<string, OrtTensor | null>,
    options: object,
  ): Record<string, OrtTensor>;
  dispose(): void;
}
interface Binding {
  InferenceSession: new () => BindingSession;
}

interface Loaded {
  binding: Binding;
  Tensor: OrtTensorCtor;
}

let loaded: Loaded | null | undefined;
let loadError: string | null = null;
let threads = defaultThreads();
const sessions = new Map<string, BindingSession>();

function defaultThreads(): number {
  const env = Number(process.env.MERGLOT_THREADS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(1, Math.min(availableParallelism(), 8));
}

function load(): Loaded | null {
  if (loaded !== undefined) return loaded;
  if (process.env.MERGLOT_KERNELS === "js") {
    loadError = "disabled by MERGLOT_KERNELS=js";
    loaded = null;
    return loaded;
  }
  try {
    const require = createRequire(import.meta.url);
    const bindingModule = require("onnxruntime-node/dist/binding") as {
      binding: Binding;
      initOrt: () => void;
    };
    const ort = require("onnxruntime-node") as { Tensor: OrtTensorCtor };
    bindingModule.initOrt();
    loaded = { binding: bindingModule.binding, Tensor: ort.Tensor };
  } catch (e) {
    loadError = (e as Error).message;
    loaded = null;
  }
  return loaded;
}

/** Whether the ONNX Runtime path is usable, and why not when it is not. */
export function ortStatus(): { available: boolean; threads: number; reason: string | null } {
  const l = load();
  return { available: l !== null, threads, reason: l === null ? loadError : null };
}

/** Threads ONNX Runtime may use per operation (default: the machine's cores, or MERGLOT_THREADS). */
export function setOrtThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setOrtThreads: expected a positive integer, got ${n}`);
  if (n === threads) return;
  threads = n;
  for (const s of sessions.values()) s.dispose();
  sessions.clear();
}

function session(key: string, build: () => Uint8Array): BindingSession | null {
  const l = load();
  if (l === null) return null;
  let s = sessions.get(key);
  if (s === undefined) {
    const bytes = build();
    s = new l.binding.InferenceSession();
    s.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "basic",
      // idle pool threads must not spin: the JS thread does the element-wise work between GEMMs
      extra: { session: { intra_op: { allow_spinning: "0" } } },
    });
    sessions.set(key, s);
  }
  return s;
}

/**
 * out[M×N] = op(A)·op(B) with op(A) = Aᵀ when transA (A stored K×M) and op(B) = Bᵀ when transB (B stored N×K),
 * all row-major float32. Returns false when ONNX Runtime is unavailable (the caller then uses JS kernels).
 */
export function ortGemm(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  A: Float32Array,
  B: Float32Array,
  out: Float32Array,
): boolean {
  const key = `gemm${transA ? "T" : "N"}${transB ? "T" : "N"}`;
  const s = session(key, () =>
    onnxModel(
      [
        {
          op: "Gemm",
          inputs: ["A", "B"],
          outputs: ["Y"],
          attrs: { transA: transA ? 1 : 0, transB: transB ? 1 : 0 },
        },
      ],
      [
        { name: "A", dims: transA ? ["K", "M"] : ["M", "K"] },
        { name: "B", dims: transB ? ["N", "K"] : ["K", "N"] },
      ],
      [{ name: "Y", dims: ["M", "N"] }],
    ),
  );
  if (s === null) return false;
  const T = loaded!.Tensor;
  const a = new T("float32", A.length === M * K ? A : A.subarray(0, M * K), transA ? [K, M] : [M, K]);
  const b = new T("float32", B.length === N * K ? B : B.subarray(0, N * K), transB ? [N, K] : [K, N]);
  const y = new T("float32", out.length === M * N ? out : out.subarray(0, M * N), [M, N]);
  s.run({ A: a, B: b }, { Y: y }, {});
  return true;
}

/**
 * Batched out[b] = op(A[b])·op(B[b]) for b < batch, with A [batch × (M×K or K×M)] and B likewise, row-major
 * float32. Returns false when ONNX Runtime is unavailable.
 */
export function ortBatchedGemm(
  transA: boolean,
  transB: boolean,
  batch: number,
  M: number,
  N: number,
  K: number,
  A: Float32Array,
  B: Float32Array,
  out: Float32Array,
): boolean {
  const key = `bmm${transA ? "T" : "N"}${transB ? "T" : "N"}`;
  const s = session(key, () => {
    const nodes: OnnxNode[] = [];
    let a = "A";
    let b = "B";
    if (transA) {
      nodes.push({ op: "Transpose", inputs: ["A"], outputs: ["At"], attrs: { perm: [0, 2, 1] } });
      a = "At";
    }
    if (transB) {
      nodes.push({ op: "Transpose", inputs: ["B"], outputs: ["Bt"], attrs: { perm: [0, 2, 1] } });
      b = "Bt";
    }
    nodes.push({ op: "MatMul", inputs: [a, b], outputs: ["Y"] });
    return onnxModel(
      nodes,
      [
        { name: "A", dims: transA ? ["S", "K", "M"] : ["S", "M", "K"] },
        { name: "B", dims: transB ? ["S", "N", "K"] : ["S", "K", "N"] },
      ],
      [{ name: "Y", dims: ["S", "M", "N"] }],
    );
  });
  if (s === null) return false;
  const T = loaded!.Tensor;
  const a = new T(
    "float32",
    A.length === batch * M * K ? A : A.subarray(0, batch * M * K),
    transA ? [batch, K, M] : [batch, M, K],
  );
  const b = new T(
    "float32",
    B.length === batch * N * K ? B : B.subarray(0, batch * N * K),
    transB ? [batch, N, K] : [batch, K, N],
  );
  const y = new T("float32", out.length === batch * M * N ? out : out.subarray(0, batch * M * N), [
    batch,
    M,
    N,
  ]);
  s.run({ A: a, B: b }, { Y: y }, {});
  return true;
}
