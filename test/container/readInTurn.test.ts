/**
 * A scheduled handler (`inTurn`) through a real container (`launchHandler`, the live frame reader):
 * the frame is read when the request's turn comes, so a request that waits has not been read,
 * and one that is superseded or expired is never read at all. The witness is every file the
 * process opens (the open spy); each request names a frame file of its own. The "model" is a gate
 * the test opens, so nothing depends on timing.
 */
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Deferred, Effect, FiberId, Layer } from "effect"
import { InferenceHandler } from "../../src/container/InferenceHandler.js"
import * as ModelContainer from "../../src/container/ModelContainer.js"
import { Scheduler, type SchedulerShape } from "../../src/inference/Scheduler.js"
import { openSpy } from "../frames/openWitness.js"
import { waitForFile } from "../support/child.js"
import { call, request, tempDir, writeFrameFile } from "../support/harness.js"

/** Resolves once `condition` holds (polling); fails the test after a generous deadline. */
const until = (condition: () => boolean, what: string) =>
  Effect.promise(async () => {
    const deadline = Date.now() + 20_000
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`${what} did not happen within 20 s`)
      await new Promise((r) => setTimeout(r, 10))
    }
  })

/** What the handler saw, in order. */
const events: Array<string> = []
const gate = Deferred.unsafeMake<void>(FiberId.none)

const Handler = Layer.succeed(
  InferenceHandler,
  InferenceHandler.of({
    // Never called: the container has a scheduler, so it calls `inTurn`.
    infer: (request) => Effect.sync(() => events.push(`infer ${request.request_id}`)).pipe(Effect.as({ detections: [] })),
    // Under the turn: the "model" (the gate); then, the turn given back, the "post-processing".
    inTurn: (request, frame, turn) =>
      Effect.sync(() => events.push(`run ${request.request_id} ${frame.width}x${frame.height}`)).pipe(
        Effect.zipRight(Deferred.await(gate)),
        Effect.as(Effect.sync(() => {
          events.push(`post ${request.request_id}`)
          return { detections: [], metadata: { waited: turn.waitedMs >= 0 } }
        }))
      )
  })
)

describe("a scheduled handler reads the frame in the request's turn", () => {
  it.scopedLive("waiting, superseded and expired requests' frames are not read; answers carry the request's ids", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      // Written before the spy starts: from then on, every open of a frame file is a read.
      const frames = new Map(["old", "r1", "r2", "r3", "r4"].map((id) => [id, writeFrameFile(dir, `frame-${id}.nv12`, 64, 48)]))
      const frameOf = (id: string) => frames.get(id)!
      let scheduler: SchedulerShape | undefined
      const watched = Layer.effectDiscard(Effect.map(Scheduler, (s) => void (scheduler = s)))
      yield* ModelContainer.launchHandler(Layer.merge(Handler, watched), {
        modelId: "test-model",
        socketDir: dir,
        heartbeatDir: dir,
        handleSignals: false,
        maxFrameAgeMs: 2_000,
        perCamera: "latest"
      }).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
        Effect.forkScoped
      )
      const socket = path.join(dir, "vas_model_test-model.sock")
      yield* Effect.promise(() => waitForFile(socket))
      const spy = yield* openSpy
      /** The frame files opened so far, by request id. */
      const read = () =>
        spy.opened.map((p) => /frame-(.+)\.nv12$/.exec(p)?.[1]).filter((id): id is string => id !== undefined)
      const now = () => Date.now() / 1000
      const send = (id: string, camera: string, overrides: Record<string, unknown> = {}) =>
        Effect.promise(() =>
          call(socket, request(frameOf(id), { request_id: id, camera_id: camera, timestamp: now(), ...overrides }))
        )

      // A frame a minute old, beyond the 2 s budget: answered at once, never read.
      expect(yield* send("old", "cam-b", { timestamp: now() - 60 })).toMatchObject({
        request_id: "old",
        camera_id: "cam-b",
        error_code: "FRAME_EXPIRED"
      })
      // A frame that is not there: its turn comes, the read fails, answered with the reader's code.
      const missing = path.join(dir, "frame-gone.nv12")
      expect(
        yield* Effect.promise(() =>
          call(socket, request(missing, { request_id: "gone", camera_id: "cam-b", timestamp: now() }))
        )
      ).toMatchObject({ request_id: "gone", error_code: "FRAME_NOT_FOUND", detections: [] })

      // cam-a: r1 holds the model; r2 waits (not read); r3 supersedes r2; r4 (cam-b) waits too.
      const r1 = yield* Effect.fork(send("r1", "cam-a"))
      yield* until(() => events.length === 1, "r1 starting")
      const r2 = yield* Effect.fork(send("r2", "cam-a"))
      yield* until(() => scheduler?.waiting() === 1, "r2 waiting")
      expect(read()).toEqual(["r1"])
      const r3 = yield* Effect.fork(send("r3", "cam-a"))
      expect(yield* r2.await.pipe(Effect.flatten)).toMatchObject({ request_id: "r2", camera_id: "cam-a", error_code: "SUPERSEDED" })
      const r4 = yield* Effect.fork(send("r4", "cam-b"))
      yield* until(() => scheduler?.waiting() === 2, "r3 and r4 waiting")
      expect(read()).toEqual(["r1"])

      yield* Deferred.succeed(gate, undefined)
      for (const [fiber, id, camera] of [[r1, "r1", "cam-a"], [r3, "r3", "cam-a"], [r4, "r4", "cam-b"]] as const) {
        expect(yield* fiber.await.pipe(Effect.flatten)).toMatchObject({
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

      const health = yield* Effect.promise(() => call(socket, { op: "health" }))
      expect(health).toMatchObject({
        inflight: 0,
        dropped_by_reason: { expired: 1, superseded: 1, deadline: 0 },
        errors_by_code: { FRAME_EXPIRED: 1, SUPERSEDED: 1, FRAME_NOT_FOUND: 1 }
      })
    }))
})
