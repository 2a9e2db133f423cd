/**
 * The Unix-socket server: length-prefixed messages in, one reply per message
 * out, in order, on every connection. It knows nothing of models: a
 * `MessageHandler` turns each decoded event into a reply.
 *
 * Written the way Effect's own `SocketServer` / `NodeSocketServer` are: a
 * service tag, a scoped `make` and a `layer`. Every connection and every
 * request runs in a fiber owned by the server's scope (a `FiberSet` each);
 * deadlines are on Effect's clock. Closing the scope drains: the socket goes,
 * new requests are answered `onShutdown`, requests in flight get the drain
 * deadline to finish, then every connection closes gracefully.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import { Clock, Context, Data, Effect, FiberSet, Layer, type Scope } from "effect"
import { type MessageHandler, type Reply, serveConnection } from "./Connection.js"
import { claimSocketPath, releaseSocketPath, type SocketPathError } from "./socketPath.js"

export type { MessageHandler, Reply } from "./Connection.js"

export interface IpcServerOptions {
  readonly socketPath: string
  readonly socketMode: number
  readonly maxMessageBytes: number
  /** A connection with no traffic and no request in progress for this long is closed. */
  readonly idleTimeoutMs: number
  /** At shutdown, how long requests in flight may take to finish before they are interrupted (and answered `onShutdown`). */
  readonly drainTimeoutMs: number
  /** Pending connections the kernel queues before accept (Python's reference used 5). */
  readonly backlog?: number
}

/** A running server, for as long as its scope is open. */
export class IpcServer extends Context.Service<IpcServer, {
  readonly socketPath: string
  /** Requests in progress, each in its own fiber. */
  readonly inFlight: Effect.Effect<number>
  /** Open connections. */
  readonly connections: Effect.Effect<number>
}>()("@ruth-ai/model-runtime/IpcServer") {}

export class ListenError extends Data.TaggedError("ListenError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `cannot listen on ${this.path}: ${this.reason}`
  }
}

/**
 * Binds the socket and serves until the scope closes. Closing the scope
 * stops accepting and removes the socket file, answers new requests on open
 * connections with `onShutdown`, lets requests in flight finish within
 * `drainTimeoutMs`, then closes every connection: its request interrupted,
 * everything it received answered, a half-close, and a read to the client's
 * end (bounded), so a client never sees a reset after a write the server read.
 */
export const make = <R>(
  options: IpcServerOptions,
  handler: MessageHandler<R>
): Effect.Effect<IpcServer["Service"], SocketPathError | ListenError, Scope.Scope | R> =>
  Effect.gen(function*() {
    const { socketPath } = options
    yield* claimSocketPath(socketPath)
    const clock = yield* Clock.Clock
    const log = Effect.runForkWith(yield* Effect.context<never>())
    const connections = yield* FiberSet.make<void>()
    const requests = yield* FiberSet.make<Reply>()
    const deadlines = yield* FiberSet.make<void>()
    // Effect 4: fibers run with the captured context (Effect 3 captured a Runtime), and at once, until they suspend.
    const runConnection = yield* FiberSet.runtime(connections)<never>()
    const runRequest = yield* FiberSet.runtime(requests)<R>()
    const runDeadline = yield* FiberSet.runtime(deadlines)<never>()
    /** The scope is closing: no new connections, new events answered `onShutdown`. */
    let draining = false

    const context = {
      handler,
      maxMessageBytes: options.maxMessageBytes,
      idleTimeoutMs: options.idleTimeoutMs,
      clock,
      runRequest,
      runDeadline,
      isDraining: () => draining,
      logDefect: (cause: unknown) => void log(Effect.logError("a request ended in a defect; answered INFERENCE_FAILED", cause))
    }
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      if (draining) return void socket.destroy()
      runConnection(serveConnection(socket, context))
    })
    server.on("error", () => {}) // errors after listen surface per connection

    let inode = 0
    const stopAccepting = Effect.suspend(() => {
      if (draining) return Effect.void
      draining = true
      server.close()
      return releaseSocketPath(socketPath, inode)
    })

    yield* Effect.callback<void, ListenError>((resume) => {
      const onError = (e: Error) => resume(Effect.fail(new ListenError({ path: socketPath, reason: e.message })))
      server.once("error", onError)
      server.listen({ path: socketPath, backlog: options.backlog ?? 511 }, () => {
        server.off("error", onError)
        resume(Effect.void)
      })
    })
    inode = fs.statSync(socketPath).ino
    yield* Effect.try({
      try: () => fs.chmodSync(socketPath, options.socketMode),
      catch: (e) => new ListenError({ path: socketPath, reason: `cannot set mode ${options.socketMode.toString(8)}: ${String(e)}` })
    }).pipe(Effect.tapError(() => stopAccepting))

    // Runs before the fiber sets close (registered after them): they interrupt whatever is left.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* stopAccepting
        // Effect 4 may run this nested inside a request fiber's first synchronous steps (a Deferred it
        // completes wakes whoever closes the scope): yielding once lets that fork return and join
        // `requests` before they are counted and awaited.
        yield* Effect.yieldNow
        yield* Effect.logInfo(`draining: ${yield* FiberSet.size(requests)} request(s) in flight, deadline ${options.drainTimeoutMs} ms`)
        const drained = yield* FiberSet.awaitEmpty(requests).pipe(
          Effect.as(true),
          Effect.timeoutOrElse({ duration: options.drainTimeoutMs, orElse: () => Effect.succeed(false) })
        )
        if (!drained) {
          yield* Effect.logWarning(`drain deadline passed with ${yield* FiberSet.size(requests)} request(s) in flight; closing them`)
        }
        // Each connection's fiber, interrupted, closes its connection gracefully and within a bound.
        yield* FiberSet.clear(connections)
      })
    )

    return IpcServer.of({ socketPath, inFlight: FiberSet.size(requests), connections: FiberSet.size(connections) })
  })

/** The server as a layer: listening once built, drained and closed with the layer's scope. */
export const layer = <R>(
  options: IpcServerOptions,
  handler: MessageHandler<R>
): Layer.Layer<IpcServer, SocketPathError | ListenError, R> => Layer.effect(IpcServer, make(options, handler))
