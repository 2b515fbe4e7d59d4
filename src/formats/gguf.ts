/**
 * GGUF (llama.cpp's file format, version 3): a validating reader and a streaming, atomic writer.
 *
 * Layout: "GGUF" magic, u32 version, i64 tensor count, i64 key/value count, the key/value pairs, one info
 * record per tensor (name, n_dims, ne[0..n_dims), ggml type, offset), padding to the alignment, then the
 * data section where every tensor starts at its offset (a multiple of the alignment). Little-endian only.
 *
 * Validation mirrors llama.cpp's own loader (`ggml/src/gguf.cpp`) so that a file this reader accepts is one
 * llama.cpp accepts, and every failure names the file and the item. Counts and lengths read from the file are
 * checked against the bytes that remain before anything is allocated, so a hostile header cannot make us
 * allocate gigabytes.
 *
 * Dimension order: ggml's ne[0] is the fastest-varying dimension (the number of columns), so a row-major
 * PyTorch tensor of shape [rows, cols] has ne = [cols, rows]. This module exposes both: `ne` (as stored) and
 * `shape` (PyTorch order, ne reversed); the writer takes PyTorch-order shapes.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { MerglotError } from "../errors.js";
import { commitTempFile, discardTempFile, refuseSpecialFile, tempPathFor } from "../fsutil.js";
import type { OutputSlot } from "../output/slot.js";
import { decodeToFloat32, encodeFromFloat32, f16BitsToF32 } from "../tensor/dtypes.js";

export const GGUF_MAGIC = "GGUF";
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_KEY_ALIGNMENT = "general.alignment";
/** ggml's GGML_MAX_NAME: names are stored in a 64-byte C buffer with its NUL, so at most 63 bytes. */
export const GGML_MAX_NAME = 64;
/** ggml's GGML_MAX_DIMS. */
export const GGML_MAX_DIMS = 4;
/** gguf.cpp's GGUF_MAX_STRING_LENGTH and GGUF_MAX_ARRAY_ELEMENTS (1 GiB / 2^30 elements). */
export const GGUF_MAX_STRING_LENGTH = 1024 * 1024 * 1024;
export const GGUF_MAX_ARRAY_ELEMENTS = 1024 * 1024 * 1024;
/** Nested arrays are legal in the spec; bound the depth so a crafted file cannot exhaust the stack. */
const MAX_ARRAY_DEPTH = 32;

// ---------------------------------------------------------------------------------------------------------
// Metadata values

export type GgufNumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
export type GgufBigIntType = "u64" | "i64";
export type GgufScalarType = GgufNumberType | GgufBigIntType | "bool" | "string";
export type GgufValueType = GgufScalarType | "array";

export type GgufArray =
  | { type: "array"; itemType: GgufNumberType; value: number[] }
  | { type: "array"; itemType: GgufBigIntType; value: bigint[] }
  | { type: "array"; itemType: "bool"; value: boolean[] }
  | { type: "array"; itemType: "string"; value: string[] }
  | { type: "array"; itemType: "array"; value: GgufArray[] };

export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | GgufArray;

/** Small constructors so that callers do not spell the tagged objects by hand. */
export const gguf = {
  u8: (value: number): GgufValue => ({ type: "u8", value }),
  i8: (value: number): GgufValue => ({ type: "i8", value }),
  u16: (value: number): GgufValue => ({ type: "u16", value }),
  i16: (value: number): GgufValue => ({ type: "i16", value }),
  u32: (value: number): GgufValue => ({ type: "u32", value }),
  i32: (value: number): GgufValue => ({ type: "i32", value }),
  u64: (value: bigint): GgufValue => ({ type: "u64", value }),
  i64: (value: bigint): GgufValue => ({ type: "i64", value }),
  f32: (value: number): GgufValue => ({ type: "f32", value }),
  f64: (value: number): GgufValue => ({ type: "f64", value }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  string: (value: string): GgufValue => ({ type: "string", value }),
};

/** GGUF value type codes (gguf.h `enum gguf_type`). */
const VALUE_TYPE_CODE: Record<GgufValueType, number> = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
};
const VALUE_TYPE_BY_CODE: readonly GgufValueType[] = (() => {
  const out: GgufValueType[] = [];
  for (const [name, code] of Object.entries(VALUE_TYPE_CODE)) out[code] = name as GgufValueType;
  return out;
})();
/** Bytes of one fixed-size value; strings and arrays have none. */
const FIXED_SIZE: Partial<Record<GgufValueType, number>> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  u64: 8,
  i64: 8,
  f64: 8,
};
/** The fewest bytes one array element can take: the length prefix for strings, type + count for arrays. */
function minItemSize(t: GgufValueType): number {
  if (t === "string") return 8;
  if (t === "array") return 12;
  return FIXED_SIZE[t]!;
}

// ---------------------------------------------------------------------------------------------------------
// ggml tensor types

