/**
 * Matrix products for the merge engine: one entry point per element type, dispatching to the native
 * kernel (onnxruntime/MLAS, see ort.ts) for products big enough to amortise a call, and to the
 * JavaScript kernel (gemm-js.ts) otherwise or when the native one is unavailable.
 *
 * Native products write straight into the destination (ORT allocates no output, which matters because
 * first touches of fresh memory are expensive here, see ort.ts), in output chunks of at most 1 MB. Why
 * chunks: MLAS measured up to 3× slower on whole large outputs (e.g. a 14336 × 320 float64 result) than
 * on cache-sized pieces of them, and 1 MB chunks beat 256 KB ones (f64 and f32 alike). Row chunks that
 * span all columns are written in place; narrower column blocks go through a chunk-sized scratch.
 *
 * Determinism: the kernel and the chunking are chosen from the shape and the configuration only, never
 * from timing, so the same inputs give the same bits on the same machine and build. The two kernels
 * round differently (both compute in the stated precision), so they agree to rounding, not bit for bit.
 *
 * Backend choice: `MERGLOT_GEMM=js` in the environment (see ort.ts) or `configureGemm({ backend: "js" })`
 * forces the portable kernel.
 */
import { MerglotError } from "../errors.js";
import { gemmJs, gramJs } from "./gemm-js.js";
import { type Mat } from "./matrix.js";
import { ortAvailable, ortGemm, ortLoadError, ortSwitchedOff, ortThreads, setOrtThreads } from "./ort.js";
import { scratchF64, scratchLike } from "./workspace.js";

export type GemmBackend = "ort" | "js";
type FloatArray = Float32Array | Float64Array;

export interface GemmOptions<T extends FloatArray> {
  /** A is stored k × m (op(A) = Aᵀ). */
  transA?: boolean;
  /** B is stored n × k (op(B) = Bᵀ). */
  transB?: boolean;
  alpha?: number;
  /** Weight of `c`; default 1 when `c` is given. */
  beta?: number;
  /** m × n addend. */
  c?: T;
  /** Destination (length m·n), returned; may be `c` itself (in-place update), never `a` or `b`. */
  out?: T;
}

/** Products with m·n·k below this run in JavaScript: a native call costs ~10 µs, JS does ~3 flop/ns. */
const DEFAULT_NATIVE_MIN_VOLUME = 32 * 32 * 32;
/** Largest native output per call (see the module comment). */
const CHUNK_BYTES = 1024 * 1024;

let requested: "auto" | GemmBackend = ortSwitchedOff("linalg") ? "js" : "auto";
let nativeMinVolume = DEFAULT_NATIVE_MIN_VOLUME;

/**
 * Adjusts the GEMM dispatch. `backend`: "auto" (native when it loads, else JS), "js", or "ort" (throws
 * now if onnxruntime cannot be loaded). `threads`: onnxruntime intra-op threads (default 1).
 * `nativeMinVolume`: smallest m·n·k sent to the native kernel (0 sends everything non-empty).
 */
export function configureGemm(opts: {
  backend?: "auto" | GemmBackend;
  threads?: number;
  nativeMinVolume?: number;
}): void {
  if (opts.backend !== undefined) {
    if (opts.backend === "ort" && !ortAvailable()) {
      throw new MerglotError("backend.unavailable", `configureGemm: ${ortLoadError()}`);
    }
    requested = opts.backend;
  }
  if (opts.threads !== undefined) setOrtThreads(opts.threads, "linalg");
  if (opts.nativeMinVolume !== undefined) nativeMinVolume = opts.nativeMinVolume;
}

/** The kernel large products use now, and why the native one is not used when it is not. */
export function gemmBackendInfo(): { backend: GemmBackend; threads: number; reason?: string } {
  if (requested === "js") return { backend: "js", threads: 1, reason: "JavaScript kernel requested" };
  if (!ortAvailable())
    return { backend: "js", threads: 1, reason: `onnxruntime unavailable: ${ortLoadError()}` };
  return { backend: "ort", threads: ortThreads("linalg") };
}

