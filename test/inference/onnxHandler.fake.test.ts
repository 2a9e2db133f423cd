/**
 * The ONNX backend's own logic — start-up checks against model.yaml, the post-processor
 * `postprocess.kind` selects, CUDA → CPU fallback, warm-up, timings, batches split per member —
 * on a scripted `OnnxSessions` (`makeFake`): no onnxruntime-node, no worker thread.
 * onnxHandler.test.ts runs the same handler on real models, through a container.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { vi } from "vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Scope } from "effect"
import type { LoadedModelConfig } from "../../src/config/ModelConfig.js"
import { InferenceHandler, type InferenceOutput, type InferenceResult } from "../../src/inference/InferenceHandler.js"
import * as OnnxHandler from "../../src/inference/OnnxHandler.js"
import { type FakeModel, type FakeOnnxSessions, makeFake, OnnxRunFailed } from "../../src/inference/OnnxSession.js"
import { type Box, dbTextYaml, expectBox, firstChannelMap, loaded, mapModel, nv12Frame, SIZE, tensor } from "../support/fakeModel.js"
import { request } from "../support/harness.js"

// Loading the native runtime anywhere in this file's module graph fails the import, and so the file.
vi.mock("onnxruntime-node", () => {
  throw new Error("onnxruntime-node was loaded by a test that must not need it")
})

// Nor does anything here start a worker thread (the live sessions' home).
let workersStarted = 0
const onWorker = () => workersStarted++
process.on("worker", onWorker)
afterAll(() => {
  process.off("worker", onWorker)
  expect(workersStarted).toBe(0)
})

/** The handler on `fake`'s sessions, for the enclosing scope. */
const handlerOn = (model: LoadedModelConfig, fake: FakeOnnxSessions, gpuAvailable = false) =>
  OnnxHandler.make(model, { gpuAvailable }).pipe(Effect.provide(fake.layer))

const startError = (model: LoadedModelConfig, fake: FakeOnnxSessions, gpuAvailable = false) =>
  Effect.flip(handlerOn(model, fake, gpuAvailable))

const outputOf = (out: InferenceResult): InferenceOutput => ("detections" in out ? out : { detections: out })

// ---- start-up checks ---------------------------------------------------------------------------