export interface GgmlTypeInfo {
  id: number;
  name: string;
  /** Elements per block (1 for plain floats and ints). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

/**
 * Every type id llama.cpp currently accepts in a file, with gguf-py's (block size, bytes per block) and
 * ggml-common.h's block structs. Ids missing here (4, 5, 31–33, 36–38) were removed from ggml (block size 0),
 * and gguf.cpp refuses them, as we do.
 */
export const GGML_TYPES: readonly GgmlTypeInfo[] = [
  [0, "F32", 1, 4],
  [1, "F16", 1, 2],
  [2, "Q4_0", 32, 18],
  [3, "Q4_1", 32, 20],
  [6, "Q5_0", 32, 22],
  [7, "Q5_1", 32, 24],
  [8, "Q8_0", 32, 34],
  [9, "Q8_1", 32, 36],
  [10, "Q2_K", 256, 84],
  [11, "Q3_K", 256, 110],
  [12, "Q4_K", 256, 144],
  [13, "Q5_K", 256, 176],
  [14, "Q6_K", 256, 210],
  [15, "Q8_K", 256, 292],
  [16, "IQ2_XXS", 256, 66],
  [17, "IQ2_XS", 256, 74],
  [18, "IQ3_XXS", 256, 98],
  [19, "IQ1_S", 256, 50],
  [20, "IQ4_NL", 32, 18],
  [21, "IQ3_S", 256, 110],
  [22, "IQ2_S", 256, 82],
  [23, "IQ4_XS", 256, 136],
  [24, "I8", 1, 1],
  [25, "I16", 1, 2],
  [26, "I32", 1, 4],
  [27, "I64", 1, 8],
  [28, "F64", 1, 8],
  [29, "IQ1_M", 256, 56],
  [30, "BF16", 1, 2],
  [34, "TQ1_0", 256, 54],
  [35, "TQ2_0", 256, 66],
  [39, "MXFP4", 32, 17],
  [40, "NVFP4", 64, 36],
  [41, "Q1_0", 128, 18],
].map(([id, name, blockSize, typeSize]) => ({
  id: id as number,
  name: name as string,
  blockSize: blockSize as number,
  typeSize: typeSize as number,
}));

const TYPE_BY_ID = new Map(GGML_TYPES.map((t) => [t.id, t]));
const TYPE_BY_NAME = new Map(GGML_TYPES.map((t) => [t.name, t]));

/** Types this module can write (as given or converted from Float32Array). */
export type GgufWritableType = "F32" | "F16" | "BF16";
/** Types `readFloat32` can turn into float32. */
const FLOAT_READABLE = new Set(["F32", "F16", "BF16", "F64", "Q8_0"]);

export interface GgufTensorInfo {
  name: string;
  /** ggml type name, e.g. "F32", "Q8_0". */
  type: string;
  typeId: number;
  /** Dimensions as stored: ne[0] is the number of columns (fastest-varying). */
  ne: number[];
  /** PyTorch order: `ne` reversed, e.g. [rows, cols]. */
  shape: number[];
  elementCount: number;
  byteLength: number;
  /** Offset inside the data section. */
  offset: number;
}

// ---------------------------------------------------------------------------------------------------------
// Reading

function headerError(path: string, message: string, code = "gguf.header"): MerglotError {
  return new MerglotError(code, `${path}: ${message}`);
}

/** Where the bytes come from: an open file, or memory (for in-memory files and tests). */
interface ByteSource {
  readonly size: number;
  /** Copy up to `len` bytes at `position` into `dst[off..]`; returns how many were copied. */
  read(dst: Uint8Array, off: number, len: number, position: number): number;
  close(): void;
}

function fileSource(fd: number): ByteSource {
  return {
    size: fstatSync(fd).size,
    read(dst, off, len, position) {
      let done = 0;
      while (done < len) {
        const n = readSync(fd, dst, off + done, len - done, position + done);
        if (n === 0) break;
        done += n;
      }
      return done;
    },
    close: () => closeSync(fd),
  };
}

function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read(dst, off, len, position) {
      const n = Math.max(0, Math.min(len, bytes.length - position));
      dst.set(bytes.subarray(position, position + n), off);
      return n;
    },
    close: () => {},
  };
}

/** Bounded, buffered sequential reads; every read is checked against the file size first. */
class HeaderCursor {
  pos = 0;
  readonly fileSize: number;
  /** At most 64 KiB, so that a header costs one read per 64 KiB whatever it holds. */
  private readonly buf: Buffer;
  private readonly view: DataView;
  private bufStart = 0;
  private bufLen = 0;

