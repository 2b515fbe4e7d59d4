/**
 * Encodes the one-node ONNX model that onnxruntime runs for us: Y = alpha·op(A)·op(B) [+ beta·C]
 * (ONNX `Gemm`, opset 13), with symbolic dimensions so a single session serves every shape.
 *
 * Written by hand rather than through a protobuf library: the model is five messages deep and only
 * needs varints, length-delimited fields and one fixed32, so ~60 lines beat a dependency.
 * Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto,
 * ValueInfoProto, TypeProto, TensorShapeProto).
 */

/** ONNX TensorProto.DataType values we use. */
export const ONNX_FLOAT = 1;
export const ONNX_DOUBLE = 11;

class ProtoWriter {
  private readonly bytes: number[] = [];

  private varint(v: number): void {
    // Every value written here is a small non-negative integer (field keys, lengths, enum values).
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
    this.key(field, 0);
    this.varint(v);
    return this;
  }
  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.bytes.push(...b);
    return this;
  }
  message(field: number, body: Uint8Array): this {
    this.key(field, 2);
    this.varint(body.length);
    for (const b of body) this.bytes.push(b);
    return this;
  }
  string(field: number, s: string): this {
    return this.message(field, new TextEncoder().encode(s));
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** ValueInfoProto for a 2-D tensor of `elemType` with symbolic dims `dims`. */
function matrixValueInfo(name: string, elemType: number, dims: [string, string]): Uint8Array {
  const shape = new ProtoWriter();
  for (const d of dims) shape.message(1, new ProtoWriter().string(2, d).finish()); // Dimension.dim_param
  const tensorType = new ProtoWriter().int(1, elemType).message(2, shape.finish()); // elem_type, shape
  const type = new ProtoWriter().message(1, tensorType.finish()); // TypeProto.tensor_type
  return new ProtoWriter().string(1, name).message(2, type.finish()).finish();
}

function intAttr(name: string, v: number): Uint8Array {
  return new ProtoWriter().string(1, name).int(3, v).int(20, 2).finish(); // i, type = INT
}
function floatAttr(name: string, v: number): Uint8Array {
  return new ProtoWriter().string(1, name).float(2, v).int(20, 1).finish(); // f, type = FLOAT
}

export interface GemmModelSpec {
  elemType: number;
  transA: boolean;
  transB: boolean;
  /** Stored as a float32 attribute: callers pass values that float32 represents exactly. */
  alpha: number;
  beta: number;
  /** Whether the model has the third input C. */
  withC: boolean;
}

/** The serialized ModelProto for one Gemm configuration. Inputs "A", "B"[, "C"], output "Y". */
export function gemmModel(spec: GemmModelSpec): Uint8Array {
  const node = new ProtoWriter().string(1, "A").string(1, "B");
  if (spec.withC) node.string(1, "C");
  node
    .string(2, "Y")
    .string(3, "gemm")
    .string(4, "Gemm")
    .message(5, intAttr("transA", spec.transA ? 1 : 0))
    .message(5, intAttr("transB", spec.transB ? 1 : 0))
    .message(5, floatAttr("alpha", spec.alpha))
    .message(5, floatAttr("beta", spec.beta));

  const graph = new ProtoWriter()
    .message(1, node.finish())
    .string(2, "merglot_gemm")
    .message(11, matrixValueInfo("A", spec.elemType, ["a0", "a1"]))
    .message(11, matrixValueInfo("B", spec.elemType, ["b0", "b1"]));
  if (spec.withC) graph.message(11, matrixValueInfo("C", spec.elemType, ["c0", "c1"]));
  graph.message(12, matrixValueInfo("Y", spec.elemType, ["y0", "y1"]));

  const opset = new ProtoWriter().string(1, "").int(2, 13); // default domain, opset 13
  return new ProtoWriter()
    .int(1, 8) // ir_version 8
    .string(2, "merglot")
    .message(7, graph.finish())
    .message(8, opset.finish())
    .finish();
}
