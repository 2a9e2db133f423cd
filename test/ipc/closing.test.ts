/**
 * Closing connections without losing answers: at shutdown every request the
 * server received is answered before its connection closes, and no client is
 * reset; the idle sweep never closes a connection with answers still to deliver.
 */
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Logger, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import { encodeMessage, FrameDecoder } from "../../src/contract/codec.js"
import type { InferenceHandlerShape } from "../../src/inference/InferenceHandler.js"
import { memoryFrame, request, startContainer, until } from "../support/harness.js"

const frames = new Map([["/dev/shm/cam1", memoryFrame()]])
const quiet = Logger.layer([])

/** A raw client: what it received, and how its connection ended. */
interface Conversation {
  readonly socket: net.Socket
  readonly replies: Array<Record<string, unknown>>
  /** Resolves with the socket's error (e.g. ECONNRESET), or undefined when it closed cleanly. */
  readonly closed: Promise<NodeJS.ErrnoException | undefined>
  /** Resolves once the replies satisfy `done`, or the connection closed. */
  readonly until: (done: (replies: ReadonlyArray<Record<string, unknown>>) => boolean) => Promise<void>
}

const connect = (socketPath: string, onReply: (reply: Record<string, unknown>, socket: net.Socket) => void = () => {}) =>
  Effect.callback<Conversation>((resume) => {
    const socket = net.connect(socketPath)
    const decoder = new FrameDecoder(64 * 1024 * 1024)
    const replies: Array<Record<string, unknown>> = []
    let waiters: Array<readonly [(replies: ReadonlyArray<Record<string, unknown>>) => boolean, () => void]> = []
    let error: NodeJS.ErrnoException | undefined
    let isClosed = false
    socket.on("error", (e) => {
      error = e
    })
    const closed = new Promise<NodeJS.ErrnoException | undefined>((resolve) =>
      socket.on("close", () => {
        isClosed = true
        for (const [, w] of waiters) w()
        waiters = []
        resolve(error)
      })
    )
    socket.on("data", (chunk) => {
      for (const event of decoder.push(chunk)) {
        if (event._tag !== "Message") continue
        const reply = JSON.parse(Buffer.from(event.payload).toString("utf8")) as Record<string, unknown>
        replies.push(reply)
        onReply(reply, socket)
      }
      waiters = waiters.filter(([done, w]) => (done(replies) ? (w(), false) : true))
    })
    const until = (done: (replies: ReadonlyArray<Record<string, unknown>>) => boolean) =>
      new Promise<void>((resolve) => (isClosed || done(replies) ? resolve() : waiters.push([done, resolve])))
    socket.once("connect", () => resume(Effect.succeed({ socket, replies, closed, until })))
  })

/** A handler that answers at once, except for requests whose id starts with "slow": those wait for `gate`. */
const gated = (entered: Deferred.Deferred<void>, gate: Deferred.Deferred<void>): InferenceHandlerShape => ({
  infer: (req) =>
    String(req.request_id).startsWith("slow")
      ? Effect.andThen(Deferred.succeed(entered, undefined), Effect.as(Deferred.await(gate), []))
      : Effect.succeed([])
})