  constructor(
    private readonly src: ByteSource,
    private readonly path: string,
  ) {
    this.fileSize = src.size;
    this.buf = Buffer.alloc(Math.max(64, Math.min(1 << 16, src.size)));
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  get remaining(): number {
    return this.fileSize - this.pos;
  }

  /** Make `n` bytes at `pos` available in the buffer, or fail naming `what`. Returns their buffer index. */
  private fill(n: number, what: string): number {
    if (n > this.remaining) {
      throw headerError(
        this.path,
        `file ends inside ${what} (needs ${n} bytes at offset ${this.pos}, file is ${this.fileSize} bytes)`,
        "gguf.truncated",
      );
    }
    if (this.pos < this.bufStart || this.pos + n > this.bufStart + this.bufLen) {
      const len = Math.min(this.buf.length, this.fileSize - this.pos);
      const got = this.src.read(this.buf, 0, len, this.pos);
      this.bufStart = this.pos;
      this.bufLen = got;
      if (got < n)
        throw headerError(this.path, `short read inside ${what} at offset ${this.pos}`, "gguf.truncated");
    }
    const at = this.pos - this.bufStart;
    this.pos += n;
    return at;
  }

  u8(what: string): number {
    return this.view.getUint8(this.fill(1, what));
  }
  i8(what: string): number {
    return this.view.getInt8(this.fill(1, what));
  }
  u16(what: string): number {
    return this.view.getUint16(this.fill(2, what), true);
  }
  i16(what: string): number {
    return this.view.getInt16(this.fill(2, what), true);
  }
  u32(what: string): number {
    return this.view.getUint32(this.fill(4, what), true);
  }
  i32(what: string): number {
    return this.view.getInt32(this.fill(4, what), true);
  }
  u64(what: string): bigint {
    return this.view.getBigUint64(this.fill(8, what), true);
  }
  i64(what: string): bigint {
    return this.view.getBigInt64(this.fill(8, what), true);
  }
  f32(what: string): number {
    return this.view.getFloat32(this.fill(4, what), true);
  }
  f64(what: string): number {
    return this.view.getFloat64(this.fill(8, what), true);
  }

  /** `n` raw bytes (n already checked against `remaining` by the caller or here). */
  bytes(n: number, what: string): Uint8Array {
    if (n <= this.buf.length) {
      const at = this.fill(n, what);
      return this.buf.subarray(at, at + n);
    }
    if (n > this.remaining) this.fill(n, what); // throws the truncation error
    const out = Buffer.alloc(n);
    const got = this.src.read(out, 0, n, this.pos);
    if (got < n)
      throw headerError(this.path, `short read inside ${what} at offset ${this.pos}`, "gguf.truncated");
    this.pos += n;
    return out;
  }
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const utf8Lenient = new TextDecoder("utf-8");
const utf8Encoder = new TextEncoder();

/** A GGUF string: u64 byte length then the bytes. The length is checked before anything is allocated. */
function readStringBytes(cur: HeaderCursor, path: string, what: string): Uint8Array {
  const len = cur.u64(`the length of ${what}`);
  if (len > BigInt(GGUF_MAX_STRING_LENGTH)) {
    throw headerError(path, `${what} has length ${len}, over the maximum of ${GGUF_MAX_STRING_LENGTH} bytes`);
  }
  if (len > BigInt(cur.remaining)) {
    throw headerError(
      path,
      `${what} has length ${len} but only ${cur.remaining} bytes remain in the file`,
      "gguf.truncated",
    );
  }
  return cur.bytes(Number(len), what);
}

/** Keys and tensor names must be exact text (they are matched by name), so they must be valid UTF-8. */
function readName(cur: HeaderCursor, path: string, what: string): string {
  const bytes = readStringBytes(cur, path, what);
  try {
    return utf8Strict.decode(bytes);
  } catch {
    throw headerError(path, `${what} is not valid UTF-8`);
  }
}

function readScalar(cur: HeaderCursor, type: GgufScalarType, path: string, what: string): GgufValue {
  switch (type) {
    case "u8":
      return { type, value: cur.u8(what) };
    case "i8":
      return { type, value: cur.i8(what) };
    case "u16":
      return { type, value: cur.u16(what) };
    case "i16":
      return { type, value: cur.i16(what) };
    case "u32":
      return { type, value: cur.u32(what) };
    case "i32":
      return { type, value: cur.i32(what) };
    case "f32":
      return { type, value: cur.f32(what) };
    case "f64":
      return { type, value: cur.f64(what) };
    case "u64":
      return { type, value: cur.u64(what) };
    case "i64":
      return { type, value: cur.i64(what) };
    case "bool":
      // gguf.cpp reads an int8 and treats any non-zero byte as true.
      return { type, value: cur.i8(what) !== 0 };
    case "string":
      // Values (e.g. tokenizer vocabularies) are kept even when a byte sequence is not valid UTF-8,
      // as llama.cpp does; invalid sequences become U+FFFD.
      return { type, value: utf8Lenient.decode(readStringBytes(cur, path, what)) };
  }
}

function readValueType(cur: HeaderCursor, path: string, what: string): GgufValueType {
  const code = cur.i32(`the type of ${what}`);
  const t = VALUE_TYPE_BY_CODE[code];
  if (code < 0 || t === undefined) throw headerError(path, `${what} has invalid GGUF value type ${code}`);
  return t;
}

/** The body of an array (after its element type): u64 count then the elements. */
function readArrayBody(
  cur: HeaderCursor,
  itemType: GgufValueType,
  path: string,
  what: string,
  depth: number,
): GgufArray {
  if (depth > MAX_ARRAY_DEPTH)
    throw headerError(path, `${what} nests arrays deeper than ${MAX_ARRAY_DEPTH} levels`);
  const n = cur.u64(`the length of ${what}`);
  if (n > BigInt(GGUF_MAX_ARRAY_ELEMENTS)) {
    throw headerError(path, `${what} has ${n} elements, over the maximum of ${GGUF_MAX_ARRAY_ELEMENTS}`);
  }
  const count = Number(n);
  const least = count * minItemSize(itemType);
  if (least > cur.remaining) {
    throw headerError(
      path,
      `${what} has ${count} elements of type ${itemType} (at least ${least} bytes) but only ${cur.remaining} bytes remain`,
      "gguf.truncated",
    );
  }
  if (itemType === "array") {
    const items: GgufArray[] = [];
    for (let i = 0; i < count; i++) {
      const inner = readValueType(cur, path, `${what}[${i}]`);
      items.push(readArrayBody(cur, inner, path, `${what}[${i}]`, depth + 1));
    }
    return { type: "array", itemType, value: items };
  }
  const items: unknown[] = [];
  for (let i = 0; i < count; i++) items.push(readScalar(cur, itemType, path, what).value);
  return { type: "array", itemType, value: items } as GgufArray;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

const INT64_MAX = (1n << 63n) - 1n;

export class GgufReader {
  readonly path: string;
  readonly fileSize: number;
  readonly version: number;
  readonly alignment: number;
  /** Absolute file offset of the data section. */
  readonly dataStart: number;
  /** Key/value pairs in file order. */
  readonly metadata: ReadonlyMap<string, GgufValue>;
  /** Tensor infos in file order (which is data-offset order: llama.cpp requires it). */
  readonly tensors: readonly GgufTensorInfo[];
  private readonly byName: Map<string, GgufTensorInfo>;
  private src: ByteSource | null;

  private constructor(path: string, src: ByteSource) {
    this.path = path;
    this.src = src;
    this.fileSize = src.size;
    const cur = new HeaderCursor(src, path);

    const magic = cur.bytes(4, "the magic");
    if (String.fromCharCode(...magic) !== GGUF_MAGIC) {
      const shown = Array.from(magic, (c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "?")).join("");
      throw headerError(path, `not a GGUF file (magic is "${shown}", expected "GGUF")`, "gguf.magic");
    }
    this.version = readVersion(cur, path);

    const nTensors = cur.i64("the tensor count");
    const nKv = cur.i64("the key/value count");
    // Each tensor info takes at least 24 bytes (name length, n_dims, type, offset) and each key/value at
    // least 14 (key length, a 1-byte key, type, a 1-byte value): counts beyond that cannot be real.
    checkCount(path, "tensors", nTensors, 24, cur.remaining);
    checkCount(path, "key/value pairs", nKv, 14, cur.remaining);

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < Number(nKv); i++) {
      const key = readName(cur, path, `key ${i}`);
      if (key.length === 0) throw headerError(path, `key ${i} is empty`);
      if (metadata.has(key)) throw headerError(path, `duplicate key "${key}" (key ${i})`);
      const what = `the value of key "${key}"`;
      const type = readValueType(cur, path, what);
      const value =
        type === "array"
          ? readArrayBody(cur, readValueType(cur, path, `the elements of key "${key}"`), path, what, 1)
          : readScalar(cur, type, path, what);
      metadata.set(key, value);
    }
    this.metadata = metadata;
    this.alignment = alignmentOf(metadata, path);

    const tensors: GgufTensorInfo[] = [];
    const byName = new Map<string, GgufTensorInfo>();
    for (let i = 0; i < Number(nTensors); i++) {
      const info = readTensorInfo(cur, path, i, byName);
      tensors.push(info);
      byName.set(info.name, info);
    }

    // The data section starts at the next multiple of the alignment (gguf.cpp seeks there only when the
    // file has tensors; a tensor-less file may end right after its header).
    let dataStart = cur.pos;
    if (tensors.length > 0) {
      dataStart = padTo(cur.pos, this.alignment);
      if (dataStart > this.fileSize) {
        throw headerError(
          path,
          `file ends before the data section (at offset ${dataStart})`,
          "gguf.truncated",
        );
      }
    }
    this.dataStart = dataStart;
    checkTensorLayout(path, tensors, this.alignment, this.fileSize - dataStart);
    this.tensors = tensors;
    this.byName = byName;
  }

  /** Open and validate a GGUF file; tensor data is read later, on demand. */
  static open(path: string): GgufReader {
    let fd: number;
    refuseSpecialFile(path, "gguf.open");
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new MerglotError("gguf.open", `${path}: cannot open (${(e as Error).message})`);
    }
    return GgufReader.from(path, fileSource(fd));
  }

  /** Read a GGUF file held in memory; `label` stands for the path in messages. */
  static fromBytes(bytes: Uint8Array, label = "<memory>"): GgufReader {
    return GgufReader.from(label, memorySource(bytes));
  }

  private static from(path: string, src: ByteSource): GgufReader {
    try {
      return new GgufReader(path, src);
    } catch (e) {
      src.close();
      throw e;
    }
  }

  get(name: string): GgufTensorInfo | undefined {
    return this.byName.get(name);
  }

  getValue(key: string): GgufValue | undefined {
    return this.metadata.get(key);
  }

  /** A string value, undefined when absent; a value of another type is an error naming the key. */
  getString(key: string): string | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (v.type !== "string") throw headerError(this.path, `key "${key}" must be a string but is ${v.type}`);
    return v.value;
  }

