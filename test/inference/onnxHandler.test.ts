import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Scope } from "effect"
import * as YAML from "yaml"
import { type LoadedModelConfig, loadModelConfig } from "../../src/config/ModelConfig.js"
import { type DetectionOutput, InferenceHandler, type InferenceOutput } from "../../src/inference/InferenceHandler.js"
import type { Frame } from "../../src/frames/Frame.js"
import * as OnnxHandler from "../../src/inference/OnnxHandler.js"
import {
  layerWith as schedulerLayerWith,
  make as makeScheduler,
  Scheduler,
  type SchedulerShape
} from "../../src/inference/Scheduler.js"
import { call, request, startContainer, tempDir } from "../support/harness.js"
import { greyNv12 } from "../support/nv12.js"
import { constantOutputModel, encodeModel, identityModel } from "../support/onnxBuilder.js"
import { onLinux, startedSince, threadNices } from "../support/threads.js"

type Box = readonly [number, number, number, number]

// The CUDA provider ships as a separate shared library next to the ORT binding; absent on CPU-only installs.
const cudaProviderInstalled = (() => {
  const ortDir = path.dirname(createRequire(import.meta.url).resolve("onnxruntime-node"))
  return fs.existsSync(path.join(ortDir, "..", "bin", "napi-v6", process.platform, process.arch, "libonnxruntime_providers_cuda.so"))
})()
type MemoryFrame = Omit<Frame, "reference">

// ---- fixtures ---------------------------------------------------------------------------------

const nv12Frame: (width: number, height: number, bright?: Box) => MemoryFrame = greyNv12

/** Writes model.yaml (the minimal required keys patched with `fields`), the weights and extra files. */
const modelDir = (
  fields: Readonly<Record<string, unknown>>,
  weights: Uint8Array | undefined,
  files: Readonly<Record<string, string>> = {}
) =>
  Effect.gen(function*() {
    const dir = yield* tempDir("ruth-onnx-handler-")
    const yaml = { model_id: "test-model", model_name: "Test", model_version: "1", model_weights: "model.onnx", ...fields }
    fs.writeFileSync(path.join(dir, "model.yaml"), YAML.stringify(yaml))
    if (weights !== undefined) fs.writeFileSync(path.join(dir, "model.onnx"), weights)
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text)
    return dir
  })

const load = (dir: string) => loadModelConfig(dir).pipe(Effect.orDie)

const buildHandler = (loaded: LoadedModelConfig, options: OnnxHandler.OnnxHandlerOptions = { gpuAvailable: false }) =>
  Layer.build(OnnxHandler.layer(loaded, options)).pipe(Effect.map((context) => Context.get(context, InferenceHandler)))

const startError = (loaded: LoadedModelConfig, options?: OnnxHandler.OnnxHandlerOptions) =>
  Effect.flip(buildHandler(loaded, options))

/** A container serving `loaded` through the ONNX handler, with in-memory frames. */
const serve = (loaded: LoadedModelConfig, frames: ReadonlyMap<string, MemoryFrame>) =>
  Effect.gen(function*() {
    const handler = yield* buildHandler(loaded)
    return yield* startContainer({ handler, frames })
  })

const ask = (socketPath: string, ref: string, frame: MemoryFrame, overrides: Record<string, unknown> = {}) =>
  Effect.promise(() =>
    call(
      socketPath,
      request(ref, { frame_metadata: { width: frame.width, height: frame.height, format: "NV12", frame_id: 7 }, ...overrides })
    )
  )

interface WireDetection {
  readonly class_id: number
  readonly class_name: string
  readonly confidence: number
  readonly bbox: Box
}

const detectionsOf = (reply: Record<string, unknown>): ReadonlyArray<WireDetection> => {
  expect(reply.error).toBeNull()
  return reply.detections as ReadonlyArray<WireDetection>
}

const expectBox = (actual: Box, expected: Box, digits = 6) =>
  actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, digits))

/** A handler's result as `{ detections, metadata }`, whichever form it returned. */
const outputOf = (out: InferenceOutput | ReadonlyArray<DetectionOutput>): InferenceOutput =>
  "detections" in out ? out : { detections: out }

// ---- YOLO-style constant models ---------------------------------------------------------------

