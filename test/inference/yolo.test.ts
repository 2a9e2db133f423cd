import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { letterboxTransform } from "../../src/frames/transform.js"
import { makeOnnxSession } from "../../src/inference/OnnxSession.js"
import type { OutputTensor, RawDetection } from "../../src/inference/postprocess/types.js"
import { decodeYolo, resolveYoloLayout, type YoloOptions } from "../../src/inference/postprocess/yolo.js"
import { constantOutputModel, writeTempFile } from "../support/onnxBuilder.js"

// A 1280×720 frame letterboxed into 640×640: scale 0.5, 140 px of padding above and below.
const transform = letterboxTransform(1280, 720, 640, 640)

type Box = readonly [number, number, number, number]

/** A frame-pixel box as the model would report it: cx, cy, w, h in model-input pixels. */
const toModel = ([x0, y0, x1, y1]: Box): Box => [
  ((x0 + x1) / 2) * transform.scaleX + transform.padX,
  ((y0 + y1) / 2) * transform.scaleY + transform.padY,
  (x1 - x0) * transform.scaleX,
  (y1 - y0) * transform.scaleY
]

const normalised = ([x0, y0, x1, y1]: Box): Box => [x0 / 1280, y0 / 720, x1 / 1280, y1 / 720]

interface Candidate {
  readonly box: Box
  readonly scores: ReadonlyArray<number>
  readonly objectness?: number
}

/** `[1, 4 + C, N]`: row r holds attribute r of every box. */
const v8Tensor = (candidates: ReadonlyArray<Candidate>, numClasses: number): OutputTensor => {
  const n = candidates.length
  const data = new Float32Array((4 + numClasses) * n)
  candidates.forEach((c, i) => {
    toModel(c.box).forEach((v, r) => (data[r * n + i] = v))
    c.scores.forEach((s, k) => (data[(4 + k) * n + i] = s))
  })
  return { data, dims: [1, 4 + numClasses, n] }
}

/** `[1, N, 5 + C]`: one row per box. */
const v5Tensor = (candidates: ReadonlyArray<Candidate>, numClasses: number): OutputTensor => {
  const stride = 5 + numClasses
  const data = new Float32Array(candidates.length * stride)
  candidates.forEach((c, i) => {
    data.set([...toModel(c.box), c.objectness ?? 1, ...c.scores], i * stride)
  })
  return { data, dims: [1, candidates.length, stride] }
}

const options: YoloOptions = {
  layout: "auto",
  confidenceThreshold: 0.25,
  iouThreshold: 0.45,
  maxDetections: 100,
  classAgnostic: false,
  classNames: ["person", "car", "dog"]
}

const decoded = (output: OutputTensor, overrides: Partial<YoloOptions> = {}): ReadonlyArray<RawDetection> =>
  Result.getOrThrowWith(decodeYolo(output, transform, { ...options, ...overrides }), (e) => new Error(e.message))

const expectBox = (actual: ReadonlyArray<number> | undefined, expected: Box) => {
  expect(actual).toHaveLength(4)
  expected.forEach((v, i) => expect(actual?.[i]).toBeCloseTo(v, 6))
}

const boxA: Box = [100, 200, 300, 400]
const boxB: Box = [640, 100, 900, 500]
const boxC: Box = [10, 10, 50, 50]
// Overlaps boxP with IoU ≈ 0.82.
const boxP: Box = [400, 300, 600, 500]
const boxQ: Box = [410, 310, 610, 510]

const threeCandidates: ReadonlyArray<Candidate> = [
  { box: boxA, scores: [0.9, 0.05, 0.01], objectness: 1 },
  { box: boxB, scores: [0.1, 0.2, 0.8], objectness: 1 },
  { box: boxC, scores: [0.1, 0.2, 0.1], objectness: 1 }
]