function useNative(m: number, n: number, k: number): boolean {
  if (m === 0 || n === 0 || k === 0) return false;
  if (requested === "js" || m * n * k < nativeMinVolume) return false;
  return ortAvailable();
}

function checkSizes(
  name: string,
  m: number,
  n: number,
  k: number,
  a: FloatArray,
  b: FloatArray,
  o: GemmOptions<FloatArray>,
): void {
  for (const [d, v] of [
    ["m", m],
    ["n", n],
    ["k", k],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new RangeError(`${name}: ${d} = ${v} is not a non-negative integer`);
  }
  if (a.length !== m * k) throw new RangeError(`${name}: A has ${a.length} elements, expected ${m}·${k}`);
  if (b.length !== k * n) throw new RangeError(`${name}: B has ${b.length} elements, expected ${k}·${n}`);
  if (o.c !== undefined && o.c.length !== m * n)
    throw new RangeError(`${name}: C has ${o.c.length} elements, expected ${m}·${n}`);
  if (o.out !== undefined && o.out.length !== m * n) {
    throw new RangeError(`${name}: out has ${o.out.length} elements, expected ${m}·${n}`);
  }
  if (o.out !== undefined && (sharesMemory(o.out, a) || sharesMemory(o.out, b))) {
    throw new RangeError(`${name}: out must not overlap A or B`);
  }
}

function sharesMemory(x: FloatArray, y: FloatArray): boolean {
  if (x.buffer !== y.buffer) return false;
  return x.byteOffset < y.byteOffset + y.byteLength && y.byteOffset < x.byteOffset + x.byteLength;
}

/** Copies the sub-block [r0, r1) × [c0, c1) of a row-major array with `cols` columns into `dst`. */
function gather<T extends FloatArray>(
  src: T,
  cols: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
  dst: T,
): T {
  const w = c1 - c0;
  if (w >= 256) {
    for (let r = r0; r < r1; r++) dst.set(src.subarray(r * cols + c0, r * cols + c1), (r - r0) * w);
    return dst;
  }
  // Short rows: a plain loop beats creating a subarray view per row.
  for (let r = r0, o = 0; r < r1; r++) {
    const s = r * cols + c0;
    for (let c = 0; c < w; c++) dst[o++] = src[s + c];
  }
  return dst;
}

interface Product<T extends FloatArray> {
  m: number;
  n: number;
  k: number;
  a: T;
  b: T;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
  c: T | undefined;
}

/**
 * The native product written into `out` in output chunks of ≤ CHUNK_BYTES (see the module comment):
 * column blocks of op(B) (gathered once), and within them row chunks of op(A) (gathered when A is stored
 * transposed). Row chunks spanning all columns are written straight into `out`; narrower blocks go
 * through a chunk-sized scratch. In-place updates (`out` = `c`) stay correct chunk by chunk: each call
 * reads only the rows of C it overwrites, and `run` copies that addend first (ORT's Gemm copies C into Y
 * before accumulating; we do not rely on how it treats aliased buffers).
 */
function native<T extends FloatArray>(g: Product<T>, out: T): T {
  const { m, n, k } = g;
  const maxElems = CHUNK_BYTES / g.a.BYTES_PER_ELEMENT;
  if (m * n <= maxElems) {
    run({ ...g, out });
    return out;
  }
  // At least 32 output rows per call keep MLAS efficient; wide outputs are split into column blocks.
  const cw = n * 32 <= maxElems ? n : Math.min(n, Math.max(64, Math.floor(maxElems / 32)));
  const rc = Math.max(1, Math.floor(maxElems / cw));
  const nBlocks = Math.ceil(n / cw);

  // op(B)[:, block] for every column block, contiguous (transB: rows of stored B already are).
  const bBlocks: T[] = [];
  if (nBlocks === 1 || g.transB) {
    for (let j0 = 0; j0 < n; j0 += cw) bBlocks.push(g.b.subarray(j0 * k, Math.min(n, j0 + cw) * k) as T);
  } else {
    const all = scratchLike(g.b, "gemm.b", k * n);
    for (let j0 = 0, off = 0; j0 < n; j0 += cw) {
      const j1 = Math.min(n, j0 + cw);
      bBlocks.push(gather(g.b, n, 0, k, j0, j1, all.subarray(off, off + k * (j1 - j0)) as T));
      off += k * (j1 - j0);
    }
  }

  for (let i0 = 0; i0 < m; i0 += rc) {
    const i1 = Math.min(m, i0 + rc);
    const h = i1 - i0;
    const aBlk = g.transA
      ? gather(g.a, m, 0, k, i0, i1, scratchLike(g.a, "gemm.a", k * h))
      : (g.a.subarray(i0 * k, i1 * k) as T);
    for (let bi = 0; bi < nBlocks; bi++) {
      const j0 = bi * cw;
      const j1 = Math.min(n, j0 + cw);
      const w = j1 - j0;
      let cBlk: T | undefined;
      if (g.c !== undefined) {
        cBlk =
          w === n
            ? (g.c.subarray(i0 * n, i1 * n) as T)
            : gather(g.c, n, i0, i1, j0, j1, scratchLike(g.c, "gemm.c", h * w));
      }
      const part = { ...g, m: h, n: w, a: aBlk, b: bBlocks[bi], c: cBlk };
      if (w === n) {
        run({ ...part, out: out.subarray(i0 * n, i1 * n) as T });
      } else {
        const y = run({ ...part, out: scratchLike(g.a, "gemm.y", h * w) });
        for (let r = 0; r < h; r++) out.set(y.subarray(r * w, (r + 1) * w), (i0 + r) * n + j0);
      }
    }
  }
  return out;
}

/** One native call; an addend that shares memory with the output (≤ one chunk of it) is copied first. */
function run<T extends FloatArray>(g: Product<T> & { out: T }): T {
  let c = g.c;
  if (c !== undefined && g.beta !== 0 && sharesMemory(c, g.out)) {
    const copy = scratchLike(c, "gemm.c0", c.length);
    copy.set(c);
    c = copy;
  }
  if (!ortGemm("linalg", { ...g, c })) throw new Error("gemm: onnxruntime became unavailable");
  return g.out;
}

const isF32Exact = (x: number): boolean => Math.fround(x) === x;

/**
 * Y = alpha·op(A)·op(B) + beta·C in float64, op(A) m × k, op(B) k × n, all row-major; returns `out`
 * or a new m × n array. The workhorse behind `matmul`.
 */
export function gemmF64(
  m: number,
  n: number,
  k: number,
  a: Float64Array,
  b: Float64Array,
  opts: GemmOptions<Float64Array> = {},
): Float64Array {
  checkSizes("gemmF64", m, n, k, a, b, opts);
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const alpha = opts.alpha ?? 1;
  const c = opts.c;
  const beta = c === undefined ? 0 : (opts.beta ?? 1);
  const out = opts.out ?? new Float64Array(m * n);
  if (!useNative(m, n, k) || alpha === 0)
    return gemmJs({ m, n, k, a, b, transA, transB, alpha, beta, c }, out);
  if (isF32Exact(alpha) && isF32Exact(beta)) {
    return native({ m, n, k, a, b, transA, transB, alpha, beta: c === undefined ? 0 : beta, c }, out);
  }
  // ONNX keeps alpha/beta as float32; apply other scalars here in float64 instead.
  const cs = c !== undefined && c === out ? c.slice() : c;
  native({ m, n, k, a, b, transA, transB, alpha: 1, beta: 0, c: undefined }, out);
  for (let i = 0; i < m * n; i++) out[i] = alpha * out[i] + (cs === undefined ? 0 : beta * cs[i]);
  return out;
}

/**
 * Y = alpha·op(A)·op(B) + beta·C in float32 (sgemm). Without the native kernel it computes in float64
 * and rounds once, so the fallback is slower but never less accurate.
 */
export function gemmF32(
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  opts: GemmOptions<Float32Array> = {},
): Float32Array {
  checkSizes("gemmF32", m, n, k, a, b, opts);
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  // Scalars of a float32 product are float32 too (and ONNX stores them so).
  const alpha = Math.fround(opts.alpha ?? 1);
  const c = opts.c;
  const beta = c === undefined ? 0 : Math.fround(opts.beta ?? 1);
  const out = opts.out ?? new Float32Array(m * n);
  if (useNative(m, n, k) && alpha !== 0)
    return native({ m, n, k, a, b, transA, transB, alpha, beta, c }, out);
  const widen = (x: Float32Array, role: string): Float64Array => {
    const w = scratchF64(role, x.length);
    w.set(x);
    return w;
  };
  const y = gemmJs(
    {
      m,
      n,
      k,
      transA,
      transB,
      alpha,
      beta, // prettier-ignore
      a: widen(a, "gemm.f32.a"),
      b: widen(b, "gemm.f32.b"),
      c: c === undefined ? undefined : widen(c, "gemm.f32.c"),
    },
    scratchF64("gemm.f32.y", m * n),
  );
  out.set(y);
  return out;
}

/** op(A)·op(B) of float32 data: A m × k (row-major), B k × n, or n × k when transB. */
export function matmulF32Fast(
  a: Float32Array,
  m: number,
  k: number,
  b: Float32Array,
  n: number,
  transB = false,
): Float32Array {
  return gemmF32(m, n, k, a, b, { transB });
}

/** Same as `matmulF32Fast` for float64 data. */
export function matmulF64Fast(
  a: Float64Array,
  m: number,
  k: number,
  b: Float64Array,
  n: number,
  transB = false,
): Float64Array {
  return gemmF64(m, n, k, a, b, { transB });
}

/** op(a)·op(b) in float64; `out` (length m·n) receives the result instead of a new array. */
export function matmul(
  a: Mat,
  b: Mat,
  opts: { transA?: boolean; transB?: boolean; out?: Float64Array } = {},
): Mat {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const m = transA ? a.cols : a.rows;
  const k = transA ? a.rows : a.cols;
  const kb = transB ? b.cols : b.rows;
  const n = transB ? b.rows : b.cols;
  if (k !== kb) {
    throw new RangeError(
      `matmul: inner dimensions differ: op(A) is ${m} × ${k}, op(B) is ${kb} × ${n} (transA=${transA}, transB=${transB})`,
    );
  }
  return { rows: m, cols: n, data: gemmF64(m, n, k, a.data, b.data, { transA, transB, out: opts.out }) };
}

/** Column panel width of the native Gram: a 128 × 128 float64 block is 128 KB. */
const GRAM_PANEL = 128;

/**
 * Gram matrix AᵀA (cols × cols), exactly symmetric (G[i][j] === G[j][i] bit for bit). Both kernels
 * compute only the upper triangle — natively as panel-pair products A_iᵀ·A_j (i ≤ j) over columns
 * gathered into panels, in JS as blocked rank-4 updates — and mirror it.
 */
export function gram(a: Mat): Mat {
  const m = a.rows;
  const n = a.cols;
  if (!useNative(n, n, m)) return { rows: n, cols: n, data: gramJs(a.data, m, n) };
  const g = new Float64Array(n * n);
  const panels: Float64Array[] = [];
  const all = scratchLike(a.data, "gram.panels", m * n);
  for (let j0 = 0, off = 0; j0 < n; j0 += GRAM_PANEL) {
    const j1 = Math.min(n, j0 + GRAM_PANEL);
    panels.push(
      n <= GRAM_PANEL ? a.data : gather(a.data, n, 0, m, j0, j1, all.subarray(off, off + m * (j1 - j0))),
    );
    off += m * (j1 - j0);
  }
  for (let pi = 0; pi < panels.length; pi++) {
    const wi = panels[pi].length / m;
    for (let pj = pi; pj < panels.length; pj++) {
      const wj = panels[pj].length / m;
      const blk = scratchF64("gram.block", wi * wj);
      const g0 = { m: wi, n: wj, k: m, a: panels[pi], b: panels[pj], transA: true, transB: false };
      ortGemm("linalg", { ...g0, alpha: 1, beta: 0, c: undefined, out: blk });
      for (let r = 0; r < wi; r++)
        g.set(blk.subarray(r * wj, (r + 1) * wj), (pi * GRAM_PANEL + r) * n + pj * GRAM_PANEL);
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) g[i * n + j] = g[j * n + i];
  return { rows: n, cols: n, data: g };
}
