/**
 * The Unix-socket server: length-prefixed messages in, one reply per message
 * out, in order, on every connection. It knows nothing of models: a
 * `MessageHandler` turns each decoded event into a reply.
 *
 * Each connection is a fiber in a set owned by the server's scope; each
 * connection handles its messages one after another (so replies keep request
 * order) and stops reading while a backlog of decoded messages waits, so a
 * pipelining client cannot make us buffer without bound. Concurrency comes
 * from many connections.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import { Data, Effect, FiberSet, type Scope } from "effect"
import { type DecodedEvent, FrameDecoder } from "../contract/codec.js"
import { claimSocketPath, releaseSocketPath, SocketPathError } from "./socketPath.js"

export interface IpcServerOptions {
  readonly socketPath: string
  readonly socketMode: number
  readonly maxMessageBytes: number
  /** A connection with no traffic and no request in progress for this long is closed. */
  readonly idleTimeoutMs: number
  /** Pending connections the kernel queues before accept (Python's reference used 5). */
  readonly backlog?: number
}

/** What to send back for one event; `close` ends the connection after it is written. */
export interface Reply {
  readonly bytes: Uint8Array
  readonly close: boolean
}

export type MessageHandler<R> = (event: DecodedEvent) => Effect.Effect<Reply, never, R>

export interface IpcServer {
  readonly socketPath: string
  /** Connections currently open. */
  readonly connectionCount: () => number
  /** Connections with a request in progress. */
  readonly busyCount: () => number
  /** Stops accepting and removes the socket file; open connections keep being served. */
  readonly stopAccepting: Effect.Effect<void>
  /** Completes when no request is in progress. */
  readonly awaitIdle: Effect.Effect<void>
  /** Closes every connection now, interrupting requests in progress. */
  readonly closeConnections: Effect.Effect<void>
}

export class ListenError extends Data.TaggedError("ListenError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `cannot listen on ${this.path}: ${this.reason}`
  }
}

/** Decoded events waiting to be handled before the connection reads more. */
const MAX_PENDING_EVENTS = 16

/** One accepted socket: turns 'data' events into a pull-based stream of decoded events. */
class Connection {
  private readonly events: Array<DecodedEvent> = []
  private waiter: (() => void) | undefined
  private ended = false
  busy = false

  constructor(readonly socket: net.Socket, maxMessageBytes: number, idleTimeoutMs: number) {
    const decoder = new FrameDecoder(maxMessageBytes)
    socket.on("data", (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) this.events.push(event)
      if (decoder.isFailed) socket.pause()
      if (this.events.length >= MAX_PENDING_EVENTS) socket.pause()
      this.wake()
    })
    const end = () => {
      this.ended = true
      this.wake()
    }
    socket.on("end", end)
    socket.on("close", end)
    socket.on("error", end)
    socket.setTimeout(idleTimeoutMs)
    socket.on("timeout", () => {
      if (!this.busy) socket.destroy()
    })
  }

  private wake() {
    const w = this.waiter
    this.waiter = undefined
    w?.()
  }

  /** The next event, or undefined once the peer has finished and nothing is left. */
  readonly next: Effect.Effect<DecodedEvent | undefined> = Effect.suspend(() => {
    const event = this.events.shift()
    if (event !== undefined) {
      if (this.events.length < MAX_PENDING_EVENTS && this.socket.isPaused() && !this.ended) this.socket.resume()
      return Effect.succeed(event)
    }
    if (this.ended) return Effect.succeed(undefined)
    return Effect.async<void>((resume) => {
      this.waiter = () => resume(Effect.void)
      return Effect.sync(() => {
        this.waiter = undefined
      })
    }).pipe(Effect.zipRight(this.next))
  })

  /** Writes a reply, waiting for the socket to drain when its buffer is full. */
  write(bytes: Uint8Array): Effect.Effect<void> {
    const socket = this.socket
    if (socket.destroyed || !socket.writable) return Effect.void
    if (socket.write(bytes)) return Effect.void
    return Effect.async<void>((resume) => {
      const done = () => {
        socket.off("drain", done)
        socket.off("close", done)
        resume(Effect.void)
      }
      socket.on("drain", done)
      socket.on("close", done)
      return Effect.sync(() => {
        socket.off("drain", done)
        socket.off("close", done)
      })
    })
  }
}

