import { describe, expect, it } from "@effect/vitest"
import { iou, nonMaxSuppression } from "../../src/inference/postprocess/nms.js"

const run = (
  boxes: ReadonlyArray<readonly [number, number, number, number]>,
  scores: ReadonlyArray<number>,
  classes: ReadonlyArray<number>,
  overrides: { iouThreshold?: number; maxDetections?: number; classAgnostic?: boolean } = {}
) =>
  Array.from(
    nonMaxSuppression(Float64Array.from(boxes.flat()), Float64Array.from(scores), Int32Array.from(classes), {
      iouThreshold: 0.5,
      maxDetections: 100,
      classAgnostic: false,
      ...overrides
    })
  )

describe("nonMaxSuppression", () => {
  it("keeps the higher score of two overlapping same-class boxes", () => {
    expect(run([[0, 0, 10, 10], [1, 1, 11, 11]], [0.6, 0.9], [0, 0])).toEqual([1])
  })

  it("suppresses only an IoU strictly above the threshold", () => {
    // IoU of these two is exactly 0.5.
    const boxes = [[0, 0, 3, 1], [1, 0, 4, 1]] as const
    expect(iou(boxes[0], boxes[1])).toBe(0.5)
    expect(run(boxes, [0.9, 0.8], [0, 0], { iouThreshold: 0.5 })).toEqual([0, 1])
    expect(run(boxes, [0.9, 0.8], [0, 0], { iouThreshold: 0.49 })).toEqual([0])
  })

  it("a suppressed box does not suppress others (greedy order)", () => {
    // 1 is suppressed by 0; 2 overlaps 1 but not 0, so it survives.
    expect(run([[0, 0, 10, 10], [4, 0, 14, 10], [9, 0, 19, 10]], [0.9, 0.8, 0.7], [0, 0, 0], { iouThreshold: 0.3 })).toEqual([
      0, 2
    ])
  })

  it("is class-aware unless asked not to be", () => {
    const boxes = [[0, 0, 10, 10], [0, 0, 10, 10]] as const
    expect(run(boxes, [0.9, 0.8], [0, 1])).toEqual([0, 1])
    expect(run(boxes, [0.9, 0.8], [0, 1], { classAgnostic: true })).toEqual([0])
  })

  it("orders by score, ties by index, and stops at maxDetections", () => {
    const boxes = [0, 1, 2, 3].map((i) => [i * 20, 0, i * 20 + 10, 10] as const)
    expect(run(boxes, [0.5, 0.7, 0.7, 0.9], [0, 0, 0, 0])).toEqual([3, 1, 2, 0])
    expect(run(boxes, [0.5, 0.7, 0.7, 0.9], [0, 0, 0, 0], { maxDetections: 2 })).toEqual([3, 1])
    expect(run([], [], [])).toEqual([])
  })
})
