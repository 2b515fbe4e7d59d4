/**
 * Mutation fuzzing of the reader: every mutated file must either open (and then every tensor must read) or
 * be refused with a MerglotError. Any other exception — a TypeError, a RangeError from a huge allocation —
 * is a bug in the validation.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MerglotError } from "../../src/errors.js";
import { DTYPE_SIZE, SafetensorsReader, writeSafetensors } from "../../src/formats/safetensors.js";

const dir = mkdtempSync(join(tmpdir(), "merglot-st-fuzz-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** xorshift32: tiny, seeded, and the same on every machine. */
function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function baseFile(): Uint8Array {
  const p = join(dir, "base.safetensors");
  writeSafetensors(
    p,
    [
      { name: "w.q", dtype: "F32", shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
      { name: "w.k", dtype: "F16", shape: [3], data: Float32Array.from([0.5, -1, 2]) },
      { name: "w.v", dtype: "BF16", shape: [1, 2], data: Float32Array.from([3, -4]) },
      { name: "bias", dtype: "F64", shape: [2], data: Float32Array.from([7, 8]) },
      { name: "idx", dtype: "I64", shape: [], data: BigInt64Array.from([42n]) },
      { name: "mask", dtype: "BOOL", shape: [3], data: Uint8Array.from([1, 0, 1]) },
      { name: "empty", dtype: "U16", shape: [0, 4], data: new Uint16Array(0) },
      { name: "n", dtype: "I32", shape: [1], data: Int32Array.from([-9]) },
    ],
    { format: "pt", lang: "sw" },
  );
  return new Uint8Array(readFileSync(p));
}

const INTERESTING_CHARS = '{}[]":, -0123456789e.E+\\u"';
const DTYPE_NAMES = [...Object.keys(DTYPE_SIZE), "F128", "f32", "", "BF16 "];

function headerLength(file: Uint8Array): number {
  return Number(new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true));
}