describe("OnnxHandler on a fake session: refuses a model model.yaml does not describe", () => {
  const refusal = (fields: Readonly<Record<string, unknown>>, model: FakeModel) =>
    Effect.gen(function*() {
      const fake = makeFake(model)
      const error = yield* startError(yield* loaded(fields), fake)
      expect(error._tag).toBe("BackendStartError")
      expect(error.message.startsWith("model 'test-model' cannot start: ")).toBe(true)
      // Refused before a single run.
      expect(fake.runs).toHaveLength(0)
      return error.message
    })
  const imageIn = (dims: ReadonlyArray<number | string>, elementType = "float32"): FakeModel => ({
    inputs: [tensor("images", dims, elementType)],
    outputs: [tensor("output0", dims)],
    run: () => ({})
  })
  const base = { preprocessing: { input_size: [32, 32] } }

  it.effect("a fixed 64x64 input with preprocessing.input_size 32x32, naming both", () =>
    Effect.gen(function*() {
      const message = yield* refusal(base, imageIn([1, 3, 64, 64]))
      expect(message).toContain("model input 'images' [1, 3, 64, 64] expects a 64x64 (width x height) image")
      expect(message).toContain("preprocessing.input_size is 32x32")
    }))

  it.effect("layout, channels and element type", () =>
    Effect.gen(function*() {
      expect(yield* refusal(base, imageIn([1, 32, 32, 3]))).toContain(
        "[1, 32, 32, 3] is NHWC but preprocessing.layout is nchw; set layout: nhwc"
      )
      expect(yield* refusal(base, imageIn([1, 1, 32, 32]))).toContain("has 1 channels")
      expect(yield* refusal({ preprocessing: { input_size: [32, 32], dtype: "uint8" } }, imageIn([1, 3, 32, 32]))).toContain(
        "model input 'images' is float32 but preprocessing.dtype is uint8; set dtype: float32"
      )
      expect(yield* refusal(base, imageIn([1, 3, 32, 32], "int64"))).toContain(
        "model input 'images' is int64; this backend feeds float32 or uint8"
      )
    }))

  it.effect("inputs and outputs model.yaml names that the model lacks, or inputs it would not feed", () =>
    Effect.gen(function*() {
      const model = imageIn(["n", 3, "h", "w"])
      expect(yield* refusal({ backend: { input_name: "x" } }, model)).toContain(
        "backend.input_name 'x' is not an input of the model; it has 'images'"
      )
      expect(yield* refusal({ backend: { output_names: ["boxes"] } }, model)).toContain(
        "backend.output_names 'boxes' is not an output of the model; it has 'output0'"
      )
      const twoInputs: FakeModel = { ...model, inputs: [...model.inputs, tensor("scale", [1])] }
      expect(yield* refusal({}, twoInputs)).toContain("the model has 2 inputs ('images', 'scale'); this backend feeds one image tensor")
    }))

  it.effect("an output the kind's post-processor can never read: by kind, from the registry", () =>
    Effect.gen(function*() {
      expect(yield* refusal({ ...base, postprocess: { kind: "yolo" } }, imageIn([1, 3, 32, 32]))).toContain(
        "model output 'output0' [1, 3, 32, 32] cannot be a YOLO head"
      )
      const batchedMap: FakeModel = { ...imageIn([1, 3, 32, 32]), outputs: [tensor("output0", [2, 1, 32, 32])] }
      expect(yield* refusal({ ...base, postprocess: { kind: "db_text" } }, batchedMap)).toContain(
        "model output 'output0' [2, 1, 32, 32] is not a probability map (postprocess.kind db_text expects [1, 1, H, W])"
      )
      // kind none reads nothing, so any tensor will do.
      const fake = makeFake(imageIn([1, 3, 32, 32]))
      yield* handlerOn(yield* loaded({ ...base, postprocess: { kind: "none" }, backend: { warmup_runs: 0 } }), fake)
    }))

  it.effect("scheduling.max_batch > 1 with a fixed batch of 1, naming both", () =>
    Effect.gen(function*() {
      const message = yield* refusal({ ...dbTextYaml(), scheduling: { max_batch: 2 } }, mapModel())
      expect(message).toBe(
        "model 'test-model' cannot start: scheduling.max_batch is 2 but model input 'image' [1, 3, 32, 32] has a fixed batch of 1; use a model with a dynamic batch dimension or max_batch: 1"
      )
    }))
})

// ---- warm-up ---------------------------------------------------------------------------------

describe("OnnxHandler on a fake session: warm-up", () => {
  it.effect("backend.warmup_runs zero runs on every stream's session, one session per stream", () =>
    Effect.gen(function*() {
      const fake = makeFake(mapModel(firstChannelMap, "N"))
      yield* handlerOn(yield* loaded(dbTextYaml({ backend: { warmup_runs: 2 }, scheduling: { streams: 2 } })), fake)
      expect(fake.opened).toHaveLength(2)
      expect(fake.runs.map((r) => r.session)).toEqual([0, 0, 1, 1])
      for (const run of fake.runs) {
        const image = run.feeds["image"]!
        expect(image.dims).toEqual([1, 3, SIZE, SIZE])
        expect(image.data.every((v) => v === 0)).toBe(true)
      }
    }))

  it.effect("a warm-up output the post-processor cannot read refuses the model; a failing run names the reason", () =>
    Effect.gen(function*() {
      // Symbolic dims pass the start-up shape check; the real [1, 3, 3] is too small for a YOLO head.
      const tooSmall = makeFake({ ...mapModel(), outputs: [tensor("map", ["a", "b", "c"])], run: () => ({ map: { data: new Float32Array(9), dims: [1, 3, 3] } }) })
      const unreadable = yield* startError(yield* loaded({ ...dbTextYaml(), postprocess: { kind: "yolo" } }), tooSmall)
      expect(unreadable.message).toContain("postprocess.kind yolo cannot read the model's output")

      const failing = makeFake(mapModel(() => Effect.fail(new OnnxRunFailed({ path: "m", reason: "out of memory" }))))
      const error = yield* startError(yield* loaded(dbTextYaml()), failing)
      expect(error.message).toContain("warm-up run failed: ONNX inference failed for m: out of memory")
    }))
})

// ---- post-processor by kind --------------------------------------------------------------------

