/**
 * OTLP traces as protobuf (`opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`),
 * the same bytes as Effect's own encoder (`OtlpSerialization.layerProtobuf`, field for field) in
 * one growing buffer: Effect 4.1's builds every field as its own array through BigInt varints and
 * concatenates them, ~30 µs a span, which a full batch pays at once on the event loop
 * (`bench/traces.ts`). Nested messages are written in place behind a reserved length prefix,
 * moved back when the length takes fewer bytes.
 */
import type { OtlpResource, OtlpTracer } from "effect/observability"

type AnyValue = OtlpResource.AnyValue
type KeyValue = OtlpResource.KeyValue
type Resource = OtlpResource.Resource
type TraceData = OtlpTracer.TraceData
type ResourceSpan = OtlpTracer.ResourceSpan
type ScopeSpan = OtlpTracer.ScopeSpan

type Span = ScopeSpan["spans"][number]
type Event = Span["events"][number]
type Link = Span["links"][number] & { readonly traceState?: string; readonly flags?: number }

const VARINT = 0
const FIXED64 = 1
const LENGTH_DELIMITED = 2
const FIXED32 = 5
/** The most bytes a message's length prefix can take (a length below 2^35). */
const MAX_LENGTH_BYTES = 5

const utf8 = new TextEncoder()

/** A hex digit's value by char code, -1 for anything else. */
const HEX = Int8Array.from({ length: 128 }, (_, c) => {
  const ch = String.fromCharCode(c)
  return /[0-9a-fA-F]/.test(ch) ? parseInt(ch, 16) : -1
})

class Writer {
  private buf = new Uint8Array(4096)
  private view = new DataView(this.buf.buffer)
  pos = 0

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  /** An unsigned varint of a non-negative safe integer. */
  uint(n: number): void {
    this.ensure(10)
    while (n > 127) {
      this.buf[this.pos++] = (n % 128) | 0x80
      n = Math.floor(n / 128)
    }
    this.buf[this.pos++] = n
  }

  /** A varint of any integer, negative as its 64-bit two's complement (as protobuf's int64). */
  varint(n: number | bigint): void {
    if (typeof n === "number" && Number.isSafeInteger(n) && n >= 0) return this.uint(n)
    let v = BigInt.asUintN(64, BigInt(n))
    this.ensure(10)
    while (v > 127n) {
      this.buf[this.pos++] = Number(v & 127n) | 0x80
      v >>= 7n
    }
    this.buf[this.pos++] = Number(v)
  }

  tag(field: number, wire: number): void {
    this.uint((field << 3) | wire)
  }

  varintField(field: number, n: number | bigint): void {
    this.tag(field, VARINT)
    this.varint(n)
  }

  fixed64Field(field: number, decimal: string): void {
    this.tag(field, FIXED64)
    this.ensure(8)
    this.view.setBigUint64(this.pos, BigInt(decimal), true)
    this.pos += 8
  }

  fixed32Field(field: number, n: number): void {
    this.tag(field, FIXED32)
    this.ensure(4)
    this.view.setUint32(this.pos, n, true)
    this.pos += 4
  }

  doubleField(field: number, n: number): void {
    this.tag(field, FIXED64)
    this.ensure(8)
    this.view.setFloat64(this.pos, n, true)
    this.pos += 8
  }

  stringField(field: number, s: string): void {
    this.tag(field, LENGTH_DELIMITED)
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.ensure(MAX_LENGTH_BYTES + s.length * 3)
    const start = this.pos
    this.pos += MAX_LENGTH_BYTES
    const { written } = utf8.encodeInto(s, this.buf.subarray(this.pos))
    this.pos += written
    this.close(start)
  }

  optionalStringField(field: number, s: string | undefined): void {
    if (s !== undefined && s !== "") this.stringField(field, s)
  }

  bytesField(field: number, bytes: Uint8Array): void {
    this.tag(field, LENGTH_DELIMITED)
    this.uint(bytes.length)
    this.ensure(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
  }

  /** Hex as bytes, two digits a byte (as Effect reads them: `parseInt`, a bad pair is 0). */
  hexField(field: number, hex: string): void {
    this.tag(field, LENGTH_DELIMITED)
    const n = hex.length >> 1
    this.uint(n)
    this.ensure(n)
    for (let i = 0; i < n; i++) {
      const hi = HEX[hex.charCodeAt(2 * i)] ?? -1
      const lo = HEX[hex.charCodeAt(2 * i + 1)] ?? -1
      this.buf[this.pos++] = hi >= 0 && lo >= 0 ? hi * 16 + lo : parseInt(hex.slice(2 * i, 2 * i + 2), 16)
    }
  }

  /** A nested message: `write` fills it in after the reserved length prefix. */
  message(field: number, write: () => void): void {
    this.tag(field, LENGTH_DELIMITED)
    this.ensure(MAX_LENGTH_BYTES)
    const start = this.pos
    this.pos += MAX_LENGTH_BYTES
    write()
    this.close(start)
  }

  /** Writes the length of what follows the prefix reserved at `start`, moving the content back over the unused prefix bytes. */
  private close(start: number): void {
    const content = start + MAX_LENGTH_BYTES
    const length = this.pos - content
    // The prefix has room for any length: no `ensure` (which must not move the buffer here).
    this.pos = start
    let n = length
    while (n > 127) {
      this.buf[this.pos++] = (n % 128) | 0x80
      n = Math.floor(n / 128)
    }
    this.buf[this.pos++] = n
    if (this.pos !== content) this.buf.copyWithin(this.pos, content, content + length)
    this.pos += length
  }

  repeated<A>(field: number, values: ReadonlyArray<A>, write: (value: A) => void): void {
    for (const v of values) this.message(field, () => write(v))
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.pos)
  }
}

