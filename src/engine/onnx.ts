/**
 * A minimal ONNX model writer: just enough protobuf (varints, length-delimited fields) to describe small
 * graphs of standard operators with symbolic input shapes. Field numbers follow onnx.proto (IR version 8).
 */

const ELEM_FLOAT = 1;

class ProtoWriter {
  readonly bytes: number[] = [];
  varint(value: number): this {
    // values here are small non-negative integers (field tags, lengths, dims, enum values)
    let v = value;
    while (v >= 0x80) {
      this.bytes.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.bytes.push(v);
    return this;
  }
  int(field: number, value: number): this {
    if (value < 0) throw new Error(`ProtoWriter: negative int ${value} not supported`);
    return this.varint(field << 3).varint(value);
  }
  raw(field: number, data: ArrayLike<number>): this {
    this.varint((field << 3) | 2).varint(data.length);
    for (let i = 0; i < data.length; i++) this.bytes.push(data[i]);
    return this;
  }
  str(field: number, s: string): this {
    return this.raw(field, Buffer.from(s, "utf8"));
  }
  msg(field: number, w: ProtoWriter): this {
    return this.raw(field, w.bytes);
  }
  float(field: number, value: number): this {
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.varint((field << 3) | 5);
    for (const x of b) this.bytes.push(x);
    return this;
  }
}

export type AttrValue = number | number[] | { float: number };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
}

/** A float tensor input/output with dims that are numbers or symbolic names. */
export interface OnnxValue {
  name: string;
  dims: (number | string)[];
}

function nodeProto(n: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.str(1, i);
  for (const o of n.outputs) w.str(2, o);
  w.str(4, n.op);
  for (const [name, v] of Object.entries(n.attrs ?? {})) {
    const a = new ProtoWriter().str(1, name);
    if (Array.isArray(v)) {
      for (const x of v) a.int(8, x);
      a.int(20, 7); // INTS
    } else if (typeof v === "number") {
      a.int(3, v).int(20, 2); // INT
    } else {
      a.float(2, v.float).int(20, 1); // FLOAT
    }
    w.msg(5, a);
  }
  return w;
}

function valueInfo(v: OnnxValue): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.dims) {
    const dim = new ProtoWriter();
    if (typeof d === "number") dim.int(1, d);
    else dim.str(2, d);
    shape.msg(1, dim);
  }
  const tensorType = new ProtoWriter().int(1, ELEM_FLOAT).msg(2, shape);
  const type = new ProtoWriter().msg(1, tensorType);
  return new ProtoWriter().str(1, v.name).msg(2, type);
}

/** Serialise a one-graph model with the default operator set at `opset`. */
export function onnxModel(
  nodes: OnnxNode[],
  inputs: OnnxValue[],
  outputs: OnnxValue[],
  opset = 17,
): Uint8Array {
  const g = new ProtoWriter();
  for (const n of nodes) g.msg(1, nodeProto(n));
  g.str(2, "merglot");
  for (const i of inputs) g.msg(11, valueInfo(i));
  for (const o of outputs) g.msg(12, valueInfo(o));
  const opsetId = new ProtoWriter().str(1, "").int(2, opset);
  const m = new ProtoWriter().int(1, 8).str(2, "merglot").msg(8, opsetId).msg(7, g);
  return Uint8Array.from(m.bytes);
}
