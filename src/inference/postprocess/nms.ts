/**
 * Greedy non-maximum suppression over axis-aligned boxes that share one coordinate space.
 *
 * IoU is invariant under independent per-axis scaling and translation, so boxes may be in
 * model pixels, frame pixels or normalised frame coordinates — as long as all are in the same one.
 */

export interface NmsOptions {
  /** A box is suppressed when its IoU with a kept, higher-scoring box is strictly greater than this. */
  readonly iouThreshold: number
  /** At most this many boxes are kept (the highest-scoring survivors). */
  readonly maxDetections: number
  /** When true, boxes of different classes suppress each other too. */
  readonly classAgnostic: boolean
}

/**
 * Returns the indices of the kept boxes, highest score first (ties: lower index first).
 *
 * @param boxes `x0, y0, x1, y1` per box, `4 × n` values, `x0 ≤ x1` and `y0 ≤ y1`
 * @param scores one score per box
 * @param classIds one class per box; ignored when `classAgnostic`
 */
export const nonMaxSuppression = (
  boxes: Float64Array | Float32Array,
  scores: Float64Array | Float32Array,
  classIds: Int32Array,
  options: NmsOptions
): Int32Array => {
  const n = scores.length
  const limit = Math.max(0, Math.min(n, Math.floor(options.maxDetections)))
  if (limit === 0) return new Int32Array(0)

  const order = new Int32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  // Typed-array sort with a comparator avoids boxing; the index tie-break keeps the result deterministic.
  order.sort((a, b) => scores[b]! - scores[a]! || a - b)

  const areas = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    areas[i] = Math.max(0, boxes[4 * i + 2]! - boxes[4 * i]!) * Math.max(0, boxes[4 * i + 3]! - boxes[4 * i + 1]!)
  }

  const suppressed = new Uint8Array(n)
  const kept = new Int32Array(limit)
  let keptCount = 0
  const threshold = options.iouThreshold
  const agnostic = options.classAgnostic

  for (let oi = 0; oi < n && keptCount < limit; oi++) {
    const i = order[oi]!
    if (suppressed[i] === 1) continue
    kept[keptCount++] = i
    const ix0 = boxes[4 * i]!
    const iy0 = boxes[4 * i + 1]!
    const ix1 = boxes[4 * i + 2]!
    const iy1 = boxes[4 * i + 3]!
    const iArea = areas[i]!
    const iClass = classIds[i]!
    for (let oj = oi + 1; oj < n; oj++) {
      const j = order[oj]!
      if (suppressed[j] === 1 || (!agnostic && classIds[j] !== iClass)) continue
      const w = Math.min(ix1, boxes[4 * j + 2]!) - Math.max(ix0, boxes[4 * j]!)
      if (w <= 0) continue
      const h = Math.min(iy1, boxes[4 * j + 3]!) - Math.max(iy0, boxes[4 * j + 1]!)
      if (h <= 0) continue
      const inter = w * h
      const union = iArea + areas[j]! - inter
      if (union > 0 && inter / union > threshold) suppressed[j] = 1
    }
  }
  return keptCount === limit ? kept : kept.slice(0, keptCount)
}

/** Intersection over union of two `[x0, y0, x1, y1]` boxes; 0 when either is empty. */
export const iou = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number => {
  const w = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!)
  const h = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!)
  if (w <= 0 || h <= 0) return 0
  const inter = w * h
  const union = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter
  return union > 0 ? inter / union : 0
}
