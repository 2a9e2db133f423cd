import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { encodeMessage } from "../../src/contract/codec.js"
import { type LoadProgress, runLoad } from "../../src/ipc/loadgen.js"
import { memoryFrame, request, startContainer } from "../support/harness.js"
import { startOriginalServer } from "../support/originalServer.js"

describe("load generator", () => {
  it.live("reports progress at the end of a run shorter than the interval, with the run's totals", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ frames: new Map([["/dev/shm/cam1", memoryFrame()]]) })
      const progress: Array<LoadProgress> = []
      const result = yield* Effect.promise(() =>
        runLoad({
          socketPath: c.socketPath,
          concurrency: 2,
          durationMs: 200,
          connectPerRequest: false,
          message: encodeMessage(request("/dev/shm/cam1")),
          onProgress: (p) => progress.push(p),
          progressIntervalMs: 10_000
        })
      )
      expect(result.requests).toBeGreaterThan(0)
      expect(result).toMatchObject({ connections: "persistent", failures: 0, stopped: false })
      expect(progress).toHaveLength(1)
      expect(progress[0]).toMatchObject({ requests: result.requests, errorResponses: 0, failures: 0 })
      expect(progress[0]!.recentRps).toBeGreaterThan(0)
    }))

  it.live("persistent clients against a server that closes after each answer: every request answered, the mode says so", () =>
    Effect.gen(function*() {
      const original = yield* startOriginalServer("original-model")
      const result = yield* Effect.promise(() =>
        runLoad({
          socketPath: original.socketPath,
          concurrency: 4,
          durationMs: 300,
          connectPerRequest: false,
          message: encodeMessage(request("/dev/shm/cam1", { model_id: "original-model" }))
        })
      )
      expect(result.requests).toBeGreaterThan(4)
      expect(result).toMatchObject({ failures: 0, errorResponses: 0, connections: "per-request-server-closes" })
      expect(result.firstFailure).toBeUndefined()
    }))

  it.live("an abort ends the run at once with what was answered", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ frames: new Map([["/dev/shm/cam1", memoryFrame()]]) })
      const stop = new AbortController()
      let answers = 0
      const result = yield* Effect.promise(() =>
        runLoad({
          socketPath: c.socketPath,
          concurrency: 2,
          durationMs: 600_000,
          connectPerRequest: false,
          message: encodeMessage(request("/dev/shm/cam1")),
          onAnswer: () => {
            if (++answers === 5) stop.abort()
          },
          signal: stop.signal
        })
      )
      expect(result).toMatchObject({ stopped: true, failures: 0 })
      expect(result.requests).toBeGreaterThanOrEqual(5)
    }))
})