function withHeader(json: string, data: Uint8Array, pad: number): Uint8Array {
  const header = new TextEncoder().encode(json + " ".repeat(pad));
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

/** Rewrite one field of one entry of the parsed header to something plausible or hostile. */
function tweakJson(rnd: () => number, base: Uint8Array): Uint8Array {
  const n = headerLength(base);
  const header = JSON.parse(new TextDecoder().decode(base.subarray(8, 8 + n))) as Record<
    string,
    Record<string, unknown>
  >;
  const names = Object.keys(header);
  const name = names[rnd() % names.length];
  const e = header[name];
  const pick = <T>(xs: readonly T[]): T => xs[rnd() % xs.length];
  const hostileNumbers = [-1, 0, 1, 2, 3, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, 1e300, -0];
  switch (rnd() % 9) {
    case 0:
      e.dtype = pick(DTYPE_NAMES);
      break;
    case 1: {
      const shape = Array.isArray(e.shape) ? (e.shape as unknown[]).slice() : [];
      if (shape.length > 0 && rnd() % 2) shape[rnd() % shape.length] = pick(hostileNumbers);
      else shape.push(pick(hostileNumbers));
      e.shape = shape;
      break;
    }
    case 2: {
      const off = Array.isArray(e.data_offsets) ? (e.data_offsets as number[]).slice() : [0, 0];
      off[rnd() % 2] += (rnd() % 17) - 8;
      e.data_offsets = off;
      break;
    }
    case 3:
      e.data_offsets = pick([[0], [0, 1, 2], "0,8", null, [-1, 7], [0, 2 ** 60]]);
      break;
    case 4:
      e[pick(["extra", "offsets", "dtype", "shape"])] = pick([1, "x", null, [], {}]);
      break;
    case 5:
      delete e[pick(["dtype", "shape", "data_offsets"])];
      break;
    case 6:
      header[name] = pick([null, 1, "F32", [], [1, 2]]) as unknown as Record<string, unknown>;
      break;
    case 7:
      header.__metadata__ = pick([{ a: 1 }, "pt", null, [], { a: "b" }, { a: { b: "c" } }]) as Record<
        string,
        unknown
      >;
      break;
    default: {
      // duplicate a key by text surgery: JSON.stringify cannot produce one
      const json = JSON.stringify(header);
      const dup = `${JSON.stringify(name)}:${JSON.stringify(e)}`;
      return withHeader(json.replace(/^\{/, `{${dup},`), base.subarray(8 + n), rnd() % 9);
    }
  }
  const rest = base.subarray(8 + n);
  // Sometimes keep the data, sometimes trim or extend it, so offsets and sizes can line up again.
  const dataDelta = rnd() % 4 === 0 ? (rnd() % 17) - 8 : 0;
  const data = new Uint8Array(Math.max(0, rest.length + dataDelta));
  data.set(rest.subarray(0, Math.min(rest.length, data.length)));
  return withHeader(JSON.stringify(header), data, rnd() % 9);
}

function mutate(rnd: () => number, base: Uint8Array): Uint8Array {
  const n = headerLength(base);
  const out = base.slice();
  switch (rnd() % 7) {
    case 0: {
      // overwrite a few header bytes with random or JSON-significant bytes
      const flips = 1 + (rnd() % 4);
      for (let k = 0; k < flips; k++) {
        const at = 8 + (rnd() % n);
        out[at] = rnd() % 2 ? rnd() & 0xff : INTERESTING_CHARS.charCodeAt(rnd() % INTERESTING_CHARS.length);
      }
      return out;
    }
    case 1: {
      // header length tweaks: small deltas, big values, random 64-bit patterns
      const view = new DataView(out.buffer);
      const choice = rnd() % 3;
      if (choice === 0) view.setBigUint64(0, BigInt(Math.max(0, n + (rnd() % 33) - 16)), true);
      else if (choice === 1)
        view.setBigUint64(0, [2n ** 63n, 2n ** 64n - 1n, 100_000_001n, 99_999_999n][rnd() % 4], true);
      else view.setBigUint64(0, (BigInt(rnd()) << 32n) | BigInt(rnd()), true);
      return out;
    }
    case 2:
      return out.subarray(0, rnd() % out.length); // truncation anywhere
    case 3: {
      // flip bits anywhere, data included (data-only flips must still read)
      const at = rnd() % out.length;
      out[at] ^= 1 << (rnd() % 8);
      return out;
    }
    case 4: {
      const extra = Uint8Array.from({ length: 1 + (rnd() % 8) }, () => rnd() & 0xff);
      const grown = new Uint8Array(out.length + extra.length);
      grown.set(out);
      grown.set(extra, out.length);
      return grown;
    }
    case 5: {
      // data-section-only damage: the header still holds, so the file must read
      const at = 8 + n + (rnd() % (out.length - 8 - n));
      out[at] = rnd() & 0xff;
      return out;
    }
    default:
      return tweakJson(rnd, base);
  }
}

test("mutated files either read completely or fail with MerglotError", () => {
  const base = baseFile();
  const rnd = xorshift32(0x5eed);
  const iterations = 3000;
  let opened = 0;
  let refused = 0;
  const started = Date.now();
  for (let i = 0; i < iterations; i++) {
    const bytes = mutate(rnd, base);
    // A new file each time: truncating and rewriting one file can force a disk flush per iteration.
    const p = join(dir, `mutant-${i}.safetensors`);
    writeFileSync(p, bytes);
    let reader: SafetensorsReader | undefined;
    try {
      reader = SafetensorsReader.open(p);
      for (const t of reader.tensors) {
        const raw = reader.readBytes(t.name);
        assert.equal(raw.length, t.end - t.begin);
        reader.readTyped(t.name);
        if (t.dtype === "F32" || t.dtype === "F16" || t.dtype === "BF16" || t.dtype === "F64") {
          assert.equal(reader.readFloat32(t.name).length, (t.end - t.begin) / DTYPE_SIZE[t.dtype]);
        }
      }
      opened++;
    } catch (e) {
      if (!(e instanceof MerglotError)) {
        const hex = Buffer.from(bytes.subarray(0, 200)).toString("hex");
        assert.fail(`iteration ${i}: ${String(e)} is not a MerglotError (file starts ${hex})`);
      }
      assert.ok(e.message.startsWith(`${p}: `), `iteration ${i}: message must name the file: ${e.message}`);
      refused++;
    } finally {
      reader?.close();
      rmSync(p);
    }
  }
  // Both outcomes must occur, or the mutations are not exercising the validator.
  assert.ok(opened > iterations / 10, `only ${opened} mutants opened`);
  assert.ok(refused > iterations / 2, `only ${refused} mutants refused`);
  assert.ok(Date.now() - started < 20_000, "fuzzing must stay fast");
});
