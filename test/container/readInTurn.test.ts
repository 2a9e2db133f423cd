/**
 * A scheduled handler (`inTurn`) through a real container (`launchHandler`, the live frame reader):
 * the frame is read when the request's turn comes, so a request that waits has not been read,
 * and one that is superseded or expired is never read at all. The witness is every file the
 * process opens (the open spy); each request names a frame file of its own. The "model" is a gate
 * the test opens, so nothing depends on timing. Also fair admission on the wire: when full, a camera
 * holding fewer waiting requests takes the place of the busiest camera's oldest waiting one.
 */
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, Fiber, Layer } from "effect"
import { InferenceHandler } from "../../src/inference/InferenceHandler.js"
import * as ModelContainer from "../../src/container/ModelContainer.js"
import { Scheduler, type SchedulerShape } from "../../src/inference/Scheduler.js"
import { openSpy } from "../frames/openWitness.js"
import { waitForFile } from "../support/child.js"
import { call, request, tempDir, until, writeFrameFile } from "../support/harness.js"


/** A scheduled handler whose "model" is a gate the test opens; `events` is what it saw, in order. */
const gatedHandler = () => {
  const events: Array<string> = []
  const gate = Deferred.makeUnsafe<void>()
  const layer = Layer.succeed(
    InferenceHandler,
    InferenceHandler.of({
      // Never called: the container has a scheduler, so it calls `inTurn`.
      infer: (request) => Effect.sync(() => events.push(`infer ${request.request_id}`)).pipe(Effect.as({ detections: [] })),
      // Under the turn: the "model" (the gate); then, the turn given back, the "post-processing".
      inTurn: (request, frame, turn) =>
        Effect.sync(() => events.push(`run ${request.request_id} ${frame.width}x${frame.height}`)).pipe(
          Effect.andThen(Deferred.await(gate)),
          Effect.as(Effect.sync(() => {
            events.push(`post ${request.request_id}`)
            return { detections: [], metadata: { waited: turn.waitedMs >= 0 } }
          }))
        )
    })
  )
  return { events, gate, layer }
}

/** Launches a container serving `handler` with `options`, each request's frame a file of its own; every frame file opened is counted. */
const launch = (handler: Layer.Layer<InferenceHandler>, ids: ReadonlyArray<string>, options: Partial<ModelContainer.LaunchOptions>) =>
  Effect.gen(function*() {
    const dir = yield* tempDir()
    // Written before the spy starts: from then on, every open of a frame file is a read.
    const frames = new Map(ids.map((id) => [id, writeFrameFile(dir, `frame-${id}.nv12`, 64, 48)]))
    let scheduler: SchedulerShape | undefined
    const watched = Layer.effectDiscard(Effect.map(Scheduler, (s) => void (scheduler = s)))
    yield* ModelContainer.launchHandler(Layer.merge(handler, watched), {
      modelId: "test-model",
      socketDir: dir,
      heartbeatDir: dir,
      handleSignals: false,
      ...options
    }).pipe(
      Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} })),
      Effect.forkScoped
    )
    const socket = path.join(dir, "vas_model_test-model.sock")
    yield* Effect.promise(() => waitForFile(socket))
    const spy = yield* openSpy
    const now = () => Date.now() / 1000
    return {
      dir,
      socket,
      waiting: () => scheduler?.waiting(),
      /** The frame files opened so far, by request id. */
      read: () => spy.opened.map((p) => /frame-(.+)\.nv12$/.exec(p)?.[1]).filter((id): id is string => id !== undefined),
      now,
      send: (id: string, camera: string, overrides: Record<string, unknown> = {}) =>
        Effect.promise(() =>
          call(socket, request(frames.get(id)!, { request_id: id, camera_id: camera, timestamp: now(), ...overrides }))
        ),
      health: () => Effect.promise(() => call(socket, { op: "health" }))
    }
  })

