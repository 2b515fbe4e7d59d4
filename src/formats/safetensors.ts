/**
 * safetensors files: lazy reader (header validated up front, each tensor read by offset on demand) and a
 * streaming, atomic writer.
 *
 * Layout: 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON (possibly padded with spaces), then
 * the data section. Validation follows huggingface/safetensors (`tensor.rs`): the header is at most 100 MB,
 * every entry is exactly {dtype, shape, data_offsets}, each tensor's byte size matches shape × dtype size,
 * and the offsets, sorted, tile the data section from 0 to its very end with no gap, overlap or trailing
 * byte. We are stricter in one place: duplicate keys, which JSON.parse would silently collapse, are errors.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { MerglotError } from "../errors.js";
import { parseJsonText } from "../json-input.js";
import { commitTempFile, discardTempFile, refuseSpecialFile, tempPathFor } from "../fsutil.js";
import { decodeToFloat32, encodeFromFloat32, type FloatDType } from "../tensor/dtypes.js";

export type StDType =
  | "BOOL"
  | "U8"
  | "I8"
  | "F8_E5M2"
  | "F8_E4M3"
  | "I16"
  | "U16"
  | "F16"
  | "BF16"
  | "I32"
  | "U32"
  | "F32"
  | "F64"
  | "I64"
  | "U64";

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Record<StDType, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** One tensor of a file; `begin`/`end` are byte offsets within the data section. */
export interface TensorEntry {
  name: string;
  dtype: StDType;
  shape: number[];
  begin: number;
  end: number;
}

/** What a tensor is, without where it lives (the writer computes offsets). */
export interface TensorSpec {
  name: string;
  dtype: StDType;
  shape: number[];
}

export type TypedTensor =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/**
 * Most elements read into memory as one tensor (4 GiB as float32). A header may declare any size and a sparse
 * file can back it, so sizes are checked against this before allocating: the largest real LoRA factor or
 * llama-family weight is far below (a 70B model's full-rank MLP delta has 235M elements).
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 30;

/** One clear error for a tensor too large to read, before anything is allocated. */
export function checkReadable(t: TensorEntry, path: string): void {
  const n = (t.end - t.begin) / DTYPE_SIZE[t.dtype];
  if (n > MAX_TENSOR_ELEMENTS) {
    fail(
      "too_large",
      path,
      `tensor "${t.name}" [${t.shape.join(", ")}] of ${t.dtype} has ${n} elements; merglot reads one tensor ` +
        `at a time into memory and accepts at most ${MAX_TENSOR_ELEMENTS} (4 GiB as float32)`,
    );
  }
}

/** The reference implementation's limit: a larger header is treated as hostile. */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = "__metadata__";
const ENTRY_FIELDS = ["dtype", "shape", "data_offsets"] as const;
/** Chunk size for converting F16/BF16/F64 tensors while reading or writing: a multiple of every element
 * size, small enough to stay in cache, so no tensor-sized temporary is ever needed. */
const SCRATCH_BYTES = 1 << 18;
const FLOAT_DTYPES: ReadonlySet<StDType> = new Set(["F32", "F16", "BF16", "F64"]);

function isStDType(x: unknown): x is StDType {
  return typeof x === "string" && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, x);
}

function fail(code: string, path: string, problem: string): never {
  throw new MerglotError(`safetensors.${code}`, `${path}: ${problem}`);
}