  /** A numeric value of any integer or float type, undefined when absent. */
  getNumber(key: string): number | undefined {
    const v = this.metadata.get(key);
    if (v === undefined) return undefined;
    if (v.type === "u64" || v.type === "i64") {
      if (v.value > BigInt(Number.MAX_SAFE_INTEGER) || v.value < -BigInt(Number.MAX_SAFE_INTEGER)) {
        throw headerError(this.path, `key "${key}" holds ${v.value}, too large for this use`);
      }
      return Number(v.value);
    }
    if (v.type === "string" || v.type === "array" || v.type === "bool") {
      throw headerError(this.path, `key "${key}" must be a number but is ${v.type}`);
    }
    return v.value as number;
  }

  private info(name: string): GgufTensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new MerglotError("gguf.tensor", `${this.path}: no tensor named "${name}"`);
    return t;
  }

  /** The raw bytes of one tensor. */
  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    if (!this.src) throw new MerglotError("gguf.closed", `${this.path}: reader is closed`);
    const out = new Uint8Array(t.byteLength);
    const got = this.src.read(out, 0, t.byteLength, this.dataStart + t.offset);
    if (got !== t.byteLength) {
      throw new MerglotError(
        "gguf.truncated",
        `${this.path}: tensor "${name}" is truncated (read ${got} of ${t.byteLength} bytes)`,
      );
    }
    return out;
  }

  /** One tensor as float32 in row-major PyTorch order: F32, F16, BF16, F64, and Q8_0 (dequantised). */
  readFloat32(name: string): Float32Array {
    const t = this.info(name);
    if (!FLOAT_READABLE.has(t.type)) {
      throw new MerglotError(
        "gguf.dtype",
        `${this.path}: tensor "${name}" has type ${t.type}; only F32, F16, BF16, F64 and Q8_0 can be read as float32`,
      );
    }
    const bytes = this.readBytes(name);
    if (t.type === "Q8_0") return dequantizeQ8_0(bytes, t.elementCount);
    return decodeToFloat32(bytes, t.type as "F32" | "F16" | "BF16" | "F64");
  }

  close(): void {
    this.src?.close();
    this.src = null;
  }
}

