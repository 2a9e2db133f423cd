import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { type ClientError, makeClient } from "../../src/ipc/ModelClient.js"
import type { InferenceHandlerShape } from "../../src/inference/InferenceHandler.js"
import { memoryFrame, request, startContainer } from "../support/harness.js"
import { startOriginalServer, startScriptedServer } from "../support/originalServer.js"

const frames = new Map([["/dev/shm/cam1", memoryFrame()]])

describe("ModelClient", () => {
  for (const poolSize of [0, 2]) {
    it.live(`answers concurrent requests, each with its own reply (poolSize ${poolSize})`, () =>
      Effect.gen(function*() {
        // Replies finish out of request order: each request yields to the others 0–2 times first.
        const handler: InferenceHandlerShape = {
          infer: (req) => Effect.as(Effect.repeat(Effect.yieldNow, { times: Number(req.request_id) % 3 }), [])
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
      const received = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      // The first request is held until the test lets it go; later ones are answered at once.
      const handler: InferenceHandlerShape = {
        infer: (req) =>
          req.request_id === "first"
            ? Effect.as(Effect.andThen(Deferred.succeed(received, undefined), Deferred.await(gate)), [])
            : Effect.succeed([])
      }
      const c = yield* startContainer({ frames, handler })
      const client = yield* makeClient({ socketPath: c.socketPath, poolSize: 1 })
      const first = yield* Effect.forkChild(client.infer({ ...request("/dev/shm/cam1"), request_id: "first" }))
      // Interrupted while the server holds it: its late reply must not answer the next request.
      yield* Deferred.await(received)
      yield* Fiber.interrupt(first)
      expect(Exit.hasInterrupts(yield* Fiber.await(first))).toBe(true)
      yield* Deferred.succeed(gate, undefined)
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
      const server = yield* startScriptedServer((m) => ({ ...(m as object), frame_id: 0, detections: [], metadata: null, error: null }))
      const client = yield* makeClient({ socketPath: server.socketPath, poolSize: 1 })
      for (let i = 0; i < 10; i++) expect((yield* client.infer({ ...request("/dev/shm/cam1"), request_id: i })).request_id).toBe(i)
      expect(server.connections()).toBe(1)
    }))

  it.live("replies are decoded: a server's extra keys are kept, a reply that is not a response is a `protocol` error naming the field", () =>
    Effect.gen(function*() {
      const valid = { model_id: "m", camera_id: "cam1", frame_id: 3, detections: [], metadata: null, error: null }
      const replies: Record<string, unknown> = {
        extra: { ...valid, server_time: 12.5, request_id: "extra" },
        array: [valid],
        text: "ok",
        types: { ...valid, camera_id: 7, detections: "none" },
        detection: { ...valid, detections: [{ class_id: 0, class_name: "car", confidence: 1.5, bbox: [0, 0, 1, 1] }] },
        missing: { model_id: "m", camera_id: "cam1", frame_id: 3, detections: [], error: null },
        health: { op: "health", status: "ready", model_id: "m", model_version: "1", version: "x", uptime_seconds: "long" }
      }
      const server = yield* startScriptedServer((m) => {
        const o = m as { readonly op?: string; readonly request_id?: string }
        return replies[o.op === "health" ? "health" : o.request_id ?? ""]
      })
      const client = yield* makeClient({ socketPath: server.socketPath, poolSize: 1 })
      const call = (id: string) => client.infer({ ...request("/dev/shm/cam1"), request_id: id })
      // Unknown keys are accepted and reach the caller as sent.
      expect(yield* call("extra")).toEqual({ ...valid, server_time: 12.5, request_id: "extra" })
      const rejected = <A>(effect: Effect.Effect<A, ClientError>) =>
        Effect.map(Effect.flip(effect), (e) => ({ kind: e.kind, message: e.message }))
      const reason = (text: string) => ({ kind: "protocol", message: `${server.socketPath}: protocol: reply is not ${text}` })
      expect(yield* rejected(call("array"))).toEqual(reason("an inference response: Expected object, actual [{\"model_id\":\"m\",\"camera_id\":\"cam1\",\"frame_id\":3,\"detections\":[],\"metadata\":null,\"error\":null}]"))
      expect(yield* rejected(call("text"))).toEqual(reason("an inference response: Expected object, actual \"ok\""))
      expect(yield* rejected(call("types"))).toEqual(
        reason("an inference response: camera_id: Expected string, actual 7; detections: Expected array, actual \"none\"")
      )
      expect(yield* rejected(call("detection"))).toEqual(
        reason("an inference response: detections.0.confidence: must be between 0.0 and 1.0, got 1.5")
      )
      expect(yield* rejected(call("missing"))).toEqual(reason("an inference response: metadata: is required"))
      expect(yield* rejected(client.health)).toMatchObject({ kind: "protocol" })
      expect((yield* rejected(client.health)).message).toContain("reply is not a health answer: uptime_seconds: Expected number, actual \"long\"")
      // A bad reply breaks nothing: the same connection answers the next request.
      expect((yield* call("extra")).request_id).toBe("extra")
      expect(server.connections()).toBe(1)
    }))

  it.live("a message the original server does not understand fails as `closed`, not as a hang", () =>
    Effect.gen(function*() {
      const original = yield* startOriginalServer()
      const client = yield* makeClient({ socketPath: original.socketPath, poolSize: 2 })
      expect(yield* Effect.flip(client.health)).toMatchObject({ kind: "closed" })
      expect(yield* Effect.flip(client.metrics)).toMatchObject({ kind: "closed" })
    }))

  it.live("metrics: the Prometheus text of a container; a reply that is not a metrics answer is a `protocol` error naming the field", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ frames })
      const client = yield* makeClient({ socketPath: c.socketPath })
      yield* client.infer(request("/dev/shm/cam1"))
      const metrics = yield* client.metrics
      expect(metrics).toMatchObject({ op: "metrics", content_type: "text/plain; version=0.0.4; charset=utf-8" })
      expect(metrics.text).toContain(`ruth_requests_total{model="test-model",outcome="ok"} 1`)

      // An older runtime reads {"op":"metrics"} as a request and answers an error.
      const older = yield* startScriptedServer(() => ({ error: "frame_reference: is required", error_code: "INVALID_REQUEST" }))
      const olderClient = yield* makeClient({ socketPath: older.socketPath })
      const rejected = yield* Effect.flip(olderClient.metrics)
      expect(rejected.kind).toBe("protocol")
      expect(rejected.message).toContain("reply is not a metrics answer: op: is required")
    }))
})