describe("a scheduled handler reads the frame in the request's turn", () => {
  it.live("waiting, superseded and expired requests' frames are not read; answers carry the request's ids", () =>
    Effect.gen(function*() {
      const { events, gate, layer } = gatedHandler()
      const c = yield* launch(layer, ["old", "r1", "r2", "r3", "r4"], { maxFrameAgeMs: 2_000, perCamera: "latest" })
      const { send, read, now } = c

      // A frame a minute old, beyond the 2 s budget: answered at once, never read.
      expect(yield* send("old", "cam-b", { timestamp: now() - 60 })).toMatchObject({
        request_id: "old",
        camera_id: "cam-b",
        error_code: "FRAME_EXPIRED"
      })
      // A frame that is not there: its turn comes, the read fails, answered with the reader's code.
      const missing = path.join(c.dir, "frame-gone.nv12")
      expect(
        yield* Effect.promise(() =>
          call(c.socket, request(missing, { request_id: "gone", camera_id: "cam-b", timestamp: now() }))
        )
      ).toMatchObject({ request_id: "gone", error_code: "FRAME_NOT_FOUND", detections: [] })

      // cam-a: r1 holds the model; r2 waits (not read); r3 supersedes r2; r4 (cam-b) waits too.
      const r1 = yield* Effect.forkChild(send("r1", "cam-a"))
      yield* until(() => events.length === 1, "r1 starting")
      const r2 = yield* Effect.forkChild(send("r2", "cam-a"))
      yield* until(() => c.waiting() === 1, "r2 waiting")
      expect(read()).toEqual(["r1"])
      const r3 = yield* Effect.forkChild(send("r3", "cam-a"))
      expect(yield* Fiber.await(r2).pipe(Effect.flatten)).toMatchObject({ request_id: "r2", camera_id: "cam-a", error_code: "SUPERSEDED" })
      const r4 = yield* Effect.forkChild(send("r4", "cam-b"))
      yield* until(() => c.waiting() === 2, "r3 and r4 waiting")
      expect(read()).toEqual(["r1"])

      yield* Deferred.succeed(gate, undefined)
      for (const [fiber, id, camera] of [[r1, "r1", "cam-a"], [r3, "r3", "cam-a"], [r4, "r4", "cam-b"]] as const) {
        expect(yield* Fiber.await(fiber).pipe(Effect.flatten)).toMatchObject({
          request_id: id,
          camera_id: camera,
          frame_id: 1,
          error: null,
          metadata: { waited: true, frame_width: 64, frame_height: 48 }
        })
      }
      // Only the frames that ran were read, each in its turn; post-processing ran after each run.
      expect(read()).toEqual(["r1", "r3", "r4"])
      expect(events.filter((e) => e.startsWith("run"))).toEqual(["run r1 64x48", "run r3 64x48", "run r4 64x48"])
      expect(events.filter((e) => e.startsWith("post")).sort()).toEqual(["post r1", "post r3", "post r4"])
      expect(events.some((e) => e.startsWith("infer"))).toBe(false)

      expect(yield* c.health()).toMatchObject({
        inflight: 0,
        dropped_by_reason: { expired: 1, superseded: 1, deadline: 0 },
        errors_by_code: { FRAME_EXPIRED: 1, SUPERSEDED: 1, FRAME_NOT_FOUND: 1 }
      })
    }))

  it.live("fair admission: when full, a camera with fewer waiting takes the place of the busiest one's oldest waiting request", () =>
    Effect.gen(function*() {
      const { events, gate, layer } = gatedHandler()
      const c = yield* launch(layer, ["a1", "a2", "a3", "a4", "b1", "b2"], { maxInflight: 4 })
      const a1 = yield* Effect.forkChild(c.send("a1", "cam-a"))
      yield* until(() => events.length === 1, "a1 starting")
      const waiting = [yield* Effect.forkChild(c.send("a2", "cam-a"))]
      yield* until(() => c.waiting() === 1, "a2 waiting")
      waiting.push(yield* Effect.forkChild(c.send("a3", "cam-a")))
      yield* until(() => c.waiting() === 2, "a3 waiting")
      waiting.push(yield* Effect.forkChild(c.send("a4", "cam-a")))
      yield* until(() => c.waiting() === 3, "a4 waiting")
      // Four in flight: cam-b's first request takes the place of cam-a's oldest waiting one.
      const b1 = yield* Effect.forkChild(c.send("b1", "cam-b"))
      expect(yield* Fiber.await(waiting[0]!).pipe(Effect.flatten)).toMatchObject({
        request_id: "a2",
        camera_id: "cam-a",
        detections: [],
        error_code: "OVERLOADED"
      })
      // cam-b holds one waiting, cam-a two: as fair as it gets, so the next is refused.
      expect(yield* c.send("b2", "cam-b")).toMatchObject({ request_id: "b2", error_code: "OVERLOADED" })

      yield* Deferred.succeed(gate, undefined)
      for (const [fiber, id] of [[a1, "a1"], [waiting[1]!, "a3"], [waiting[2]!, "a4"], [b1, "b1"]] as const) {
        expect(yield* Fiber.await(fiber).pipe(Effect.flatten)).toMatchObject({ request_id: id, error: null })
      }
      // Round-robin among what waits; the displaced and the refused request were never read.
      expect(events.filter((e) => e.startsWith("run"))).toEqual(["run a1 64x48", "run a3 64x48", "run b1 64x48", "run a4 64x48"])
      expect(c.read()).toEqual(["a1", "a3", "b1", "a4"])
      expect(yield* c.health()).toMatchObject({ inflight: 0, errors_by_code: { OVERLOADED: 2 } })
    }))
})