function describe(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "an array";
  return typeof x === "object" ? "an object" : `${typeof x} ${JSON.stringify(x)}`;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Element count of `shape`, or undefined when it leaves the exactly-representable integers. */
function elementCount(shape: readonly number[]): number | undefined {
  // Multiply in order, like the reference's checked_mul fold, so a zero after an overflow still overflows.
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// Header parsing and validation

/**
 * Parse header text into JSON, refusing what JSON.parse would accept but the format does not: a header that
 * does not start with `{` and duplicate keys (JSON.parse keeps the last one silently). Trailing spaces — the
 * writer's padding — are fine.
 */
export function parseHeaderText(text: string, path: string): unknown {
  if (!text.startsWith("{")) fail("header_json", path, "header JSON does not start with '{'");
  // Position only in the message, never the text; depth bounded (a real header nests 3 levels).
  const json = parseJsonText(text, `${path}: header`, { code: "safetensors.header_json", maxDepth: 64 });
  const dup = findDuplicateKey(text);
  if (dup) {
    if (dup.owner === undefined) fail("duplicate", path, `header names tensor "${dup.key}" more than once`);
    fail("duplicate", path, `header entry "${dup.owner}" has key "${dup.key}" more than once`);
  }
  return json;
}

/**
 * First repeated key in any object of `text`, which must already be valid JSON. `owner` is the top-level
 * key containing the object (undefined for the top level itself). Iterative, so nesting depth is no risk.
 */
function findDuplicateKey(text: string): { key: string; owner: string | undefined } | undefined {
  const stack: (Set<string> | null)[] = []; // a key set per open object, null per open array
  let keyNext = false; // the next string is an object key (it follows `{` or `,` inside an object)
  let owner: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) {
      stack.push(new Set());
      keyNext = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      keyNext = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      keyNext = false;
    } else if (c === 0x2c /* , */) {
      keyNext = stack.length > 0 && stack[stack.length - 1] !== null;
    } else if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      while (text.charCodeAt(j) !== 0x22) {
        if (text.charCodeAt(j) === 0x5c /* \ */) {
          escaped = true;
          j++;
        }
        j++;
      }
      if (keyNext) {
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        const keys = stack[stack.length - 1]!;
        if (keys.has(key)) return { key, owner: stack.length === 1 ? undefined : owner };
        keys.add(key);
        if (stack.length === 1) owner = key;
      }
      keyNext = false;
      i = j;
    }
  }
  return undefined;
}

export interface ValidatedHeader {
  /** Tensors sorted by data offset. */
  tensors: TensorEntry[];
  metadata: Record<string, string> | undefined;
}

/**
 * Check a parsed header against a data section of `dataSize` bytes, as the reference implementation does.
 * Pure: it only reads `json`. Each problem throws its own MerglotError naming `path` and the tensor.
 */
export function validateHeader(json: unknown, dataSize: number, path: string): ValidatedHeader {
  if (!isPlainObject(json)) fail("header_json", path, `header JSON must be an object, not ${describe(json)}`);
  let metadata: Record<string, string> | undefined;
  const tensors: TensorEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === METADATA_KEY) metadata = validateMetadata(value, path);
    else tensors.push(validateEntry(name, value, path));
  }
  // Stable sort on (begin, end): empty tensors sharing an offset keep header order.
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous: TensorEntry | undefined;
  for (const t of tensors) {
    if (t.begin !== expected) {
      const after = previous
        ? `tensor "${previous.name}" ends at ${expected}`
        : "the data section starts at 0";
      const what = t.begin > expected ? "leaves a gap" : "overlaps";
      fail(
        "offsets",
        path,
        `tensor "${t.name}" data_offsets [${t.begin}, ${t.end}] ${what}: ${after}, so it must begin at ${expected}`,
      );
    }
    expected = t.end;
    previous = t;
  }
  if (expected > dataSize) {
    fail(
      "truncated",
      path,
      `file is truncated: the header describes ${expected} bytes of tensor data but only ${dataSize} follow it`,
    );
  }
  if (expected < dataSize) {
    fail(
      "trailing",
      path,
      `${dataSize - expected} trailing bytes after the last tensor (the header describes ${expected} data bytes, the file has ${dataSize})`,
    );
  }
  return { tensors, metadata };
}

function validateMetadata(value: unknown, path: string): Record<string, string> {
  if (!isPlainObject(value))
    fail("metadata", path, `"${METADATA_KEY}" must be an object, not ${describe(value)}`);
  const entries = Object.entries(value);
  for (const [k, v] of entries) {
    if (typeof v !== "string") {
      fail("metadata", path, `"${METADATA_KEY}" value for "${k}" must be a string, not ${describe(v)}`);
    }
  }
  // fromEntries defines own properties, so a key such as "__proto__" stays an ordinary entry.
  return Object.fromEntries(entries) as Record<string, string>;
}

