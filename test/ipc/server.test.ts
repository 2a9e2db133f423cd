import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Logger, Scope } from "effect"
import { encodeMessage, encodePayload } from "../../src/contract/codec.js"
import { InferenceFailed } from "../../src/contract/errors.js"
import type { InferenceHandlerShape } from "../../src/inference/InferenceHandler.js"
import { FrameReader, type FrameReaderShape } from "../../src/frames/FrameReader.js"
import * as IpcServer from "../../src/ipc/IpcServer.js"
import { call, converse, memoryFrame, request, startContainer, tempDir, until, writeFrameFile } from "../support/harness.js"

const frames = new Map([["/dev/shm/cam1", memoryFrame()]])
const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

const person = { class_id: 0, class_name: "person", confidence: 0.75, bbox: [0.1, 0.2, 0.5, 0.9] }
const detecting: InferenceHandlerShape = { infer: () => Effect.succeed({ detections: [person], metadata: { device: "cpu" } }) }

describe("IPC server", () => {
  it.live("answers a valid request with detections, echoes ids and adds timing metadata", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ handler: detecting, frames })
      const reply = yield* promise(() => call(c.socketPath, request("/dev/shm/cam1", { request_id: "r-1" })))
      expect(reply).toMatchObject({
        model_id: "test-model",
        camera_id: "camera_1",
        frame_id: 1,
        detections: [{ ...person, track_id: null }],
        error: null,
        request_id: "r-1"
      })
      expect(reply.metadata).toMatchObject({ device: "cpu", frame_width: 64, frame_height: 48 })
      expect(reply).not.toHaveProperty("error_code")
    }))

  it.live("listens at {socket_dir}/vas_model_{model_id}.sock with mode 0600 by default, removes it on stop", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const c = yield* startContainer({ frames }).pipe(Scope.provide(scope))
      expect(c.socketPath).toBe(path.join(c.dir, "vas_model_test-model.sock"))
      expect(fs.statSync(c.socketPath).mode & 0o777).toBe(0o600)
      yield* Scope.close(scope, Exit.void)
      expect(fs.existsSync(c.socketPath)).toBe(false)
    }))

  it.live("applies a configured socket mode", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ frames, settings: { socketMode: 0o660 } })
      expect(fs.statSync(c.socketPath).mode & 0o777).toBe(0o660)
    }))

  describe("error responses, one per failure, each with its code", () => {
    const expectError = (reply: Record<string, unknown>, code: string, text: string) => {
      expect(reply.error_code).toBe(code)
      expect(reply.error).toContain(text)
      expect(reply.detections).toEqual([])
    }

    it.live("INVALID_REQUEST for bad JSON and for schema violations (naming the field)", () =>
      Effect.gen(function*() {
        const c = yield* startContainer({ frames })
        const bad = yield* promise(() => converse(c.socketPath, [encodePayload(Buffer.from("{not json"))]))
        expectError(bad.replies[0]!, "INVALID_REQUEST", "not valid UTF-8 JSON")
        const schema = yield* promise(() =>
          call(c.socketPath, request("/dev/shm/cam1", { frame_metadata: { width: 0, height: 48, frame_id: 9 } }))
        )
        expectError(schema, "INVALID_REQUEST", "frame_metadata.width: must be > 0")
        expect(schema).toMatchObject({ camera_id: "camera_1", frame_id: 9 })
      }))

    it.live("MODEL_MISMATCH when the request names another model", () =>
      Effect.gen(function*() {
        const c = yield* startContainer({ frames })
        const reply = yield* promise(() => call(c.socketPath, request("/dev/shm/cam1", { model_id: "other" })))
        expectError(reply, "MODEL_MISMATCH", "serves 'test-model'")
        expect(reply.model_id).toBe("other")
      }))

    it.live("FRAME_NOT_FOUND, FRAME_ACCESS_DENIED and FRAME_INVALID from real files", () =>
      Effect.gen(function*() {
        const c = yield* startContainer()
        const small = writeFrameFile(c.dir, "small", 8, 8)
        const ok = writeFrameFile(c.dir, "ok", 64, 48)
        expectError(
          yield* promise(() => call(c.socketPath, request(path.join(c.dir, "missing")))),
          "FRAME_NOT_FOUND",
          "missing"
        )
        expectError(yield* promise(() => call(c.socketPath, request("/etc/hostname"))), "FRAME_ACCESS_DENIED", "outside")
        expectError(yield* promise(() => call(c.socketPath, request(small))), "FRAME_INVALID", "needs 4608")
        const good = yield* promise(() => call(c.socketPath, request(ok)))
        expect(good.error).toBeNull()
      }))

    it.live("INFERENCE_FAILED for a typed failure, a defect and output that breaks the schema", () =>
      Effect.gen(function*() {
        // Answered at once (the handler's effect is already an Exit) and answered from a fiber (it is not).
        let mode = "fail"
        const handler: InferenceHandlerShape = {
          infer: () => {
            switch (mode) {
              case "fail":
                return Effect.fail(new InferenceFailed({ reason: "model exploded" }))
              case "fail later":
                return Effect.andThen(Effect.yieldNow, Effect.fail(new InferenceFailed({ reason: "model exploded later" })))
              case "defect":
                return Effect.sync(() => {
                  throw new Error("kaboom")
                })
              case "throws":
                throw new Error("thrown before any effect")
              case "garbage later":
                return Effect.as(Effect.yieldNow, [{ ...person, bbox: [0.5, 0.5, 0.1, 0.1] }])
              case "nothing":
                return Effect.succeed(undefined as never)
              case "null later":
                return Effect.as(Effect.yieldNow, null as never)
              default:
                return Effect.succeed([{ ...person, confidence: 7 }])
            }
          }
        }
        const c = yield* startContainer({ handler, frames })
        const expectations: ReadonlyArray<readonly [string, string]> = [
          ["fail", "model exploded"],
          ["fail later", "model exploded later"],
          ["defect", "kaboom"],
          ["throws", "thrown before any effect"],
          ["garbage", "0.confidence: must be between 0.0 and 1.0, got 7"],
          ["garbage later", "0.bbox: must satisfy x_min <= x_max"],
          ["nothing", "handler returned undefined"],
          ["null later", "handler returned null"]
        ]
        for (const [m, message] of expectations) {
          mode = m
          expectError(yield* promise(() => call(c.socketPath, request("/dev/shm/cam1"))), "INFERENCE_FAILED", message)
        }
        const health = yield* promise(() => call(c.socketPath, { op: "health" }))
        expect(health).toMatchObject({ total_requests: 8, total_errors: 8, errors_by_code: { INFERENCE_FAILED: 8 }, inflight: 0 })
      }))

    it.live("a handler that throws, behind a frame reader that only has `use`: answered, and the connection goes on", () =>
      Effect.gen(function*() {
        // A reader of the author's own (no synchronous path): the request takes the fiber path.
        const memory = Effect.runSync(Effect.provide(FrameReader, FrameReader.layerMemory(frames)))
        const reader: FrameReaderShape = { use: memory.use }
        let calls = 0
        const handler: InferenceHandlerShape = {
          infer: () => {
            if (calls++ === 0) throw new Error("thrown while building the effect")
            return Effect.succeed([])
          }
        }
        const c = yield* startContainer({ handler, reader })
        const { replies } = yield* promise(() =>
          converse(c.socketPath, [encodeMessage(request("/dev/shm/cam1", { request_id: 1 })), encodeMessage(request("/dev/shm/cam1", { request_id: 2 }))], 2)
        )
        expect(replies).toHaveLength(2)
        expectError(replies[0]!, "INFERENCE_FAILED", "thrown while building the effect")
        expect(replies[1]).toMatchObject({ request_id: 2, error: null })
      }))

    it.live("the server answers even a request whose handling throws or dies, at once or later, and the connection goes on", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir()
        const reply = (body: unknown) => ({ bytes: encodeMessage(body), close: false })
        let n = 0
        const server = yield* IpcServer.make({ socketPath: path.join(dir, "s.sock"), socketMode: 0o600, maxMessageBytes: 1024, idleTimeoutMs: 10_000, drainTimeoutMs: 1_000 }, {
          handle: () => {
            n++
            if (n === 3) throw new Error("throws")
            return n === 1 ? Effect.die("dies at once") : n === 2 ? Effect.andThen(Effect.sleep("10 millis"), Effect.die("dies later")) : reply({ n })
          },
          timeoutMs: 5_000,
          onTimeout: () => reply({ timeout: true }),
          onDefect: (_event, cause) => reply({ defect: String(Cause.squash(cause)) }),
          onShutdown: () => reply({ shutdown: true })
        }).pipe(Effect.provide(Logger.layer([])))
        const { replies } = yield* promise(() => converse(server.socketPath, [1, 2, 3, 4].map((i) => encodeMessage({ i })), 4))
        expect(replies).toEqual([{ defect: "dies at once" }, { defect: "dies later" }, { defect: "Error: throws" }, { n: 4 }])
      }))

    it.live("TIMEOUT, and the handler fiber is interrupted", () =>
      Effect.gen(function*() {
        const interrupted = yield* Deferred.make<void>()
        const handler: InferenceHandlerShape = {
          infer: () => Effect.never.pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)))
        }
        const c = yield* startContainer({ handler, frames, settings: { requestTimeoutMs: 100 } })
        const reply = yield* promise(() => call(c.socketPath, request("/dev/shm/cam1")))
        expectError(reply, "TIMEOUT", "100 ms")
        yield* Deferred.await(interrupted).pipe(Effect.timeout("1 second"))
      }))

    it.live("OVERLOADED at once beyond max_inflight, and served again when a slot frees", () =>
      Effect.gen(function*() {
        const gate = yield* Deferred.make<void>()
        const handler: InferenceHandlerShape = { infer: () => Effect.as(Deferred.await(gate), []) }
        const c = yield* startContainer({ handler, frames, settings: { maxInflight: 2 } })
        const slow = [1, 2].map(() => call(c.socketPath, request("/dev/shm/cam1")))
        yield* until(() => c.snapshot().inflight === 2, "both slow requests in flight")
        const t0 = Date.now()
        const rejected = yield* promise(() => call(c.socketPath, request("/dev/shm/cam1")))
        expect(Date.now() - t0).toBeLessThan(1000)
        expectError(rejected, "OVERLOADED", "2 requests already in flight")
        yield* Deferred.succeed(gate, undefined)
        const done = yield* promise(() => Promise.all(slow))
        expect(done.map((r) => r.error)).toEqual([null, null])
        expect((yield* promise(() => call(c.socketPath, request("/dev/shm/cam1")))).error).toBeNull()
      }))

    it.live("MESSAGE_TOO_LARGE for an oversized length, then the connection is closed", () =>
      Effect.gen(function*() {
        const c = yield* startContainer({ frames, settings: { maxMessageBytes: 1024 } })
        const header = Buffer.alloc(4)
        header.writeUInt32BE(50 * 1024 * 1024, 0)
        const { replies, closedByServer } = yield* promise(() => converse(c.socketPath, [header], 2))
        expect(replies).toHaveLength(1)
        expectError(replies[0]!, "MESSAGE_TOO_LARGE", "52428800 bytes announced, limit is 1024")
        expect(closedByServer).toBe(true)
      }))

    it.live("SHUTTING_DOWN for new requests on open connections while draining", () =>
      Effect.gen(function*() {
        const gate = yield* Deferred.make<void>()
        const handler: InferenceHandlerShape = { infer: () => Effect.as(Deferred.await(gate), []) }
        const scope = yield* Scope.make()
        const c = yield* startContainer({ handler, frames, settings: { drainTimeoutMs: 5000 } }).pipe(Scope.provide(scope))
        // An open idle connection, and one request in flight.
        const idle = net.connect(c.socketPath)
        yield* Effect.callback<void>((resume) => void idle.once("connect", () => resume(Effect.void)))
        const inflight = call(c.socketPath, request("/dev/shm/cam1", { request_id: "inflight" }))
        yield* until(() => c.snapshot().inflight === 1, "the request in flight")
        const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
        yield* until(() => !fs.existsSync(c.socketPath), "the socket file removed")
        expect(fs.existsSync(c.socketPath)).toBe(false) // no new connections
        const replyOnIdle = new Promise<Buffer>((resolve) => idle.once("data", resolve))
        idle.write(encodeMessage(request("/dev/shm/cam1")))
        const raw = yield* promise(() => replyOnIdle)
        expectError(JSON.parse(raw.subarray(4).toString()), "SHUTTING_DOWN", "shutting down")
        yield* Deferred.succeed(gate, undefined)
        expect((yield* promise(() => inflight)).error).toBeNull()
        yield* Fiber.await(closing)
        idle.destroy()
      }))
  })

  it.live("answers 256 simultaneous connect-per-request clients, none refused", () =>
    Effect.gen(function*() {
      const handler: InferenceHandlerShape = { infer: () => Effect.as(Effect.sleep("5 millis"), [person]) }
      const c = yield* startContainer({ handler, frames, settings: { maxInflight: 256 } })
      const replies = yield* promise(() =>
        Promise.all(
          Array.from({ length: 256 }, (_, i) => call(c.socketPath, request("/dev/shm/cam1", { request_id: i })))
        )
      )
      expect(replies.map((r) => r.error)).toEqual(Array(256).fill(null))
      expect(replies.map((r) => r.request_id)).toEqual(Array.from({ length: 256 }, (_, i) => i))
    }))

  it.live("answers pipelined requests on one connection in request order", () =>
    Effect.gen(function*() {
      // Later requests finish sooner: order must come from the connection, not from completion.
      const handler: InferenceHandlerShape = {
        infer: (req) => Effect.as(Effect.sleep(`${50 - Number(req.request_id)} millis`), [])
      }
      const c = yield* startContainer({ handler, frames })
      const chunks = Array.from({ length: 50 }, (_, i) => encodeMessage(request("/dev/shm/cam1", { request_id: i })))
      const { replies } = yield* promise(() => converse(c.socketPath, [Buffer.concat(chunks)], 50))
      expect(replies.map((r) => r.request_id)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    }))

  it.live("closes idle connections after the idle timeout", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ frames, settings: { idleTimeoutMs: 150 } })
      const t0 = Date.now()
      const { replies, closedByServer } = yield* promise(() => converse(c.socketPath, [], 1, 5000))
      expect(replies).toEqual([])
      expect(closedByServer).toBe(true)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(100)
    }))

  it.live("answers health with status, ids, version, uptime and counters", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ frames })
      yield* promise(() => call(c.socketPath, request("/dev/shm/cam1")))
      const health = yield* promise(() => call(c.socketPath, { op: "health" }))
      expect(health).toMatchObject({ op: "health", status: "ready", model_id: "test-model", total_requests: 1, total_errors: 0 })
      expect(typeof health.version).toBe("string")
      expect(typeof health.uptime_seconds).toBe("number")
    }))

  describe("socket path rules", () => {
    it.live("replaces a stale socket left by a crashed server", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir()
        const stale = path.join(dir, "vas_model_test-model.sock")
        // A socket file nobody listens on, as a crashed server leaves it.
        execFileSync("python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", stale])
        expect(fs.lstatSync(stale).isSocket()).toBe(true)
        const c = yield* startContainer({ frames, settings: { socketDir: dir } })
        expect((yield* promise(() => call(c.socketPath, { op: "health" }))).status).toBe("ready")
      }))

    it.live("refuses to start when a live server holds the path", () =>
      Effect.gen(function*() {
        const first = yield* startContainer({ frames })
        const exit = yield* Effect.exit(startContainer({ frames, settings: { socketDir: first.dir } }))
        expect(Exit.isFailure(exit) && String(exit.cause)).toContain("another server is listening")
        expect((yield* promise(() => call(first.socketPath, { op: "health" }))).status).toBe("ready")
      }))

    it.live("refuses to start, and deletes nothing, when the path is not a socket", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir()
        const file = path.join(dir, "vas_model_test-model.sock")
        fs.writeFileSync(file, "precious")
        const exit = yield* Effect.exit(startContainer({ frames, settings: { socketDir: dir } }))
        expect(Exit.isFailure(exit) && String(exit.cause)).toContain("is not a socket; refusing to delete it")
        expect(fs.readFileSync(file, "utf8")).toBe("precious")
      }))
  })

  it.live("writes the heartbeat file atomically with the reference's keys", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const scope = yield* Scope.make()
      const c = yield* startContainer({ frames, settings: { heartbeatIntervalMs: 50, heartbeatDir: dir } }).pipe(
        Scope.provide(scope)
      )
      yield* promise(() => call(c.socketPath, request("/dev/shm/cam1")))
      const file = path.join(dir, "vas_heartbeat_test-model.json")
      // A heartbeat written after the request (the first one is written at start).
      const counted = () => fs.existsSync(file) && JSON.parse(fs.readFileSync(file, "utf8")).metrics.total_requests === 1
      yield* until(counted, "a heartbeat counting the request")
      const beat = JSON.parse(fs.readFileSync(file, "utf8"))
      expect(beat).toMatchObject({ model_id: "test-model", status: "healthy", metrics: { total_requests: 1, total_errors: 0 } })
      expect(new Date(beat.timestamp).toISOString()).toBe(beat.timestamp)
      expect(Object.keys(beat.metrics).sort()).toEqual(["avg_latency_ms", "total_errors", "total_requests", "uptime_seconds"])
      yield* Scope.close(scope, Exit.void)
      expect(JSON.parse(fs.readFileSync(file, "utf8")).status).toBe("stopped")
      expect(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([])
    }))
})