// Model input 64×64; a 128×64 frame letterboxes to 64×32 content at scale 0.5 with 16 px of padding
// above and below, so model (x, y) ↦ frame (2x, 2(y − 16)).
const INPUT = 64
const FRAME = nv12Frame(128, 64)
const frames = new Map([["/dev/shm/cam1", FRAME]])

/** cx, cy, w, h in model pixels. */
interface Candidate {
  readonly box: Box
  readonly scores: readonly [number, number]
  readonly objectness?: number
}

const candidates: ReadonlyArray<Candidate> = [
  // → frame x 32..96, y 16..48 → [0.25, 0.25, 0.75, 0.75]
  { box: [32, 32, 32, 16], scores: [0.9, 0.05] },
  // Overlaps the first (IoU ≈ 0.94), same class, lower score: NMS removes it.
  { box: [33, 32, 32, 16], scores: [0.8, 0.05] },
  // → frame x 24..40, y 8..24 → [0.1875, 0.125, 0.3125, 0.375]
  { box: [16, 24, 8, 8], scores: [0.1, 0.6] },
  // Below the model.yaml threshold (0.5), above a request's 0.25.
  { box: [48, 40, 8, 8], scores: [0.3, 0.05] }
]
const BOX_A: Box = [0.25, 0.25, 0.75, 0.75]
const BOX_C: Box = [0.1875, 0.125, 0.3125, 0.375]
const BOX_D: Box = [(44 * 2) / 128, ((36 - 16) * 2) / 64, (52 * 2) / 128, ((44 - 16) * 2) / 64]

/** `[1, 4 + C, N]`: row r holds attribute r of every box. */
const v8Values = (): Float32Array => {
  const n = candidates.length
  const data = new Float32Array(6 * n)
  candidates.forEach((c, i) => [...c.box, ...c.scores].forEach((v, r) => (data[r * n + i] = v)))
  return data
}

/** `[1, N, 5 + C]`: one row per box, confidence = objectness × class score. */
const v5Values = (): Float32Array =>
  Float32Array.from(candidates.flatMap((c) => [...c.box, c.objectness ?? 1, ...c.scores]))

const yoloV8Model = constantOutputModel({
  inputName: "images",
  inputDims: [1, 3, INPUT, INPUT],
  outputName: "output0",
  outputDims: [1, 6, candidates.length],
  values: v8Values()
})

const yoloYaml = (extra: Readonly<Record<string, unknown>> = {}) => ({
  preprocessing: { input_size: [INPUT, INPUT] },
  postprocess: { kind: "yolo" },
  output_schema: { class_names: ["person", "car"] },
  ...extra
})