function validateEntry(name: string, value: unknown, path: string): TensorEntry {
  const where = `tensor "${name}"`;
  if (!isPlainObject(value))
    fail("tensor_info", path, `${where}: entry must be an object, not ${describe(value)}`);
  for (const key of Object.keys(value)) {
    if (!(ENTRY_FIELDS as readonly string[]).includes(key)) {
      fail("tensor_info", path, `${where}: unexpected field "${key}" (allowed: dtype, shape, data_offsets)`);
    }
  }
  for (const key of ENTRY_FIELDS) {
    if (!Object.prototype.hasOwnProperty.call(value, key))
      fail("tensor_info", path, `${where}: missing field "${key}"`);
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (!isStDType(dtype)) {
    fail(
      "dtype",
      path,
      `${where}: unknown dtype ${describe(dtype)} (expected one of ${Object.keys(DTYPE_SIZE).join(", ")})`,
    );
  }
  if (!Array.isArray(shape)) fail("shape", path, `${where}: shape must be an array, not ${describe(shape)}`);
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      fail("shape", path, `${where}: shape entry ${describe(d)} is not a non-negative integer`);
    }
  }
  const dims = shape as number[];
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    fail("offsets", path, `${where}: data_offsets must be a pair [begin, end], not ${describe(offsets)}`);
  }
  for (const o of offsets) {
    if (typeof o !== "number" || !Number.isSafeInteger(o) || o < 0) {
      fail("offsets", path, `${where}: data_offsets entry ${describe(o)} is not a non-negative integer`);
    }
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail("offsets", path, `${where}: data_offsets [${begin}, ${end}] end before they begin`);
  const numel = elementCount(dims);
  const size = DTYPE_SIZE[dtype];
  if (numel === undefined || numel * size > Number.MAX_SAFE_INTEGER) {
    fail("shape", path, `${where}: shape [${dims.join(", ")}] of ${dtype} overflows (more than 2^53 bytes)`);
  }
  if (numel * size !== end - begin) {
    fail(
      "size_mismatch",
      path,
      `${where}: shape [${dims.join(", ")}] of ${dtype} needs ${numel * size} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { name, dtype, shape: dims.slice(), begin, end };
}

// ---------------------------------------------------------------------------------------------------------
// Reading

/** Fill `dst` from file offset `position`; returns how many bytes were read (fewer only at end of file). */
function readFully(fd: number, dst: Uint8Array, position: number): number {
  let done = 0;
  while (done < dst.byteLength) {
    const n = readSync(fd, dst, done, dst.byteLength - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** A safetensors file opened for lazy reading: the header is read and validated, tensors stay on disk. */
export class SafetensorsReader {
  readonly path: string;
  readonly fileSize: number;
  /** Absolute file offset of the data section (8 + header length). */
  readonly dataStart: number;
  /** Tensors in data-offset order. */
  readonly tensors: readonly TensorEntry[];
  readonly metadata: Record<string, string> | undefined;
  private readonly byName: Map<string, TensorEntry>;
  private fd: number;
  private scratchBuffer: Uint8Array | undefined;

  private constructor(
    path: string,
    fd: number,
    fileSize: number,
    dataStart: number,
    header: ValidatedHeader,
    private readonly ownsFd = true,
  ) {
    this.path = path;
    this.fd = fd;
    this.fileSize = fileSize;
    this.dataStart = dataStart;
    this.tensors = header.tensors;
    this.metadata = header.metadata;
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  /**
   * Open `path`, read and validate its header. Tensor data is not read. `fd`: an already-open descriptor
   * of `path` to read through instead of opening it again; the reader then does not own (close) it.
   */
  static open(path: string, opts: { fd?: number } = {}): SafetensorsReader {
    let fd: number;
    const owned = opts.fd === undefined;
    if (opts.fd === undefined) refuseSpecialFile(path, "safetensors.open");
    try {
      fd = opts.fd ?? openSync(path, "r");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "error";
      throw new MerglotError(
        "safetensors.open",
        code === "EMFILE" || code === "ENFILE"
          ? `${path}: cannot open safetensors file: too many open files (raise the limit with \`ulimit -n\`)`
          : `${path}: cannot open safetensors file (${code})`,
        { cause: e },
      );
    }
    try {
      const fileSize = fstatSync(fd).size;
      if (fileSize < 8)
        fail("header_length", path, `file is ${fileSize} bytes, too short for the 8-byte header length`);
      const lengthBytes = new Uint8Array(8);
      readFully(fd, lengthBytes, 0);
      // Read as a u64 BigInt and bound it before converting, so 2^63 never turns into an allocation.
      const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
      if (headerLength > BigInt(MAX_HEADER_BYTES)) {
        fail(
          "header_too_large",
          path,
          `header too large: ${headerLength} bytes (the limit is ${MAX_HEADER_BYTES})`,
        );
      }
      const n = Number(headerLength);
      if (n > fileSize - 8) {
        fail(
          "header_length",
          path,
          `header length ${n} is larger than the ${fileSize - 8} bytes after the length field`,
        );
      }
      const headerBytes = new Uint8Array(n);
      if (readFully(fd, headerBytes, 8) !== n)
        fail("io", path, "file shrank while its header was being read");
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
      } catch {
        fail("header_json", path, "header is not valid UTF-8");
      }
      const header = validateHeader(parseHeaderText(text, path), fileSize - 8 - n, path);
      return new SafetensorsReader(path, fd, fileSize, 8 + n, header, owned);
    } catch (e) {
      if (owned) closeSync(fd);
      throw e;
    }
  }

  /** The entry for `name`, if the file has that tensor. */
  get(name: string): TensorEntry | undefined {
    return this.byName.get(name);
  }

  private entry(name: string): TensorEntry {
    const t = this.byName.get(name);
    if (!t) fail("not_found", this.path, `no tensor named "${name}"`);
    return t;
  }

  /** Fill `dst` from data-section offset `at`, which lies inside tensor `t` (named in errors). */
  private readInto(t: TensorEntry, dst: Uint8Array, at: number): void {
    if (this.fd < 0) throw new Error(`${this.path}: reader is closed`);
    const got = readFully(this.fd, dst, this.dataStart + at);
    if (got !== dst.byteLength) {
      const have = at - t.begin + got;
      fail(
        "truncated",
        this.path,
        `file is truncated: tensor "${t.name}" has ${have} of its ${t.end - t.begin} bytes`,
      );
    }
  }

  private scratch(): Uint8Array {
    this.scratchBuffer ??= new Uint8Array(SCRATCH_BYTES);
    return this.scratchBuffer;
  }

  /** The raw little-endian bytes of tensor `name` (a fresh, 8-byte-aligned buffer). */
  readBytes(name: string): Uint8Array {
    const t = this.entry(name);
    checkReadable(t, this.path);
    const out = new Uint8Array(t.end - t.begin);
    this.readInto(t, out, t.begin);
    return out;
  }

  /**
   * Tensor `name` as float32 values (F32, F16, BF16 exactly; F64 rounded to nearest). With `out` (exactly
   * numel floats) the values go there, so a caller streaming many tensors can reuse one buffer.
   */
  readFloat32(name: string, out?: Float32Array): Float32Array {
    const t = this.entry(name);
    if (!FLOAT_DTYPES.has(t.dtype)) {
      fail("dtype", this.path, `tensor "${t.name}" has dtype ${t.dtype}, which cannot be read as float32`);
    }
    checkReadable(t, this.path);
    const size = DTYPE_SIZE[t.dtype];
    const n = (t.end - t.begin) / size;
    if (out === undefined) out = new Float32Array(n);
    else if (out.length !== n) {
      throw new RangeError(
        `${this.path}: tensor "${t.name}" has ${n} elements, the output holds ${out.length}`,
      );
    }
    if (t.dtype === "F32") {
      // Read straight into the result: no second copy for the common case.
      this.readInto(t, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), t.begin);
      return out;
    }
    // Other float types go through a small fixed scratch buffer, chunk by chunk: no tensor-sized temporary,
    // and each chunk is decoded while it is still in cache.
    const scratch = this.scratch();
    const perChunk = scratch.byteLength / size;
    for (let i = 0; i < n; i += perChunk) {
      const m = Math.min(perChunk, n - i);
      const bytes = scratch.subarray(0, m * size);
      this.readInto(t, bytes, t.begin + i * size);
      decodeToFloat32(bytes, t.dtype as FloatDType, out.subarray(i, i + m));
    }
    return out;
  }

  /**
   * Tensor `name` in its own element type. BOOL, U8 and the F8 formats come back as Uint8Array and F16/BF16
   * as Uint16Array of raw bit patterns (there is no native typed array for them).
   */
  readTyped(name: string): TypedTensor {
    const t = this.entry(name);
    const bytes = this.readBytes(name);
    const { buffer } = bytes; // fresh and offset 0, so every view below is aligned
    const n = (t.end - t.begin) / DTYPE_SIZE[t.dtype];
    switch (t.dtype) {
      case "BOOL":
      case "U8":
      case "F8_E5M2":
      case "F8_E4M3":
        return bytes;
      case "I8":
        return new Int8Array(buffer, 0, n);
      case "I16":
        return new Int16Array(buffer, 0, n);
      case "U16":
      case "F16":
      case "BF16":
        return new Uint16Array(buffer, 0, n);
      case "I32":
        return new Int32Array(buffer, 0, n);
      case "U32":
        return new Uint32Array(buffer, 0, n);
      case "F32":
        return new Float32Array(buffer, 0, n);
      case "F64":
        return new Float64Array(buffer, 0, n);
      case "I64":
        return new BigInt64Array(buffer, 0, n);
      case "U64":
        return new BigUint64Array(buffer, 0, n);
    }
  }

  /** Release the file descriptor. Safe to call twice. */
  close(): void {
    if (this.fd >= 0) {
      if (this.ownsFd) closeSync(this.fd);
      this.fd = -1;
    }
    this.scratchBuffer = undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Writing

interface PlannedTensor extends TensorSpec {
  bytes: number;
}

/**
 * Encode float32 values to `dtype` through a small scratch buffer and write them at `position` of an open
 * file: no tensor-sized temporary. Shared by the writer and by workers that fill a planned region directly.
 */
export function writeEncodedAt(
  fd: number,
  position: number,
  data: Float32Array,
  dtype: FloatDType,
  scratch: Uint8Array = new Uint8Array(SCRATCH_BYTES),
): void {
  const size = DTYPE_SIZE[dtype];
  const perChunk = Math.floor(scratch.byteLength / size);
  for (let i = 0; i < data.length; i += perChunk) {
    const m = Math.min(perChunk, data.length - i);
    const bytes = encodeFromFloat32(data.subarray(i, i + m), dtype, scratch.subarray(0, m * size));
    writeFully(fd, bytes, position + i * size);
  }
}

function writeFully(fd: number, src: Uint8Array, position: number): void {
  let done = 0;
  while (done < src.byteLength) {
    done += writeSync(fd, src, done, src.byteLength - done, position + done);
  }
}

/** Header bytes for `planned` in the given order, padded with spaces to a multiple of 8 like the reference. */
function buildHeader(
  planned: readonly PlannedTensor[],
  metadata: Record<string, string> | undefined,
): Uint8Array {
  // Built by hand rather than JSON.stringify on an object: objects move integer-like keys ("0", "12") to the
  // front, and the header should list tensors in the order they are written.
  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const t of planned) {
    const info = `{"dtype":${JSON.stringify(t.dtype)},"shape":${JSON.stringify(t.shape)},"data_offsets":[${offset},${offset + t.bytes}]}`;
    parts.push(`${JSON.stringify(t.name)}:${info}`);
    offset += t.bytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const padded = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20);
  padded.set(json);
  return padded;
}

