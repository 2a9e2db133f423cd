import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import { call, memoryFrame, request, startContainer, tempDir, until, writeFrameFile } from "../support/harness.js"
import { collectOutput, exitOf, spawnTs, waitForListening } from "../support/child.js"

const startExample = (dir: string, latencyMs: number) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawnTs("examples/minimal/main.ts", [], {
        RUTH_MODEL_ID: "minimal",
        RUTH_SOCKET_DIR: dir,
        RUTH_HEARTBEAT_DIR: dir,
        MINIMAL_LATENCY_MS: String(latencyMs)
      })
    ),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

/** Resolves once the container reports a request in flight (asked over its socket, on another connection). */
const inFlight = (socket: string) =>
  Effect.promise(async () => {
    for (;;) {
      const health = await call(socket, { op: "health" })
      if (health.inflight === 1) return
      await new Promise((r) => setTimeout(r, 20))
    }
  })

/** The heartbeat file's status, once the file exists. */
const heartbeatStatus = (dir: string) => {
  const file = path.join(dir, "vas_heartbeat_minimal.json")
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as { status: string }).status : undefined
}

describe("graceful shutdown of the example container (child process)", () => {
  it.live("SIGTERM during an in-flight request: the response arrives, the socket is gone, exit code 0", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const child = yield* startExample(dir, 1500)
      const output = collectOutput(child)
      const socket = path.join(dir, "vas_model_minimal.sock")
      yield* Effect.promise(() => waitForListening(socket))
      const frame = writeFrameFile(dir, "frame", 64, 48)
      const inflight = call(socket, request(frame, { model_id: "minimal", request_id: "in-flight" }))
      yield* inFlight(socket)
      child.kill("SIGTERM")
      const reply = yield* Effect.promise(() => inflight)
      expect(reply).toMatchObject({ request_id: "in-flight", error: null, detections: [], metadata: { bytes_read: 4608 } })
      const exit = yield* Effect.promise(() => exitOf(child))
      expect(exit, output()).toEqual({ code: 0, signal: null })
      expect(fs.existsSync(socket)).toBe(false)
      const beat = JSON.parse(fs.readFileSync(path.join(dir, "vas_heartbeat_minimal.json"), "utf8"))
      expect(beat).toMatchObject({ status: "stopped", metrics: { total_requests: 1, total_errors: 0 } })
    }))

  it.live("a second signal exits at once, without waiting for the drain", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const child = yield* startExample(dir, 30_000)
      const socket = path.join(dir, "vas_model_minimal.sock")
      yield* Effect.promise(() => waitForListening(socket))
      const frame = writeFrameFile(dir, "frame", 64, 48)
      const inflight = call(socket, request(frame, { model_id: "minimal" })).catch(() => "closed")
      yield* inFlight(socket)
      child.kill("SIGTERM")
      // The drain has begun: the heartbeat says so.
      yield* until(() => heartbeatStatus(dir) === "draining", "a draining heartbeat")
      const t0 = Date.now()
      child.kill("SIGINT")
      const exit = yield* Effect.promise(() => exitOf(child))
      expect(Date.now() - t0).toBeLessThan(2000)
      expect(exit).toEqual({ code: 130, signal: null })
      expect(yield* Effect.promise(() => inflight)).toBe("closed")
    }))
})

describe("signals of an embedded container (in process)", () => {
  for (const handleSignals of [true, false]) {
    it.live(`handleSignals: ${handleSignals}: ${handleSignals ? "a signal while it stops is the container's (exit at once), and only then" : "the process's signals are left alone, also while it stops"}`, () =>
      Effect.gen(function*() {
        const listeners = () => process.listenerCount("SIGTERM") + process.listenerCount("SIGINT")
        const before = listeners()
        const gate = yield* Deferred.make<void>()
        const scope = yield* Scope.make()
        const c = yield* startContainer({
          handler: { infer: () => Effect.as(Deferred.await(gate), []) },
          frames: new Map([["/dev/shm/cam1", memoryFrame()]]),
          settings: { handleSignals }
        }).pipe(Scope.provide(scope))
        expect(listeners()).toBe(before)
        const inflight = call(c.socketPath, request("/dev/shm/cam1"))
        yield* until(() => c.snapshot().inflight === 1, "the request in flight")
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        yield* until(() => c.snapshot().status === "draining", "the drain began")
        expect(listeners()).toBe(handleSignals ? before + 2 : before)
        yield* Deferred.succeed(gate, undefined)
        expect((yield* Effect.promise(() => inflight)).error).toBeNull()
        yield* Fiber.await(closing)
        expect(listeners()).toBe(before)
      }))
  }
})
