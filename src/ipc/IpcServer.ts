/**
 * The Unix-socket server: length-prefixed messages in, one reply per message
 * out, in order, on every connection. It knows nothing of models: a
 * `MessageHandler` turns each decoded event into a reply.
 *
 * Written the way Effect's own `SocketServer` / `NodeSocketServer` are: a
 * service tag, a scoped `make` and a `layer`. Every request that waits runs in
 * a fiber owned by the server's scope (a `FiberSet`), and so do its deadline
 * and the server's closes of connections; an open connection is socket
 * callbacks, not a fiber (see Connection.ts: a suspended fiber per connection
 * costs a connect-per-request caller a quarter more CPU). Deadlines and the
 * idle sweep are on Effect's clock. Closing the scope drains: the socket goes,
 * new requests are answered `onShutdown`, requests in flight get the drain
 * deadline to finish, then every connection closes gracefully.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import { type Duplex, duplexPair } from "node:stream"
import { Clock, Context, Data, Effect, FiberSet, Layer, type Scope } from "effect"
import { encodeMessage, FrameDecoder, parseJson } from "../contract/codec.js"
import { type MessageHandler, type Reply, serveConnection, type OpenConnection } from "./Connection.js"
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

/** What the core server needs of a listener: where it listens, and how to stop accepting. */
interface Listening {
  readonly socketPath: string
  /** Stops accepting (and removes the socket file); called once, when the drain begins. */
  readonly stop: Effect.Effect<void>
}

/**
 * The server around a listener: `listen` is given `accept` (serve one connected stream) and starts
 * listening. Requests, deadlines and closes run in fibers of this scope; closing the scope stops
 * the listener, answers new requests `onShutdown`, lets requests in flight finish within
 * `drainTimeoutMs`, then closes every connection gracefully.
 */
const serveOn = <R, E>(
  options: Pick<IpcServerOptions, "maxMessageBytes" | "idleTimeoutMs" | "drainTimeoutMs">,
  handler: MessageHandler<R>,
  listen: (accept: (stream: Duplex) => void) => Effect.Effect<Listening, E, Scope.Scope>
): Effect.Effect<IpcServer["Service"], E, Scope.Scope | R> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const log = Effect.runForkWith(yield* Effect.context<never>())
    /** Connections being closed by the server (idle), each close in a fiber. */
    const closing = yield* FiberSet.make<void>()
    const requests = yield* FiberSet.make<Reply>()
    const deadlines = yield* FiberSet.make<void>()
    // Effect 4: fibers run with the captured context (Effect 3 captured a Runtime), and at once, until they suspend.
    const runClose = yield* FiberSet.runtime(closing)<never>()
    const runRequest = yield* FiberSet.runtime(requests)<R>()
    const runDeadline = yield* FiberSet.runtime(deadlines)<never>()
    /** The scope is closing: no new connections, new events answered `onShutdown`. */
    let draining = false
    /** Open connections: for the idle sweep (one timer for all of them, not one per connection) and the drain. */
    const open = new Set<OpenConnection>()
    const sweepEvery = Math.max(25, Math.min(1_000, Math.floor(options.idleTimeoutMs / 4)))
    yield* Effect.sync(() => {
      const now = clock.currentTimeMillisUnsafe()
      for (const connection of open) connection.closeIfIdle(now)
    }).pipe(Effect.andThen(Effect.sleep(sweepEvery)), Effect.forever, Effect.forkScoped)

    const context = {
      handler,
      maxMessageBytes: options.maxMessageBytes,
      idleTimeoutMs: options.idleTimeoutMs,
      clock,
      runRequest,
      runDeadline,
      isDraining: () => draining,
      logDefect: (cause: unknown) => void log(Effect.logError("a request ended in a defect; answered INFERENCE_FAILED", cause)),
      track: (connection: OpenConnection) => {
        open.add(connection)
        return () => void open.delete(connection)
      },
      runClose: (close: Effect.Effect<void>) => void runClose(close)
    }
    const listening = yield* listen((stream) => {
      if (draining) return void stream.destroy()
      serveConnection(stream, context)
    })

    // Runs before the fiber sets close (registered after them): they interrupt whatever is left.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        draining = true
        yield* listening.stop
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
        // Every connection closes gracefully and within a bound (those the idle sweep is closing too).
        yield* Effect.forEach([...open], (connection) => connection.close, { concurrency: "unbounded", discard: true })
      })
    )

    return IpcServer.of({
      socketPath: listening.socketPath,
      inFlight: FiberSet.size(requests),
      connections: Effect.sync(() => open.size)
    })
  })

/** Claims the socket path and listens on it; `stop` closes the listener and removes the socket file. */
const listenOnSocket = (options: IpcServerOptions) => (accept: (stream: Duplex) => void) =>
  Effect.gen(function*() {
    const { socketPath } = options
    yield* claimSocketPath(socketPath)
    const server = net.createServer({ allowHalfOpen: true }, accept)
    server.on("error", () => {}) // errors after listen surface per connection
    let inode = 0
    const stop = Effect.suspend(() => {
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
    }).pipe(Effect.tapError(() => stop))
    return { socketPath, stop } satisfies Listening
  })

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
  serveOn(options, handler, listenOnSocket(options))