describe("closing connections at shutdown", () => {
  it.live("a request in flight at the drain deadline and 1000 pipelined behind it: every one answered SHUTTING_DOWN, then a clean close", () =>
    Effect.gen(function*() {
      const entered = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>() // never opened: the drain deadline ends the slow request
      const scope = yield* Scope.make()
      const c = yield* startContainer({ handler: gated(entered, gate), frames, settings: { drainTimeoutMs: 300 } }).pipe(
        Effect.provide(quiet),
        Scope.provide(scope)
      )
      const client = yield* connect(c.socketPath)
      // Far more than the server reads while a request is in progress: most stay unread in the socket.
      const behind = Array.from({ length: 1000 }, (_, i) => encodeMessage(request("/dev/shm/cam1", { request_id: i })))
      client.socket.write(Buffer.concat([encodeMessage(request("/dev/shm/cam1", { request_id: "slow" })), ...behind]))
      yield* Deferred.await(entered)
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.promise(() => client.closed)
      expect(error).toBeUndefined()
      expect(client.replies).toHaveLength(1001)
      expect(client.replies.map((r) => r.request_id)).toEqual(["slow", ...Array.from({ length: 1000 }, (_, i) => i)])
      expect(new Set(client.replies.map((r) => r.error_code))).toEqual(new Set(["SHUTTING_DOWN"]))
    }))

  it.live("a persistent client writing through the shutdown: each request answered until the server ends the connection, never a reset", () =>
    Effect.gen(function*() {
      const entered = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const scope = yield* Scope.make()
      const c = yield* startContainer({ handler: gated(entered, gate), frames, settings: { drainTimeoutMs: 10_000 } }).pipe(
        Effect.provide(quiet),
        Scope.provide(scope)
      )
      // A slow request on its own connection holds the drain open.
      const holder = yield* connect(c.socketPath)
      holder.socket.write(encodeMessage(request("/dev/shm/cam1", { request_id: "slow" })))
      yield* Deferred.await(entered)
      // The persistent client sends its next request as soon as an answer arrives, and stops when the server ends.
      let written = 0
      let ended = false
      const send = (socket: net.Socket) => {
        if (ended) return
        written++
        socket.write(encodeMessage(request("/dev/shm/cam1", { request_id: written })))
      }
      const client = yield* connect(c.socketPath, (_reply, socket) => send(socket))
      client.socket.on("end", () => {
        ended = true
      })
      send(client.socket)
      yield* Effect.promise(() => client.until((rs) => rs.length >= 3))
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      // Requests after the drain began are answered SHUTTING_DOWN; then the drain ends.
      yield* Effect.promise(() => client.until((rs) => rs.filter((r) => r.error_code === "SHUTTING_DOWN").length >= 3))
      yield* Deferred.succeed(gate, undefined)
      const error = yield* Effect.promise(() => client.closed)
      yield* Fiber.await(closing)
      expect(error).toBeUndefined()
      expect(holder.replies).toMatchObject([{ request_id: "slow", error: null }])
      expect(client.replies.map((r) => r.request_id)).toEqual(Array.from({ length: client.replies.length }, (_, i) => i + 1))
      expect(client.replies.slice(-3).map((r) => r.error_code)).toEqual(["SHUTTING_DOWN", "SHUTTING_DOWN", "SHUTTING_DOWN"])
      // Only a request written after the server ended its side can go unanswered (the client sees the end, not a reset).
      expect(written - client.replies.length).toBeLessThanOrEqual(1)
    }))
})

describe("closing is bounded", () => {
  it.live("a client that neither reads nor ends: shutdown still completes and its connection is closed", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const blob = "x".repeat(64 * 1024)
      const handler: InferenceHandlerShape = { infer: () => Effect.succeed({ detections: [], metadata: { blob } }) }
      const c = yield* startContainer({ handler, frames }).pipe(Effect.provide(quiet), Scope.provide(scope))
      // Half-open allowed and never reading: the server's answers and its end go nowhere.
      const socket = net.connect({ path: c.socketPath, allowHalfOpen: true })
      socket.pause()
      // The server is gone for this client once its stream ends (or breaks): it may still hold its own side open.
      const letGo = new Promise<void>((resolve) => {
        socket.on("end", resolve)
        socket.on("error", () => resolve())
      })
      socket.write(Buffer.concat(Array.from({ length: 64 }, (_, i) => encodeMessage(request("/dev/shm/cam1", { request_id: i })))))
      yield* Effect.repeat(Effect.sync(() => c.snapshot().total_requests), { until: (n) => n > 0, schedule: Schedule.spaced("10 millis") })
      // Without a bound this never completes: the answers cannot be delivered and the client never ends.
      yield* Scope.close(scope, Exit.void)
      socket.resume()
      yield* Effect.promise(() => letGo)
      socket.destroy()
    }))
})

describe("the idle sweep", () => {
  it.effect("a pipelining client that stops reading past the idle timeout still gets every answer (TestClock)", () =>
    Effect.gen(function*() {
      // Large answers: a few fill the socket buffers, and the rest wait in the server.
      const blob = "x".repeat(32 * 1024)
      const handler: InferenceHandlerShape = { infer: () => Effect.succeed({ detections: [], metadata: { blob } }) }
      const c = yield* startContainer({ handler, frames, settings: { idleTimeoutMs: 150, heartbeatIntervalMs: 0 } }).pipe(
        Effect.provide(quiet)
      )
      const client = yield* connect(c.socketPath)
      client.socket.pause()
      const n = 200
      client.socket.write(Buffer.concat(Array.from({ length: n }, (_, i) => encodeMessage(request("/dev/shm/cam1", { request_id: i })))))
      yield* until(() => c.snapshot().total_requests > 0, "the server answering")
      // Several idle timeouts without reading a byte.
      yield* TestClock.adjust(1_000)
      client.socket.resume()
      yield* Effect.promise(() => client.until((rs) => rs.length >= n))
      expect(client.replies.map((r) => r.request_id)).toEqual(Array.from({ length: n }, (_, i) => i))
      expect(client.replies.every((r) => r.error === null)).toBe(true)
      // With nothing left to deliver and nothing sent, it is idle: closed, cleanly.
      yield* TestClock.adjust(300)
      expect(yield* Effect.promise(() => client.closed)).toBeUndefined()
    }))
})