describe("OnnxHandler: YOLO models through a real container", () => {
  it.live("decodes known boxes through the letterbox of a non-square frame, applies NMS and names classes", () =>
    Effect.gen(function*() {
      const loaded = yield* load(yield* modelDir(yoloYaml(), yoloV8Model))
      const c = yield* serve(loaded, frames)
      const reply = yield* ask(c.socketPath, "/dev/shm/cam1", FRAME)
      const detections = detectionsOf(reply)
      expect(detections.map((d) => [d.class_id, d.class_name])).toEqual([[0, "person"], [1, "car"]])
      expect(detections[0]!.confidence).toBeCloseTo(0.9, 6)
      expect(detections[1]!.confidence).toBeCloseTo(0.6, 6)
      expectBox(detections[0]!.bbox, BOX_A)
      expectBox(detections[1]!.bbox, BOX_C)
      expect(reply.metadata).toMatchObject({ device: "cpu", input_size: [INPUT, INPUT], frame_width: 128, frame_height: 64 })
      const meta = reply.metadata as Record<string, unknown>
      for (const key of ["preprocess_ms", "session_wait_ms", "handoff_ms", "inference_ms", "postprocess_ms"]) expect(meta[key]).toBeGreaterThanOrEqual(0)
    }))

  it.live("runs under the scheduler: a frame beyond the freshness budget (the container's or the request's) is FRAME_EXPIRED, never run", () =>
    Effect.gen(function*() {
      const loaded = yield* load(yield* modelDir(yoloYaml(), yoloV8Model))
      const handler = yield* Layer.build(OnnxHandler.layer(loaded, { gpuAvailable: false }).pipe(
        Layer.provide(schedulerLayerWith({ maxFrameAgeMs: 1_000 }))
      )).pipe(Effect.map((context) => Context.get(context, InferenceHandler)))
      const c = yield* startContainer({ handler, frames })
      const now = Date.now() / 1000
      const old = yield* ask(c.socketPath, "/dev/shm/cam1", FRAME, { request_id: "old", timestamp: now - 5 })
      expect(old).toMatchObject({ request_id: "old", camera_id: "camera_1", frame_id: 7, detections: [], error_code: "FRAME_EXPIRED" })
      const tight = yield* ask(c.socketPath, "/dev/shm/cam1", FRAME, {
        request_id: "tight",
        timestamp: now - 0.5,
        config: { max_frame_age_ms: 100 }
      })
      expect(tight).toMatchObject({ request_id: "tight", error_code: "FRAME_EXPIRED", error: expect.stringContaining("budget is 100 ms") })
      const fresh = yield* ask(c.socketPath, "/dev/shm/cam1", FRAME, { request_id: "fresh", timestamp: Date.now() / 1000 })
      expect(detectionsOf(fresh)).toHaveLength(2)
    }))

  it.live("request config overrides confidence_threshold and nms_iou_threshold; invalid overrides are ignored", () =>
    Effect.gen(function*() {
      const loaded = yield* load(yield* modelDir(yoloYaml({ confidence_threshold: 0.5, nms_iou_threshold: 0.45 }), yoloV8Model))
      const c = yield* serve(loaded, frames)
      const classes = (r: Record<string, unknown>) => detectionsOf(r).map((d) => d.confidence.toFixed(2))

      const strict = yield* ask(c.socketPath, "/dev/shm/cam1", FRAME, { config: { confidence_threshold: 0.7 } })
      expect(classes(strict)).toEqual(["0.90"])

      const loose = yield* ask(c.socketPath, "/dev/shm/cam1", FRAME, { config: { confidence_threshold: 0.25 } })
      expect(classes(loose)).toEqual(["0.90", "0.60", "0.30"])
      expectBox(detectionsOf(loose)[2]!.bbox, BOX_D)

      const noNms = yield* ask(c.socketPath, "/dev/shm/cam1", FRAME, { config: { nms_iou_threshold: 0.99 } })
      expect(classes(noNms)).toEqual(["0.90", "0.80", "0.60"])

      // Out of range or not a number: model.yaml's thresholds apply.
      const ignored = yield* ask(c.socketPath, "/dev/shm/cam1", FRAME, {
        config: { confidence_threshold: 1.5, nms_iou_threshold: "none" }
      })
      expect(classes(ignored)).toEqual(["0.90", "0.60"])
    }))

  it.live("reads the v5 layout (objectness × class score)", () =>
    Effect.gen(function*() {
      const model = constantOutputModel({
        inputName: "images",
        inputDims: [1, 3, INPUT, INPUT],
        outputName: "output0",
        outputDims: [1, candidates.length, 7],
        values: v5Values()
      })
      const loaded = yield* load(yield* modelDir(yoloYaml({ postprocess: { kind: "yolo", layout: "v5" } }), model))
      const c = yield* serve(loaded, frames)
      const detections = detectionsOf(yield* ask(c.socketPath, "/dev/shm/cam1", FRAME))
      expect(detections.map((d) => d.class_name)).toEqual(["person", "car"])
      expectBox(detections[0]!.bbox, BOX_A)
      expectBox(detections[1]!.bbox, BOX_C)
    }))

  it.live("takes class names from output_schema.class_names_file", () =>
    Effect.gen(function*() {
      const dir = yield* modelDir(
        yoloYaml({ output_schema: { class_names_file: "classes.txt" } }),
        yoloV8Model,
        { "classes.txt": "forklift\nhelmet\n" }
      )
      const c = yield* serve(yield* load(dir), frames)
      const detections = detectionsOf(yield* ask(c.socketPath, "/dev/shm/cam1", FRAME))
      expect(detections.map((d) => d.class_name)).toEqual(["forklift", "helmet"])
    }))

  it.live("a frame preprocessing cannot take (a handler test's frame with too few bytes) fails the request with INFERENCE_FAILED", () =>
    Effect.gen(function*() {
      const loaded = yield* load(yield* modelDir(yoloYaml(), yoloV8Model))
      const short = { ...FRAME, data: FRAME.data.subarray(0, FRAME.width * FRAME.height) }
      const c = yield* serve(loaded, new Map([["/dev/shm/short", short]]))
      const reply = yield* ask(c.socketPath, "/dev/shm/short", short)
      expect(reply.error_code).toBe("INFERENCE_FAILED")
      expect(reply.error).toContain(
        `preprocessing failed: preprocess: NV12 ${FRAME.width}x${FRAME.height} stride ${FRAME.width} needs ${FRAME.data.length} bytes, got ${FRAME.width * FRAME.height}`
      )
    }))

  it.live("an output the post-processor cannot read fails the request with INFERENCE_FAILED (warm-up off)", () =>
    Effect.gen(function*() {
      const model = encodeModel({
        inputs: [{ name: "images", elemType: "float32", dims: [1, 3, INPUT, INPUT] }],
        // Symbolic dims pass the start-up shape check; the real [1, 3, 3] is too small for either layout.
        outputs: [{ name: "output0", elemType: "float32", dims: ["a", "b", "c"] }],
        initializers: [{ name: "k", dims: [1, 3, 3], values: new Float32Array(9) }],
        nodes: [
          { opType: "ReduceSum", inputs: ["images"], outputs: ["s"], attributes: [{ name: "keepdims", int: 0 }] },
          { opType: "Mul", inputs: ["s", "k"], outputs: ["output0"] }
        ]
      })
      const loaded = yield* load(yield* modelDir(yoloYaml({ backend: { warmup_runs: 0 } }), model))
      const c = yield* serve(loaded, frames)
      const reply = yield* ask(c.socketPath, "/dev/shm/cam1", FRAME)
      expect(reply.error_code).toBe("INFERENCE_FAILED")
      expect(reply.error).toContain("postprocess yolo: yolo: cannot interpret output of shape [1, 3, 3]")
      expect(reply.detections).toEqual([])

      // With a warm-up run the same model is refused at start-up instead.
      const warmed = yield* load(yield* modelDir(yoloYaml({ backend: { warmup_runs: 1 } }), model))
      const error = yield* startError(warmed)
      expect(error.message).toContain("postprocess.kind yolo cannot read the model's output")
    }))
})

