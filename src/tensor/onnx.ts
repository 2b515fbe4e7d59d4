/**
 * A minimal ONNX model writer for the one-node graphs that ort.ts runs: just enough protobuf (varints,
 * length-delimited fields, one fixed32) to describe standard operators over tensors with symbolic
 * dimensions, so one session serves every shape.
 *
 * Written by hand rather than through a protobuf library: the model is five messages deep, so ~80 lines
 * beat a dependency. Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto, NodeProto,
 * AttributeProto, ValueInfoProto, TypeProto, TensorShapeProto), IR version 8.
 */

/** ONNX TensorProto.DataType values we use. */
export const ONNX_FLOAT = 1;
export const ONNX_DOUBLE = 11;

class ProtoWriter {
  readonly bytes: number[] = [];

  private varint(value: number): void {
    // Every value written here is a small non-negative integer (field keys, lengths, dims, enum values).
    let v = value;
    while (v > 0x7f) {
      this.bytes.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.bytes.push(v);
  }
  private key(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }
  int(field: number, v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`onnxModel: cannot encode int ${v}`);
    this.key(field, 0);
    this.varint(v);
    return this;
  }
  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    for (const x of b) this.bytes.push(x);
    return this;
  }
  raw(field: number, body: ArrayLike<number>): this {
    this.key(field, 2);
    this.varint(body.length);
    for (let i = 0; i < body.length; i++) this.bytes.push(body[i]);
    return this;
  }
  str(field: number, s: string): this {
    return this.raw(field, new TextEncoder().encode(s));
  }
  msg(field: number, w: ProtoWriter): this {
    return this.raw(field, w.bytes);
  }
}

/** An attribute: an int, a list of ints, or a float (`{ float: x }`, stored as float32). */
export type AttrValue = number | number[] | { float: number };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
}

/** A graph input or output: a tensor of `elemType` (ONNX_FLOAT, ONNX_DOUBLE) with fixed or symbolic dims. */
export interface OnnxValue {
  name: string;
  elemType: number;
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
      a.int(20, 7); // type = INTS
    } else if (typeof v === "number") {
      a.int(3, v).int(20, 2); // type = INT
    } else {
      a.float(2, v.float).int(20, 1); // type = FLOAT
    }
    w.msg(5, a);
  }
  return w;
}

function valueInfo(v: OnnxValue): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.dims) {
    const dim = new ProtoWriter();
    if (typeof d === "number")
      dim.int(1, d); // dim_value
    else dim.str(2, d); // dim_param
    shape.msg(1, dim);
  }
  const tensorType = new ProtoWriter().int(1, v.elemType).msg(2, shape);
  const type = new ProtoWriter().msg(1, tensorType);
  return new ProtoWriter().str(1, v.name).msg(2, type);
}

/** Serialises a one-graph ModelProto using the default operator set at `opset`. */
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
