/**
 * Builds tiny ONNX models in memory for tests, by writing the ModelProto protobuf by hand
 * (no protobuf dependency): only the fields these graphs need are encoded.
 */
import { tempDir } from "./harness.js"
import { Effect } from "effect"
import type { Scope } from "effect"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"

/** ONNX TensorProto.DataType values. */
const DataType = { float32: 1, uint8: 2, int64: 7 } as const
export type ElemType = "float32" | "uint8"

// ---- protobuf wire encoding -------------------------------------------------------------------

type Bytes = Uint8Array

const varint = (value: number): Bytes => {
  const out: Array<number> = []
  let v = value
  // Division instead of shifts: values above 2^31 must survive (int64 fields).
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return Uint8Array.from(out)
}

const concat = (parts: ReadonlyArray<Bytes>): Bytes => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

const key = (field: number, wireType: 0 | 2 | 5): Bytes => varint(field * 8 + wireType)
const intField = (field: number, value: number): Bytes => concat([key(field, 0), varint(value)])
const bytesField = (field: number, value: Bytes): Bytes => concat([key(field, 2), varint(value.length), value])
const stringField = (field: number, value: string): Bytes => bytesField(field, new TextEncoder().encode(value))
const messages = (field: number, values: ReadonlyArray<Bytes>): Bytes => concat(values.map((v) => bytesField(field, v)))

// ---- ONNX messages ----------------------------------------------------------------------------

export interface ValueSpec {
  readonly name: string
  readonly elemType: ElemType
  /** A string is a symbolic (dynamic) dimension. */
  readonly dims: ReadonlyArray<number | string>
}

export interface InitializerSpec {
  readonly name: string
  readonly dims: ReadonlyArray<number>
  readonly values: Float32Array
}

export interface AttributeSpec {
  readonly name: string
  readonly int: number
}

export interface NodeSpec {
  readonly opType: string
  readonly inputs: ReadonlyArray<string>
  readonly outputs: ReadonlyArray<string>
  readonly attributes?: ReadonlyArray<AttributeSpec>
}

export interface GraphSpec {
  readonly inputs: ReadonlyArray<ValueSpec>
  readonly outputs: ReadonlyArray<ValueSpec>
  readonly nodes: ReadonlyArray<NodeSpec>
  readonly initializers?: ReadonlyArray<InitializerSpec>
}

// TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian).
const tensorProto = (t: InitializerSpec): Bytes => {
  const raw = new Uint8Array(t.values.length * 4)
  const view = new DataView(raw.buffer)
  t.values.forEach((v, i) => view.setFloat32(i * 4, v, true))
  return concat([
    ...t.dims.map((d) => intField(1, d)),
    intField(2, DataType.float32),
    stringField(8, t.name),
    bytesField(9, raw)
  ])
}

// ValueInfoProto{name=1, type=2} → TypeProto{tensor_type=1} → Tensor{elem_type=1, shape=2}
// → TensorShapeProto{dim=1} → Dimension{dim_value=1 | dim_param=2}.
const valueInfo = (v: ValueSpec): Bytes => {
  const dims = v.dims.map((d) => (typeof d === "number" ? intField(1, d) : stringField(2, d)))
  const shape = messages(1, dims)
  const tensorType = concat([intField(1, DataType[v.elemType]), bytesField(2, shape)])
  return concat([stringField(1, v.name), bytesField(2, bytesField(1, tensorType))])
}

// AttributeProto: name = 1, i = 3, type = 20 (INT = 2).
const attribute = (a: AttributeSpec): Bytes => concat([stringField(1, a.name), intField(3, a.int), intField(20, 2)])

// NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
const node = (n: NodeSpec, index: number): Bytes =>
  concat([
    ...n.inputs.map((s) => stringField(1, s)),
    ...n.outputs.map((s) => stringField(2, s)),
    stringField(3, `${n.opType}_${index}`),
    stringField(4, n.opType),
    messages(5, (n.attributes ?? []).map(attribute))
  ])

/** Encodes a ModelProto (IR version 7, default-domain opset 13) holding `graph`. */
export const encodeModel = (graph: GraphSpec): Uint8Array => {
  // GraphProto: node = 1, name = 2, initializer = 5, input = 11, output = 12.
  const graphBytes = concat([
    messages(1, graph.nodes.map(node)),
    stringField(2, "test_graph"),
    messages(5, (graph.initializers ?? []).map(tensorProto)),
    messages(11, graph.inputs.map(valueInfo)),
    messages(12, graph.outputs.map(valueInfo))
  ])
  // ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8 {domain = 1, version = 2}.
  return concat([
    intField(1, 7),
    stringField(2, "ruth-ai-test"),
    bytesField(7, graphBytes),
    bytesField(8, concat([stringField(1, ""), intField(2, 13)]))
  ])
}

// ---- ready-made models ------------------------------------------------------------------------

/**
 * A model whose output is always `values` (shape `outputDims`), whatever the float32 input.
 * The input still flows into the output (`values + 0 × sum(input)`) so ORT keeps it as a real input.
 */
export const constantOutputModel = (options: {
  readonly inputName: string
  readonly inputDims: ReadonlyArray<number>
  readonly outputName: string
  readonly outputDims: ReadonlyArray<number>
  readonly values: Float32Array
}): Uint8Array =>
  encodeModel({
    inputs: [{ name: options.inputName, elemType: "float32", dims: options.inputDims }],
    outputs: [{ name: options.outputName, elemType: "float32", dims: options.outputDims }],
    initializers: [
      { name: "constant_values", dims: options.outputDims, values: options.values },
      { name: "zero", dims: [], values: Float32Array.of(0) }
    ],
    nodes: [
      { opType: "ReduceSum", inputs: [options.inputName], outputs: ["input_sum"], attributes: [{ name: "keepdims", int: 0 }] },
      { opType: "Mul", inputs: ["input_sum", "zero"], outputs: ["input_zero"] },
      { opType: "Add", inputs: ["constant_values", "input_zero"], outputs: [options.outputName] }
    ]
  })

/** `output = input`, with whatever (possibly symbolic) dims. */
export const identityModel = (options: {
  readonly inputName: string
  readonly outputName: string
  readonly elemType: ElemType
  readonly dims: ReadonlyArray<number | string>
}): Uint8Array =>
  encodeModel({
    inputs: [{ name: options.inputName, elemType: options.elemType, dims: options.dims }],
    outputs: [{ name: options.outputName, elemType: options.elemType, dims: options.dims }],
    nodes: [{ opType: "Identity", inputs: [options.inputName], outputs: [options.outputName] }]
  })

/** `output = float(input)` for a uint8 input. */
export const castToFloatModel = (options: {
  readonly inputName: string
  readonly outputName: string
  readonly dims: ReadonlyArray<number | string>
}): Uint8Array =>
  encodeModel({
    inputs: [{ name: options.inputName, elemType: "uint8", dims: options.dims }],
    outputs: [{ name: options.outputName, elemType: "float32", dims: options.dims }],
    nodes: [
      {
        opType: "Cast",
        inputs: [options.inputName],
        outputs: [options.outputName],
        attributes: [{ name: "to", int: DataType.float32 }]
      }
    ]
  })

/** Writes `bytes` to `<temp dir>/<fileName>` and returns the path; the file goes with the scope. */
export const writeTempFile = (fileName: string, bytes: Uint8Array): Effect.Effect<string, never, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = yield* tempDir("ruth-onnx-test-")
    const path = join(dir, fileName)
    yield* Effect.promise(() => writeFile(path, bytes))
    return path
  })