describe("OnnxHandler on a fake session: the post-processor postprocess.kind names", () => {
  const rect: Box = [8, 8, 16, 14]
  const frame = nv12Frame(SIZE, SIZE, rect)
  const ownBox: Box = [rect[0] / SIZE, rect[1] / SIZE, rect[2] / SIZE, rect[3] / SIZE]

  it.effect("db_text: the map's bright region, named after the model's class; none: no detections from the same output", () =>
    Effect.gen(function*() {
      const text = yield* handlerOn(yield* loaded(dbTextYaml()), makeFake(mapModel()))
      const detections = outputOf(yield* text.infer(request("/dev/shm/x"), frame)).detections
      expect(detections.map((d) => d.class_name)).toEqual(["blob"])
      expectBox(detections[0]!.bbox, ownBox)

      const none = yield* handlerOn(yield* loaded({ ...dbTextYaml(), postprocess: { kind: "none" } }), makeFake(mapModel()))
      expect(outputOf(yield* none.infer(request("/dev/shm/x"), frame)).detections).toEqual([])
    }))

  it.effect("yolo: a v8 head's boxes, through NMS, named from output_schema", () =>
    Effect.gen(function*() {
      // [1, 4 + 2, 3]: row r holds attribute r (cx, cy, w, h, person, car) of each box, in model pixels.
      // Box 0 is a car (0.8); box 1 a person (0.9); box 2 overlaps box 1 with a lower score, and NMS drops it.
      const head = Float32Array.from([16, 8, 8.2, 8, 8, 8, 16, 4, 4, 8, 4, 4, 0.1, 0.9, 0.7, 0.8, 0.2, 0.1])
      const fake = makeFake({
        inputs: [tensor("images", [1, 3, SIZE, SIZE])],
        outputs: [tensor("output0", [1, 6, 3])],
        run: () => ({ output0: { data: head.slice(), dims: [1, 6, 3] } })
      })
      const yaml = { preprocessing: { input_size: [SIZE, SIZE], resize: "stretch" }, postprocess: { kind: "yolo" }, output_schema: { class_names: ["person", "car"] } }
      const handler = yield* handlerOn(yield* loaded(yaml), fake)
      const detections = outputOf(yield* handler.infer(request("/dev/shm/x"), frame)).detections
      expect(detections.map((d) => [d.class_name, d.confidence])).toEqual([["person", expect.closeTo(0.9, 6)], ["car", expect.closeTo(0.8, 6)]])
      expectBox(detections[0]!.bbox, [6 / SIZE, 6 / SIZE, 10 / SIZE, 10 / SIZE])
      expectBox(detections[1]!.bbox, [8 / SIZE, 4 / SIZE, 24 / SIZE, 12 / SIZE])
    }))
})

// ---- device choice ----------------------------------------------------------------------------

describe("OnnxHandler on a fake session: CUDA, and CPU when CUDA cannot be had", () => {
  const cuda = { backend: { execution_providers: ["cuda"] } }

  it.effect("a machine whose ORT has CUDA runs on it", () =>
    Effect.gen(function*() {
      const fake = makeFake(mapModel(firstChannelMap, 1, { providers: ["cuda", "cpu"] }))
      const handler = yield* handlerOn(yield* loaded(dbTextYaml(cuda)), fake, true)
      expect(fake.opened.map((o) => o.executionProviders)).toEqual([["cuda", "cpu"]])
      expect(outputOf(yield* handler.infer(request("/dev/shm/x"), nv12Frame(SIZE, SIZE))).metadata).toMatchObject({ device: "cuda" })
    }))

  it.effect("a GPU whose CUDA provider ORT cannot load: CPU when fallback is allowed, refused otherwise", () =>
    Effect.gen(function*() {
      const fake = makeFake(mapModel())
      const handler = yield* handlerOn(yield* loaded(dbTextYaml(cuda)), fake, true)
      expect(fake.opened.map((o) => o.executionProviders)).toEqual([["cuda", "cpu"], ["cpu"]])
      expect(outputOf(yield* handler.infer(request("/dev/shm/x"), nv12Frame(SIZE, SIZE))).metadata).toMatchObject({ device: "cpu" })

      const strict = makeFake(mapModel())
      const error = yield* startError(yield* loaded(dbTextYaml({ ...cuda, resource_requirements: { cpu_fallback_allowed: false } })), strict, true)
      expect(error.message).toContain("cuda was requested but its execution provider is unavailable")
      expect(error.message).toContain("CPU fallback is not allowed (resource_requirements.cpu_fallback_allowed: false)")
      expect(strict.opened).toHaveLength(1)
    }))

  it.effect("no GPU at all: CPU without asking for CUDA, unless the model requires a GPU", () =>
    Effect.gen(function*() {
      const fake = makeFake(mapModel())
      yield* handlerOn(yield* loaded(dbTextYaml(cuda)), fake, false)
      expect(fake.opened.map((o) => o.executionProviders)).toEqual([["cpu"]])
      const required = yield* startError(yield* loaded(dbTextYaml({ resource_requirements: { gpu_required: true } })), makeFake(mapModel()))
      expect(required.message).toContain("requires a GPU (resource_requirements.gpu_required: true) but none is available")
    }))
})

