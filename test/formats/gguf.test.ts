import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MerglotError } from "../../src/errors.js";
import {
  GgufReader,
  GgufWriter,
  writeGguf,
  gguf,
  type GgufArray,
  type GgufValue,
} from "../../src/formats/gguf.js";

const dir = mkdtempSync(join(tmpdir(), "merglot-gguf-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmp = (name = "t.gguf") => join(dir, `${fileNo++}-${name}`);

// ---------------------------------------------------------------------------------------------------------
// A byte builder written for the tests, straight from the GGUF spec (little-endian; strings are a u64 byte
// length then UTF-8 bytes), independent of the writer under test.

class Bytes {
  private out: number[] = [];
  get length(): number {
    return this.out.length;
  }
  private put(n: number, f: (v: DataView) => void): this {
    const dv = new DataView(new ArrayBuffer(n));
    f(dv);
    for (let i = 0; i < n; i++) this.out.push(dv.getUint8(i));
    return this;
  }
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.out.push(bytes[i]!);
    return this;
  }
  u8(v: number): this {
    return this.put(1, (d) => d.setUint8(0, v));
  }
  u16(v: number): this {
    return this.put(2, (d) => d.setUint16(0, v, true));
  }
  u32(v: number): this {
    return this.put(4, (d) => d.setUint32(0, v, true));
  }
  i32(v: number): this {
    return this.put(4, (d) => d.setInt32(0, v, true));
  }
  u64(v: bigint | number): this {
    return this.put(8, (d) => d.setBigUint64(0, BigInt(v), true));
  }
  i64(v: bigint | number): this {
    return this.put(8, (d) => d.setBigInt64(0, BigInt(v), true));
  }
  f32(v: number): this {
    return this.put(4, (d) => d.setFloat32(0, v, true));
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.u64(b.length).raw(b);
  }
  padTo(alignment: number): this {
    while (this.out.length % alignment !== 0) this.out.push(0);
    return this;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

const T = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  str: 8,
  arr: 9,
  u64: 10,
  i64: 11,
  f64: 12,
};
const GGML = { F32: 0, F16: 1, Q8_0: 8, I32: 26, BF16: 30 };

function head(b: Bytes, nTensors: bigint | number, nKv: bigint | number, version = 3, magic = "GGUF"): Bytes {
  return b.raw(new TextEncoder().encode(magic)).u32(version).i64(nTensors).i64(nKv);
}
function kvStr(b: Bytes, key: string, value: string): Bytes {
  return b.str(key).i32(T.str).str(value);
}
function kvU32(b: Bytes, key: string, value: number): Bytes {
  return b.str(key).i32(T.u32).u32(value);
}
function tinfo(
  b: Bytes,
  name: string,
  ne: (number | bigint)[],
  type: number,
  offset: number | bigint,
): Bytes {
  b.str(name).u32(ne.length);
  for (const d of ne) b.i64(d);
  return b.i32(type).u64(offset);
}

function save(bytes: Uint8Array, name?: string): string {
  const p = tmp(name);
  writeFileSync(p, bytes);
  return p;
}

/** A small valid file: one string key, an F32 tensor of PyTorch shape [2, 3] and an F32 vector of 5. */
function validFile(): Uint8Array {
  const b = head(new Bytes(), 2, 1);
  kvStr(b, "general.architecture", "llama");
  tinfo(b, "w", [3, 2], GGML.F32, 0);
  tinfo(b, "v", [5], GGML.F32, 32); // 24 bytes of w, padded to 32
  b.padTo(32);
  for (let i = 0; i < 6; i++) b.f32(i + 0.5);
  b.padTo(32);
  for (let i = 0; i < 5; i++) b.f32(-i);
  return b.bytes();
}

// ---------------------------------------------------------------------------------------------------------

describe("GgufReader on hand-built files", () => {
  test("reads metadata, tensor infos (ne order) and data", () => {
    const r = GgufReader.open(save(validFile()));
    try {
      assert.equal(r.version, 3);
      assert.equal(r.alignment, 32);
      assert.equal(r.getString("general.architecture"), "llama");
      assert.deepEqual(
        r.tensors.map((t) => [t.name, t.type, t.ne, t.shape, t.offset, t.byteLength]),
        [
          ["w", "F32", [3, 2], [2, 3], 0, 24],
          ["v", "F32", [5], [5], 32, 20],
        ],
      );
      // data section begins at the header end rounded up to 32
      assert.equal(r.dataStart % 32, 0);
      assert.deepEqual(Array.from(r.readFloat32("w")), [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]);
      assert.deepEqual(Array.from(r.readFloat32("v")), [-0, -1, -2, -3, -4]);
      assert.throws(() => r.readFloat32("missing"), /no tensor named "missing"/);
    } finally {
      r.close();
    }
  });

  test("accepts version 2 (same layout as 3, as llama.cpp does)", () => {
    const b = head(new Bytes(), 0, 1, 2);
    kvStr(b, "k", "v");
    const r = GgufReader.open(save(b.bytes()));
    assert.equal(r.version, 2);
    assert.equal(r.getString("k"), "v");
    r.close();
  });

  test("reads Q8_0 by dequantising each block as d·q", () => {
    // Two blocks of 32: f16 scale then 32 int8 quants. 0x3400 = 0.25, 0xBE00 = -1.5.
    const q1 = Array.from({ length: 32 }, (_, i) => (i === 0 ? -128 : i === 31 ? 127 : i - 16));
    const q2 = Array.from({ length: 32 }, (_, i) => ((i * 37) % 255) - 127);
    const b = head(new Bytes(), 1, 0);
    tinfo(b, "q", [32, 2], GGML.Q8_0, 0);
    b.padTo(32);
    b.u16(0x3400).raw(q1.map((x) => x & 0xff));
    b.u16(0xbe00).raw(q2.map((x) => x & 0xff));
    const r = GgufReader.open(save(b.bytes()));
    const t = r.get("q")!;
    assert.equal(t.byteLength, 68);
    assert.deepEqual(t.shape, [2, 32]);
    const expected = [...q1.map((x) => 0.25 * x), ...q2.map((x) => -1.5 * x)];
    assert.deepEqual(Array.from(r.readFloat32("q")), expected);
    r.close();
  });

  test("refuses to turn an integer tensor into float32, but gives its bytes", () => {
    const b = head(new Bytes(), 1, 0);
    tinfo(b, "ids", [2], GGML.I32, 0);
    b.padTo(32).i32(7).i32(-1);
    const r = GgufReader.open(save(b.bytes()));
    assert.throws(
      () => r.readFloat32("ids"),
      (e: unknown) => e instanceof MerglotError && /type I32/.test(e.message),
    );
    assert.deepEqual(Array.from(new Int32Array(r.readBytes("ids").buffer)), [7, -1]);
    r.close();
  });

  test("reads nested arrays (legal in the spec)", () => {
    const b = head(new Bytes(), 0, 1);
    b.str("nested").i32(T.arr).i32(T.arr).u64(2);
    b.i32(T.u8).u64(2).u8(1).u8(2);
    b.i32(T.str).u64(1).str("x");
    const r = GgufReader.open(save(b.bytes()));
    assert.deepEqual(r.getValue("nested"), {
      type: "array",
      itemType: "array",
      value: [
        { type: "array", itemType: "u8", value: [1, 2] },
        { type: "array", itemType: "string", value: ["x"] },
      ],
    });
    r.close();
  });
});

describe("GgufWriter", () => {
  test("writes exactly the bytes of the spec layout", () => {
    const p = tmp();
    writeGguf(
      p,
      [["general.architecture", gguf.string("llama")]],
      [
        { name: "w", type: "F32", shape: [2, 3], data: Float32Array.from([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]) },
        { name: "v", type: "F32", shape: [5], data: Float32Array.from([-0, -1, -2, -3, -4]) },
      ],
    );
    const expected = new Bytes().raw(validFile()).padTo(32).bytes(); // the writer pads after the last tensor
    assert.deepEqual(new Uint8Array(readFileSync(p)), expected);
  });

  test("round-trips every metadata type, arrays and nested arrays", () => {
    const nested: GgufArray = {
      type: "array",
      itemType: "array",
      value: [
        { type: "array", itemType: "i16", value: [-32768, 32767] },
        {
          type: "array",
          itemType: "array",
          value: [{ type: "array", itemType: "bool", value: [true, false] }],
        },
        { type: "array", itemType: "string", value: [] },
      ],
    };
    const meta: [string, GgufValue][] = [
      ["u8", gguf.u8(255)],
      ["i8", gguf.i8(-128)],
      ["u16", gguf.u16(65535)],
      ["i16", gguf.i16(-32768)],
      ["u32", gguf.u32(0xffffffff)],
      ["i32", gguf.i32(-0x80000000)],
      ["u64", gguf.u64(0xffffffffffffffffn)],
      ["i64", gguf.i64(-(1n << 63n))],
      ["f32", gguf.f32(Math.fround(0.1))],
      ["f64", gguf.f64(Math.PI)],
      ["bool.t", gguf.bool(true)],
      ["bool.f", gguf.bool(false)],
      ["str", gguf.string("héllo ✓ 世界")],
      ["str.empty", gguf.string("")],
      ["arr.u8", { type: "array", itemType: "u8", value: [0, 1, 255] }],
      ["arr.i8", { type: "array", itemType: "i8", value: [-128, 127] }],
      ["arr.u16", { type: "array", itemType: "u16", value: [65535] }],
      ["arr.i16", { type: "array", itemType: "i16", value: [-2] }],
      ["arr.u32", { type: "array", itemType: "u32", value: [1, 2, 3] }],
      ["arr.i32", { type: "array", itemType: "i32", value: [-5, 5] }],
      ["arr.u64", { type: "array", itemType: "u64", value: [0n, 1n << 40n] }],
      ["arr.i64", { type: "array", itemType: "i64", value: [-(1n << 40n)] }],
      ["arr.f32", { type: "array", itemType: "f32", value: [1.5, -0.25, Infinity] }],
      ["arr.f64", { type: "array", itemType: "f64", value: [1e300, -1e-300] }],
      ["arr.bool", { type: "array", itemType: "bool", value: [true, false, true] }],
      ["arr.str", { type: "array", itemType: "string", value: ["a", "", "ü"] }],
      ["arr.empty", { type: "array", itemType: "f32", value: [] }],
      ["arr.nested", nested],
    ];
    const p = tmp();
    writeGguf(p, meta, [], { allowNestedArrays: true });
    const r = GgufReader.open(p);
    assert.deepEqual([...r.metadata.entries()], meta);
    assert.equal(r.tensors.length, 0);
    r.close();
  });

  test("refuses nested arrays unless asked (llama.cpp cannot load them)", () => {
    const p = tmp();
    const nested: GgufValue = { type: "array", itemType: "array", value: [] };
    assert.throws(() => writeGguf(p, [["n", nested]], []), /array of arrays.*llama\.cpp/);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes(".tmp-")),
      [],
    );
  });

  for (const alignment of [32, 64]) {
    test(`round-trips F32, F16 and BF16 tensors with alignment ${alignment}`, () => {
      // Values exactly representable in every type, so the expected read-back is exact.
      const vals = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => (i - k) * 0.25);
      const tensors = [
        { name: "a.f32", type: "F32" as const, shape: [3, 5], data: vals(15, 7) },
        { name: "b.f16", type: "F16" as const, shape: [7], data: vals(7, 2) },
        { name: "c.bf16", type: "BF16" as const, shape: [2, 3, 2], data: vals(12, 3) },
        { name: "d.empty", type: "F32" as const, shape: [0, 4], data: new Float32Array(0) },
        { name: "e.f16", type: "F16" as const, shape: [1, 1, 1, 3], data: vals(3, 0) },
      ];
      const p = tmp();
      const meta: [string, GgufValue][] = [["general.name", gguf.string("t")]];
      writeGguf(p, meta, tensors, alignment === 32 ? {} : { alignment });
      const r = GgufReader.open(p);
      assert.equal(r.alignment, alignment);
      assert.equal(r.getNumber("general.alignment"), alignment === 32 ? undefined : alignment);
      assert.equal(r.dataStart % alignment, 0);
      for (const t of tensors) {
        const info = r.get(t.name)!;
        assert.deepEqual(info.shape, t.shape);
        assert.deepEqual(info.ne, [...t.shape].reverse());
        assert.equal(info.type, t.type);
        assert.equal(info.offset % alignment, 0);
        assert.deepEqual(Array.from(r.readFloat32(t.name)), Array.from(t.data));
      }
      assert.equal(r.fileSize % alignment, 0);
      r.close();
    });
  }

  test("F16 and BF16 encoding rounds to nearest even (raw bits checked)", () => {
    const p = tmp();
    // 1 + 2^-11 is halfway between two halves (1 and 1+2^-10): ties to even → 1.0 (0x3C00).
    // 1 + 2^-8 is halfway between two bfloat16s: ties to even → 1.0 (0x3F80).
    writeGguf(
      p,
      [],
      [
        { name: "h", type: "F16", shape: [2], data: Float32Array.from([1 + 2 ** -11, -2]) },
        { name: "b", type: "BF16", shape: [2], data: Float32Array.from([1 + 2 ** -8, 3]) },
      ],
    );
    const r = GgufReader.open(p);
    assert.deepEqual(Array.from(new Uint16Array(r.readBytes("h").slice().buffer)), [0x3c00, 0xc000]);
    assert.deepEqual(Array.from(new Uint16Array(r.readBytes("b").slice().buffer)), [0x3f80, 0x4040]);
    r.close();
  });

  test("same input gives byte-identical files", () => {
    const make = () => {
      const p = tmp();
      writeGguf(
        p,
        [["a", gguf.f32(1.25)]],
        [
          {
            name: "x",
            type: "BF16",
            shape: [4, 4],
            data: Float32Array.from({ length: 16 }, (_, i) => i / 3),
          },
        ],
      );
      return readFileSync(p);
    };
    assert.deepEqual(make(), make());
  });

  test("streams tensors in order, rejects misuse, leaves no temp file behind", () => {
    const p = tmp();
    const w = new GgufWriter(
      p,
      [],
      [
        { name: "a", type: "F32", shape: [2] },
        { name: "b", type: "F16", shape: [2] },
      ],
    );
    assert.throws(() => w.writeTensor("b", new Float32Array(2)), /out of order; expected "a"/);
    assert.throws(() => w.writeTensor("a", new Float32Array(3)), /has 3 values/);
    assert.throws(() => w.writeTensor("a", new Uint8Array(7)), /has 7 bytes/);
    w.writeTensor("a", Float32Array.from([1, 2]));
    assert.throws(() => w.finish(), /before all tensors were written \(next: "b"\)/);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes(".tmp-")),
      [],
    );
    assert.throws(() => readFileSync(p));

    const w2 = new GgufWriter(p, [], [{ name: "a", type: "F16", shape: [1] }]);
    w2.writeTensor("a", Uint8Array.from([0x00, 0x3c])); // raw f16 1.0
    w2.finish();
    const r = GgufReader.open(p);
    assert.deepEqual(Array.from(r.readFloat32("a")), [1]);
    r.close();
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes(".tmp-")),
      [],
    );
  });

  test("validates names, shapes, types, values and alignment", () => {
    const p = tmp();
    const bad: [() => void, RegExp][] = [
      [
        () => new GgufWriter(p, [], [{ name: "x".repeat(64), type: "F32", shape: [1] }]),
        /64 bytes.*at most 63/,
      ],
      [
        () =>
          new GgufWriter(
            p,
            [],
            [
              { name: "a", type: "F32", shape: [1] },
              { name: "a", type: "F32", shape: [1] },
            ],
          ),
        /duplicate tensor "a"/,
      ],
      [
        () => new GgufWriter(p, [], [{ name: "a", type: "F32", shape: [1, 1, 1, 1, 1] }]),
        /at most 4 dimensions/,
      ],
      [() => new GgufWriter(p, [], [{ name: "a", type: "F32", shape: [-1] }]), /invalid dimension -1/],
      [
        () => new GgufWriter(p, [], [{ name: "a", type: "Q8_0" as "F32", shape: [32] }]),
        /supports F32, F16 and BF16/,
      ],
      [() => new GgufWriter(p, [["k", gguf.u8(256)]], []), /"k" must be an integer in \[0, 255\]/],
      [() => new GgufWriter(p, [["k", gguf.i32(1.5)]], []), /"k" must be an integer/],
      [() => new GgufWriter(p, [["k", gguf.u64(-1n)]], []), /"k" must be a bigint/],
      [() => new GgufWriter(p, [["k", { type: "array", itemType: "u8", value: [1, 300] }]], []), /"k"\[1\]/],
      [
        () =>
          new GgufWriter(
            p,
            [
              ["k", gguf.u8(1)],
              ["k", gguf.u8(2)],
            ],
            [],
          ),
        /duplicate metadata key "k"/,
      ],
      [() => new GgufWriter(p, [["", gguf.u8(1)]], []), /non-empty/],
      [() => new GgufWriter(p, [], [], { alignment: 48 }), /alignment 48 is not a power of two/],
      [() => new GgufWriter(p, [["general.alignment", gguf.u64(32n)]], []), /must be a u32 power of two/],
      [() => new GgufWriter(p, [["general.alignment", gguf.u32(64)]], [], { alignment: 32 }), /disagrees/],
    ];
    for (const [fn, re] of bad) {
      assert.throws(
        fn,
        (e: unknown) => e instanceof MerglotError && re.test(e.message) && e.message.includes(p),
      );
    }
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes(".tmp-")),
      [],
    );
  });
});

