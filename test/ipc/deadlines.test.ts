/**
 * The server's deadlines are on Effect's clock: with `TestClock` a test moves
 * time itself, so "not a moment before, and at once after" is checked without
 * waiting for real time to pass.
 */
import * as net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect } from "effect"
import { TestClock } from "effect/testing"
import { type DecodedEvent, encodeMessage, FrameDecoder } from "../../src/contract/codec.js"
import * as IpcServer from "../../src/ipc/IpcServer.js"
import { tempDir, until } from "../support/harness.js"

const reply = (body: unknown) => ({ bytes: encodeMessage(body), close: false })
const idOf = (event: DecodedEvent) =>
  event._tag === "Message" ? (JSON.parse(Buffer.from(event.payload).toString("utf8")) as { id: number }).id : -1

/** Answers `{ id }` at once, except that id 0 never finishes (and says when it started and when it was interrupted). */
const handlerWith = (timeoutMs: number, started: { value: boolean }, interrupted: Deferred.Deferred<void>): IpcServer.MessageHandler<never> => ({
  handle: (event) =>
    idOf(event) === 0
      ? Effect.sync(() => void (started.value = true)).pipe(
        Effect.andThen(Effect.never),
        Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
      )
      : reply({ id: idOf(event) }),
  timeoutMs,
  onTimeout: (event) => reply({ id: idOf(event), timeout: true }),
  onDefect: (_event, cause) => reply({ defect: String(Cause.squash(cause)) }),
  onShutdown: (event) => reply({ id: idOf(event), shutdown: true })
})

/** A persistent client: `ask` sends `{ id }` and resolves with the next reply; `ended` when the server ends the connection. */
const connect = (socketPath: string) =>
  Effect.callback<{
    readonly ask: (id: number) => Promise<Record<string, unknown>>
    readonly ended: Promise<void>
    readonly replies: Array<Record<string, unknown>>
  }>((resume) => {
    const socket = net.connect(socketPath)
    const decoder = new FrameDecoder(1024 * 1024)
    const replies: Array<Record<string, unknown>> = []
    let waiting: Array<(r: Record<string, unknown>) => void> = []
    const ended = new Promise<void>((resolve) => socket.once("end", resolve))
    socket.on("data", (chunk) => {
      for (const event of decoder.push(chunk)) {
        if (event._tag !== "Message") continue
        const r = JSON.parse(Buffer.from(event.payload).toString("utf8")) as Record<string, unknown>
        replies.push(r)
        const [next, ...rest] = waiting
        waiting = rest
        next?.(r)
      }
    })
    const ask = (id: number) =>
      new Promise<Record<string, unknown>>((resolve) => {
        waiting.push(resolve)
        socket.write(encodeMessage({ id }))
      })
    socket.once("connect", () => resume(Effect.succeed({ ask, ended, replies })))
    return Effect.sync(() => socket.destroy())
  })

const optionsIn = (dir: string, idleTimeoutMs = 60_000): IpcServer.IpcServerOptions => ({
  socketPath: path.join(dir, "s.sock"),
  socketMode: 0o600,
  maxMessageBytes: 1024,
  idleTimeoutMs,
  drainTimeoutMs: 1_000
})

describe("IPC server deadlines (TestClock)", () => {
  it.effect("a request still running at its deadline is interrupted and answered onTimeout, not a moment before", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const started = { value: false }
      const interrupted = yield* Deferred.make<void>()
      const server = yield* IpcServer.make(optionsIn(dir), handlerWith(5_000, started, interrupted))
      const client = yield* connect(server.socketPath)
      const answer = client.ask(0)
      yield* until(() => started.value, "the request started")
      yield* TestClock.adjust(4_999)
      expect(yield* server.inFlight).toBe(1)
      expect(client.replies).toEqual([])
      yield* TestClock.adjust(1)
      expect(yield* Effect.promise(() => answer)).toEqual({ id: 0, timeout: true })
      yield* Deferred.await(interrupted)
      expect(yield* server.inFlight).toBe(0)
      // The connection goes on.
      expect(yield* Effect.promise(() => client.ask(1))).toEqual({ id: 1 })
    }))

  it.effect("a connection is closed once it has been silent for the idle timeout (within one sweep), counted from its last traffic", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const server = yield* IpcServer.make(optionsIn(dir, 60_000), handlerWith(5_000, { value: false }, yield* Deferred.make<void>()))
      const client = yield* connect(server.socketPath)
      expect(yield* Effect.promise(() => client.ask(1))).toEqual({ id: 1 })
      yield* TestClock.adjust(59_999)
      // Just before the timeout: still open; and this traffic starts the count again.
      expect(yield* Effect.promise(() => client.ask(2))).toEqual({ id: 2 })
      yield* TestClock.adjust(59_999)
      // Two timeouts after it opened, but less than one since its last traffic.
      expect(yield* Effect.promise(() => client.ask(3))).toEqual({ id: 3 })
      expect(yield* server.connections).toBe(1)
      // Idle from here on: closed by the idle sweep, which runs every quarter of the timeout (at most every second).
      yield* TestClock.adjust(60_000 + 1_000)
      yield* Effect.promise(() => client.ended)
      yield* until(() => Effect.runSync(server.connections) === 0, "the connection's fiber ended")
    }))

  it.effect("a request in progress keeps its connection open past the idle timeout", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const started = { value: false }
      const interrupted = yield* Deferred.make<void>()
      const server = yield* IpcServer.make(optionsIn(dir, 1_000), handlerWith(10_000, started, interrupted))
      const client = yield* connect(server.socketPath)
      const answer = client.ask(0)
      yield* until(() => started.value, "the request started")
      yield* TestClock.adjust(9_000)
      expect(yield* server.connections).toBe(1)
      yield* TestClock.adjust(1_000)
      expect(yield* Effect.promise(() => answer)).toEqual({ id: 0, timeout: true })
      expect(yield* Effect.promise(() => client.ask(1))).toEqual({ id: 1 })
    }))
})