/**
 * Streaming, atomic writer. The header is computed from the specs up front; tensors are then written one at
 * a time in spec order to a temp file beside `path`; finish() fsyncs and renames it into place, abort()
 * removes it. Memory stays bounded by the tensor being written.
 */
export class SafetensorsWriter {
  readonly path: string;
  private readonly planned: PlannedTensor[];
  private readonly tmp: string;
  private fd: number;
  private next = 0; // index of the next tensor to write
  private scratch: Uint8Array | undefined;
  private position: number; // file offset of the next tensor's bytes

  constructor(path: string, specs: TensorSpec[], metadata?: Record<string, string>) {
    this.path = path;
    this.planned = planTensors(path, specs);
    if (metadata !== undefined) validateMetadata(metadata, path);
    const header = buildHeader(this.planned, metadata);
    if (header.byteLength > MAX_HEADER_BYTES) {
      fail(
        "header_too_large",
        path,
        `header too large: ${header.byteLength} bytes (the limit is ${MAX_HEADER_BYTES})`,
      );
    }
    this.tmp = tempPathFor(path);
    try {
      this.fd = openSync(this.tmp, "w");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "error";
      throw new MerglotError("safetensors.open", `${path}: cannot create output file (${code})`, {
        cause: e,
      });
    }
    try {
      const prefix = new Uint8Array(8);
      new DataView(prefix.buffer).setBigUint64(0, BigInt(header.byteLength), true);
      writeFully(this.fd, prefix, 0);
      writeFully(this.fd, header, 8);
    } catch (e) {
      this.abort();
      throw e;
    }
    this.position = 8 + header.byteLength;
  }

