/**
 * Decodes the probability map of a DB (Differentiable Binarization) text detector, such as
 * PaddleOCR's PP-OCR det models, into axis-aligned text boxes in normalised frame coordinates.
 *
 * Simplified from PaddleOCR's DBPostProcess: connected components stand in for contours and the
 * component's bounding box for the minimum-area rectangle, so rotated text gets an upright box.
 */
import { Result } from "effect"
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
 * Detections: class 0 `"text"`, confidence = mean probability, highest first (equal scores in
 * the raster order of the regions' first pixels).
 *
 * One pass over the map, labelling runs of text pixels row by row (union-find), in scratch buffers
 * kept between calls; the map is only read, and not kept.
 */
export const decodeDbText = (
  probMap: OutputTensor,
  transform: FrameTransform,
  options: DbTextOptions
): Result.Result<ReadonlyArray<RawDetection>, UnsupportedOutputShape> => {
  const dims = probMap.dims
  const fail = (reason: string) => Result.fail(new UnsupportedOutputShape({ decoder: DECODER, dims, reason }))
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
  return Result.succeed(decodeMap(probMap.data, width, height, transform, options))
}

interface Region {
  readonly x0: number
  readonly y0: number
  readonly x1: number
  readonly y1: number
  readonly score: number
}

// ---- Scratch for the run labelling ----------------------------------------------------------------
// One record per run: a maximal horizontal stretch of text pixels within one row. Module-level and
// grown on demand, so a call allocates nothing per pixel; decoding is synchronous, so calls never
// share them, and they hold only indices and sums, never the caller's map.

let runCapacity = 0
/** First column of the run; for a component's root, grown into the component's leftmost column. */
let runStart = new Int32Array(0)
/** One past the run's last column; for a root, grown into one past the component's rightmost. */
let runEnd = new Int32Array(0)
/** The run's row; for a root (its component's first run in raster order), the component's top row. */
let runRow = new Int32Array(0)
/** Sum of the run's probabilities; for a root, of the component's. */
let runSum = new Float64Array(0)
/**
 * Union-find parent. Unions hang the larger root under the smaller, so `runParent[r] <= r` and a
 * component's root is its first run in raster order: the pixel a raster-order flood fill starts from.
 */
let runParent = new Int32Array(0)
/** Per root: the component's pixel count and bottom row. */
let rootCount = new Int32Array(0)
let rootMaxRow = new Int32Array(0)

const grownInt32 = (old: Int32Array, capacity: number, used: number): Int32Array<ArrayBuffer> => {
  const fresh = new Int32Array(capacity)
  fresh.set(old.subarray(0, used))
  return fresh
}

/** Grows the run scratch to hold more than `used` runs, keeping the first `used`. */
const growRuns = (used: number): void => {
  const capacity = Math.max(1024, runCapacity * 2)
  runStart = grownInt32(runStart, capacity, used)
  runEnd = grownInt32(runEnd, capacity, used)
  runRow = grownInt32(runRow, capacity, used)
  const sums = new Float64Array(capacity)
  sums.set(runSum.subarray(0, used))
  runSum = sums
  runParent = grownInt32(runParent, capacity, used)
  rootCount = new Int32Array(capacity)
  rootMaxRow = new Int32Array(capacity)
  runCapacity = capacity
}

/** Root of `r`'s set; every node passed is re-pointed at its grandparent (path splitting). */
const findRoot = (parent: Int32Array, r: number): number => {
  let p = parent[r]!
  while (p !== r) {
    const gp = parent[p]!
    parent[r] = gp
    r = p
    p = gp
  }
  return r
}

const thresholdBits = new Int32Array(1)
const thresholdFloat = new Float32Array(thresholdBits.buffer)
const noBits = new Int32Array(0)

/**
 * Scans the map once in raster order, recording each run of pixels `> threshold` and joining it
 * (union-find) to the runs of the previous row it touches, diagonals included (8-connectivity).
 * Returns the number of runs.
 */
const labelRuns = (prob: Float32Array, width: number, size: number, threshold: number): number => {
  // For a threshold >= 0 (or NaN), a pixel whose float32 bits, read as a signed integer, are at
  // most the threshold's is background: negative floats (and -0) read as negative integers, and
  // non-negative floats order like their bits. Integer compares beat float32 loads and compares.
  const bitsTest = !(threshold < 0)
  thresholdFloat[0] = threshold
  const tBits = thresholdBits[0]!
  const bits = bitsTest ? new Int32Array(prob.buffer, prob.byteOffset, size) : noBits
  let start = runStart
  let end = runEnd
  let rows = runRow
  let sums = runSum
  let parent = runParent
  let n = 0
  let y = 0
  let rowStart = 0
  let rowEnd = width
  // This row's runs start at curBegin; the row above's that may still touch one are [candidate, prevEnd).
  let curRow = -2
  let curBegin = 0
  let prevEnd = 0
  let candidate = 0
  let p = 0
  const lastBlock = size - 16

  for (;;) {
    // Skip to the next text pixel. Maps are mostly background, so this is the hot loop: it compares
    // integer bits (see above) and tests 16 pixels per iteration, which spares most loop overhead.
    if (bitsTest) {
      for (;;) {
        while (
          p <= lastBlock &&
          bits[p]! <= tBits &&
          bits[p + 1]! <= tBits &&
          bits[p + 2]! <= tBits &&
          bits[p + 3]! <= tBits &&
          bits[p + 4]! <= tBits &&
          bits[p + 5]! <= tBits &&
          bits[p + 6]! <= tBits &&
          bits[p + 7]! <= tBits &&
          bits[p + 8]! <= tBits &&
          bits[p + 9]! <= tBits &&
          bits[p + 10]! <= tBits &&
          bits[p + 11]! <= tBits &&
          bits[p + 12]! <= tBits &&
          bits[p + 13]! <= tBits &&
          bits[p + 14]! <= tBits &&
          bits[p + 15]! <= tBits
        ) {
          p += 16
        }
        while (p < size && bits[p]! <= tBits) p++
        // Bits above the threshold's: a text pixel, or NaN (background, as `>` is false).
        if (p >= size || prob[p]! > threshold) break
        p++
      }
    } else {
      while (p < size && !(prob[p]! > threshold)) p++
    }
    if (p >= size) break

    while (p >= rowEnd) {
      rowStart = rowEnd
      rowEnd += width
      y++
    }
    if (y !== curRow) {
      // Only the row directly above can touch this one.
      candidate = y === curRow + 1 ? curBegin : n
      prevEnd = n
      curBegin = n
      curRow = y
    }

    const x0 = p - rowStart
    let sum = 0
    do {
      sum += prob[p]!
      p++
    } while (p < rowEnd && prob[p]! > threshold)
    const x1 = p - rowStart

    if (n === runCapacity) {
      growRuns(n)
      start = runStart
      end = runEnd
      rows = runRow
      sums = runSum
      parent = runParent
    }
    start[n] = x0
    end[n] = x1
    rows[n] = y
    sums[n] = sum
    parent[n] = n

    // Runs above touching columns x0 - 1 .. x1 (x1 is one past the run). Runs of a row are ordered
    // and disjoint, so the ones ending left of x0 - 1 are done with for the rest of this row too.
    while (candidate < prevEnd && end[candidate]! < x0) candidate++
    for (let k = candidate; k < prevEnd && start[k]! <= x1; k++) {
      const a = findRoot(parent, k)
      const b = findRoot(parent, n)
      if (a < b) parent[b] = a
      else if (b < a) parent[a] = b
    }
    n++
  }
  return n
}

const decodeMap = (
  prob: Float32Array,
  width: number,
  height: number,
  transform: FrameTransform,
  options: DbTextOptions
): ReadonlyArray<RawDetection> => {
  // Compared in float32, the map's own precision: a pixel of exactly `threshold` stays background.
  const runs = labelRuns(prob, width, width * height, Math.fround(options.threshold))

  // Fold every run into its root, in run order: a run's parent precedes it, so by then the parent
  // points straight at the root. Afterwards each root holds its component's extents and sum.
  const start = runStart
  const end = runEnd
  const rows = runRow
  const sums = runSum
  const parent = runParent
  const count = rootCount
  const maxRow = rootMaxRow
  for (let r = 0; r < runs; r++) {
    const up = parent[r]!
    const length = end[r]! - start[r]!
    if (up === r) {
      count[r] = length
      maxRow[r] = rows[r]!
      continue
    }
    const root = parent[up]!
    parent[r] = root
    if (start[r]! < start[root]!) start[root] = start[r]!
    if (end[r]! > end[root]!) end[root] = end[r]!
    sums[root] = sums[root]! + sums[r]!
    count[root] = count[root]! + length
    // Runs come in raster order, so the latest one is the lowest.
    maxRow[root] = rows[r]!
  }

  // Components in the order of their first pixel (raster order), so equal scores keep that order.
  const regions: Array<Region> = []
  for (let r = 0; r < runs; r++) {
    if (parent[r] !== r) continue
    const score = sums[r]! / count[r]!
    // Pixel extents: a component covering columns minX..maxX spans [minX, maxX + 1).
    const x0 = start[r]!
    const x1 = end[r]!
    const y0 = rows[r]!
    const y1 = maxRow[r]! + 1
    const boxW = x1 - x0
    const boxH = y1 - y0
    const area = boxW * boxH
    if (!(score >= options.boxThreshold) || area < options.minArea) continue
    const d = (area * options.unclipRatio) / (2 * (boxW + boxH))
    regions.push({ x0: x0 - d, y0: y0 - d, x1: x1 + d, y1: y1 + d, score })
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