// ---- per request ------------------------------------------------------------------------------

describe("OnnxHandler on a fake session: per request", () => {
  it.effect("the metadata carries the session's own timings, the device and the input size", () =>
    Effect.gen(function*() {
      const fake = makeFake(mapModel(firstChannelMap, 1, { runMs: 12.3456, waitMs: 0.5 }))
      const handler = yield* handlerOn(yield* loaded(dbTextYaml()), fake)
      const { metadata } = outputOf(yield* handler.infer(request("/dev/shm/x"), nv12Frame(SIZE, SIZE)))
      expect(metadata).toMatchObject({ inference_ms: 12.346, device: "cpu", input_size: [SIZE, SIZE] })
      expect(metadata?.["session_wait_ms"]).toBeGreaterThanOrEqual(0.5)
      for (const key of ["preprocess_ms", "handoff_ms", "postprocess_ms"]) expect(metadata?.[key]).toBeGreaterThanOrEqual(0)
      expect(metadata).not.toHaveProperty("batch_size")
    }))

  it.effect("a run that fails, and an output missing from a run, are INFERENCE_FAILED for that request", () =>
    Effect.gen(function*() {
      let answer: "fail" | "missing" | "ok" = "ok"
      const fake = makeFake(mapModel((run) =>
        answer === "fail"
          ? Effect.fail(new OnnxRunFailed({ path: run.options.modelPath, reason: "device lost" }))
          : answer === "missing"
          ? {}
          : firstChannelMap(run)
      ))
      const handler = yield* handlerOn(yield* loaded(dbTextYaml()), fake)
      answer = "fail"
      const failed = yield* Effect.flip(handler.infer(request("/dev/shm/x"), nv12Frame(SIZE, SIZE)))
      expect([failed._tag, failed.message]).toEqual(["InferenceFailed", expect.stringContaining("device lost")])
      answer = "missing"
      const missing = yield* Effect.flip(handler.infer(request("/dev/shm/x"), nv12Frame(SIZE, SIZE)))
      expect(missing.message).toContain("model output 'map' is missing from the run's results")
    }))

  it.effect("scheduling.max_batch: waiting frames run as one [B, …] tensor and each gets its own rows back", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const fake = makeFake(mapModel(
        // Warm-up runs pass; the first request's run is held until the others wait behind it.
        (run) => run.index === 0 || run.index > 1 ? firstChannelMap(run) : Effect.as(Deferred.await(release), firstChannelMap(run)),
        "N"
      ))
      const handler = yield* handlerOn(yield* loaded(dbTextYaml({ backend: { warmup_runs: 1 }, scheduling: { max_batch: 3 } })), fake)
      const rects: ReadonlyArray<Box> = [[2, 2, 8, 8], [10, 4, 18, 10], [4, 16, 12, 26], [20, 20, 28, 30]]
      const fibers = yield* Effect.forEach(rects, (r, i) =>
        Effect.forkChild(
          Effect.map(handler.infer(request("/dev/shm/x", { camera_id: `cam${i}` }), nv12Frame(SIZE, SIZE, r)), outputOf),
          { startImmediately: true }
        ))
      // The first holds the model; the other three wait for it, then run together.
      expect(fake.runs).toHaveLength(2)
      yield* Deferred.succeed(release, undefined)
      const outputs = yield* Fiber.joinAll(fibers)
      expect(fake.runs.map((r) => r.feeds["image"]!.dims[0])).toEqual([1, 1, 3])
      expect(outputs.map((o) => o.metadata?.["batch_size"] ?? 1)).toEqual([1, 3, 3, 3])
      outputs.forEach((o, i) => {
        const r = rects[i]!
        expect(o.detections).toHaveLength(1)
        expectBox(o.detections[0]!.bbox, [r[0] / SIZE, r[1] / SIZE, r[2] / SIZE, r[3] / SIZE])
      })
    }))

  it.effect("a batch whose output is not one row per frame fails each of its requests", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const fake = makeFake(mapModel(
        (run) => run.index === 0 ? Effect.as(Deferred.await(release), firstChannelMap(run)) : { map: { data: new Float32Array(SIZE * SIZE), dims: [1, 1, SIZE, SIZE] } },
        "N"
      ))
      const handler = yield* handlerOn(yield* loaded(dbTextYaml({ backend: { warmup_runs: 0 }, scheduling: { max_batch: 2 } })), fake)
      const fibers = yield* Effect.forEach([0, 1, 2], (i) =>
        Effect.forkChild(Effect.exit(handler.infer(request("/dev/shm/x", { camera_id: `cam${i}` }), nv12Frame(SIZE, SIZE))), { startImmediately: true }))
      yield* Deferred.succeed(release, undefined)
      const [first, ...batched] = yield* Fiber.joinAll(fibers)
      expect(Exit.isSuccess(first!)).toBe(true)
      for (const exit of batched) {
        expect(Exit.isFailure(exit)).toBe(true)
        expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("does not hold one row per frame of a batch of 2")
      }
    }))

  it.effect("the sessions are released with the handler layer's scope: later requests fail with INFERENCE_FAILED", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      // As a layer on whichever OnnxSessions is provided.
      const layer = OnnxHandler.layerOn(yield* loaded(dbTextYaml()), { gpuAvailable: false }).pipe(Layer.provide(makeFake(mapModel()).layer))
      const handler = yield* Layer.build(layer).pipe(Effect.map(Context.get(InferenceHandler)), Scope.provide(scope))
      yield* handler.infer(request("/dev/shm/x"), nv12Frame(SIZE, SIZE))
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(handler.infer(request("/dev/shm/x"), nv12Frame(SIZE, SIZE)))
      expect(error._tag).toBe("InferenceFailed")
      expect(error.message).toContain("the session has been released")
    }))
})

