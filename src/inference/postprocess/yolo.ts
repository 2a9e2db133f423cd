/**
 * Decodes the raw head of a YOLO detector into detections in normalised frame coordinates.
 *
 * Two layouts are understood, both with boxes as `cx, cy, w, h` in model-input pixels:
 *
 * - `v8` (YOLOv8/v11, channels-first): `[1, 4 + C, N]` — box, then C class scores.
 * - `v5` (YOLOv5/v7, row per box):     `[1, N, 5 + C]` — box, objectness, then C class scores;
 *   confidence = objectness × class score.
 *
 * The batch dimension may be omitted (`[4 + C, N]`, `[N, 5 + C]`). Models that already apply NMS
 * in-graph, or emit normalised boxes, are not handled here.
 */
import { Result } from "effect"
import type { FrameTransform } from "../../frames/transform.js"
import { toNormalizedBox } from "../../frames/transform.js"
import { nonMaxSuppression } from "./nms.js"
import { type OutputTensor, type RawDetection, UnsupportedOutputShape } from "./types.js"

export type YoloLayout = "v8" | "v5"

export interface YoloOptions {
  /** `auto` picks by shape, see {@link resolveYoloLayout}. */
  readonly layout: "auto" | YoloLayout
  /** Candidates with confidence below this are dropped (a confidence equal to it is kept). */
  readonly confidenceThreshold: number
  readonly iouThreshold: number
  readonly maxDetections: number
  /** When true, NMS suppresses across classes. */
  readonly classAgnostic: boolean
  /** `classNames[class_id]`; a missing or empty entry becomes `class_<id>`. */
  readonly classNames: ReadonlyArray<string>
}

/** How an output tensor is read: which layout, how many boxes, how many classes. */
export interface YoloGeometry {
  readonly layout: YoloLayout
  readonly numBoxes: number
  readonly numClasses: number
}

const DECODER = "yolo"

/**
 * Decides how to read an output of shape `dims`.
 *
 * Rule for `auto`, with `[A, B]` the two non-batch dimensions:
 * 1. if only one layout is possible at all (v8 needs `A ≥ 5`, v5 needs `B ≥ 6`), that one;
 * 2. if `classCount > 0` and exactly one of `A = 4 + classCount` (v8) or `B = 5 + classCount` (v5)
 *    holds, that layout wins;
 * 3. otherwise the smaller dimension is the per-box attribute axis, because detectors emit far more
 *    boxes than attributes: `A < B` → v8 (e.g. `[1, 84, 8400]`), `B < A` → v5 (e.g. `[1, 25200, 85]`);
 * 4. `A = B` with nothing above to break the tie is ambiguous and rejected.
 */
export const resolveYoloLayout = (
  dims: ReadonlyArray<number>,
  requested: "auto" | YoloLayout,
  classCount: number
): Result.Result<YoloGeometry, UnsupportedOutputShape> => {
  const fail = (reason: string) => Result.fail(new UnsupportedOutputShape({ decoder: DECODER, dims, reason }))
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) return fail("dimensions must be non-negative integers")
  let a: number
  let b: number
  if (dims.length === 3 && dims[0] === 1) {
    a = dims[1]!
    b = dims[2]!
  } else if (dims.length === 2) {
    a = dims[0]!
    b = dims[1]!
  } else {
    return fail("expected [1, 4+C, N] (v8) or [1, N, 5+C] (v5)")
  }

  const v8 = (): Result.Result<YoloGeometry, UnsupportedOutputShape> =>
    a >= 5
      ? Result.succeed({ layout: "v8", numBoxes: b, numClasses: a - 4 })
      : fail(`v8 layout needs at least 5 rows (4 box values + classes), got ${a}`)
  const v5 = (): Result.Result<YoloGeometry, UnsupportedOutputShape> =>
    b >= 6
      ? Result.succeed({ layout: "v5", numBoxes: a, numClasses: b - 5 })
      : fail(`v5 layout needs at least 6 columns (4 box values + objectness + classes), got ${b}`)

  if (requested === "v8") return v8()
  if (requested === "v5") return v5()

  const v8Possible = a >= 5
  const v5Possible = b >= 6
  if (!v8Possible && !v5Possible) return fail("too small for either layout: [1, 4+C, N] (v8) or [1, N, 5+C] (v5)")
  if (v8Possible !== v5Possible) return v8Possible ? v8() : v5()
  if (classCount > 0) {
    const v8Fits = a === 4 + classCount
    const v5Fits = b === 5 + classCount
    if (v8Fits && !v5Fits) return v8()
    if (v5Fits && !v8Fits) return v5()
  }
  if (a < b) return v8()
  if (b < a) return v5()
  return fail(`layout is ambiguous for a square ${a}×${b} output; set layout to "v8" or "v5"`)
}

