import * as net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Semaphore } from "effect"
import { type OpenLoopOptions, runOpenLoop } from "../../src/ipc/openLoop.js"
import { memoryFrame, request, startContainer, tempDir } from "../support/harness.js"
import { accountedFor, scriptedAnswer } from "../support/openLoop.js"
import { startScriptedServer } from "../support/originalServer.js"

const frameRequest = (model_id = "test-model"): OpenLoopOptions["request"] => ({ cameraId, frameId, timestamp }) =>
  request("/dev/shm/cam1", { camera_id: cameraId, model_id, timestamp, frame_metadata: { width: 64, height: 48, format: "NV12", frame_id: frameId } })

describe("open-loop load generator", () => {
  it.live("holds each camera's rate while the model falls behind; every frame is accounted for", () =>
    Effect.gen(function*() {
      // A model that runs one request at a time for 50 ms: 20 answers/s at most, against 80 frames/s sent.
      const model = yield* Semaphore.make(1)
      const c = yield* startContainer({
        frames: new Map([["/dev/shm/cam1", memoryFrame()]]),
        settings: { maxInflight: 8, requestTimeoutMs: 300 },
        handler: { infer: () => model.withPermits(1)(Effect.sleep("50 millis")).pipe(Effect.as({ detections: [] })) }
      })
      const r = yield* Effect.promise(() =>
        runOpenLoop({ socketPath: c.socketPath, fps: [40, 40], durationMs: 1000, graceMs: 5000, connectPerRequest: true, request: frameRequest() })
      )
      expect(r).toMatchObject({ mode: "open-loop", connections: "per-request", stopped: false })
      expect(r.cameras.map((cam) => [cam.camera_id, cam.fps])).toEqual([["cam-1", 40], ["cam-2", 40]])
      for (const cam of r.cameras) {
        // Sent on schedule whatever came back: 40 frames/s for 1 s.
        expect(cam.sent).toBeGreaterThanOrEqual(36)
        expect(cam.sent).toBeLessThanOrEqual(41)
        expect(accountedFor(cam)).toBe(cam.sent)
        expect(cam.failures).toBe(0)
      }
      expect(r.total.sent).toBe(r.cameras[0]!.sent + r.cameras[1]!.sent)
      expect(accountedFor(r.total)).toBe(r.total.sent)
      expect(r.total.ok).toBeGreaterThan(0)
      expect(r.total.ok).toBeLessThan(r.total.sent / 2)
      expect(r.total.overloaded).toBeGreaterThan(0)
      expect(r.total.frameAgeMs.p50).toBeGreaterThan(0)
      expect(r.total.frameAgeMs.p99).toBeGreaterThanOrEqual(r.total.frameAgeMs.p50)
    }), 60_000)

  it.live("ok answers/s is over the time answers came in: a backlog answered after sending stopped is not counted as faster", () =>
    Effect.gen(function*() {
      // One run at a time for 100 ms: at most 10 answers/s, against 20 frames/s sent for 0.5 s.
      const model = yield* Semaphore.make(1)
      const c = yield* startContainer({
        frames: new Map([["/dev/shm/cam1", memoryFrame()]]),
        settings: { maxInflight: 64, requestTimeoutMs: 5_000 },
        handler: { infer: () => model.withPermits(1)(Effect.sleep("100 millis")).pipe(Effect.as({ detections: [] })) }
      })
      const r = yield* Effect.promise(() =>
        runOpenLoop({ socketPath: c.socketPath, fps: [20], durationMs: 500, graceMs: 5000, connectPerRequest: true, request: frameRequest() })
      )
      // Every frame answered, most of them after sending stopped: ok/s is the model's rate, not ok ÷ 0.5 s.
      expect(r.total.ok).toBe(r.total.sent)
      expect(r.total.ok).toBeGreaterThanOrEqual(9)
      expect(r.total.okPerSecond).toBeLessThanOrEqual(10)
      expect(r.cameras[0]!.okPerSecond).toBe(r.total.okPerSecond)
    }), 60_000)

  for (const connectPerRequest of [true, false]) {
    it.live(`counts each error code under its key, per camera and in total (${connectPerRequest ? "per request" : "persistent"})`, () =>
      Effect.gen(function*() {
        const seen: Array<{ camera: string; frameId: number; timestamp: number }> = []
        const server = yield* startScriptedServer(scriptedAnswer(seen))
        const before = Date.now() / 1000
        const r = yield* Effect.promise(() =>
          runOpenLoop({ socketPath: server.socketPath, fps: [50, 100], durationMs: 600, graceMs: 5000, connectPerRequest, request: frameRequest() })
        )
        // 0.6 s at 50 and 100 frames/s: 30 and 60 frames, five and ten of each answer.
        expect(r.cameras).toMatchObject([
          { camera_id: "cam-1", sent: 30, ok: 5, expired: 5, superseded: 5, overloaded: 5, timeout: 0, otherErrors: { SOMETHING_NEW: 5, NO_CODE: 5 }, unanswered: 0, failures: 0 },
          { camera_id: "cam-2", sent: 60, ok: 10, expired: 10, superseded: 10, overloaded: 10, timeout: 0, otherErrors: { SOMETHING_NEW: 10, NO_CODE: 10 }, unanswered: 0, failures: 0 }
        ])
        expect(r.total).toMatchObject({ fps: 150, sent: 90, ok: 15, expired: 15, otherErrors: { SOMETHING_NEW: 15, NO_CODE: 15 } })
        expect(r.connections).toBe(connectPerRequest ? "per-request" : "persistent")
        expect(r.firstError).toBe("scripted FRAME_EXPIRED")
        // Each camera's frame ids count up from 1; timestamps are the send times, in Unix seconds.
        for (const [camera, n] of [["cam-1", 30], ["cam-2", 60]] as const) {
          const frames = seen.filter((s) => s.camera === camera)
          expect(frames.map((s) => s.frameId).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1))
          for (const f of frames) expect(f.timestamp).toBeGreaterThanOrEqual(before - 1)
          for (const f of frames) expect(f.timestamp).toBeLessThanOrEqual(Date.now() / 1000 + 1)
        }
        if (!connectPerRequest) expect(server.connections()).toBe(2)
      }), 60_000)
  }

  it.live("frames a server never answers count as unanswered after the grace period", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const socketPath = path.join(dir, "silent.sock")
      const server = net.createServer(() => {})
      yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<void>((resolve) => server.listen(socketPath, resolve))),
        () => Effect.sync(() => server.close())
      )
      const r = yield* Effect.promise(() =>
        runOpenLoop({ socketPath, fps: [20], durationMs: 200, graceMs: 100, connectPerRequest: true, request: frameRequest() })
      )
      expect(r.cameras[0]).toMatchObject({ sent: 4, ok: 0, unanswered: 4, failures: 0 })
    }), 60_000)

  it.live("nothing listening: every frame is a connection failure, the first one's reason kept", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const r = yield* Effect.promise(() =>
        runOpenLoop({ socketPath: path.join(dir, "none.sock"), fps: [20], durationMs: 200, graceMs: 1000, connectPerRequest: true, request: frameRequest() })
      )
      expect(r.cameras[0]).toMatchObject({ sent: 4, ok: 0, unanswered: 0, failures: 4 })
      expect(r.firstFailure).toMatch(/ENOENT/)
    }), 60_000)
})