// ---- answers decided without the model --------------------------------------------------------

describe("OnnxHandler on a fake session: what needs no wait is answered without suspending", () => {
  it.effect("a request that finds the model free runs to its answer in the caller's own call (a synchronous session)", () =>
    Effect.gen(function*() {
      const handler = yield* handlerOn(yield* loaded(dbTextYaml()), makeFake(mapModel()))
      // runSync fails (AsyncFiberError) if the effect suspends anywhere: no fork, Deferred or yield on the way.
      const out = Effect.runSync(handler.infer(request("/dev/shm/x"), nv12Frame(SIZE, SIZE, [8, 8, 16, 14])))
      expect(outputOf(out).detections).toHaveLength(1)
    }))

  // Live clock: the handler's scheduler judges frame age on it.
  it.live("FRAME_EXPIRED and SUPERSEDED are decided without suspending the refused request", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const fake = makeFake(mapModel((run) => run.index === 1 ? Effect.as(Deferred.await(release), firstChannelMap(run)) : firstChannelMap(run)))
      const model = yield* loaded(dbTextYaml({ backend: { warmup_runs: 1 }, scheduling: { max_frame_age_ms: 1_000, per_camera: "latest" } }))
      const handler = yield* handlerOn(model, fake)
      const now = Date.now() / 1000
      const frame = nv12Frame(SIZE, SIZE)

      const expired = Effect.runSyncExit(handler.infer(request("/dev/shm/x", { timestamp: now - 5 }), frame))
      expect(Exit.isFailure(expired) && String(expired.cause)).toContain("FrameExpired")

      // The model busy with camera a; a newer frame of camera b supersedes the waiting older one.
      const busy = yield* Effect.forkChild(handler.infer(request("/dev/shm/x", { camera_id: "a", timestamp: now }), frame), { startImmediately: true })
      const older = yield* Effect.forkChild(Effect.exit(handler.infer(request("/dev/shm/x", { camera_id: "b", timestamp: now }), frame)), { startImmediately: true })
      const stale = Effect.runSyncExit(handler.infer(request("/dev/shm/x", { camera_id: "b", timestamp: now - 0.1 }), frame))
      expect(Exit.isFailure(stale) && String(stale.cause)).toContain("Superseded")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(busy)
      expect(Exit.isSuccess(yield* Fiber.join(older))).toBe(true)
    }))
})