const className = (names: ReadonlyArray<string>, id: number): string => {
  const name = names[id]
  return name !== undefined && name.length > 0 ? name : `class_${id}`
}

/**
 * Decodes one YOLO output into detections: confidence filter, mapping to normalised frame
 * coordinates, dropping empty boxes, then greedy NMS (class-aware unless `classAgnostic`).
 * NMS runs on the normalised, frame-clipped boxes: IoU is unchanged by the per-axis affine mapping,
 * and clipping first keeps boxes lying wholly in the letterbox padding from taking NMS slots.
 */
export const decodeYolo = (
  output: OutputTensor,
  transform: FrameTransform,
  options: YoloOptions
): Result.Result<ReadonlyArray<RawDetection>, UnsupportedOutputShape> =>
  Result.flatMap(resolveYoloLayout(output.dims, options.layout, options.classNames.length), (geometry) => {
    const { layout, numBoxes: n, numClasses: c } = geometry
    const data = output.data
    const stride = layout === "v8" ? 4 + c : 5 + c
    if (data.length !== n * stride) {
      return Result.fail(
        new UnsupportedOutputShape({
          decoder: DECODER,
          dims: output.dims,
          reason: `data holds ${data.length} values, the shape needs ${n * stride}`
        })
      )
    }

    // Compared in float32, the output's own precision: a score printed as exactly the threshold is kept.
    const threshold = Math.fround(options.confidenceThreshold)
    const bestScore = new Float64Array(n)
    const bestClass = new Int32Array(n)
    if (layout === "v8") {
      // Channel-major walk: each class row is contiguous, so the scan stays cache-friendly.
      bestScore.fill(-Infinity)
      for (let k = 0; k < c; k++) {
        const row = (4 + k) * n
        for (let i = 0; i < n; i++) {
          const s = data[row + i]!
          if (s > bestScore[i]!) {
            bestScore[i] = s
            bestClass[i] = k
          }
        }
      }
    } else {
      for (let i = 0; i < n; i++) {
        const base = i * stride
        const objectness = data[base + 4]!
        // obj × cls ≤ obj for scores in [0, 1], so a low objectness rules the row out early.
        if (!(objectness >= threshold)) {
          bestScore[i] = -Infinity
          continue
        }
        let best = -Infinity
        let bestK = 0
        for (let k = 0; k < c; k++) {
          const s = data[base + 5 + k]!
          if (s > best) {
            best = s
            bestK = k
          }
        }
        bestScore[i] = Math.fround(objectness * best)
        bestClass[i] = bestK
      }
    }

    const boxes = new Float64Array(4 * n)
    const scores = new Float64Array(n)
    const classes = new Int32Array(n)
    let count = 0
    for (let i = 0; i < n; i++) {
      const score = bestScore[i]!
      if (!(score >= threshold)) continue
      let cx: number, cy: number, w: number, h: number
      if (layout === "v8") {
        cx = data[i]!
        cy = data[n + i]!
        w = data[2 * n + i]!
        h = data[3 * n + i]!
      } else {
        const base = i * stride
        cx = data[base]!
        cy = data[base + 1]!
        w = data[base + 2]!
        h = data[base + 3]!
      }
      if (!(Number.isFinite(cx) && Number.isFinite(cy) && Number.isFinite(w) && Number.isFinite(h))) continue
      const [x0, y0, x1, y1] = toNormalizedBox(transform, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
      if (!(x1 > x0 && y1 > y0)) continue
      boxes[4 * count] = x0
      boxes[4 * count + 1] = y0
      boxes[4 * count + 2] = x1
      boxes[4 * count + 3] = y1
      scores[count] = score
      classes[count] = bestClass[i]!
      count++
    }

    const kept = nonMaxSuppression(boxes.subarray(0, 4 * count), scores.subarray(0, count), classes.subarray(0, count), {
      iouThreshold: options.iouThreshold,
      maxDetections: options.maxDetections,
      classAgnostic: options.classAgnostic
    })

    const detections: Array<RawDetection> = []
    for (const k of kept) {
      const id = classes[k]!
      const score = scores[k]!
      detections.push({
        class_id: id,
        class_name: className(options.classNames, id),
        // Raw logits or sloppy exports can exceed 1; the contract allows only 0–1.
        confidence: score > 1 ? 1 : score < 0 ? 0 : score,
        bbox: [boxes[4 * k]!, boxes[4 * k + 1]!, boxes[4 * k + 2]!, boxes[4 * k + 3]!]
      })
    }
    return Result.succeed(detections)
  })