/** The server as a layer: listening once built, drained and closed with the layer's scope. */
export const layer = <R>(
  options: IpcServerOptions,
  handler: MessageHandler<R>
): Layer.Layer<IpcServer, SocketPathError | ListenError, R> => Layer.effect(IpcServer, make(options, handler))

/**
 * How a container serves its message handler: on the Unix socket (`socketTransport`, the live
 * one), or in memory (`memoryTransport`, for tests: the same connection code over an in-memory
 * stream pair, no socket file).
 */
export class Transport extends Context.Service<Transport, {
  readonly serve: <R>(
    options: IpcServerOptions,
    handler: MessageHandler<R>
  ) => Effect.Effect<IpcServer["Service"], SocketPathError | ListenError, Scope.Scope | R>
}>()("@ruth-ai/model-runtime/Transport") {}

/** The live transport: the Unix socket at `socketPath`. */
export const socketTransport: Layer.Layer<Transport> = Layer.succeed(Transport, Transport.of({ serve: make }))

/** A connection in memory was asked for while no server is listening, or it closed before its reply. */
export class NotConnected extends Data.TaggedError("NotConnected")<{ readonly reason: string }> {
  override get message() {
    return `in-memory connection: ${this.reason}`
  }
}

/** One client connection of the in-memory transport. */
export interface MemoryConnection {
  /** Writes a message (raw bytes as they are, anything else encoded as the wire does) and waits for the next reply, parsed. */
  readonly send: (message: unknown) => Effect.Effect<unknown, NotConnected>
  /** Ends the client's side (the server answers what it received, then closes). */
  readonly end: Effect.Effect<void>
  /** The client's end of the stream pair, for tests of the byte level. */
  readonly stream: Duplex
}

/** Client connections to the server a `memoryTransport` serves. */
export class MemoryTransport extends Context.Service<MemoryTransport, {
  /** Opens a connection to the server listening now. */
  readonly connect: Effect.Effect<MemoryConnection, NotConnected>
  /** Sends one message on a connection of its own and returns the reply. */
  readonly request: (message: unknown) => Effect.Effect<unknown, NotConnected>
}>()("@ruth-ai/model-runtime/MemoryTransport") {}

const memoryConnection = (stream: Duplex): MemoryConnection => {
  const decoder = new FrameDecoder(Number.MAX_SAFE_INTEGER)
  const replies: Array<unknown> = []
  const waiting: Array<(reply: Effect.Effect<unknown, NotConnected>) => void> = []
  let closed = false
  stream.on("data", (chunk: Buffer) => {
    for (const event of decoder.push(chunk)) {
      if (event._tag !== "Message") continue
      const parsed = parseJson(event.payload)
      const reply = parsed.ok ? parsed.value : { unparsable: parsed.reason }
      const resume = waiting.shift()
      if (resume !== undefined) resume(Effect.succeed(reply))
      else replies.push(reply)
    }
  })
  const onGone = () => {
    closed = true
    for (const resume of waiting.splice(0)) resume(Effect.fail(new NotConnected({ reason: "closed by the server before its reply" })))
  }
  // Like a socket client (allowHalfOpen false): the server's end ends ours.
  stream.on("end", () => {
    onGone()
    stream.end()
  })
  stream.on("close", onGone)
  return {
    stream,
    send: (message) =>
      Effect.callback<unknown, NotConnected>((resume) => {
        if (closed || stream.writableEnded) return resume(Effect.fail(new NotConnected({ reason: "already closed" })))
        stream.write(message instanceof Uint8Array ? message : encodeMessage(message))
        if (replies.length > 0) return resume(Effect.succeed(replies.shift()))
        waiting.push(resume)
      }),
    end: Effect.sync(() => void stream.end())
  }
}

/**
 * The in-memory transport: `Transport` for the container and `MemoryTransport` for the test's
 * clients. Each connection is a `duplexPair` whose server end the real connection code serves
 * (framing, order, deadlines, drain and close as on the socket).
 */
export const memoryTransport: Layer.Layer<Transport | MemoryTransport> = Layer.effectContext(
  Effect.sync(() => {
    let accept: ((stream: Duplex) => void) | undefined
    const connect = Effect.suspend(() => {
      if (accept === undefined) return Effect.fail(new NotConnected({ reason: "no server is listening" }))
      const [client, server] = duplexPair()
      accept(server)
      return Effect.succeed(memoryConnection(client))
    })
    const transport = Transport.of({
      serve: (options, handler) =>
        serveOn(options, handler, (onConnection) =>
          Effect.sync(() => {
            accept = onConnection
            return { socketPath: "memory", stop: Effect.sync(() => void (accept = undefined)) }
          }))
    })
    const memory = MemoryTransport.of({
      connect,
      request: (message) =>
        Effect.flatMap(connect, (connection) => Effect.ensuring(connection.send(message), connection.end))
    })
    return Context.make(Transport, transport).pipe(Context.add(MemoryTransport, memory))
  })
)
