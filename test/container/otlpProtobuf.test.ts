/**
 * The runtime's OTLP protobuf encoder writes exactly the bytes of Effect's own
 * (`OtlpSerialization.layerProtobuf`), for the spans a container really exports and for every
 * field the format has (nested values, negative and 64-bit integers, long and non-ASCII strings,
 * links, flags, dropped counts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { OtlpSerialization, type OtlpTracer } from "effect/observability"
import { encodeTracesData } from "../../src/internal/otlpProtobuf.js"

const effectsBytes = (data: OtlpTracer.TraceData): Uint8Array => {
  const serialization = Effect.runSync(Effect.service(OtlpSerialization.OtlpSerialization).pipe(Effect.provide(OtlpSerialization.layerProtobuf)))
  const body = serialization.traces(data)
  if (body._tag !== "Uint8Array") throw new Error(`Effect's protobuf body is ${body._tag}`)
  return body.body
}

const same = (data: OtlpTracer.TraceData) => expect(Buffer.from(encodeTracesData(data)).toString("hex")).toBe(Buffer.from(effectsBytes(data)).toString("hex"))

const span = (overrides: Record<string, unknown> = {}) => ({
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  spanId: "00f067aa0ba902b7",
  parentSpanId: undefined,
  name: "inference.request",
  kind: 2,
  startTimeUnixNano: "1796283920123456000",
  endTimeUnixNano: "1796283920177456000",
  attributes: [
    { key: "ruth.camera_id", value: { stringValue: "cam-1" } },
    { key: "ruth.frame_id", value: { intValue: 42 } },
    { key: "ruth.frame_age_seconds", value: { doubleValue: 0.0541 } }
  ],
  droppedAttributesCount: 0,
  events: [],
  droppedEventsCount: 0,
  links: [],
  droppedLinksCount: 0,
  status: { code: 1 },
  ...overrides
})

const traces = (spans: ReadonlyArray<ReturnType<typeof span>>, extra: Record<string, unknown> = {}): OtlpTracer.TraceData => ({
  resourceSpans: [{
    resource: { attributes: [{ key: "service.name", value: { stringValue: "ruth-model-test" } }], droppedAttributesCount: 0 },
    scopeSpans: [{ scope: { name: "ruth-model-test" }, spans: spans as Array<never> }],
    ...extra
  }]
})

describe("OTLP traces as protobuf", () => {
  it("a request span and its children: Effect's bytes", () => {
    const root = span()
    same(traces([
      root,
      span({ spanId: "1111111111111111", parentSpanId: root.spanId, name: "frame.read", kind: 1, attributes: [] }),
      span({
        spanId: "2222222222222222",
        parentSpanId: root.spanId,
        name: "inference",
        kind: 1,
        events: [{ name: "session_wait", timeUnixNano: "1796283920130000000", attributes: [{ key: "ruth.session_wait_ms", value: { doubleValue: 3.5 } }], droppedAttributesCount: 0 }]
      }),
      span({ spanId: "3333333333333333", status: { code: 2, message: "FRAME_NOT_FOUND: no frame at /dev/shm/cam-1" } })
    ]))
  })

  it("every kind of value and field, long and non-ASCII strings: Effect's bytes", () => {
    const long = "é".repeat(10_000) + "🚗"
    same(traces([
      span({
        attributes: [
          { key: "", value: { stringValue: "" } },
          { key: "negative", value: { intValue: -5 } },
          { key: "big", value: { intValue: "9007199254740993" } },
          { key: "zero", value: { intValue: 0 } },
          { key: "bool", value: { boolValue: false } },
          { key: "nan", value: { doubleValue: Number.NaN } },
          { key: "array", value: { arrayValue: { values: [{ stringValue: "a" }, { intValue: 300 }, { arrayValue: { values: [] } }] } } },
          { key: "kv", value: { kvlistValue: { values: [{ key: "inner", value: { doubleValue: -1.5 } }] } } },
          { key: "bytes", value: { bytesValue: new Uint8Array([0, 1, 255]) } },
          { key: "empty", value: {} },
          { key: "long", value: { stringValue: long } }
        ],
        droppedAttributesCount: 3,
        events: [{ name: "e", timeUnixNano: "1", attributes: [], droppedAttributesCount: 2 }],
        droppedEventsCount: 1,
        links: [{ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceState: "k=v", attributes: [], droppedAttributesCount: 1, flags: 1 }],
        droppedLinksCount: 4,
        traceState: "vendor=1",
        flags: 257,
        name: long
      }),
      span({ parentSpanId: "", kind: 0, status: { code: 0, message: "" } }),
      // Not hex: read as Effect reads it (parseInt per pair, a bad pair is 0).
      span({ traceId: "zz0g4bf92f3577b34da6a3ce929d0e0e", spanId: "é0f067aa0ba902b" })
    ], { schemaUrl: "https://opentelemetry.io/schemas/1.24.0" }))
  })

  it("many spans (a batch), and nothing at all", () => {
    same(traces(Array.from({ length: 1000 }, (_, i) => span({ spanId: i.toString(16).padStart(16, "0") }))))
    same({ resourceSpans: [] })
  })
})