function readVersion(cur: HeaderCursor, path: string): number {
  const v = cur.u32("the version");
  if (v === 0) throw headerError(path, `bad GGUF version 0`, "gguf.version");
  // A big-endian file read on a little-endian host shows version 3 as 0x03000000: the low 16 bits are 0.
  if ((v & 0xffff) === 0) {
    throw headerError(
      path,
      `GGUF version ${v} is implausibly large: the file is probably big-endian, which is not supported`,
      "gguf.version",
    );
  }
  // Version 1 used 32-bit counts and lengths and llama.cpp refuses it. Version 2 has the same layout as
  // version 3 (which only added big-endian files), so llama.cpp reads both, and so do we.
  if (v === 1)
    throw headerError(path, `GGUF version 1 is no longer supported (convert it again)`, "gguf.version");
  if (v > GGUF_VERSION) {
    throw headerError(
      path,
      `GGUF version ${v} is newer than the supported version ${GGUF_VERSION}`,
      "gguf.version",
    );
  }
  return v;
}

function checkCount(path: string, what: string, n: bigint, minBytes: number, remaining: number): void {
  if (n < 0n) throw headerError(path, `number of ${what} is ${n}, which is negative`);
  if (n * BigInt(minBytes) > BigInt(remaining)) {
    throw headerError(
      path,
      `header claims ${n} ${what} but only ${remaining} bytes remain in the file`,
      "gguf.truncated",
    );
  }
}

function alignmentOf(metadata: Map<string, GgufValue>, path: string): number {
  const v = metadata.get(GGUF_KEY_ALIGNMENT);
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (v.type !== "u32") {
    throw headerError(
      path,
      `key "${GGUF_KEY_ALIGNMENT}" must be of type u32 but is ${v.type}`,
      "gguf.alignment",
    );
  }
  if (!isPowerOfTwo(v.value)) {
    throw headerError(path, `alignment ${v.value} is not a power of 2`, "gguf.alignment");
  }
  return v.value;
}

function readTensorInfo(
  cur: HeaderCursor,
  path: string,
  i: number,
  seen: Map<string, GgufTensorInfo>,
): GgufTensorInfo {
  const name = readName(cur, path, `the name of tensor ${i}`);
  const nameBytes = utf8Encoder.encode(name).length;
  if (nameBytes >= GGML_MAX_NAME) {
    throw headerError(
      path,
      `tensor ${i} name "${name}" is too long: ${nameBytes} bytes, at most ${GGML_MAX_NAME - 1} allowed`,
      "gguf.tensor",
    );
  }
  if (seen.has(name)) throw headerError(path, `duplicate tensor name "${name}" (tensor ${i})`, "gguf.tensor");
  const label = `tensor "${name}"`;

  const nDims = cur.u32(`the dimension count of ${label}`);
  if (nDims > GGML_MAX_DIMS) {
    throw headerError(
      path,
      `${label} has ${nDims} dimensions, at most ${GGML_MAX_DIMS} allowed`,
      "gguf.tensor",
    );
  }
  const ne: bigint[] = [1n, 1n, 1n, 1n];
  for (let j = 0; j < nDims; j++) {
    ne[j] = cur.i64(`dimension ${j} of ${label}`);
    if (ne[j]! < 0n)
      throw headerError(path, `${label} dimension ${j} is ${ne[j]}, which is negative`, "gguf.tensor");
  }
  // gguf.cpp's overflow check: the element count must stay below INT64_MAX.
  const numel = ne[0]! * ne[1]! * ne[2]! * ne[3]!;
  if (numel > 0n && numel >= INT64_MAX) {
    throw headerError(
      path,
      `${label} has ${numel} elements, too many (shape ne=[${ne.join(", ")}])`,
      "gguf.tensor",
    );
  }

  const typeId = cur.i32(`the type of ${label}`);
  const type = TYPE_BY_ID.get(typeId);
  if (!type) throw headerError(path, `${label} has invalid ggml type ${typeId}`, "gguf.tensor");
  if (ne[0]! % BigInt(type.blockSize) !== 0n) {
    throw headerError(
      path,
      `${label} of type ${type.name} has ${ne[0]} elements per row, not a multiple of the block size ${type.blockSize}`,
      "gguf.tensor",
    );
  }
  const byteLength = (numel / BigInt(type.blockSize)) * BigInt(type.typeSize);
  // Anything past 2^53 bytes cannot be inside a file we can address; report it as too large here.
  if (byteLength > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw headerError(
      path,
      `${label} would take ${byteLength} bytes, more than any file can hold`,
      "gguf.tensor",
    );
  }
  const offset = cur.u64(`the offset of ${label}`);
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw headerError(path, `${label} has offset ${offset}, past the end of any file`, "gguf.offset");
  }
  const neN = ne.slice(0, nDims).map(Number);
  return {
    name,
    type: type.name,
    typeId,
    ne: neN,
    shape: [...neN].reverse(),
    elementCount: Number(numel),
    byteLength: Number(byteLength),
    offset: Number(offset),
  };
}