  /**
   * Write the next tensor. A Float32Array is encoded to the spec's float dtype (F32, F16, BF16, F64) and must
   * hold shape's element count; any other view is taken as raw little-endian bytes of exactly the spec's size.
   */
  writeTensor(name: string, data: Float32Array | Uint8Array | ArrayBufferView): void {
    if (this.fd < 0)
      fail("writer", this.path, `cannot write tensor "${name}": the writer is already finished or aborted`);
    const t = this.planned[this.next];
    if (t === undefined)
      fail("writer", this.path, `cannot write tensor "${name}": all tensors are already written`);
    if (name !== t.name) {
      const known = this.planned.some((p) => p.name === name);
      const why = known ? "out of order" : "not in the tensor list given to the writer";
      fail("writer", this.path, `tensor "${name}" is ${why}: the next tensor to write is "${t.name}"`);
    }
    if (data instanceof Float32Array && t.dtype !== "F32") {
      if (!FLOAT_DTYPES.has(t.dtype)) {
        fail(
          "writer",
          this.path,
          `tensor "${name}": cannot encode float32 values as ${t.dtype}; pass raw bytes`,
        );
      }
      const numel = t.bytes / DTYPE_SIZE[t.dtype];
      if (data.length !== numel) {
        fail(
          "writer",
          this.path,
          `tensor "${name}": shape [${t.shape.join(", ")}] needs ${numel} values, got ${data.length}`,
        );
      }
      this.guarded(() => this.writeEncoded(data, t.dtype as FloatDType));
    } else {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (bytes.byteLength !== t.bytes) {
        fail(
          "writer",
          this.path,
          `tensor "${name}": shape [${t.shape.join(", ")}] of ${t.dtype} needs ${t.bytes} bytes, got ${bytes.byteLength}`,
        );
      }
      this.guarded(() => writeFully(this.fd, bytes, this.position));
    }
    this.position += t.bytes;
    this.next++;
  }

