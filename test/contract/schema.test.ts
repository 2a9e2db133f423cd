import { describe, expect, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import fc from "fast-check"
import { decodeDetections, decodePlainDetections, decodePlainRequest, decodeRequest, Detection, frameFormat, InferenceRequest } from "../../src/contract/schema.js"

const valid = {
  frame_reference: "/dev/shm/vas_frames_camera_1",
  frame_metadata: { width: 1920, height: 1080, frame_id: 42 },
  camera_id: "camera_1",
  model_id: "fall-detection",
  timestamp: 1_700_000_000.25
}

const reasonOf = (input: unknown): string => {
  const r = decodeRequest(input)
  if (Result.isSuccess(r)) throw new Error("expected a decode failure")
  return r.failure
}

describe("InferenceRequest", () => {
  it("accepts a reference request, defaults format to NV12 and ignores unknown fields", () => {
    const r = decodeRequest({ ...valid, future_field: { x: 1 } })
    expect(Result.isSuccess(r)).toBe(true)
    if (Result.isSuccess(r)) {
      expect(frameFormat(r.success.frame_metadata)).toBe("NV12")
      expect(r.success).not.toHaveProperty("future_field")
    }
  })

  it("keeps a traceparent string (valid or not: tracing judges it) and drops any other value, never an error", () => {
    const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for (const traceparent of [tp, "garbage"]) {
      expect(decodeRequest({ ...valid, traceparent })).toEqual(Result.succeed(expect.objectContaining({ traceparent })))
    }
    for (const traceparent of [42, null, { a: 1 }, ["x"]]) {
      const r = decodeRequest({ ...valid, traceparent })
      expect(Result.isSuccess(r)).toBe(true)
      if (Result.isSuccess(r)) expect(r.success).not.toHaveProperty("traceparent")
    }
  })

  it("accepts config objects and null", () => {
    expect(Result.isSuccess(decodeRequest({ ...valid, config: { confidence_threshold: 0.7 } }))).toBe(true)
    expect(Result.isSuccess(decodeRequest({ ...valid, config: null }))).toBe(true)
  })

  it.each([
    [{ ...valid, frame_reference: "" }, "frame_reference: must be a non-empty string"],
    [{ ...valid, camera_id: "" }, "camera_id: must be a non-empty string"],
    [{ ...valid, model_id: 7 }, "model_id: Expected string"],
    [{ ...valid, timestamp: 0 }, "timestamp: must be > 0"],
    [{ ...valid, timestamp: "now" }, "timestamp: Expected number"],
    [{ ...valid, frame_metadata: { height: 10 } }, "frame_metadata.width: is required"],
    [{ ...valid, frame_metadata: { width: 10.5, height: 10 } }, "frame_metadata.width: must be an integer, got 10.5"],
    [{ ...valid, frame_metadata: { width: 10, height: -2 } }, "frame_metadata.height: must be > 0, got -2"],
    [{ ...valid, frame_metadata: { width: 10, height: 2, stride: 0 } }, "frame_metadata.stride: must be > 0"],
    [{ ...valid, config: [1] }, "config:"],
    [{ ...valid, frame_metadata: "1920x1080" }, 'frame_metadata: Expected an object with width and height, actual "1920x1080"'],
    [(({ frame_metadata: _, ...rest }) => rest)(valid), "frame_metadata: is required"]
  ])("names the field and the reason: %#", (input, expected) => {
    expect(reasonOf(input)).toContain(expected)
  })

  it("reports every bad field at once", () => {
    const reason = reasonOf({ frame_metadata: { width: 0, height: 1 }, timestamp: -1 })
    for (const field of ["frame_reference", "camera_id", "model_id", "timestamp", "frame_metadata.width"]) {
      expect(reason).toContain(field)
    }
  })

  it("rejects non-objects", () => {
    expect(reasonOf([1, 2])).toMatch(/Expected/)
    expect(reasonOf(null)).toMatch(/Expected/)
  })
})

describe("Detection", () => {
  const det = { class_id: 0, class_name: "person", confidence: 0.9, bbox: [0.1, 0.2, 0.3, 0.4] }
  it("fills track_id with null", () => {
    expect(decodeDetections([det])).toEqual(Result.succeed([{ ...det, track_id: null }]))
  })
  it.each([
    [{ ...det, class_id: -1 }, "0.class_id"],
    [{ ...det, class_id: 1.5 }, "0.class_id"],
    [{ ...det, class_name: "" }, "0.class_name"],
    [{ ...det, confidence: 1.01 }, "0.confidence"],
    [{ ...det, confidence: Number.NaN }, "0.confidence"],
    [{ ...det, bbox: [0.1, 0.2, 0.3] }, "0.bbox"],
    [{ ...det, bbox: [0.5, 0.2, 0.3, 0.4] }, "x_min <= x_max"],
    [{ ...det, bbox: [0.1, 0.2, 0.3, 1.4] }, "0.bbox.3"],
    [{ ...det, track_id: 1.5 }, "0.track_id"]
  ])("rejects what breaks the contract: %#", (input, expected) => {
    const r = decodeDetections([input])
    expect(Result.isFailure(r) && r.failure).toContain(expected)
  })
})

/**
 * A fast path against its schema over 5,000 inputs: it accepts only what the schema accepts and
 * then returns exactly the schema's result. Counts the inputs it took and those the schema took.
 */
const againstSchema = <A>(
  inputs: fc.Arbitrary<unknown>,
  plain: (u: unknown) => A | undefined,
  schema: (u: unknown) => Result.Result<A, unknown>
): { readonly accepted: number; readonly valid: number } => {
  let accepted = 0
  let valid = 0
  fc.assert(
    fc.property(inputs, (input) => {
      const fast = plain(input)
      const decoded = schema(input)
      if (Result.isSuccess(decoded)) valid++
      if (fast === undefined) return
      accepted++
      expect(Result.isSuccess(decoded)).toBe(true)
      expect(fast).toStrictEqual(Result.getOrThrow(decoded))
    }),
    { numRuns: 5000 }
  )
  return { accepted, valid }
}

describe("decodePlainRequest (the per-request fast path)", () => {
  const bySchema = Schema.decodeUnknownResult(InferenceRequest)
  const anyValue = fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    fc.boolean(),
    fc.string({ maxLength: 3 }),
    fc.integer({ min: -3, max: 3 }),
    fc.double(),
    fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, Infinity, -0, 0.5),
    fc.array(fc.integer(), { maxLength: 2 }),
    fc.dictionary(fc.string({ maxLength: 2 }), fc.jsonValue(), { maxKeys: 2 })
  )
  /** Each field valid most of the time, anything at all otherwise; keys sometimes missing. */
  const field = <A>(valid: fc.Arbitrary<A>) => fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: anyValue })
  const metaFields = {
      width: field(fc.integer({ min: 1, max: 4096 })),
      height: field(fc.integer({ min: 1, max: 4096 })),
      format: field(fc.constantFrom("NV12", "nv12", "RGB24")),
      frame_id: anyValue,
      stride: field(fc.integer({ min: 1, max: 8192 })),
      timestamp: field(fc.double({ noNaN: true })),
      pts: field(fc.integer()),
      extra: anyValue
  }
  const meta = fc.oneof(
    fc.record(metaFields, { requiredKeys: ["width", "height"] }),
    fc.record(metaFields, { requiredKeys: [] })
  )
  const requestFields = {
      frame_reference: field(fc.constantFrom("/dev/shm/a.nv12", "/tmp/x")),
      frame_metadata: fc.oneof({ weight: 5, arbitrary: meta }, { weight: 1, arbitrary: anyValue }),
      camera_id: field(fc.constantFrom("cam1", "")),
      model_id: field(fc.constantFrom("m", "yolo")),
      timestamp: field(fc.double({ min: 1, max: 2e9, noNaN: true })),
      config: field(fc.oneof(fc.constant(null), fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue(), { maxKeys: 3 }))),
      request_id: field(fc.oneof(fc.string({ maxLength: 4 }), fc.integer())),
      traceparent: field(fc.constantFrom("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "x")),
      unknown_key: anyValue
  }
  // Keys present most of the time (so the valid path is exercised), or any of them missing.
  const request = fc.oneof(
    { weight: 3, arbitrary: fc.record(requestFields, { requiredKeys: ["frame_reference", "frame_metadata", "camera_id", "model_id", "timestamp"] }) },
    { weight: 1, arbitrary: fc.record(requestFields, { requiredKeys: [] }) }
  )

  it("accepts only what the schema accepts, and returns what the schema returns", () => {
    const { accepted, valid } = againstSchema(fc.oneof(request, anyValue), decodePlainRequest, bySchema)
    // The fast path takes most valid inputs, it is not bypassed (a frame_id of undefined and the like are left to the schema).
    expect(valid).toBeGreaterThan(50)
    expect(accepted).toBeGreaterThan(valid / 2)
  })

  it("takes every request a real caller sends", () => {
    const sent = {
      frame_reference: "/dev/shm/cam1_frame_000042.nv12",
      frame_metadata: { width: 1920, height: 1080, format: "NV12", frame_id: 42, timestamp: 1732600000.5 },
      camera_id: "cam1",
      model_id: "yolo",
      timestamp: 1732600000.5,
      config: { confidence_threshold: 0.4 },
      request_id: "r-1",
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    }
    const minimal = { frame_reference: "/tmp/f", frame_metadata: { width: 2, height: 2 }, camera_id: "c", model_id: "m", timestamp: 1 }
    for (const input of [sent, minimal, JSON.parse(JSON.stringify(sent))]) {
      expect(decodePlainRequest(input)).toStrictEqual(Result.getOrThrow(bySchema(input)))
    }
  })
})