// ---- start-up refusals ------------------------------------------------------------------------

describe("OnnxHandler: refuses to start a model it cannot serve", () => {
  const fixedInput = (dims: ReadonlyArray<number | string>, elemType: "float32" | "uint8" = "float32") =>
    identityModel({ inputName: "images", outputName: "output0", elemType, dims })

  const refusal = (fields: Readonly<Record<string, unknown>>, weights: Uint8Array) =>
    Effect.gen(function*() {
      const loaded = yield* load(yield* modelDir(fields, weights))
      const error = yield* startError(loaded)
      expect(error._tag).toBe("BackendStartError")
      expect(error.message.startsWith("model 'test-model' cannot start: ")).toBe(true)
      return error.message
    })

  // The checks of a model's inputs and outputs against model.yaml are onnxHandler.fake.test.ts's (no ORT needed).
  it.effect("a model whose input does not fit model.yaml, read by ORT itself: refused naming both", () =>
    Effect.gen(function*() {
      const message = yield* refusal({ preprocessing: { input_size: [32, 32] } }, fixedInput([1, 3, 64, 64]))
      expect(message).toContain("model input 'images' [1, 3, 64, 64] expects a 64x64 (width x height) image")
      expect(message).toContain("preprocessing.input_size is 32x32")
    }))

  it.effect("missing weights: loadModelConfig refuses, and weights gone by start-up are reported", () =>
    Effect.gen(function*() {
      const dir = yield* modelDir({}, undefined)
      const configError = yield* Effect.flip(loadModelConfig(dir))
      expect(configError.kind).toBe("missing_weights")

      const present = yield* modelDir({ preprocessing: { input_size: [32, 32] } }, fixedInput([1, 3, 32, 32]))
      const loaded = yield* load(present)
      fs.rmSync(loaded.weightsPath)
      const error = yield* startError(loaded)
      expect(error.message).toContain(`failed to load ONNX model ${loaded.weightsPath}: file does not exist`)
    }))

  it.effect("model_type pytorch: loadModelConfig refuses, and so does the backend", () =>
    Effect.gen(function*() {
      const dir = yield* modelDir({ model_type: "pytorch" }, fixedInput([1, 3, 32, 32]))
      const configError = yield* Effect.flip(loadModelConfig(dir))
      expect(configError.message).toContain("model_type 'pytorch' is not supported by this runtime")

      const loaded = yield* load(yield* modelDir({}, fixedInput([1, 3, 32, 32])))
      const error = yield* startError({ ...loaded, config: { ...loaded.config, model_type: "pytorch" } })
      expect(error.message).toBe(
        "model 'test-model' cannot start: model_type 'pytorch' is not supported by this runtime; export the model to ONNX and set model_type: onnx"
      )
    }))

  it.effect("cuda without a GPU: refused when required or when fallback is forbidden, CPU otherwise", () =>
    Effect.gen(function*() {
      const model = fixedInput([1, 3, 32, 32])
      const base = { preprocessing: { input_size: [32, 32] } }
      const required = yield* load(yield* modelDir({ ...base, resource_requirements: { gpu_required: true } }, model))
      expect((yield* startError(required)).message).toContain(
        "requires a GPU (resource_requirements.gpu_required: true) but none is available"
      )
      const noFallback = yield* load(yield* modelDir({
        ...base,
        backend: { execution_providers: ["cuda"] },
        resource_requirements: { cpu_fallback_allowed: false }
      }, model))
      expect((yield* startError(noFallback)).message).toContain("forbids CPU fallback")

      const fallback = yield* load(yield* modelDir({ ...base, backend: { execution_providers: ["cuda"] } }, model))
      const handler = yield* buildHandler(fallback)
      const out = yield* handler.infer(request("/dev/shm/x"), { ...nv12Frame(32, 32), reference: "/dev/shm/x" })
      expect(outputOf(out).metadata).toMatchObject({ device: "cpu" })
    }))

  it.effect.skipIf(cudaProviderInstalled)("a GPU that ORT cannot use: CPU when fallback is allowed, refused otherwise", () =>
    Effect.gen(function*() {
      const model = fixedInput([1, 3, 32, 32])
      const base = { preprocessing: { input_size: [32, 32] }, backend: { execution_providers: ["cuda"] } }
      const fallback = yield* load(yield* modelDir(base, model))
      const handler = yield* buildHandler(fallback, { gpuAvailable: true })
      const out = yield* handler.infer(request("/dev/shm/x"), { ...nv12Frame(32, 32), reference: "/dev/shm/x" })
      expect(outputOf(out).metadata).toMatchObject({ device: "cpu" })

      const strict = yield* load(yield* modelDir({ ...base, resource_requirements: { cpu_fallback_allowed: false } }, model))
      const error = yield* startError(strict, { gpuAvailable: true })
      expect(error.message).toContain("cuda was requested but its execution provider is unavailable")
      expect(error.message).toContain("CPU fallback is not allowed (resource_requirements.cpu_fallback_allowed: false)")
    }))
})

