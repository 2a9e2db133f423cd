/**
 * The scheduler end to end: a handler that takes the model's turn from the container's Scheduler
 * (`launchHandler`), launched with `maxFrameAgeMs` and `perCamera: latest`, answers on the wire
 * FRAME_EXPIRED and SUPERSEDED with the request's ids, and health counts the drops by reason.
 * The "model" is a gate the test opens, so nothing depends on timing.
 */
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Fiber, Layer } from "effect"
import type { InferenceRequest } from "../../src/contract/schema.js"
import { InferenceHandler } from "../../src/inference/InferenceHandler.js"
import type { Frame } from "../../src/frames/Frame.js"
import * as ModelContainer from "../../src/container/ModelContainer.js"
import { Scheduler, type SchedulerShape, ticketOf } from "../../src/inference/Scheduler.js"
import { waitForListening } from "../support/child.js"
import { call, request, tempDir, until, writeFrameFile } from "../support/harness.js"


/** The test's "model": records what started, then waits until the test opens the gate. */
const started: Array<unknown> = []
const gate = Deferred.makeUnsafe<void>()
const runModel = (request: InferenceRequest, _frame: Frame) =>
  Effect.sync(() => started.push(request.request_id)).pipe(Effect.andThen(Deferred.await(gate)), Effect.as({ detections: [] }))

// README: scheduler-handler (begin)
const Handler = Layer.effect(
  InferenceHandler,
  Effect.map(Scheduler, (scheduler) =>
    InferenceHandler.of({
      // Only the model's run waits for its turn; a request that will not get one is answered at once.
      infer: (request, frame) => scheduler.run(ticketOf(request), runModel(request, frame))
    }))
)
// README: scheduler-handler (end)

describe("scheduling through a container", () => {
  it.live("FRAME_EXPIRED and SUPERSEDED are answered on the wire with the request's ids, and counted in health", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const frame = writeFrameFile(dir, "frame.nv12", 64, 48)
      let scheduler: SchedulerShape | undefined
      const watched = Layer.effectDiscard(Effect.map(Scheduler, (s) => void (scheduler = s)))
      const handler = Layer.merge(Handler, watched)
      yield* ModelContainer.launchHandler(handler, {
        modelId: "test-model",
        socketDir: dir,
        heartbeatDir: dir,
        handleSignals: false,
        maxFrameAgeMs: 2_000,
        perCamera: "latest"
      }).pipe(
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} })),
        Effect.forkScoped
      )
      const socket = path.join(dir, "vas_model_test-model.sock")
      yield* Effect.promise(() => waitForListening(socket))
      const now = () => Date.now() / 1000
      const send = (id: string, overrides: Record<string, unknown> = {}) =>
        Effect.promise(() => call(socket, request(frame, { request_id: id, timestamp: now(), ...overrides })))

      // A frame a minute old, beyond the 2 s budget: answered at once, never run.
      const expired = yield* send("old", { camera_id: "cam-b", timestamp: now() - 60 })
      expect(expired).toMatchObject({
        request_id: "old",
        camera_id: "cam-b",
        frame_id: 1,
        detections: [],
        error_code: "FRAME_EXPIRED",
        error: expect.stringContaining("budget is 2000 ms")
      })

      // cam-a: r1 holds the model, r2 waits, r3 arrives: r2 is answered SUPERSEDED while r1 still runs.
      const r1 = yield* Effect.forkChild(send("r1", { camera_id: "cam-a" }))
      yield* until(() => started.length === 1, "r1 starting")
      const r2 = yield* Effect.forkChild(send("r2", { camera_id: "cam-a" }))
      yield* until(() => scheduler?.waiting() === 1, "r2 waiting")
      const r3 = yield* Effect.forkChild(send("r3", { camera_id: "cam-a" }))
      const superseded = yield* Fiber.await(r2).pipe(Effect.flatten)
      expect(superseded).toMatchObject({ request_id: "r2", camera_id: "cam-a", detections: [], error_code: "SUPERSEDED" })

      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.await(r1).pipe(Effect.flatten)).toMatchObject({ request_id: "r1", error: null })
      expect(yield* Fiber.await(r3).pipe(Effect.flatten)).toMatchObject({ request_id: "r3", error: null })
      expect(started).toEqual(["r1", "r3"])

      const health = yield* Effect.promise(() => call(socket, { op: "health" }))
      expect(health).toMatchObject({
        dropped_by_reason: { expired: 1, superseded: 1, deadline: 0 },
        errors_by_code: { FRAME_EXPIRED: 1, SUPERSEDED: 1 }
      })
    }))
})