const anyValue = (w: Writer, value: AnyValue): void => {
  if (value.stringValue !== undefined && value.stringValue !== null) return w.stringField(1, value.stringValue)
  if (value.boolValue !== undefined && value.boolValue !== null) return w.varintField(2, value.boolValue ? 1 : 0)
  if (value.intValue !== undefined && value.intValue !== null) {
    return w.varintField(3, typeof value.intValue === "number" && Number.isSafeInteger(value.intValue) ? value.intValue : BigInt(value.intValue))
  }
  if (value.doubleValue !== undefined && value.doubleValue !== null) return w.doubleField(4, value.doubleValue)
  if (value.arrayValue !== undefined) return w.message(5, () => w.repeated(1, value.arrayValue!.values, (v) => anyValue(w, v)))
  if (value.kvlistValue !== undefined) return w.message(6, () => w.repeated(1, value.kvlistValue!.values, (kv) => keyValue(w, kv)))
  if (value.bytesValue !== undefined) return w.bytesField(7, value.bytesValue)
}

const keyValue = (w: Writer, kv: KeyValue): void => {
  w.stringField(1, kv.key)
  w.message(2, () => anyValue(w, kv.value))
}

const attributes = (w: Writer, field: number, list: ReadonlyArray<KeyValue>): void => w.repeated(field, list, (kv) => keyValue(w, kv))

const resource = (w: Writer, r: Resource): void => {
  attributes(w, 1, r.attributes)
  if (r.droppedAttributesCount > 0) w.varintField(2, r.droppedAttributesCount)
}

const event = (w: Writer, e: Event): void => {
  w.fixed64Field(1, e.timeUnixNano)
  w.stringField(2, e.name)
  attributes(w, 3, e.attributes)
  if (e.droppedAttributesCount > 0) w.varintField(4, e.droppedAttributesCount)
}

const link = (w: Writer, l: Link): void => {
  w.hexField(1, l.traceId)
  w.hexField(2, l.spanId)
  w.optionalStringField(3, l.traceState)
  attributes(w, 4, l.attributes)
  if (l.droppedAttributesCount > 0) w.varintField(5, l.droppedAttributesCount)
  if (l.flags !== undefined) w.fixed32Field(6, l.flags)
}

const span = (w: Writer, s: Span & { readonly traceState?: string; readonly flags?: number }): void => {
  w.hexField(1, s.traceId)
  w.hexField(2, s.spanId)
  w.optionalStringField(3, s.traceState)
  if (s.parentSpanId !== undefined) w.hexField(4, s.parentSpanId)
  w.stringField(5, s.name)
  w.varintField(6, s.kind)
  w.fixed64Field(7, s.startTimeUnixNano)
  w.fixed64Field(8, s.endTimeUnixNano)
  attributes(w, 9, s.attributes)
  if (s.droppedAttributesCount > 0) w.varintField(10, s.droppedAttributesCount)
  w.repeated(11, s.events, (e) => event(w, e))
  if (s.droppedEventsCount > 0) w.varintField(12, s.droppedEventsCount)
  w.repeated(13, s.links, (l) => link(w, l))
  if (s.droppedLinksCount > 0) w.varintField(14, s.droppedLinksCount)
  w.message(15, () => {
    w.optionalStringField(2, s.status.message)
    w.varintField(3, s.status.code)
  })
  if (s.flags !== undefined) w.fixed32Field(16, s.flags)
}

const scopeSpans = (w: Writer, ss: ScopeSpan): void => {
  w.message(1, () => {
    const scope: { readonly name: string; readonly version?: string; readonly attributes?: ReadonlyArray<KeyValue>; readonly droppedAttributesCount?: number } =
      ss.scope
    w.stringField(1, scope.name)
    w.optionalStringField(2, scope.version)
    if (scope.attributes !== undefined) attributes(w, 3, scope.attributes)
    if (scope.droppedAttributesCount) w.varintField(4, scope.droppedAttributesCount)
  })
  w.repeated(2, ss.spans, (s) => span(w, s))
  w.optionalStringField(3, ss.schemaUrl)
}

const resourceSpans = (w: Writer, rs: ResourceSpan): void => {
  w.message(1, () => resource(w, rs.resource))
  w.repeated(2, rs.scopeSpans, (ss) => scopeSpans(w, ss))
  w.optionalStringField(3, rs.schemaUrl)
}

/** The protobuf bytes of an OTLP traces export. */
export const encodeTracesData = (data: TraceData): Uint8Array => {
  const w = new Writer()
  w.repeated(1, data.resourceSpans, (rs) => resourceSpans(w, rs))
  return w.result()
}
