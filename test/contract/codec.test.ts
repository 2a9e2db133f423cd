import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { encodeMessage, encodePayload, exceedsJsonDepth, FrameDecoder, parsedExceedsJsonDepth, parseJson } from "../../src/contract/codec.js"

/** Splits `bytes` at the given cut points (sorted, deduplicated, within range). */
const splitAt = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let prev = 0
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p))
    prev = p
  }
  return out
}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => Buffer.concat(parts.map((p) => Buffer.from(p)))

const payloads = fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 })

describe("FrameDecoder", () => {
  it("decodes the same messages for any split or merge of the stream", () => {
    fc.assert(
      fc.property(payloads, fc.array(fc.nat(), { maxLength: 40 }), (messages, cuts) => {
        const stream = concat(messages.map(encodePayload))
        const decoder = new FrameDecoder(1024)
        const decoded = splitAt(stream, cuts).flatMap((chunk) => decoder.push(chunk))
        expect(decoded.map((e) => (e._tag === "Message" ? Buffer.from(e.payload).toString("hex") : "too-large"))).toEqual(
          messages.map((m) => Buffer.from(m).toString("hex"))
        )
        expect(decoder.bufferedBytes).toBe(0)
      }),
      { numRuns: 500 }
    )
  })

  it("round-trips JSON values through encodeMessage byte by byte", () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { minLength: 1, maxLength: 5 }), (values) => {
        const stream = concat(values.map(encodeMessage))
        const decoder = new FrameDecoder()
        const out: Array<unknown> = []
        for (let i = 0; i < stream.length; i++) {
          for (const e of decoder.push(stream.subarray(i, i + 1))) {
            if (e._tag === "Message") {
              const parsed = parseJson(e.payload)
              out.push(parsed.ok ? parsed.value : Symbol("bad"))
            }
          }
        }
        expect(out).toEqual(values.map((v) => JSON.parse(JSON.stringify(v))))
      }),
      { numRuns: 200 }
    )
  })

  it("rejects an announced length over the limit before buffering its body", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1025, max: 0xffffffff }), fc.nat({ max: 3 }), (length, split) => {
        const header = Buffer.alloc(4)
        header.writeUInt32BE(length, 0)
        const decoder = new FrameDecoder(1024)
        const events = [...decoder.push(header.subarray(0, split)), ...decoder.push(header.subarray(split))]
        expect(events).toEqual([{ _tag: "TooLarge", length, limit: 1024 }])
        expect(decoder.isFailed).toBe(true)
        // Whatever follows is not buffered: the stream cannot be resynchronised.
        expect(decoder.push(new Uint8Array(4096))).toEqual([])
        expect(decoder.bufferedBytes).toBe(0)
      })
    )
  })

  it("delivers the messages before an oversized one, then stops", () => {
    const decoder = new FrameDecoder(16)
    const big = Buffer.alloc(4)
    big.writeUInt32BE(17, 0)
    const events = decoder.push(concat([encodePayload(Buffer.from("ok")), big, encodePayload(Buffer.from("late"))]))
    expect(events.map((e) => e._tag)).toEqual(["Message", "TooLarge"])
  })

  it("never throws on random garbage", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 30 }), fc.nat({ max: 2048 }), (chunks, limit) => {
        const decoder = new FrameDecoder(limit)
        for (const c of chunks) {
          for (const e of decoder.push(c)) {
            if (e._tag === "Message") {
              expect(e.payload.length).toBeLessThanOrEqual(limit)
              parseJson(e.payload) // must not throw either
            }
          }
        }
      }),
      { numRuns: 1000 }
    )
  })

  it("accepts a message of exactly the limit", () => {
    const decoder = new FrameDecoder(8)
    const events = decoder.push(encodePayload(new Uint8Array(8)))
    expect(events).toHaveLength(1)
    expect(events[0]?._tag).toBe("Message")
  })
})

describe("parseJson", () => {
  it("reports invalid UTF-8 and invalid JSON instead of throwing", () => {
    expect(parseJson(Uint8Array.from([0xff, 0xfe])).ok).toBe(false)
    expect(parseJson(Buffer.from("{nope")).ok).toBe(false)
    expect(parseJson(Buffer.from('{"a":1}'))).toEqual({ ok: true, value: { a: 1 } })
  })
})

describe("exceedsJsonDepth", () => {
  const nest = (levels: number, inner = "1") => "[".repeat(levels) + inner + "]".repeat(levels)
  const bytes = (text: string) => Buffer.from(text, "utf8")

  it("counts nesting of arrays and objects, not brackets inside strings", () => {
    expect(exceedsJsonDepth(bytes(nest(64)), 64)).toBe(false)
    expect(exceedsJsonDepth(bytes(nest(65)), 64)).toBe(true)
    expect(exceedsJsonDepth(bytes(`{"a":${nest(63)}}`), 64)).toBe(false)
    expect(exceedsJsonDepth(bytes(`{"a":${nest(64)}}`), 64)).toBe(true)
    const bracketsInString = JSON.stringify({ s: "[".repeat(500) + "\\\"{{{" + "{".repeat(500) })
    expect(exceedsJsonDepth(bytes(bracketsInString), 64)).toBe(false)
  })

  it("agrees with the depth of any JSON value", () => {
    const depth = (v: unknown): number =>
      typeof v === "object" && v !== null ? 1 + Math.max(0, ...Object.values(v).map(depth)) : 0
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 8 }), (value, max) => {
        const text = JSON.stringify(value)
        expect(exceedsJsonDepth(bytes(text), max)).toBe(depth(value) > max)
        expect(parsedExceedsJsonDepth(bytes(text), value, max)).toBe(depth(value) > max)
      }),
      { numRuns: 500 }
    )
  })
})
