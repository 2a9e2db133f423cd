/**
 * The whole container without a socket: `ModelContainer.layerOn` on the in-memory transport, frames
 * from memory (`FrameReader.layerMemory`), the built-in ONNX backend on a scripted session
 * (`makeFake`). The request path — framing, decode, frame read, scheduling, preprocessing, the
 * model, the post-processor, the reply — and the deadline and drain, with no socket file, no
 * shared memory, no onnxruntime and time on the TestClock.
 */
import * as fs from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { vi } from "vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import type { RuntimeSettingsInput } from "../../src/config/RuntimeConfig.js"
import type { LoadedModelConfig } from "../../src/config/ModelLoader.js"
import * as OnnxHandler from "../../src/inference/OnnxHandler.js"
import { type FakeModel, makeFake } from "../../src/inference/OnnxSession.js"
import { dbTextYaml, expectBox, firstChannelMap, loaded, mapModel, SIZE } from "../support/fakeModel.js"
import { request } from "../support/harness.js"
import { FRAME_BOX, frameRequest, memoryContainer } from "../support/memoryContainer.js"

vi.mock("onnxruntime-node", () => {
  throw new Error("onnxruntime-node was loaded by a test that must not need it")
})

const rect = FRAME_BOX

/** The container on the memory transport with the ONNX backend on a scripted session, in the given scope. */
const containerIn = (scope: Scope.Scope, model: LoadedModelConfig, fake: FakeModel, settings: Partial<RuntimeSettingsInput> = {}) =>
  memoryContainer(scope, OnnxHandler.layerOn(model).pipe(Layer.provide(makeFake(fake).layer)), { settings })

