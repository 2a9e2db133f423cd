/**
 * Decodes the probability map of a DB (Differentiable Binarization) text detector, such as
 * PaddleOCR's PP-OCR det models, into axis-aligned text boxes in normalised frame coordinates.
 *
 * Simplified from PaddleOCR's DBPostProcess: connected components stand in for contours and the
 * component's bounding box for the minimum-area rectangle, so rotated text gets an upright box.
 */
import { Either } from "effect"
import type { FrameTransform } from "../../frames/transform.js"
import { toNormalizedBox } from "../../frames/transform.js"
import { type OutputTensor, type RawDetection, UnsupportedOutputShape } from "./types.js"

export interface DbTextOptions {
  /** A pixel belongs to text when its probability is strictly greater than this (PaddleOCR: 0.3). */
  readonly threshold: number
  /** A region is kept when its mean probability is at least this (PaddleOCR: 0.6). */
  readonly boxThreshold: number
  /** How far the shrunk region is grown back, DB's `unclip_ratio` (PaddleOCR: 1.5). */
  readonly unclipRatio: number
  /** Regions whose bounding box covers fewer map pixels than this are dropped. */
  readonly minArea: number
  /** At most this many boxes, highest score first. */
  readonly maxDetections: number
}

const DECODER = "db_text"

/**
 * Decodes a `[1, 1, H, W]` probability map (any shape whose leading dimensions are all 1).
 *
 * Per 8-connected region above `threshold`: bounding box and mean probability; regions scoring
 * below `boxThreshold` or smaller than `minArea` are dropped; the box is grown by
 * `d = area × unclipRatio / perimeter` on every side (DB's unclip distance for that box); the map's
 * pixel grid is scaled to the transform's model input, so maps at a reduced resolution work too.
 * Detections: class 0 `"text"`, confidence = mean probability, highest first.
 */
export const decodeDbText = (
  probMap: OutputTensor,
  transform: FrameTransform,
  options: DbTextOptions
): Either.Either<ReadonlyArray<RawDetection>, UnsupportedOutputShape> => {
  const dims = probMap.dims
  const fail = (reason: string) => Either.left(new UnsupportedOutputShape({ decoder: DECODER, dims, reason }))
  if (dims.length < 2 || dims.slice(0, -2).some((d) => d !== 1)) {
    return fail("expected a single-channel probability map [1, 1, H, W]")
  }
  const height = dims[dims.length - 2]!
  const width = dims[dims.length - 1]!
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 0 || width < 0) {
    return fail("height and width must be non-negative integers")
  }
  if (probMap.data.length !== height * width) {
    return fail(`data holds ${probMap.data.length} values, the shape needs ${height * width}`)
  }
  return Either.right(decodeMap(probMap.data, width, height, transform, options))
}

interface Region {
  readonly x0: number
  readonly y0: number
  readonly x1: number
  readonly y1: number
  readonly score: number
}

const decodeMap = (
  prob: Float32Array,
  width: number,
  height: number,
  transform: FrameTransform,
  options: DbTextOptions
): ReadonlyArray<RawDetection> => {
  const size = width * height
  // Compared in float32, the map's own precision: a pixel of exactly `threshold` stays background.
  const threshold = Math.fround(options.threshold)
  // 1 = text pixel not yet claimed by a region; cleared when pushed, so each pixel is pushed once
  // and `size` stack slots always suffice.
  const pending = new Uint8Array(size)
  for (let p = 0; p < size; p++) pending[p] = prob[p]! > threshold ? 1 : 0
  const stack = new Int32Array(size)
  const regions: Array<Region> = []

  for (let start = 0; start < size; start++) {
    if (pending[start] === 0) continue
    pending[start] = 0
    stack[0] = start
    let top = 1
    let minX = width
    let minY = height
    let maxX = -1
    let maxY = -1
    let sum = 0
    let count = 0
    while (top > 0) {
      const p = stack[--top]!
      const y = (p / width) | 0
      const x = p - y * width
      sum += prob[p]!
      count++
      if (x < minX) minX = x
      if (x > maxX) maxX = x
      if (y < minY) minY = y
      if (y > maxY) maxY = y
      const yLo = y > 0 ? y - 1 : 0
      const yHi = y < height - 1 ? y + 1 : y
      const xLo = x > 0 ? x - 1 : 0
      const xHi = x < width - 1 ? x + 1 : x
      for (let ny = yLo; ny <= yHi; ny++) {
        const row = ny * width
        for (let nx = xLo; nx <= xHi; nx++) {
          const q = row + nx
          if (pending[q] === 1) {
            pending[q] = 0
            stack[top++] = q
          }
        }
      }
    }

    const score = sum / count
    // Pixel extents: a component covering columns minX..maxX spans [minX, maxX + 1).
    const boxW = maxX + 1 - minX
    const boxH = maxY + 1 - minY
    const area = boxW * boxH
    if (!(score >= options.boxThreshold) || area < options.minArea) continue
    const d = (area * options.unclipRatio) / (2 * (boxW + boxH))
    regions.push({ x0: minX - d, y0: minY - d, x1: maxX + 1 + d, y1: maxY + 1 + d, score })
  }

  regions.sort((a, b) => b.score - a.score)
  const sx = width > 0 ? transform.inputWidth / width : 1
  const sy = height > 0 ? transform.inputHeight / height : 1
  const limit = Math.max(0, Math.floor(options.maxDetections))
  const detections: Array<RawDetection> = []
  for (const r of regions) {
    if (detections.length >= limit) break
    const bbox = toNormalizedBox(transform, r.x0 * sx, r.y0 * sy, r.x1 * sx, r.y1 * sy)
    // A region wholly inside the letterbox padding collapses to an empty box.
    if (!(bbox[2] > bbox[0] && bbox[3] > bbox[1])) continue
    detections.push({
      class_id: 0,
      class_name: "text",
      confidence: r.score > 1 ? 1 : r.score < 0 ? 0 : r.score,
      bbox
    })
  }
  return detections
}