describe("decodeYolo", () => {
  it("decodes the v8 layout into normalised frame boxes through the letterbox", () => {
    const detections = decoded(v8Tensor(threeCandidates, 3), { layout: "v8" })
    expect(detections.map((d) => [d.class_id, d.class_name])).toEqual([
      [0, "person"],
      [2, "dog"]
    ])
    expect(detections[0]?.confidence).toBeCloseTo(0.9, 6)
    expect(detections[1]?.confidence).toBeCloseTo(0.8, 6)
    expectBox(detections[0]?.bbox, normalised(boxA))
    expectBox(detections[1]?.bbox, normalised(boxB))
  })

  it("decodes the v5 layout with confidence = objectness × class score", () => {
    const detections = decoded(
      v5Tensor(
        [
          { box: boxA, scores: [0.75, 0.1, 0.1], objectness: 0.8 },
          { box: boxB, scores: [0.1, 0.1, 0.9], objectness: 0.5 },
          // Objectness alone is below the threshold, however confident the class.
          { box: boxC, scores: [1, 0, 0], objectness: 0.2 },
          // Each factor passes, the product does not.
          { box: boxP, scores: [0, 0.4, 0], objectness: 0.5 }
        ],
        3
      ),
      { layout: "v5" }
    )
    expect(detections.map((d) => d.class_name)).toEqual(["person", "dog"])
    expect(detections[0]?.confidence).toBeCloseTo(0.6, 6)
    expect(detections[1]?.confidence).toBeCloseTo(0.45, 6)
    expectBox(detections[0]?.bbox, normalised(boxA))
    expectBox(detections[1]?.bbox, normalised(boxB))
  })

  it("keeps a confidence equal to the threshold and drops one below it", () => {
    const output = v8Tensor(
      [
        { box: boxA, scores: [0.5] },
        { box: boxB, scores: [0.4999] }
      ],
      1
    )
    const detections = decoded(output, { confidenceThreshold: 0.5, classNames: ["person"] })
    expect(detections).toHaveLength(1)
    expectBox(detections[0]?.bbox, normalised(boxA))
    // 0.45 is not exact in float32; the model's 0.45 still meets a 0.45 threshold.
    const inexact = v8Tensor([{ box: boxA, scores: [0.45] }], 1)
    expect(decoded(inexact, { confidenceThreshold: 0.45, classNames: [] })).toHaveLength(1)
  })

  it("class-aware NMS keeps overlapping boxes of different classes and suppresses the same class", () => {
    const differentClasses = decoded(
      v8Tensor(
        [
          { box: boxP, scores: [0.9, 0, 0] },
          { box: boxQ, scores: [0, 0.8, 0] }
        ],
        3
      )
    )
    expect(differentClasses.map((d) => d.class_name)).toEqual(["person", "car"])

    const sameClass = decoded(
      v8Tensor(
        [
          { box: boxQ, scores: [0.7, 0, 0] },
          { box: boxP, scores: [0.9, 0, 0] },
          { box: boxA, scores: [0.6, 0, 0] }
        ],
        3
      )
    )
    expect(sameClass.map((d) => d.confidence.toFixed(2))).toEqual(["0.90", "0.60"])
    expectBox(sameClass[0]?.bbox, normalised(boxP))
  })

  it("class-agnostic NMS suppresses overlapping boxes whatever their class", () => {
    const output = v8Tensor(
      [
        { box: boxP, scores: [0.9, 0, 0] },
        { box: boxQ, scores: [0, 0.8, 0] }
      ],
      3
    )
    expect(decoded(output, { classAgnostic: true }).map((d) => d.class_name)).toEqual(["person"])
  })

  it("an IoU threshold above the overlap keeps both boxes", () => {
    const output = v8Tensor(
      [
        { box: boxP, scores: [0.9] },
        { box: boxQ, scores: [0.8] }
      ],
      1
    )
    expect(decoded(output, { iouThreshold: 0.9, classNames: [] })).toHaveLength(2)
  })

  it("returns at most maxDetections, highest confidence first", () => {
    const scores = [0.5, 0.9, 0.7, 0.6, 0.8]
    const output = v8Tensor(
      scores.map((s, i) => ({ box: [i * 200, 100, i * 200 + 100, 200] as const, scores: [s] })),
      1
    )
    const detections = decoded(output, { maxDetections: 3, classNames: [] })
    expect(detections.map((d) => d.confidence.toFixed(1))).toEqual(["0.9", "0.8", "0.7"])
    expect(decoded(output, { maxDetections: 0, classNames: [] })).toEqual([])
  })

  it("names classes without a name class_<id>", () => {
    const output = v8Tensor([{ box: boxA, scores: [0, 0, 0, 0, 0.9] }], 5)
    expect(decoded(output, { classNames: ["person", "car", ""] })[0]?.class_name).toBe("class_4")
    const empty = v8Tensor([{ box: boxA, scores: [0, 0, 0.9] }], 3)
    expect(decoded(empty, { classNames: ["a", "b", ""] })[0]?.class_name).toBe("class_2")
  })

  it("drops boxes that lie wholly in the letterbox padding and clamps boxes that cross the frame edge", () => {
    const n = 2
    const data = new Float32Array(5 * n)
    // Box 0: model y 20..100, inside the top padding (content starts at y = 140).
    ;[320, 60, 100, 80].forEach((v, r) => (data[r * n] = v))
    // Box 1: model x -50..150, sticks out of the left edge.
    ;[50, 320, 200, 100].forEach((v, r) => (data[r * n + 1] = v))
    data[4 * n] = 0.9
    data[4 * n + 1] = 0.8
    const detections = decoded({ data, dims: [1, 5, n] }, { classNames: [] })
    expect(detections).toHaveLength(1)
    expectBox(detections[0]?.bbox, [0, (270 - 140) / 360, 150 / 640, (370 - 140) / 360])
  })

  it("ignores non-finite boxes and clamps confidences above 1", () => {
    const output = v8Tensor(
      [
        { box: boxA, scores: [3] },
        { box: boxB, scores: [0.9] }
      ],
      1
    )
    output.data[1] = Number.NaN
    const detections = decoded(output, { classNames: [] })
    expect(detections).toHaveLength(1)
    expect(detections[0]?.confidence).toBe(1)
  })

  it("auto layout decodes both layouts", () => {
    expect(decoded(v8Tensor(threeCandidates, 3)).map((d) => d.class_name)).toEqual(["person", "dog"])
    expect(decoded(v5Tensor(threeCandidates, 3)).map((d) => d.class_name)).toEqual(["person", "dog"])
    // Without class names only the shape decides.
    expect(decoded(v5Tensor(threeCandidates, 3), { classNames: [] })).toHaveLength(2)
  })

  it("an output it cannot interpret is an error naming the shape", () => {
    const bad = decodeYolo({ data: new Float32Array(24), dims: [1, 2, 3, 4] }, transform, options)
    expect(Result.isFailure(bad)).toBe(true)
    if (Result.isFailure(bad)) {
      expect(bad.failure._tag).toBe("UnsupportedOutputShape")
      expect(bad.failure.message).toContain("[1, 2, 3, 4]")
    }
    const sizeMismatch = decodeYolo({ data: new Float32Array(10), dims: [1, 7, 3] }, transform, options)
    expect(Result.isFailure(sizeMismatch) && sizeMismatch.failure.message).toContain("data holds 10 values, the shape needs 21")
    const batch2 = decodeYolo({ data: new Float32Array(2 * 7 * 3), dims: [2, 7, 3] }, transform, options)
    expect(Result.isFailure(batch2)).toBe(true)
    const tooFew = decodeYolo({ data: new Float32Array(12), dims: [1, 4, 3] }, transform, { ...options, layout: "v8" })
    expect(Result.isFailure(tooFew) && tooFew.failure.message).toContain("v8 layout needs at least 5 rows")
    const empty = decodeYolo({ data: new Float32Array(0), dims: [1, 84, 0] }, transform, options)
    expect(Result.getOrThrow(empty)).toEqual([])
  })
})