describe("the container without a socket (in-memory transport, frames in memory, a scripted session)", () => {
  it.effect("a request runs the whole path: the frame's bright region comes back as a detection; no socket file is made", () =>
    Effect.gen(function*() {
      const { container, memory, dir } = yield* containerIn(yield* Effect.scope, yield* loaded(dbTextYaml()), mapModel())
      expect(container.socketPath).toBe("memory")
      const reply = (yield* memory.request(frameRequest())) as Record<string, any>
      expect(reply).toMatchObject({ error: null, frame_id: 7, camera_id: "camera_1", model_id: "test-model" })
      expect(reply["detections"].map((d: { class_name: string }) => d.class_name)).toEqual(["blob"])
      expectBox(reply["detections"][0].bbox, [rect[0] / SIZE, rect[1] / SIZE, rect[2] / SIZE, rect[3] / SIZE])
      expect(fs.readdirSync(dir)).toEqual([])
      expect(container.snapshot()).toMatchObject({ status: "ready" })
    }))

  it.effect("what needs no model is answered by the pipeline: a bad request, a missing frame, health; one connection, in order", () =>
    Effect.gen(function*() {
      const { memory } = yield* containerIn(yield* Effect.scope, yield* loaded(dbTextYaml()), mapModel())
      const connection = yield* memory.connect
      const invalid = (yield* connection.send({ camera_id: "camera_1" })) as Record<string, unknown>
      expect(invalid).toMatchObject({ error_code: "INVALID_REQUEST", detections: [] })
      const missing = (yield* connection.send(request("cam9/latest"))) as Record<string, unknown>
      expect(missing).toMatchObject({ error_code: "FRAME_NOT_FOUND", camera_id: "camera_1" })
      const health = (yield* connection.send({ op: "health" })) as Record<string, unknown>
      expect(health).toMatchObject({ op: "health", status: "ready", model_id: "test-model", total_requests: 2 })
      yield* connection.end
    }))

  it.effect("{\"op\":\"metrics\"}: one observation per answered request in each stage the backend reports, and its outcome", () =>
    Effect.gen(function*() {
      const { memory } = yield* containerIn(yield* Effect.scope, yield* loaded(dbTextYaml()), mapModel())
      const answered: Array<{ class_name: string }> = []
      for (let i = 0; i < 3; i++) {
        const answer = (yield* memory.request(frameRequest())) as { error: null; detections: Array<{ class_name: string }> }
        expect(answer).toMatchObject({ error: null })
        answered.push(...answer.detections)
      }
      expect(yield* memory.request(request("cam9/latest"))).toMatchObject({ error_code: "FRAME_NOT_FOUND" })
      const reply = (yield* memory.request({ op: "metrics" })) as { text: string }
      const count = (name: string, labels: string) =>
        reply.text.split("\n").find((l) => l.startsWith(`${name}_count{${labels}} `))?.split(" ")[1]
      for (const stage of ["frame_read", "preprocess", "queue", "inference", "postprocess"]) {
        expect(count("ruth_stage_duration_seconds", `model="test-model",stage="${stage}"`), stage).toBe("3")
      }
      expect(count("ruth_frame_age_seconds", `model="test-model"`)).toBe("3")
      expect(count("ruth_request_duration_seconds", `model="test-model",outcome="ok"`)).toBe("3")
      expect(count("ruth_request_duration_seconds", `model="test-model",outcome="frame_not_found"`)).toBe("1")
      // The backend says where it runs; the detections it answered, by class.
      expect(reply.text).toMatch(/^ruth_model_info\{[^}]*execution_provider="cpu"\} 1$/m)
      expect(answered.length).toBeGreaterThan(0)
      for (const name of new Set(answered.map((d) => d.class_name))) {
        const line = reply.text.split("\n").find((l) => l.startsWith(`ruth_detections_total{model="test-model",class="${name}"} `))
        expect(line?.split(" ")[1], name).toBe(String(answered.filter((d) => d.class_name === name).length))
      }
    }))

  it.effect("a model that does not answer: TIMEOUT when the request's deadline passes on the TestClock, not before", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      // Warm-up runs answer; the first request's run never does.
      let runs = 0
      const stuck = mapModel((run) => ++runs <= 1 ? firstChannelMap(run) : Effect.andThen(Deferred.succeed(started, undefined), Effect.never))
      const { memory } = yield* containerIn(yield* Effect.scope, yield* loaded(dbTextYaml()), stuck, { requestTimeoutMs: 3_000 })
      const reply = yield* Effect.forkChild(memory.request(frameRequest()))
      yield* Deferred.await(started)
      yield* TestClock.adjust(2_999)
      expect(reply.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust(1)
      expect(yield* Fiber.join(reply)).toMatchObject({ error_code: "TIMEOUT", frame_id: 7 })
    }))

  it.effect("drain on scope close: the request in flight gets its answer; a request sent meanwhile gets SHUTTING_DOWN", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      let runs = 0
      const held = mapModel((run) =>
        ++runs <= 1
          ? firstChannelMap(run)
          : Effect.andThen(Deferred.succeed(started, undefined), Effect.as(Deferred.await(release), firstChannelMap(run)))
      )
      const scope = yield* Scope.make()
      const { container, memory } = yield* containerIn(scope, yield* loaded(dbTextYaml()), held)
      const first = yield* memory.connect
      const second = yield* memory.connect
      const inFlight = yield* Effect.forkChild(first.send(frameRequest()))
      yield* Deferred.await(started)

      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      while (container.snapshot().status !== "draining") yield* Effect.yieldNow
      expect(yield* second.send(frameRequest())).toMatchObject({ error_code: "SHUTTING_DOWN" })
      expect(closing.pollUnsafe()).toBeUndefined()

      yield* Deferred.succeed(release, undefined)
      const answered = (yield* Fiber.join(inFlight)) as Record<string, any>
      expect(answered).toMatchObject({ error: null, frame_id: 7 })
      expect(answered["detections"]).toHaveLength(1)
      yield* Fiber.join(closing)
      expect(container.snapshot()).toMatchObject({ status: "stopped", total_requests: 2 })
      expect(yield* Effect.flip(memory.connect)).toMatchObject({ _tag: "NotConnected" })
    }))
})
