import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MerglotError } from "../../src/errors.js";
import {
  DTYPE_SIZE,
  SafetensorsReader,
  SafetensorsWriter,
  validateHeader,
  writeSafetensors,
  type StDType,
} from "../../src/formats/safetensors.js";

const dir = mkdtempSync(join(tmpdir(), "merglot-st-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCounter = 0;
const freshPath = (stem: string) => join(dir, `${stem}-${fileCounter++}.safetensors`);

// ---- building files by hand, in the reference writer's layout -----------------------------------------

/** u64 little-endian, byte by byte. */
function u64le(n: bigint): number[] {
  const out: number[] = [];
  for (let i = 0; i < 8; i++) out.push(Number((n >> BigInt(8 * i)) & 0xffn));
  return out;
}

/** ASCII header text padded with spaces to a multiple of 8, as the reference writer does. */
function paddedHeader(json: string): number[] {
  const bytes = Array.from(json, (c) => c.charCodeAt(0));
  while (bytes.length % 8 !== 0) bytes.push(0x20);
  return bytes;
}

/** A whole file: length prefix (the header's own length unless overridden), header, data. */
function fileBytes(json: string, data: number[], opts: { pad?: boolean; length?: bigint } = {}): Uint8Array {
  const header = opts.pad === false ? Array.from(json, (c) => c.charCodeAt(0)) : paddedHeader(json);
  return Uint8Array.from([...u64le(opts.length ?? BigInt(header.length)), ...header, ...data]);
}

function writeFile(stem: string, bytes: Uint8Array): string {
  const p = freshPath(stem);
  writeFileSync(p, bytes);
  return p;
}

const entry = (dtype: string, shape: number[], begin: number, end: number) =>
  `{"dtype":"${dtype}","shape":[${shape.join(",")}],"data_offsets":[${begin},${end}]}`;

// ---- reading hand-built files -------------------------------------------------------------------------

describe("reading files built byte by byte", () => {
  // a: F32 [2] = [1.5, -2]    1.5 = 0x3fc00000, -2 = 0xc0000000
  // b: F16 [2] = [1, -0.5]    1 = 0x3c00, -0.5 = 0xb800
  // e: F32 [2, 0], empty      s: I32 scalar (shape []) = -7
  // Listed out of offset order in the JSON; the reader must sort by offsets.
  const json =
    `{"__metadata__":{"format":"pt","note":"hand made"},` +
    `"b":${entry("F16", [2], 8, 12)},"s":${entry("I32", [], 12, 16)},` +
    `"a":${entry("F32", [2], 0, 8)},"e":${entry("F32", [2, 0], 12, 12)}}`;
  const data = [0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0, 0x00, 0x3c, 0x00, 0xb8, 0xf9, 0xff, 0xff, 0xff];

  test("padded header, scalar, empty tensor, metadata", () => {
    assert.notEqual(json.length % 8, 0, "the case must actually need padding");
    const bytes = fileBytes(json, data);
    const p = writeFile("hand", bytes);
    const r = SafetensorsReader.open(p);
    try {
      const headerLen = Math.ceil(json.length / 8) * 8;
      assert.equal(r.path, p);
      assert.equal(r.fileSize, bytes.length);
      assert.equal(r.dataStart, 8 + headerLen);
      assert.deepEqual(r.metadata, { format: "pt", note: "hand made" });
      // empty "e" shares offset 12 with "s"; it sorts first because it also ends first
      assert.deepEqual(
        r.tensors.map((t) => [t.name, t.dtype, t.shape, t.begin, t.end]),
        [
          ["a", "F32", [2], 0, 8],
          ["b", "F16", [2], 8, 12],
          ["e", "F32", [2, 0], 12, 12],
          ["s", "I32", [], 12, 16],
        ],
      );
      assert.deepEqual(r.get("b"), { name: "b", dtype: "F16", shape: [2], begin: 8, end: 12 });
      assert.equal(r.get("missing"), undefined);
      assert.deepEqual(Array.from(r.readFloat32("a")), [1.5, -2]);
      assert.deepEqual(Array.from(r.readFloat32("b")), [1, -0.5]);
      assert.deepEqual(Array.from(r.readTyped("b") as Uint16Array), [0x3c00, 0xb800]);
      assert.equal(r.readFloat32("e").length, 0);
      assert.equal(r.readBytes("e").length, 0);
      const s = r.readTyped("s");
      assert.ok(s instanceof Int32Array);
      assert.deepEqual(Array.from(s), [-7]);
      assert.deepEqual(Array.from(r.readBytes("s")), [0xf9, 0xff, 0xff, 0xff]);
    } finally {
      r.close();
    }
  });

  test("an unpadded header and a header padded with many spaces both read", () => {
    for (const [stem, bytes] of [
      ["unpadded", fileBytes(json, data, { pad: false })],
      ["spaces", fileBytes(json + " ".repeat(37), data, { pad: false })],
    ] as const) {
      const r = SafetensorsReader.open(writeFile(stem, bytes));
      assert.deepEqual(Array.from(r.readFloat32("a")), [1.5, -2], stem);
      r.close();
    }
  });

  test("a file with no tensors (the reference writer's empty file) reads", () => {
    const r = SafetensorsReader.open(writeFile("empty", fileBytes("{}", [])));
    assert.equal(r.tensors.length, 0);
    assert.equal(r.metadata, undefined);
    r.close();
  });

  test("readFloat32 refuses non-float dtypes and unknown names, naming file and tensor", () => {
    const p = writeFile("hand", fileBytes(json, data));
    const r = SafetensorsReader.open(p);
    try {
      assert.throws(
        () => r.readFloat32("s"),
        (e: unknown) => e instanceof MerglotError && e.message.includes(p) && /"s".*I32/.test(e.message),
      );
      assert.throws(
        () => r.readBytes("nope"),
        (e: unknown) => e instanceof MerglotError && e.message.includes(p) && e.message.includes('"nope"'),
      );
    } finally {
      r.close();
    }
  });

  test("a file truncated after opening gives a clear error on read, not a short tensor", () => {
    const p = writeFile("shrinks", fileBytes(json, data));
    const r = SafetensorsReader.open(p);
    try {
      truncateSync(p, r.dataStart + 10); // cuts "b" in half
      assert.deepEqual(Array.from(r.readFloat32("a")), [1.5, -2]);
      assert.throws(
        () => r.readBytes("b"),
        (e: unknown) =>
          e instanceof MerglotError && e.message.includes(p) && /truncated.*"b".*2 of its 4/.test(e.message),
      );
    } finally {
      r.close();
    }
  });

  test("a missing file is a MerglotError naming the path", () => {
    const p = join(dir, "does-not-exist.safetensors");
    assert.throws(
      () => SafetensorsReader.open(p),
      (e: unknown) => e instanceof MerglotError && e.message.includes(p) && e.message.includes("ENOENT"),
    );
  });
});

// ---- the writer --------------------------------------------------------------------------------------

describe("writer", () => {
  test("a single tensor comes out byte for byte in the reference layout", () => {
    // The reference writer's own test case: F32 [1,2,3] holding 0..5 under "attn.0", and "attn0" with
    // shape [1,1,2,3] whose header needs 7 spaces of padding.
    for (const [name, shape] of [
      ["attn.0", [1, 2, 3]],
      ["attn0", [1, 1, 2, 3]],
    ] as const) {
      const p = freshPath("ref");
      writeSafetensors(p, [
        { name, dtype: "F32", shape: [...shape], data: Float32Array.from([0, 1, 2, 3, 4, 5]) },
      ]);
      const json = `{"${name}":{"dtype":"F32","shape":[${shape.join(",")}],"data_offsets":[0,24]}}`;
      const floatBytes = [0, 1, 2, 3, 4, 5].flatMap((x) => {
        // float32 bit patterns of small integers, from the definition: exponent 127+k, mantissa bits
        if (x === 0) return [0, 0, 0, 0];
        const k = Math.floor(Math.log2(x));
        const bits = ((127 + k) << 23) | ((x / 2 ** k - 1) * 2 ** 23);
        return [bits & 0xff, (bits >>> 8) & 0xff, (bits >>> 16) & 0xff, bits >>> 24];
      });
      assert.deepEqual(Array.from(readFileSync(p)), Array.from(fileBytes(json, floatBytes)), name);
    }
  });

  test("empty file and metadata-only file match the reference writer's bytes", () => {
    const p1 = freshPath("w-empty");
    writeSafetensors(p1, []);
    assert.deepEqual(
      Array.from(readFileSync(p1)),
      [8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 32, 32, 32, 32, 32, 32],
    );
    const p2 = freshPath("w-meta");
    writeSafetensors(p2, [], { framework: "pt" });
    assert.deepEqual(
      Array.from(readFileSync(p2)),
      Array.from(fileBytes('{"__metadata__":{"framework":"pt"}}', [])),
    );
  });

  test("every dtype round trips through writeSafetensors and readTyped / readFloat32", () => {
    const p = freshPath("all-dtypes");
    const tensors = [
      { name: "bool", dtype: "BOOL", shape: [3], data: Uint8Array.from([1, 0, 1]) },
      { name: "u8", dtype: "U8", shape: [2], data: Uint8Array.from([0, 255]) },
      { name: "i8", dtype: "I8", shape: [2], data: Int8Array.from([-128, 127]) },
      { name: "f8e5m2", dtype: "F8_E5M2", shape: [1], data: Uint8Array.from([0x3c]) },
      { name: "f8e4m3", dtype: "F8_E4M3", shape: [1], data: Uint8Array.from([0x38]) },
      { name: "i16", dtype: "I16", shape: [2], data: Int16Array.from([-32768, 32767]) },
      { name: "u16", dtype: "U16", shape: [2], data: Uint16Array.from([0, 65535]) },
      { name: "f16", dtype: "F16", shape: [2, 2], data: Float32Array.from([1, -0.5, 65504, 2 ** -24]) },
      { name: "bf16", dtype: "BF16", shape: [3], data: Float32Array.from([1, -3.5, 2 ** 100]) },
      { name: "i32", dtype: "I32", shape: [2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) },
      { name: "u32", dtype: "U32", shape: [1], data: Uint32Array.from([2 ** 32 - 1]) },
      { name: "f32", dtype: "F32", shape: [2], data: Float32Array.from([Math.fround(0.1), -7]) },
      { name: "f64", dtype: "F64", shape: [2], data: Float64Array.from([0.1, -1e300]) },
      { name: "i64", dtype: "I64", shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n]) },
      { name: "u64", dtype: "U64", shape: [1], data: BigUint64Array.from([2n ** 64n - 1n]) },
    ] satisfies { name: string; dtype: StDType; shape: number[]; data: ArrayBufferView }[];
    assert.equal(
      new Set(tensors.map((t) => t.dtype)).size,
      Object.keys(DTYPE_SIZE).length,
      "covers all dtypes",
    );
    writeSafetensors(p, tensors, { k: "v" });
    const r = SafetensorsReader.open(p);
    try {
      assert.deepEqual(r.metadata, { k: "v" });
      assert.deepEqual(
        r.tensors.map((t) => t.name),
        tensors.map((t) => t.name),
        "written in the given order",
      );
      for (const t of tensors) {
        const got = r.readTyped(t.name);
        const e = r.get(t.name)!;
        assert.deepEqual(e.shape, t.shape);
        assert.equal(e.end - e.begin, t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype], t.name);
        if (t.dtype === "F16" || t.dtype === "BF16") {
          assert.ok(got instanceof Uint16Array);
          assert.deepEqual(Array.from(r.readFloat32(t.name)), Array.from(t.data as Float32Array), t.name);
        } else {
          assert.equal(got.constructor, t.data.constructor, t.name);
          assert.deepEqual(
            Array.from(got as ArrayLike<number | bigint>),
            Array.from(t.data as ArrayLike<number | bigint>),
            t.name,
          );
        }
      }
      // hand-derived bit patterns for the encoded floats
      assert.deepEqual(Array.from(r.readTyped("f16") as Uint16Array), [0x3c00, 0xb800, 0x7bff, 0x0001]);
      assert.deepEqual(Array.from(r.readTyped("bf16") as Uint16Array), [0x3f80, 0xc060, 0x7180]);
      assert.deepEqual(Array.from(r.readFloat32("f64")), [Math.fround(0.1), -Infinity]);
    } finally {
      r.close();
    }
  });

  test("Float32Array data is encoded to F16/BF16 with rounding to nearest even", () => {
    const p = freshPath("rounding");
    writeSafetensors(p, [
      { name: "h", dtype: "F16", shape: [4], data: Float32Array.from([1 + 2 ** -11, 65520, -0, 2 ** -25]) },
      { name: "b", dtype: "BF16", shape: [2], data: Float32Array.from([1 + 2 ** -8, 1 + 3 * 2 ** -8]) },
    ]);
    const r = SafetensorsReader.open(p);
    assert.deepEqual(Array.from(r.readTyped("h") as Uint16Array), [0x3c00, 0x7c00, 0x8000, 0x0000]);
    assert.deepEqual(Array.from(r.readTyped("b") as Uint16Array), [0x3f80, 0x3f82]);
    r.close();
  });

  test("tensors larger than the internal chunk encode and decode correctly across chunk boundaries", () => {
    // Element counts that are not multiples of any chunk size, and values each format holds exactly, so
    // every element must come back exactly where it was.
    const n16 = 300_001;
    const n64 = 70_001;
    const halfValues = Float32Array.from({ length: n16 }, (_, i) => (i % 2048) - 1024);
    const bfValues = Float32Array.from(
      { length: n16 },
      (_, i) => ((i % 256) - 128) * 2 ** (((i >> 8) % 40) - 20),
    );
    const f64Values = Float32Array.from({ length: n64 }, (_, i) => Math.fround(Math.sin(i) * 1e3));
    const p = freshPath("chunks");
    writeSafetensors(p, [
      { name: "h", dtype: "F16", shape: [n16], data: halfValues },
      { name: "b", dtype: "BF16", shape: [n16], data: bfValues },
      { name: "d", dtype: "F64", shape: [n64], data: f64Values },
    ]);
    const r = SafetensorsReader.open(p);
    try {
      assert.deepEqual(r.readFloat32("h"), halfValues);
      assert.deepEqual(r.readFloat32("b"), bfValues);
      assert.deepEqual(r.readFloat32("d"), f64Values);
      // raw bits spot checks at chunk-straddling positions: f16 of (i % 2048) - 1024, from the definition
      const raw = r.readTyped("h") as Uint16Array;
      for (const i of [0, 131071, 131072, 131073, 300_000]) {
        const v = (i % 2048) - 1024;
        const a = Math.abs(v);
        const e = a === 0 ? 0 : Math.floor(Math.log2(a));
        const bits = a === 0 ? 0 : ((e + 15) << 10) | ((a / 2 ** e - 1) * 1024);
        assert.equal(raw[i], (v < 0 ? 0x8000 : 0) | bits, `element ${i}`);
      }
      // a caller's buffer is filled and returned; a wrong-sized one is refused
      const out = new Float32Array(n16);
      assert.equal(r.readFloat32("b", out), out);
      assert.deepEqual(out, bfValues);
      assert.equal(r.readFloat32("h", out), out);
      assert.deepEqual(out, halfValues);
      assert.throws(() => r.readFloat32("d", out), RangeError);
      // a file cut short after opening names how much of the tensor was there
      truncateSync(p, r.dataStart + 2 * n16 + 300_000);
      assert.throws(
        () => r.readFloat32("b"),
        (e: unknown) =>
          e instanceof MerglotError && e.message.includes(`"b" has 300000 of its ${2 * n16} bytes`),
      );
    } finally {
      r.close();
    }
  });

  test("same input gives a byte-identical file; integer-like names keep the given order", () => {
    const make = () => {
      const p = freshPath("det");
      writeSafetensors(
        p,
        [
          { name: "10", dtype: "F32", shape: [1], data: Float32Array.from([1]) },
          { name: "2", dtype: "BF16", shape: [1], data: Float32Array.from([2]) },
          { name: "é", dtype: "U8", shape: [1], data: Uint8Array.from([3]) },
        ],
        { b: "1", a: "2" },
      );
      return readFileSync(p);
    };
    const a = make();
    assert.deepEqual(a, make());
    const r = SafetensorsReader.open(join(dir, `det-${fileCounter - 1}.safetensors`));
    assert.deepEqual(
      r.tensors.map((t) => t.name),
      ["10", "2", "é"],
    );
    assert.equal(r.dataStart % 8, 0, "header padded to a multiple of 8");
    r.close();
  });

  test("streaming writer: nothing at the target until finish(); abort() leaves nothing behind", () => {
    const sub = mkdtempSync(join(dir, "w-"));
    const p = join(sub, "out.safetensors");
    const w = new SafetensorsWriter(p, [
      { name: "x", dtype: "F32", shape: [2] },
      { name: "y", dtype: "I16", shape: [1] },
    ]);
    w.writeTensor("x", Float32Array.from([1, 2]));
    assert.deepEqual(readdirSync(sub).length, 1, "only the temp file exists");
    assert.ok(!readdirSync(sub).includes("out.safetensors"));
    w.writeTensor("y", Int16Array.from([-3]));
    w.finish();
    assert.deepEqual(readdirSync(sub), ["out.safetensors"]);
    const r = SafetensorsReader.open(p);
    assert.deepEqual(Array.from(r.readTyped("y") as Int16Array), [-3]);
    r.close();

    const w2 = new SafetensorsWriter(join(sub, "other.safetensors"), [
      { name: "x", dtype: "F32", shape: [1] },
    ]);
    w2.abort();
    w2.abort();
    assert.deepEqual(readdirSync(sub), ["out.safetensors"]);
  });

  test("writer misuse is refused with clear errors", () => {
    const sub = mkdtempSync(join(dir, "w-"));
    const p = join(sub, "bad.safetensors");
    const specs = [
      { name: "a", dtype: "F32" as const, shape: [2] },
      { name: "b", dtype: "I32" as const, shape: [1] },
    ];
    const rejects = (fn: () => void, pattern: RegExp) =>
      assert.throws(
        fn,
        (e: unknown) => e instanceof MerglotError && e.message.includes(p) && pattern.test(e.message),
      );

    rejects(
      () => new SafetensorsWriter(p, [...specs, { name: "a", dtype: "F16", shape: [1] }]),
      /"a" is listed more than once/,
    );
    rejects(
      () => new SafetensorsWriter(p, [{ name: "x", dtype: "F128" as StDType, shape: [1] }]),
      /unknown dtype/,
    );
    rejects(() => new SafetensorsWriter(p, [{ name: "x", dtype: "F32", shape: [-1] }]), /non-negative/);
    rejects(
      () => new SafetensorsWriter(p, [{ name: "x", dtype: "F32", shape: [2 ** 30, 2 ** 30, 2 ** 30] }]),
      /too large/,
    );
    rejects(() => new SafetensorsWriter(p, [{ name: "__metadata__", dtype: "F32", shape: [1] }]), /reserved/);
    rejects(() => new SafetensorsWriter(p, [], { k: 1 as unknown as string }), /must be a string/);
    assert.deepEqual(readdirSync(sub), [], "refused specs create no file");

    const w = new SafetensorsWriter(p, specs);
    rejects(
      () => w.writeTensor("b", Int32Array.from([1])),
      /"b" is out of order: the next tensor to write is "a"/,
    );
    rejects(() => w.writeTensor("zzz", Float32Array.from([1, 2])), /not in the tensor list/);
    rejects(() => w.writeTensor("a", Float32Array.from([1, 2, 3])), /needs 8 bytes, got 12/);
    rejects(() => w.writeTensor("a", new Uint8Array(7)), /needs 8 bytes, got 7/);
    rejects(() => w.finish(), /2 tensor\(s\) not written yet/);
    w.writeTensor("a", Float32Array.from([1, 2]));
    rejects(() => w.writeTensor("b", Float32Array.from([1])), /cannot encode float32 values as I32/);
    rejects(() => w.finish(), /1 tensor\(s\) not written yet, next is "b"/);
    w.writeTensor("b", Int32Array.from([5]));
    rejects(() => w.writeTensor("b", Int32Array.from([5])), /already written/);
    w.finish();
    rejects(() => w.finish(), /already finished/);

    const w3 = new SafetensorsWriter(p, [{ name: "h", dtype: "F16", shape: [3] }]);
    rejects(() => w3.writeTensor("h", Float32Array.from([1, 2])), /needs 3 values, got 2/);
    w3.abort();
    rejects(() => w3.writeTensor("h", Float32Array.from([1, 2, 3])), /already finished or aborted/);

    const unwritable = join(sub, "no-such-dir", "x.safetensors");
    assert.throws(
      () => new SafetensorsWriter(unwritable, []),
      (e: unknown) => e instanceof MerglotError && e.message.startsWith(`${unwritable}: cannot create`),
    );

    // writeSafetensors cleans up its temp file when a tensor is refused
    const q = join(sub, "never.safetensors");
    assert.throws(() =>
      writeSafetensors(q, [{ name: "x", dtype: "F32", shape: [2], data: Float32Array.from([1]) }]),
    );
    assert.deepEqual(readdirSync(sub), ["bad.safetensors"]);
  });
});