  /** Encode through a small scratch buffer, chunk by chunk: no tensor-sized temporary. */
  private writeEncoded(data: Float32Array, dtype: FloatDType): void {
    this.scratch ??= new Uint8Array(SCRATCH_BYTES);
    writeEncodedAt(this.fd, this.position, data, dtype, this.scratch);
  }

  /** The temp file being written (for workers that fill planned regions with `writeEncodedAt`). */
  get tempPath(): string {
    return this.tmp;
  }

  /** Where each tensor's bytes go in the file: absolute position, byte size and dtype, in write order. */
  layout(): { name: string; position: number; bytes: number; dtype: StDType }[] {
    let pos = this.position - this.planned.slice(0, this.next).reduce((s, t) => s + t.bytes, 0);
    return this.planned.map((t) => {
      const at = pos;
      pos += t.bytes;
      return { name: t.name, position: at, bytes: t.bytes, dtype: t.dtype };
    });
  }

  /**
   * Record that the next tensor's region was filled by someone else (a worker writing at its `layout()`
   * position). Order is checked as for writeTensor, so finish() still proves every tensor was written.
   */
  markWritten(name: string): void {
    if (this.fd < 0)
      fail("writer", this.path, `cannot mark tensor "${name}": the writer is already finished or aborted`);
    const t = this.planned[this.next];
    if (t === undefined || t.name !== name) {
      fail(
        "writer",
        this.path,
        `tensor "${name}" is out of order: the next tensor to write is "${t?.name ?? "(none)"}"`,
      );
    }
    this.position += t.bytes;
    this.next++;
  }