describe("resolveYoloLayout", () => {
  const layoutOf = (dims: ReadonlyArray<number>, classCount: number) =>
    Result.match(resolveYoloLayout(dims, "auto", classCount), { onFailure: (e) => e.message, onSuccess: (g) => g })

  it("picks by shape: the smaller non-batch dimension is the per-box attribute axis", () => {
    expect(layoutOf([1, 84, 8400], 0)).toEqual({ layout: "v8", numBoxes: 8400, numClasses: 80 })
    expect(layoutOf([1, 25200, 85], 0)).toEqual({ layout: "v5", numBoxes: 25200, numClasses: 80 })
    expect(layoutOf([84, 8400], 80)).toEqual({ layout: "v8", numBoxes: 8400, numClasses: 80 })
  })

  it("lets the class count decide when it fits exactly one layout", () => {
    // 3 boxes × (5 + 3) would read as v8 by size alone.
    expect(layoutOf([1, 3, 8], 3)).toEqual({ layout: "v5", numBoxes: 3, numClasses: 3 })
    expect(layoutOf([1, 7, 7], 3)).toEqual({ layout: "v8", numBoxes: 7, numClasses: 3 })
    expect(layoutOf([1, 8, 8], 3)).toEqual({ layout: "v5", numBoxes: 8, numClasses: 3 })
  })

  it("takes the only possible layout when the other cannot fit", () => {
    // Five columns cannot hold box + objectness + a class, so [1, 5, 5] can only be v8.
    expect(layoutOf([1, 5, 5], 0)).toEqual({ layout: "v8", numBoxes: 5, numClasses: 1 })
    expect(layoutOf([1, 2, 6], 0)).toEqual({ layout: "v5", numBoxes: 2, numClasses: 1 })
    expect(layoutOf([1, 4, 5], 0)).toContain("too small for either layout")
  })

  it("rejects a square output with nothing to break the tie", () => {
    expect(layoutOf([1, 8, 8], 0)).toContain("ambiguous")
  })

  it("an explicit layout overrides the shape", () => {
    expect(Result.getOrThrow(resolveYoloLayout([1, 8400, 84], "v8", 0))).toEqual({
      layout: "v8",
      numBoxes: 84,
      numClasses: 8396
    })
  })
})