// ---- malformed files ---------------------------------------------------------------------------------

describe("malformed corpus", () => {
  const okData = [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]; // F32 [1, 2]
  const okJson = `{"a":${entry("F32", [2], 0, 8)}}`;
  const two = (a: string, b: string) => `{"a":${a},"b":${b}}`;
  const cases: { name: string; bytes: Uint8Array; problem: RegExp }[] = [
    { name: "empty file", bytes: new Uint8Array(0), problem: /0 bytes, too short/ },
    { name: "shorter than the length field", bytes: Uint8Array.from([8, 0, 0]), problem: /too short/ },
    {
      name: "truncated data",
      bytes: fileBytes(okJson, okData.slice(0, 5)),
      problem: /truncated.*8 bytes.*only 5/,
    },
    {
      name: "truncated header",
      bytes: fileBytes(okJson, okData).slice(0, 8 + 20),
      problem: /header length \d+ is larger than the 20 bytes/,
    },
    {
      name: "header length larger than the file",
      bytes: fileBytes(okJson, okData, { length: 10_000n }),
      problem: /header length 10000 is larger/,
    },
    {
      name: "header length 2^63",
      bytes: fileBytes(okJson, okData, { length: 2n ** 63n }),
      problem: /header too large/,
    },
    {
      name: "header length 2^64-1",
      bytes: fileBytes(okJson, okData, { length: 2n ** 64n - 1n }),
      problem: /header too large/,
    },
    {
      name: "header length just over 100 MB",
      bytes: fileBytes(okJson, okData, { length: 100_000_001n }),
      problem: /header too large/,
    },
    {
      name: "header length too short (JSON cut)",
      bytes: fileBytes(okJson, okData, { length: 20n }),
      problem: /not valid JSON/,
    },
    {
      name: "overlapping offsets",
      bytes: fileBytes(two(entry("F32", [2], 0, 8), entry("F32", [2], 4, 12)), [...okData, 0, 0, 0, 0]),
      problem: /"b" data_offsets \[4, 12\] overlaps: tensor "a" ends at 8/,
    },
    {
      name: "gap between tensors",
      bytes: fileBytes(two(entry("F32", [2], 0, 8), entry("F32", [1], 12, 16)), [...okData, ...okData]),
      problem: /"b" data_offsets \[12, 16\] leaves a gap/,
    },
    {
      name: "data not starting at 0",
      bytes: fileBytes(`{"a":${entry("F32", [1], 4, 8)}}`, okData),
      problem: /"a".*leaves a gap: the data section starts at 0/,
    },
    {
      name: "wrong byte size",
      bytes: fileBytes(`{"a":${entry("F32", [3], 0, 8)}}`, okData),
      problem: /"a": shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/,
    },
    {
      name: "end before begin",
      bytes: fileBytes(`{"a":${entry("F32", [2], 8, 0)}}`, okData),
      problem: /"a": data_offsets \[8, 0\] end before they begin/,
    },
    {
      name: "negative shape",
      bytes: fileBytes(`{"a":${entry("F32", [-2], 0, 8)}}`, okData),
      problem: /"a".*-2.*non-negative/,
    },
    {
      name: "fractional shape",
      bytes: fileBytes(`{"a":${entry("F32", [1.5], 0, 8)}}`, okData),
      problem: /"a".*1\.5.*non-negative integer/,
    },
    {
      name: "huge shape (numel overflow)",
      bytes: fileBytes(`{"a":${entry("F32", [4294967296, 4294967296], 0, 8)}}`, okData),
      problem: /"a": shape \[4294967296, 4294967296\] of F32 overflows/,
    },
    {
      name: "overflow before a zero dimension",
      bytes: fileBytes(
        `{"a":{"dtype":"F32","shape":[9007199254740991,9007199254740991,0],"data_offsets":[0,0]}}`,
        [],
      ),
      problem: /"a".*overflows/,
    },
    {
      name: "shape beyond safe integers",
      bytes: fileBytes(`{"a":{"dtype":"F32","shape":[1e300],"data_offsets":[0,8]}}`, okData),
      problem: /"a".*1e\+300.*non-negative integer/,
    },
    { name: "invalid JSON", bytes: fileBytes(`{"a":{"dtype":"F32",}`, okData), problem: /not valid JSON/ },
    { name: "JSON array", bytes: fileBytes(`[1,2]`, okData), problem: /does not start with '\{'/ },
    { name: "JSON number", bytes: fileBytes(`42`, okData), problem: /does not start with '\{'/ },
    { name: "leading space", bytes: fileBytes(` ${okJson}`, okData), problem: /does not start with '\{'/ },
    {
      name: "invalid UTF-8",
      bytes: Uint8Array.from([...u64le(8n), 0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
      problem: /not valid UTF-8/,
    },
    {
      name: "duplicate tensor names",
      bytes: fileBytes(two(entry("F32", [1], 0, 4), entry("F32", [1], 4, 8)).replace('"b"', '"a"'), okData),
      problem: /tensor "a" more than once/,
    },
    {
      name: "duplicate names spelled differently",
      bytes: fileBytes(
        two(entry("F32", [1], 0, 4), entry("F32", [1], 4, 8)).replace('"b"', '"\\u0061"'),
        okData,
      ),
      problem: /tensor "a" more than once/,
    },
    {
      name: "duplicate field inside an entry",
      bytes: fileBytes(`{"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}`, okData),
      problem: /entry "a" has key "dtype" more than once/,
    },
    {
      name: "unknown dtype",
      bytes: fileBytes(`{"a":${entry("F128", [2], 0, 8)}}`, okData),
      problem: /"a": unknown dtype string "F128"/,
    },
    {
      name: "dtype not a string",
      bytes: fileBytes(`{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}`, okData),
      problem: /"a": unknown dtype number 4/,
    },
    { name: "trailing bytes", bytes: fileBytes(okJson, [...okData, 0, 0, 0]), problem: /3 trailing bytes/ },
    {
      name: "extra key in a tensor entry",
      bytes: fileBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"offsets":[0,8]}}`, okData),
      problem: /"a": unexpected field "offsets"/,
    },
    {
      name: "missing key in a tensor entry",
      bytes: fileBytes(`{"a":{"dtype":"F32","shape":[2]}}`, okData),
      problem: /"a": missing field "data_offsets"/,
    },
    {
      name: "entry not an object",
      bytes: fileBytes(`{"a":[0,8]}`, okData),
      problem: /"a": entry must be an object, not an array/,
    },
    {
      name: "bad __metadata__ value",
      bytes: fileBytes(`{"__metadata__":{"format":"pt","epochs":3},"a":${entry("F32", [2], 0, 8)}}`, okData),
      problem: /"__metadata__" value for "epochs" must be a string, not number 3/,
    },
    {
      name: "__metadata__ not an object",
      bytes: fileBytes(`{"__metadata__":"pt","a":${entry("F32", [2], 0, 8)}}`, okData),
      problem: /"__metadata__" must be an object/,
    },
    {
      name: "data_offsets of length 1",
      bytes: fileBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}`, okData),
      problem: /"a": data_offsets must be a pair/,
    },
    {
      name: "data_offsets of length 3",
      bytes: fileBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}`, okData),
      problem: /"a": data_offsets must be a pair/,
    },
    {
      name: "data_offsets negative",
      bytes: fileBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, okData),
      problem: /"a": data_offsets entry number -8 is not a non-negative integer/,
    },
    {
      name: "shape not an array",
      bytes: fileBytes(`{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}`, okData),
      problem: /"a": shape must be an array/,
    },
  ];

  test("the valid base file reads (so each case below fails for its own reason)", () => {
    const r = SafetensorsReader.open(writeFile("base", fileBytes(okJson, okData)));
    assert.deepEqual(Array.from(r.readFloat32("a")), [1, 2]);
    r.close();
  });

  for (const c of cases) {
    test(c.name, () => {
      const p = writeFile("bad", c.bytes);
      assert.throws(
        () => SafetensorsReader.open(p),
        (e: unknown) => {
          assert.ok(e instanceof MerglotError, `expected MerglotError, got ${String(e)}`);
          assert.ok(e.message.startsWith(`${p}: `), `message names the file: ${e.message}`);
          assert.match(e.message, c.problem);
          return true;
        },
      );
    });
  }
});

describe("validateHeader (pure)", () => {
  test("sorts by offset and returns metadata; checks against the data size it is given", () => {
    const h = validateHeader(
      {
        __metadata__: { a: "b" },
        y: { dtype: "U8", shape: [2], data_offsets: [3, 5] },
        x: { dtype: "U8", shape: [3], data_offsets: [0, 3] },
      },
      5,
      "mem",
    );
    assert.deepEqual(
      h.tensors.map((t) => t.name),
      ["x", "y"],
    );
    assert.deepEqual(h.metadata, { a: "b" });
    assert.throws(
      () => validateHeader({ x: { dtype: "U8", shape: [3], data_offsets: [0, 3] } }, 4, "mem"),
      /mem: 1 trailing/,
    );
  });

  test("non-object JSON values are refused by name", () => {
    for (const [json, word] of [
      [[1, 2], "an array"],
      [7, "number 7"],
      [null, "null"],
      ["s", 'string "s"'],
    ] as const) {
      assert.throws(
        () => validateHeader(json, 0, "mem"),
        (e: unknown) =>
          e instanceof MerglotError && e.message === `mem: header JSON must be an object, not ${word}`,
      );
    }
  });

  test("__proto__ is an ordinary metadata key and tensor name", () => {
    const json = JSON.parse(
      `{"__metadata__":{"__proto__":"x"},"__proto__":${entry("U8", [1], 0, 1)}}`,
    ) as unknown;
    const h = validateHeader(json, 1, "mem");
    assert.equal(h.tensors[0].name, "__proto__");
    assert.deepEqual(Object.entries(h.metadata!), [["__proto__", "x"]]);
  });
});