/**
 * gguf.cpp requires each tensor's offset to be exactly where the previous tensor's (alignment-padded) data
 * ends: tensors stored in order, aligned, never overlapping. The data must also lie inside the file.
 */
function checkTensorLayout(
  path: string,
  tensors: GgufTensorInfo[],
  alignment: number,
  dataSize: number,
): void {
  let expected = 0;
  for (const t of tensors) {
    if (t.offset % alignment !== 0) {
      throw headerError(
        path,
        `tensor "${t.name}" has offset ${t.offset}, not a multiple of the alignment ${alignment}`,
        "gguf.offset",
      );
    }
    if (t.offset !== expected) {
      throw headerError(
        path,
        `tensor "${t.name}" has offset ${t.offset}, expected ${expected} ` +
          `(tensor data must follow in file order, each padded to the alignment, without overlap or gaps)`,
        "gguf.offset",
      );
    }
    if (t.offset + t.byteLength > dataSize) {
      throw headerError(
        path,
        `tensor "${t.name}" data (${t.byteLength} bytes at data offset ${t.offset}) extends past the end of the file`,
        "gguf.truncated",
      );
    }
    expected = t.offset + padTo(t.byteLength, alignment);
  }
}

function padTo(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Q8_0: blocks of 32 values, each an f16 scale d followed by 32 int8 quants; x = d·q. */
export function dequantizeQ8_0(bytes: Uint8Array, elementCount: number): Float32Array {
  const blocks = elementCount / 32;
  if (!Number.isInteger(blocks) || bytes.length !== blocks * 34) {
    throw new MerglotError(
      "gguf.q8_0",
      `Q8_0 data of ${bytes.length} bytes does not hold ${elementCount} values`,
    );
  }
  const out = new Float32Array(elementCount);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const base = b * 34;
    const d = f16BitsToF32(bytes[base]! | (bytes[base + 1]! << 8));
    for (let i = 0; i < 32; i++) out[b * 32 + i] = d * q[base + 2 + i]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Writing

export interface GgufTensorSpec {
  name: string;
  type: GgufWritableType;
  /** PyTorch order (row-major), e.g. [rows, cols]; written as ne = shape reversed. */
  shape: number[];
}

export interface GgufWriterOptions {
  /**
   * Data alignment; written as `general.alignment` (u32) unless the metadata already has that key, which must
   * then agree. Default: the metadata's value, else 32.
   */
  alignment?: number;
  /**
   * Arrays of arrays are legal in the GGUF spec (gguf-py reads and writes them) but llama.cpp's loader
   * refuses any file containing one, so they are an error unless asked for.
   */
  allowNestedArrays?: boolean;
}

type MetadataInput = ReadonlyMap<string, GgufValue> | Iterable<readonly [string, GgufValue]>;

const INT_RANGE: Record<string, [number, number]> = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

/** Appends little-endian values to a growing byte list; used for the (small) header only. */
class ByteSink {
  private chunks: Uint8Array[] = [];
  length = 0;
  private scratch = new DataView(new ArrayBuffer(8));

  raw(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  private fixed(n: number): void {
    this.raw(new Uint8Array(this.scratch.buffer.slice(0, n)));
  }
  u8(v: number): void {
    this.scratch.setUint8(0, v);
    this.fixed(1);
  }
  i8(v: number): void {
    this.scratch.setInt8(0, v);
    this.fixed(1);
  }
  u16(v: number): void {
    this.scratch.setUint16(0, v, true);
    this.fixed(2);
  }
  i16(v: number): void {
    this.scratch.setInt16(0, v, true);
    this.fixed(2);
  }
  u32(v: number): void {
    this.scratch.setUint32(0, v, true);
    this.fixed(4);
  }
  i32(v: number): void {
    this.scratch.setInt32(0, v, true);
    this.fixed(4);
  }
  u64(v: bigint): void {
    this.scratch.setBigUint64(0, v, true);
    this.fixed(8);
  }
  i64(v: bigint): void {
    this.scratch.setBigInt64(0, v, true);
    this.fixed(8);
  }
  f32(v: number): void {
    this.scratch.setFloat32(0, v, true);
    this.fixed(4);
  }
  f64(v: number): void {
    this.scratch.setFloat64(0, v, true);
    this.fixed(8);
  }
  string(s: string): void {
    const b = utf8Encoder.encode(s);
    this.u64(BigInt(b.length));
    this.raw(b);
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function writeError(path: string, message: string): MerglotError {
  return new MerglotError("gguf.write", `${path}: ${message}`);
}

function writeScalar(sink: ByteSink, type: GgufScalarType, v: unknown, path: string, what: string): void {
  const bad = (expect: string) => writeError(path, `${what} must be ${expect}, got ${String(v)}`);
  switch (type) {
    case "u8":
    case "i8":
    case "u16":
    case "i16":
    case "u32":
    case "i32": {
      const [lo, hi] = INT_RANGE[type]!;
      if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi)
        throw bad(`an integer in [${lo}, ${hi}]`);
      sink[type](v);
      return;
    }
    case "u64":
      if (typeof v !== "bigint" || v < 0n || v > 0xffffffffffffffffn) throw bad("a bigint in [0, 2^64)");
      sink.u64(v);
      return;
    case "i64":
      if (typeof v !== "bigint" || v < -(1n << 63n) || v > INT64_MAX) throw bad("a bigint in [-2^63, 2^63)");
      sink.i64(v);
      return;
    case "f32":
    case "f64":
      if (typeof v !== "number") throw bad("a number");
      sink[type](v);
      return;
    case "bool":
      if (typeof v !== "boolean") throw bad("true or false");
      sink.i8(v ? 1 : 0);
      return;
    case "string":
      if (typeof v !== "string") throw bad("a string");
      sink.string(v);
      return;
  }
}

function writeArrayBody(
  sink: ByteSink,
  arr: GgufArray,
  path: string,
  what: string,
  opts: GgufWriterOptions,
): void {
  if (!Array.isArray(arr.value)) throw writeError(path, `${what} must hold a list of values`);
  if (VALUE_TYPE_CODE[arr.itemType] === undefined)
    throw writeError(path, `${what} has unknown item type ${arr.itemType}`);
  sink.u64(BigInt(arr.value.length));
  if (arr.itemType === "array") {
    if (!opts.allowNestedArrays) {
      throw writeError(
        path,
        `${what} is an array of arrays, which llama.cpp cannot load (pass allowNestedArrays to write it anyway)`,
      );
    }
    arr.value.forEach((inner, i) => {
      if (typeof inner !== "object" || inner === null || inner.type !== "array") {
        throw writeError(path, `${what}[${i}] must be an array value`);
      }
      sink.i32(VALUE_TYPE_CODE[inner.itemType]);
      writeArrayBody(sink, inner, path, `${what}[${i}]`, opts);
    });
    return;
  }
  const items: readonly unknown[] = arr.value;
  for (let i = 0; i < items.length; i++) writeScalar(sink, arr.itemType, items[i], path, `${what}[${i}]`);
}

/** Serialise the header (everything before the data section, padding included) and compute offsets. */
function encodeHeader(
  path: string,
  metadata: MetadataInput,
  specs: readonly GgufTensorSpec[],
  opts: GgufWriterOptions,
): { header: Uint8Array; alignment: number; sizes: number[] } {
  const entries: [string, GgufValue][] = [];
  const keys = new Set<string>();
  for (const [key, value] of metadata as Iterable<readonly [string, GgufValue]>) {
    if (typeof key !== "string" || key.length === 0)
      throw writeError(path, `metadata keys must be non-empty strings`);
    if (keys.has(key)) throw writeError(path, `duplicate metadata key "${key}"`);
    keys.add(key);
    entries.push([key, value]);
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const given = entries.find(([k]) => k === GGUF_KEY_ALIGNMENT)?.[1];
  if (given !== undefined) {
    if (given.type !== "u32" || !isPowerOfTwo(given.value)) {
      throw writeError(path, `"${GGUF_KEY_ALIGNMENT}" must be a u32 power of two`);
    }
    alignment = given.value;
  }
  if (opts.alignment !== undefined) {
    if (!isPowerOfTwo(opts.alignment) || opts.alignment > 0xffffffff) {
      throw writeError(path, `alignment ${opts.alignment} is not a power of two`);
    }
    if (given !== undefined && alignment !== opts.alignment) {
      throw writeError(
        path,
        `alignment ${opts.alignment} disagrees with "${GGUF_KEY_ALIGNMENT}" = ${alignment}`,
      );
    }
    if (given === undefined) entries.push([GGUF_KEY_ALIGNMENT, { type: "u32", value: opts.alignment }]);
    alignment = opts.alignment;
  }

  const sink = new ByteSink();
  sink.raw(utf8Encoder.encode(GGUF_MAGIC));
  sink.u32(GGUF_VERSION);
  sink.i64(BigInt(specs.length));
  sink.i64(BigInt(entries.length));
  for (const [key, value] of entries) {
    const what = `metadata key "${key}"`;
    sink.string(key);
    if (value === null || typeof value !== "object" || VALUE_TYPE_CODE[value.type] === undefined) {
      throw writeError(path, `${what} has no valid GGUF value type`);
    }
    sink.i32(VALUE_TYPE_CODE[value.type]);
    if (value.type === "array") {
      sink.i32(VALUE_TYPE_CODE[value.itemType] ?? -1);
      writeArrayBody(sink, value, path, what, opts);
    } else {
      writeScalar(sink, value.type, value.value, path, what);
    }
  }

  const names = new Set<string>();
  const sizes: number[] = [];
  let offset = 0;
  for (const spec of specs) {
    const label = `tensor "${spec.name}"`;
    const nameBytes = utf8Encoder.encode(spec.name).length;
    if (nameBytes === 0) throw writeError(path, `tensor names must not be empty`);
    if (nameBytes >= GGML_MAX_NAME) {
      throw writeError(
        path,
        `${label} name is ${nameBytes} bytes; llama.cpp allows at most ${GGML_MAX_NAME - 1}`,
      );
    }
    if (names.has(spec.name)) throw writeError(path, `duplicate ${label}`);
    names.add(spec.name);
    const type = TYPE_BY_NAME.get(spec.type);
    if (!type || !["F32", "F16", "BF16"].includes(spec.type)) {
      throw writeError(path, `${label} has type ${spec.type}; the writer supports F32, F16 and BF16`);
    }
    if (!Array.isArray(spec.shape) || spec.shape.length > GGML_MAX_DIMS) {
      throw writeError(path, `${label} must have at most ${GGML_MAX_DIMS} dimensions`);
    }
    let numel = 1;
    for (const d of spec.shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw writeError(path, `${label} has invalid dimension ${d}`);
      numel *= d;
    }
    if (!Number.isSafeInteger(numel * type.typeSize)) throw writeError(path, `${label} is too large`);
    sink.string(spec.name);
    const ne = [...spec.shape].reverse();
    sink.u32(ne.length);
    for (const d of ne) sink.i64(BigInt(d));
    sink.i32(type.id);
    sink.u64(BigInt(offset));
    const size = numel * type.typeSize;
    sizes.push(size);
    offset += padTo(size, alignment);
  }
  // gguf.cpp pads the header to the alignment even when there are no tensors; so do we (same bytes).
  const pad = padTo(sink.length, alignment) - sink.length;
  sink.raw(new Uint8Array(pad));
  return { header: sink.bytes(), alignment, sizes };
}

/**
 * Streaming, atomic GGUF writer. The header (metadata + all tensor infos) is written first, from the specs;
 * tensors are then written one at a time, in spec order, each padded with zeros to the alignment, into a temp
 * file beside `path`. `finish()` fsyncs and renames it into place; `abort()` removes it. Same input, same bytes.
 */
export class GgufWriter {
  readonly path: string;
  readonly alignment: number;
  private readonly specs: readonly GgufTensorSpec[];
  private readonly sizes: number[];
  private readonly tmp: string;
  private readonly slot: OutputSlot | null;
  private fd: number;
  private next = 0;

  /** `target`: a path (written beside it, renamed in), or an `OutputSlot` carrying a command's output policy. */
  constructor(
    target: string | OutputSlot,
    metadata: MetadataInput,
    tensors: readonly GgufTensorSpec[],
    options: GgufWriterOptions = {},
  ) {
    const path = typeof target === "string" ? target : target.path;
    this.slot = typeof target === "string" ? null : target;
    this.path = path;
    this.specs = tensors;
    const { header, alignment, sizes } = encodeHeader(path, metadata, tensors, options);
    this.alignment = alignment;
    this.sizes = sizes;
    this.tmp = this.slot ? this.slot.temp : tempPathFor(path);
    try {
      this.fd = openSync(this.tmp, "w");
    } catch (e) {
      this.fd = -1;
      this.abort();
      throw this.slot ? this.slot.fail(e) : e;
    }
    try {
      writeAll(this.fd, header);
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  /** Write the next tensor: a Float32Array is encoded to the spec's type; raw bytes must match its size. */
  writeTensor(name: string, data: Float32Array | Uint8Array): void {
    if (this.fd < 0) throw writeError(this.path, `writer is already closed`);
    const spec = this.specs[this.next];
    if (!spec) throw writeError(this.path, `tensor "${name}" was not declared (all tensors already written)`);
    if (spec.name !== name) {
      throw writeError(this.path, `tensor "${name}" written out of order; expected "${spec.name}" next`);
    }
    const size = this.sizes[this.next]!;
    let bytes: Uint8Array;
    if (data instanceof Float32Array) {
      if (data.length !== elementCount(spec.shape)) {
        throw writeError(
          this.path,
          `tensor "${name}" has ${data.length} values, shape [${spec.shape.join(", ")}] needs ${elementCount(spec.shape)}`,
        );
      }
      bytes = encodeFromFloat32(data, spec.type);
    } else if (data instanceof Uint8Array) {
      bytes = data;
    } else {
      throw writeError(this.path, `tensor "${name}" data must be a Float32Array or raw bytes`);
    }
    if (bytes.length !== size) {
      throw writeError(
        this.path,
        `tensor "${name}" has ${bytes.length} bytes, ${spec.type} [${spec.shape}] needs ${size}`,
      );
    }
    try {
      writeAll(this.fd, bytes);
      const pad = padTo(size, this.alignment) - size;
      if (pad > 0) writeAll(this.fd, new Uint8Array(pad));
    } catch (e) {
      this.abort();
      throw e;
    }
    this.next++;
  }

  /** Flush and move the file into place. Every declared tensor must have been written. */
  finish(): void {
    if (this.fd < 0) throw writeError(this.path, `writer is already closed`);
    if (this.next !== this.specs.length) {
      const missing = this.specs[this.next]!.name;
      this.abort();
      throw writeError(this.path, `finish() before all tensors were written (next: "${missing}")`);
    }
    const fd = this.fd;
    this.fd = -1;
    if (!this.slot) {
      commitTempFile(fd, this.tmp, this.path);
      return;
    }
    try {
      fsyncSync(fd);
      closeSync(fd);
    } catch (e) {
      discardTempFile(-1, this.tmp);
      throw this.slot.fail(e);
    }
    this.slot.commit();
  }

  /** Drop the partial file. Safe to call more than once. */
  abort(): void {
    discardTempFile(this.fd, this.tmp);
    this.fd = -1;
    this.slot?.abort();
  }
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/** Write a whole GGUF file in one call (tensors in the given order). */
export function writeGguf(
  path: string,
  metadata: MetadataInput,
  tensors: readonly (GgufTensorSpec & { data: Float32Array | Uint8Array })[],
  options: GgufWriterOptions = {},
): void {
  const w = new GgufWriter(
    path,
    metadata,
    tensors.map(({ name, type, shape }) => ({ name, type, shape })),
    options,
  );
  try {
    for (const t of tensors) w.writeTensor(t.name, t.data);
    w.finish();
  } catch (e) {
    w.abort();
    throw e;
  }
}