// ---------------------------------------------------------------------------------------------------------

/** Each malformed file must fail with a MerglotError whose message names the file and matches `re`. */
function assertRejects(bytes: Uint8Array, re: RegExp): void {
  const p = save(bytes, "bad.gguf");
  assert.throws(
    () => GgufReader.open(p).close(),
    (e: unknown) => {
      assert.ok(e instanceof MerglotError, `expected MerglotError, got ${String(e)}`);
      assert.ok(e.message.startsWith(p + ":"), `message should name the file: ${e.message}`);
      assert.match(e.message, re);
      return true;
    },
  );
}

describe("GgufReader rejects malformed files like llama.cpp", () => {
  test("truncated header and truncated data", () => {
    const good = validFile();
    for (const cut of [0, 3, 7, 15, 23, 40, 60, 90])
      assertRejects(good.subarray(0, cut), /file ends inside|remain/);
    assertRejects(good.subarray(0, good.length - 4), /"v" data .* extends past the end of the file/);
  });

  test("bad magic and unsupported versions", () => {
    assertRejects(head(new Bytes(), 0, 0, 3, "GGML").bytes(), /not a GGUF file \(magic is "GGML"/);
    assertRejects(head(new Bytes(), 0, 0, 1).bytes(), /version 1 is no longer supported/);
    assertRejects(head(new Bytes(), 0, 0, 4).bytes(), /version 4 is newer than the supported version 3/);
    assertRejects(head(new Bytes(), 0, 0, 0).bytes(), /bad GGUF version 0/);
    assertRejects(head(new Bytes(), 0, 0, 0x03000000).bytes(), /big-endian/);
  });

  test("huge counts and lengths fail before allocating", () => {
    assertRejects(head(new Bytes(), 1n << 63n, 0).bytes(), /number of tensors is -\d+, which is negative/);
    assertRejects(head(new Bytes(), 1n << 62n, 0).bytes(), /claims \d+ tensors but only 0 bytes remain/);
    assertRejects(head(new Bytes(), 0, (1n << 63n) - 1n).bytes(), /claims \d+ key\/value pairs/);
    // key length 2^63 and 2^29 (under the 1 GiB cap, but past the end of the file)
    const pad = new Uint8Array(16); // enough bytes for the key/value count check to pass
    assertRejects(
      head(new Bytes(), 0, 1)
        .u64(1n << 63n)
        .raw(pad)
        .bytes(),
      /key 0 has length \d+, over the maximum/,
    );
    assertRejects(
      head(new Bytes(), 0, 1)
        .u64(1 << 29)
        .raw(pad)
        .bytes(),
      /key 0 has length 536870912 but only 16 bytes/,
    );
    // string value length
    assertRejects(
      head(new Bytes(), 0, 1)
        .str("k")
        .i32(T.str)
        .u64(1n << 62n)
        .bytes(),
      /"k" has length .* over/,
    );
    // array lengths: over the 2^30 cap, and under it but larger than the file
    const arr = (n: bigint, t: number) => head(new Bytes(), 0, 1).str("a").i32(T.arr).i32(t).u64(n).bytes();
    assertRejects(arr(1n << 63n, T.u8), /"a" has \d+ elements, over the maximum/);
    assertRejects(arr(1n << 29n, T.u8), /"a" has 536870912 elements .* only 0 bytes remain/);
    assertRejects(arr(1n << 28n, T.str), /"a" has 268435456 elements of type string/);
    assertRejects(arr(1n << 28n, T.arr), /"a" has 268435456 elements of type array/);
    // tensor name length
    assertRejects(
      head(new Bytes(), 1, 0)
        .u64(1n << 40n)
        .raw(new Uint8Array(30))
        .bytes(),
      /name of tensor 0 has length/,
    );
  });

  test("duplicate keys, empty keys, invalid value types, bad UTF-8 keys, deep nesting", () => {
    const b = head(new Bytes(), 0, 2);
    kvStr(b, "a", "x");
    kvStr(b, "a", "y");
    assertRejects(b.bytes(), /duplicate key "a" \(key 1\)/);
    assertRejects(kvStr(head(new Bytes(), 0, 1), "", "x").bytes(), /key 0 is empty/);
    assertRejects(
      head(new Bytes(), 0, 1).str("k").i32(13).u64(0).bytes(),
      /"k" has invalid GGUF value type 13/,
    );
    assertRejects(head(new Bytes(), 0, 1).str("k").i32(-1).u64(0).bytes(), /invalid GGUF value type -1/);
    assertRejects(
      head(new Bytes(), 0, 1).str("k").i32(T.arr).i32(99).u64(0).bytes(),
      /elements of key "k" has invalid GGUF value type 99/,
    );
    assertRejects(
      head(new Bytes(), 0, 1).u64(2).raw([0xc3, 0x28]).i32(T.u8).u8(0).bytes(),
      /key 0 is not valid UTF-8/,
    );
    const deep = head(new Bytes(), 0, 1).str("d").i32(T.arr);
    for (let i = 0; i < 40; i++) deep.i32(T.arr).u64(1);
    deep.i32(T.u8).u64(0);
    assertRejects(deep.bytes(), /nests arrays deeper than 32 levels/);
  });

  test("alignment must be a u32 power of two", () => {
    for (const v of [0, 48, 3]) {
      assertRejects(
        kvU32(head(new Bytes(), 0, 1), "general.alignment", v).bytes(),
        new RegExp(`alignment ${v} is not a power of 2`),
      );
    }
    assertRejects(
      head(new Bytes(), 0, 1).str("general.alignment").i32(T.u64).u64(32).bytes(),
      /"general.alignment" must be of type u32 but is u64/,
    );
    // a valid custom alignment of 64 moves the data section and the offsets
    const b = head(new Bytes(), 2, 1);
    kvU32(b, "general.alignment", 64);
    tinfo(b, "a", [3], GGML.F32, 0);
    tinfo(b, "b", [2], GGML.F32, 64);
    b.padTo(64).f32(1).f32(2).f32(3).padTo(64).f32(4).f32(5);
    const r = GgufReader.open(save(b.bytes()));
    assert.equal(r.alignment, 64);
    assert.deepEqual(Array.from(r.readFloat32("b")), [4, 5]);
    r.close();
  });

  test("tensor infos: duplicates, long names, dims, types, block sizes", () => {
    const one = (name: string, ne: (number | bigint)[], type: number, offset: number | bigint = 0) => {
      const b = head(new Bytes(), 1, 0);
      tinfo(b, name, ne, type, offset);
      return b.padTo(32).raw(new Uint8Array(64)).bytes();
    };
    const two = head(new Bytes(), 2, 0);
    tinfo(two, "t", [1], GGML.F32, 0);
    tinfo(two, "t", [1], GGML.F32, 32);
    assertRejects(two.padTo(32).raw(new Uint8Array(64)).bytes(), /duplicate tensor name "t" \(tensor 1\)/);

    assertRejects(one("n".repeat(64), [1], GGML.F32), /name "n+" is too long: 64 bytes, at most 63/);
    const ok63 = GgufReader.open(save(one("n".repeat(63), [1], GGML.F32)));
    assert.equal(ok63.tensors[0]!.name.length, 63);
    ok63.close();
    const b5 = head(new Bytes(), 1, 0).str("t").u32(5).raw(new Uint8Array(64));
    assertRejects(b5.bytes(), /tensor "t" has 5 dimensions, at most 4/);
    assertRejects(one("t", [2, -3], GGML.F32), /tensor "t" dimension 1 is -3, which is negative/);
    assertRejects(one("t", [1n << 32n, 1n << 32n], GGML.F32), /tensor "t" has \d+ elements, too many/);
    assertRejects(one("t", [4], 4), /tensor "t" has invalid ggml type 4/);
    assertRejects(one("t", [4], 99), /invalid ggml type 99/);
    assertRejects(
      one("t", [33], GGML.Q8_0),
      /type Q8_0 has 33 elements per row, not a multiple of the block size 32/,
    );
    assertRejects(one("t", [1n << 50n], GGML.F32), /extends past the end of the file/);
  });

  test("offsets: misaligned, gaps, overlaps, past the end", () => {
    const twoTensors = (off2: number | bigint) => {
      const b = head(new Bytes(), 2, 0);
      tinfo(b, "a", [2], GGML.F32, 0);
      tinfo(b, "b", [2], GGML.F32, off2);
      return b.padTo(32).raw(new Uint8Array(128)).bytes();
    };
    assertRejects(twoTensors(16), /"b" has offset 16, not a multiple of the alignment 32/);
    assertRejects(twoTensors(64), /"b" has offset 64, expected 32/);
    assertRejects(twoTensors(0), /"b" has offset 0, expected 32/);
    assertRejects(twoTensors(1n << 62n), /"b" has offset \d+, past the end of any file/);
    const first = head(new Bytes(), 1, 0);
    tinfo(first, "a", [2], GGML.F32, 32);
    assertRejects(first.padTo(32).raw(new Uint8Array(64)).bytes(), /"a" has offset 32, expected 0/);
    // tensors but nothing after the header: the data section would start past the end
    const short = head(new Bytes(), 1, 0);
    tinfo(short, "a", [0], GGML.F32, 0);
    assertRejects(short.bytes(), /file ends before the data section/);
  });

  test("random mutations of a valid file either read or fail with MerglotError", () => {
    const good = validFile();
    let s = 0x9e3779b9;
    const rand = () => {
      // xorshift32
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      return s / 2 ** 32;
    };
    let ok = 0;
    let rejected = 0;
    for (let iter = 0; iter < 2000; iter++) {
      let bytes = good.slice();
      const kind = Math.floor(rand() * 4);
      if (kind === 0) {
        bytes = bytes.subarray(0, Math.floor(rand() * bytes.length));
      } else {
        const flips = 1 + Math.floor(rand() * 4);
        for (let k = 0; k < flips; k++) {
          const at = Math.floor(rand() * Math.min(bytes.length, kind === 1 ? 24 : bytes.length));
          bytes[at] = kind === 3 ? 0xff : Math.floor(rand() * 256);
        }
      }
      try {
        const r = GgufReader.fromBytes(bytes, "fuzz.gguf");
        for (const t of r.tensors) r.readBytes(t.name);
        r.close();
        ok++;
      } catch (e) {
        if (!(e instanceof MerglotError))
          throw new Error(`iteration ${iter}: non-Merglot error ${String(e)}`);
        rejected++;
      }
    }
    assert.ok(ok > 0 && rejected > 0, `both outcomes should occur (ok ${ok}, rejected ${rejected})`);
  });
});
