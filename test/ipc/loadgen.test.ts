import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { encodeMessage } from "../../src/contract/codec.js"
import { type LoadProgress, runLoad } from "../../src/ipc/loadgen.js"
import { memoryFrame, request, startContainer } from "../support/harness.js"

describe("load generator", () => {
  it.scopedLive("reports progress at the end of a run shorter than the interval, with the run's totals", () =>
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
      expect(progress).toHaveLength(1)
      expect(progress[0]).toMatchObject({ requests: result.requests, errorResponses: 0, failures: 0 })
      expect(progress[0]!.recentRps).toBeGreaterThan(0)
    }))
})