  /** Run an I/O step; if it fails the file is unusable, so drop the temp file before rethrowing. */
  private guarded(step: () => void): void {
    try {
      step();
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  /** Flush to disk and move the file into place; every tensor must have been written. */
  finish(): void {
    if (this.fd < 0) fail("writer", this.path, "cannot finish: the writer is already finished or aborted");
    if (this.next < this.planned.length) {
      const missing = this.planned.length - this.next;
      fail(
        "writer",
        this.path,
        `cannot finish: ${missing} tensor(s) not written yet, next is "${this.planned[this.next].name}"`,
      );
    }
    const fd = this.fd;
    this.fd = -1;
    commitTempFile(fd, this.tmp, this.path);
  }

  /** Drop the temp file. Safe to call at any time, and more than once. */
  abort(): void {
    discardTempFile(this.fd, this.tmp);
    this.fd = -1;
  }
}

/** Check specs and compute byte sizes; throws before any file is created. */
function planTensors(path: string, specs: readonly TensorSpec[]): PlannedTensor[] {
  const seen = new Set<string>();
  const planned: PlannedTensor[] = [];
  let total = 0;
  for (const spec of specs) {
    const where = `tensor "${spec.name}"`;
    if (spec.name === METADATA_KEY)
      fail("writer", path, `"${METADATA_KEY}" is reserved and cannot name a tensor`);
    if (seen.has(spec.name)) fail("writer", path, `${where} is listed more than once`);
    seen.add(spec.name);
    if (!isStDType(spec.dtype)) fail("writer", path, `${where}: unknown dtype ${describe(spec.dtype)}`);
    for (const d of spec.shape) {
      if (!Number.isSafeInteger(d) || d < 0)
        fail("writer", path, `${where}: shape entry ${d} is not a non-negative integer`);
    }
    const numel = elementCount(spec.shape);
    const bytes = numel === undefined ? Infinity : numel * DTYPE_SIZE[spec.dtype];
    total += bytes;
    if (!(total <= Number.MAX_SAFE_INTEGER))
      fail("writer", path, `${where}: shape [${spec.shape.join(", ")}] is too large`);
    planned.push({ name: spec.name, dtype: spec.dtype, shape: spec.shape.slice(), bytes });
  }
  return planned;
}

/** Write a whole file at once (atomic; the temp file is removed on any error). */
export function writeSafetensors(
  path: string,
  tensors: { name: string; dtype: StDType; shape: number[]; data: Float32Array | ArrayBufferView }[],
  metadata?: Record<string, string>,
): void {
  const writer = new SafetensorsWriter(path, tensors, metadata);
  try {
    for (const t of tensors) writer.writeTensor(t.name, t.data);
    writer.finish();
  } catch (e) {
    writer.abort();
    throw e;
  }
}
