import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit } from "effect"
import { makeClient } from "../../src/ipc/ModelClient.js"
import type { InferenceHandlerShape } from "../../src/inference/InferenceHandler.js"
import { memoryFrame, request, startContainer } from "../support/harness.js"
import { startOriginalServer, startScriptedServer } from "../support/originalServer.js"

const frames = new Map([["/dev/shm/cam1", memoryFrame()]])

describe("ModelClient", () => {
  for (const poolSize of [0, 2]) {
    it.live(`answers concurrent requests, each with its own reply (poolSize ${poolSize})`, () =>
      Effect.gen(function*() {
        const handler: InferenceHandlerShape = {
          infer: (req) => Effect.as(Effect.sleep(`${Number(req.request_id) % 3} millis`), [])
        }
        const c = yield* startContainer({ handler, frames })
        const client = yield* makeClient({ socketPath: c.socketPath, poolSize })
        const replies = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i),
          (i) => client.infer({ ...request("/dev/shm/cam1"), request_id: i }),
          { concurrency: 8 }
        )
        expect(replies.map((r) => r.request_id)).toEqual(Array.from({ length: 20 }, (_, i) => i))
        expect((yield* client.health).status).toBe("ready")
      }))
  }

  it.live("typed errors: connect (nothing listening), timeout; the pool recovers after a timeout", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      let slow = true
      const handler: InferenceHandlerShape = {
        infer: () => (slow ? Effect.as(Deferred.await(gate), []) : Effect.succeed([]))
      }
      const c = yield* startContainer({ handler, frames })
      const nobody = yield* makeClient({ socketPath: `${c.dir}/nobody.sock` })
      const refused = yield* Effect.flip(nobody.health)
      expect(refused).toMatchObject({ kind: "connect" })
      expect(refused.message).toContain("cannot connect")
      const client = yield* makeClient({ socketPath: c.socketPath, timeoutMs: 200, poolSize: 1 })
      const timedOut = yield* Effect.flip(client.infer(request("/dev/shm/cam1")))
      expect(timedOut).toMatchObject({ kind: "timeout" })
      slow = false
      // The late reply of the abandoned request must not answer this one.
      const next = yield* client.infer({ ...request("/dev/shm/cam1"), request_id: "after" })
      expect(next).toMatchObject({ request_id: "after", error: null })
      yield* Deferred.succeed(gate, undefined)
    }))

  it.live("an interrupted request leaves the client usable", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ frames, handler: { infer: () => Effect.as(Effect.sleep("50 millis"), []) } })
      const client = yield* makeClient({ socketPath: c.socketPath, poolSize: 1 })
      const exit = yield* Effect.exit(Effect.timeout(client.infer(request("/dev/shm/cam1")), "5 millis"))
      expect(Exit.isFailure(exit)).toBe(true)
      expect((yield* client.infer({ ...request("/dev/shm/cam1"), request_id: 7 })).request_id).toBe(7)
    }))

  for (const poolSize of [1, 4]) {
    it.live(`pooled (poolSize ${poolSize}) against a server that answers one request per connection: every request answered`, () =>
      Effect.gen(function*() {
        const original = yield* startOriginalServer("original-model")
        const client = yield* makeClient({ socketPath: original.socketPath, poolSize })
        const replies = yield* Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i),
          (i) => client.infer(request("/dev/shm/cam1", { model_id: "original-model", frame_metadata: { width: 64, height: 48, frame_id: i } })),
          { concurrency: 4 }
        )
        expect(replies.map((r) => [r.frame_id, r.error])).toEqual(Array.from({ length: 40 }, (_, i) => [i, null]))
      }))
  }

  it.live("pooled against a server that keeps connections open: one connection carries every request", () =>
    Effect.gen(function*() {
      const server = yield* startScriptedServer((m) => ({ ...(m as object), detections: [], error: null }))
      const client = yield* makeClient({ socketPath: server.socketPath, poolSize: 1 })
      for (let i = 0; i < 10; i++) expect((yield* client.infer({ ...request("/dev/shm/cam1"), request_id: i })).request_id).toBe(i)
      expect(server.connections()).toBe(1)
    }))

  it.live("a message the original server does not understand fails as `closed`, not as a hang", () =>
    Effect.gen(function*() {
      const original = yield* startOriginalServer()
      const client = yield* makeClient({ socketPath: original.socketPath, poolSize: 2 })
      expect(yield* Effect.flip(client.health)).toMatchObject({ kind: "closed" })
    }))
})