/**
 * Binds the socket and serves until the scope closes. Closing the scope stops
 * accepting, closes every connection and removes the socket file.
 */
export const serve = <R>(
  options: IpcServerOptions,
  handle: MessageHandler<R>
): Effect.Effect<IpcServer, SocketPathError | ListenError, Scope.Scope | R> =>
  Effect.gen(function*() {
    const { socketPath } = options
    yield* claimSocketPath(socketPath)
    const connections = new Set<Connection>()
    let busy = 0
    let idleWaiters: Array<() => void> = []
    const setBusy = (conn: Connection, value: boolean) => {
      if (conn.busy === value) return
      conn.busy = value
      busy += value ? 1 : -1
      if (busy === 0 && idleWaiters.length > 0) {
        const waiters = idleWaiters
        idleWaiters = []
        for (const w of waiters) w()
      }
    }

    const serveConnection = (conn: Connection): Effect.Effect<void, never, R> =>
      Effect.gen(function*() {
        while (true) {
          const event = yield* conn.next
          if (event === undefined) return
          setBusy(conn, true)
          const reply = yield* handle(event)
          yield* conn.write(reply.bytes)
          setBusy(conn, false)
          if (reply.close) return
        }
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            setBusy(conn, false)
            connections.delete(conn)
            if (!conn.socket.destroyed) conn.socket.end(() => conn.socket.destroy())
          })
        )
      )

    const fibers = yield* FiberSet.make<void, never>()
    const run = yield* FiberSet.runtime(fibers)<R>()

    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      const conn = new Connection(socket, options.maxMessageBytes, options.idleTimeoutMs)
      connections.add(conn)
      run(serveConnection(conn))
    })
    server.on("error", () => {}) // errors after listen surface per connection

    let accepting = false
    const stopAccepting = Effect.suspend(() => {
      if (!accepting) return Effect.void
      accepting = false
      server.close()
      return releaseSocketPath(socketPath, inode)
    })

    yield* Effect.async<void, ListenError>((resume) => {
      const onError = (e: Error) => resume(Effect.fail(new ListenError({ path: socketPath, reason: e.message })))
      server.once("error", onError)
      server.listen({ path: socketPath, backlog: options.backlog ?? 511 }, () => {
        server.off("error", onError)
        resume(Effect.void)
      })
    })
    accepting = true
    const inode = fs.statSync(socketPath).ino
    yield* Effect.try({
      try: () => fs.chmodSync(socketPath, options.socketMode),
      catch: (e) => new ListenError({ path: socketPath, reason: `cannot set mode ${options.socketMode.toString(8)}: ${String(e)}` })
    }).pipe(Effect.tapError(() => stopAccepting))

    const closeConnections = Effect.suspend(() => {
      for (const conn of connections) conn.socket.destroy()
      return FiberSet.clear(fibers)
    })
    // Runs before the FiberSet's own finalizer (finalizers run in reverse order).
    yield* Effect.addFinalizer(() => Effect.zipRight(stopAccepting, closeConnections))

    const awaitIdle = Effect.async<void>((resume) => {
      if (busy === 0) return resume(Effect.void)
      const w = () => resume(Effect.void)
      idleWaiters.push(w)
      return Effect.sync(() => {
        idleWaiters = idleWaiters.filter((x) => x !== w)
      })
    })

    return {
      socketPath,
      connectionCount: () => connections.size,
      busyCount: () => busy,
      stopAccepting,
      awaitIdle,
      closeConnections
    } satisfies IpcServer
  })