describe("decodePlainDetections (the per-answer fast path)", () => {
  const bySchema = Schema.decodeUnknownResult(Schema.Array(Detection))
  /** The schema's wire form: track_id filled with null. */
  const wire = (ds: ReadonlyArray<Detection>) => ds.map((d) => (d.track_id === undefined ? { ...d, track_id: null } : d))
  const odd = fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    fc.string({ maxLength: 2 }),
    fc.constantFrom(-1, -0, 1.5, 2, Infinity, NaN, Number.MAX_SAFE_INTEGER + 2),
    fc.array(fc.double(), { maxLength: 5 })
  )
  const field = <A>(valid: fc.Arbitrary<A>) => fc.oneof({ weight: 6, arbitrary: valid }, { weight: 1, arbitrary: odd })
  const unit = fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(0, 1, -0))
  const detection = fc.record(
    {
      class_id: field(fc.integer({ min: 0, max: 90 })),
      class_name: field(fc.constantFrom("person", "text", "")),
      confidence: field(unit),
      // Sorted pairs most of the time, so the ordering rule is exercised both ways.
      bbox: field(fc.tuple(unit, unit, unit, unit).map(([a, b, c, d]) => (a + b + c + d > 0.3 ? [Math.min(a, c), Math.min(b, d), Math.max(a, c), Math.max(b, d)] : [a, b, c, d]))),
      track_id: field(fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 1000 }))),
      extra: odd
    },
    { requiredKeys: ["class_id", "class_name", "confidence", "bbox"] }
  )
  const detections = fc.oneof({ weight: 5, arbitrary: fc.array(detection, { maxLength: 4 }) }, { weight: 1, arbitrary: odd })

  it("accepts only what the schema accepts, and returns what the schema returns", () => {
    const { accepted, valid } = againstSchema(detections, decodePlainDetections, (u) => Result.map(bySchema(u), wire))
    expect(valid).toBeGreaterThan(500)
    expect(accepted).toBe(valid)
  })
})

