import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { decodeDetections, decodeRequest, frameFormat } from "../../src/contract/schema.js"

const valid = {
  frame_reference: "/dev/shm/vas_frames_camera_1",
  frame_metadata: { width: 1920, height: 1080, frame_id: 42 },
  camera_id: "camera_1",
  model_id: "fall-detection",
  timestamp: 1_700_000_000.25
}

const reasonOf = (input: unknown): string => {
  const r = decodeRequest(input)
  if (Either.isRight(r)) throw new Error("expected a decode failure")
  return r.left
}

describe("InferenceRequest", () => {
  it("accepts a reference request, defaults format to NV12 and ignores unknown fields", () => {
    const r = decodeRequest({ ...valid, future_field: { x: 1 } })
    expect(Either.isRight(r)).toBe(true)
    if (Either.isRight(r)) {
      expect(frameFormat(r.right.frame_metadata)).toBe("NV12")
      expect(r.right).not.toHaveProperty("future_field")
    }
  })

  it("accepts config objects and null", () => {
    expect(Either.isRight(decodeRequest({ ...valid, config: { confidence_threshold: 0.7 } }))).toBe(true)
    expect(Either.isRight(decodeRequest({ ...valid, config: null }))).toBe(true)
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
    expect(decodeDetections([det])).toEqual(Either.right([{ ...det, track_id: null }]))
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
    expect(Either.isLeft(r) && r.left).toContain(expected)
  })
})