describe("decodeYolo on real ONNX Runtime output", () => {
  const runConstantModel = (output: OutputTensor) =>
    Effect.gen(function* () {
      const path = yield* writeTempFile(
        "yolo.onnx",
        constantOutputModel({
          inputName: "images",
          inputDims: [1, 3, 32, 32],
          outputName: "output0",
          outputDims: output.dims,
          values: output.data
        })
      )
      const session = yield* makeOnnxSession({ modelPath: path, executionProviders: ["cpu"], intraOpThreads: 1 })
      const result = yield* session.run({ images: { data: new Float32Array(3 * 32 * 32), dims: [1, 3, 32, 32], type: "float32" } })
      const tensor = result["output0"]
      if (tensor === undefined) return yield* Effect.die("no output0")
      return tensor
    })

  it.effect("v8", () =>
    Effect.gen(function* () {
      const tensor = yield* runConstantModel(v8Tensor(threeCandidates, 3))
      expect(tensor.dims).toEqual([1, 7, 3])
      const detections = decoded(tensor)
      expect(detections.map((d) => d.class_name)).toEqual(["person", "dog"])
      expectBox(detections[0]?.bbox, normalised(boxA))
      expectBox(detections[1]?.bbox, normalised(boxB))
    })
  )

  it.effect("v5", () =>
    Effect.gen(function* () {
      const tensor = yield* runConstantModel(
        v5Tensor(
          [
            { box: boxP, scores: [0.9, 0, 0], objectness: 1 },
            { box: boxQ, scores: [0.8, 0, 0], objectness: 1 },
            { box: boxB, scores: [0, 1, 0], objectness: 0.7 }
          ],
          3
        )
      )
      expect(tensor.dims).toEqual([1, 3, 8])
      const detections = decoded(tensor)
      expect(detections.map((d) => [d.class_name, d.confidence.toFixed(2)])).toEqual([
        ["person", "0.90"],
        ["car", "0.70"]
      ])
      expectBox(detections[0]?.bbox, normalised(boxP))
      expectBox(detections[1]?.bbox, normalised(boxB))
    })
  )
})