// ---- concurrency and lifecycle ----------------------------------------------------------------

// Mean over the three channels via a 1×1 convolution: [1, 3, H, W] → [1, 1, H, W], so the
// db_text decoder finds exactly the bright rectangle of the frame.
// `batch` "N" makes the batch dimension dynamic: the test graph for batching.
const channelMeanModel = (size: number, batch: number | string = 1): Uint8Array =>
  encodeModel({
    inputs: [{ name: "image", elemType: "float32", dims: [batch, 3, size, size] }],
    outputs: [{ name: "map", elemType: "float32", dims: [batch, 1, size, size] }],
    initializers: [{ name: "w", dims: [1, 3, 1, 1], values: Float32Array.of(1 / 3, 1 / 3, 1 / 3) }],
    nodes: [{ opType: "Conv", inputs: ["image", "w"], outputs: ["map"] }]
  })

const brightYaml = (size: number) => ({
  preprocessing: { input_size: [size, size], resize: "stretch" },
  // A tiny unclip ratio keeps the box on the rectangle's own pixels.
  postprocess: { kind: "db_text", threshold: 0.5, box_threshold: 0.6, unclip_ratio: 0.0001, min_area: 4 },
  output_schema: { class_names: ["blob"] }
})

describe("OnnxHandler: concurrency and lifecycle", () => {
  const size = 128
  const rects = Array.from({ length: 16 }, (_, i): Box => {
    const x0 = 8 + (i % 4) * 28
    const y0 = 8 + Math.floor(i / 4) * 28
    return [x0, y0, x0 + 8 + (i % 3), y0 + 6 + (i % 2) * 2]
  })
  const memory = new Map(rects.map((r, i) => [`/dev/shm/cam${i}`, nv12Frame(size, size, r)]))
  const expectOwnBox = (detections: ReadonlyArray<{ readonly bbox: Box; readonly class_name: string }>, i: number) => {
    expect(detections).toHaveLength(1)
    expect(detections[0]!.class_name).toBe("blob")
    const r = rects[i]!
    // The 0.0001 unclip ratio still grows the box by a few millionths.
    expectBox(detections[0]!.bbox, [r[0] / size, r[1] / size, r[2] / size, r[3] / size], 4)
  }

  it.live("16 concurrent requests with different frames each get their own frame's box", () =>
    Effect.gen(function*() {
      const loaded = yield* load(yield* modelDir(brightYaml(size), channelMeanModel(size)))
      const c = yield* serve(loaded, memory)
      const replies = yield* Effect.forEach(
        rects,
        (_, i) => ask(c.socketPath, `/dev/shm/cam${i}`, memory.get(`/dev/shm/cam${i}`)!),
        { concurrency: "unbounded" }
      )
      replies.forEach((reply, i) => expectOwnBox(detectionsOf(reply), i))
    }))

  // Over the socket these requests happened to reach ORT one at a time; started together, all 16 are
  // preprocessed before ORT runs any of them, so a shared tensor buffer would give every request the last frame.
  it.live("16 infer calls started together, all waiting on ORT at once, keep their own tensors", () =>
    Effect.gen(function*() {
      const handler = yield* buildHandler(yield* load(yield* modelDir(brightYaml(size), channelMeanModel(size))))
      const outputs = yield* Effect.forEach(
        rects,
        (_, i) => handler.infer(request(`/dev/shm/cam${i}`), { ...memory.get(`/dev/shm/cam${i}`)!, reference: `/dev/shm/cam${i}` }),
        { concurrency: "unbounded" }
      )
      outputs.forEach((out, i) => expectOwnBox(outputOf(out).detections as ReadonlyArray<WireDetection>, i))
    }))

  /** 16 cameras' requests started together through `handler.infer`; each must get its own frame's box. */
  const inferAll = (handler: InferenceHandler["Service"]) =>
    Effect.forEach(
      rects,
      (_, i) =>
        Effect.map(
          handler.infer(request(`/dev/shm/cam${i}`, { camera_id: `cam${i}` }), { ...memory.get(`/dev/shm/cam${i}`)!, reference: `/dev/shm/cam${i}` }),
          outputOf
        ),
      { concurrency: "unbounded" }
    )
  const batchSizes = (outputs: ReadonlyArray<InferenceOutput>) => outputs.map((o) => (o.metadata?.["batch_size"] as number | undefined) ?? 1)

  it.live("scheduling.max_batch with a dynamic-batch model: frames of different cameras run as one batch, each camera gets its own detections", () =>
    Effect.gen(function*() {
      const handler = yield* buildHandler(
        yield* load(yield* modelDir({ ...brightYaml(size), scheduling: { max_batch: 4 } }, channelMeanModel(size, "N")))
      )
      const outputs = yield* inferAll(handler)
      outputs.forEach((out, i) => expectOwnBox(out.detections as ReadonlyArray<WireDetection>, i))
      // The first ran alone (nothing waited); the 15 that waited behind it ran in batches of up to 4.
      const sizes = batchSizes(outputs)
      expect(Math.max(...sizes)).toBe(4)
      expect(sizes.filter((n) => n > 1).length).toBeGreaterThanOrEqual(12)
    }))

  it.live("through a container: its scheduler batches the ONNX backend's requests; answers match the unbatched ones", () =>
    Effect.gen(function*() {
      const loaded = yield* load(yield* modelDir(brightYaml(size), channelMeanModel(size, "N")))
      const scheduler = yield* makeScheduler({ maxBatch: 4 })
      const handler = yield* Layer.build(OnnxHandler.layer(loaded, { gpuAvailable: false }).pipe(
        Layer.provide(Layer.succeed(Scheduler, scheduler))
      )).pipe(Effect.map((context) => Context.get(context, InferenceHandler)))
      // Told each time the container has queued a request (after its synchronous part: admission, queueing).
      const allWaiting = yield* Deferred.make<void>()
      const watched: SchedulerShape = {
        ...scheduler,
        run: (ticket, work) =>
          Effect.suspend(() => {
            queueMicrotask(() => {
              if (scheduler.waiting() >= rects.length) Deferred.doneUnsafe(allWaiting, Effect.void)
            })
            return scheduler.run(ticket, work)
          })
      }
      const c = yield* startContainer({ handler, frames: memory, scheduler: watched })
      // The model busy with another camera's turn until all 16 requests wait for it.
      const busy = yield* Deferred.make<void>()
      yield* Effect.forkChild(scheduler.run({ camera_id: "other", timestamp: Date.now() / 1000 }, Deferred.await(busy)))
      const replies = yield* Effect.forkChild(Effect.forEach(
        rects,
        (_, i) => ask(c.socketPath, `/dev/shm/cam${i}`, memory.get(`/dev/shm/cam${i}`)!, { camera_id: `cam${i}` }),
        { concurrency: "unbounded" }
      ))
      yield* Deferred.await(allWaiting)
      yield* Deferred.succeed(busy, undefined)
      const answers = yield* Fiber.join(replies)
      answers.forEach((reply, i) => expectOwnBox(detectionsOf(reply), i))
      const sizes = answers.map((r) => ((r.metadata as Record<string, unknown>)["batch_size"] as number | undefined) ?? 1)
      expect(sizes).toEqual(rects.map(() => 4))
    }))

  it.live("scheduling.streams: two sessions serve at once (with batches too), every answer its own frame's", () =>
    Effect.gen(function*() {
      const handler = yield* buildHandler(
        yield* load(yield* modelDir({ ...brightYaml(size), scheduling: { streams: 2, max_batch: 2 } }, channelMeanModel(size, "N")))
      )
      const outputs = yield* inferAll(handler)
      outputs.forEach((out, i) => expectOwnBox(out.detections as ReadonlyArray<WireDetection>, i))
      expect(Math.max(...batchSizes(outputs))).toBe(2)
    }))

  it.effect.runIf(onLinux)("backend.pool_thread_nice: onnxruntime's pool threads run at that nice value; 0 leaves them alone", () =>
    Effect.gen(function*() {
      const size = 32
      const frame = { ...nv12Frame(size, size, [4, 4, 12, 12]), reference: "/dev/shm/x" }
      for (const nice of [9, 0]) {
        const loaded = yield* load(
          yield* modelDir({ ...brightYaml(size), backend: { intra_op_threads: 3, pool_thread_nice: nice } }, channelMeanModel(size))
        )
        const before = threadNices()
        const scope = yield* Scope.make()
        const handler = yield* buildHandler(loaded).pipe(Scope.provide(scope))
        const started = [...startedSince(before).values()]
        // The session's worker thread and at least two pool threads.
        expect(started.length).toBeGreaterThanOrEqual(3)
        expect(started.filter((n) => n === nice).length).toBeGreaterThanOrEqual(nice === 0 ? 3 : 2)
        expect(started.filter((n) => n === 0).length).toBeGreaterThanOrEqual(1)
        expect(outputOf(yield* handler.infer(request("/dev/shm/x"), frame)).detections).toHaveLength(1)
        yield* Scope.close(scope, Exit.void)
      }
    }))

  it.live("the session is released with the layer's scope: later runs fail with INFERENCE_FAILED", () =>
    Effect.gen(function*() {
      const size = 32
      const loaded = yield* load(yield* modelDir(brightYaml(size), channelMeanModel(size)))
      const scope = yield* Scope.make()
      const handler = yield* buildHandler(loaded).pipe(Scope.provide(scope))
      const frame = { ...nv12Frame(size, size, [4, 4, 12, 12]), reference: "/dev/shm/x" }
      const ok = yield* handler.infer(request("/dev/shm/x"), frame)
      expect(outputOf(ok).detections).toHaveLength(1)
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(handler.infer(request("/dev/shm/x"), frame))
      expect(error._tag).toBe("InferenceFailed")
      expect(error.message).toContain("the session has been released")
    }))
})
