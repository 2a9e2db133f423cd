/**
 * The Unix-socket server: length-prefixed messages in, one reply per message
 * out, in order, on every connection. It knows nothing of models: a
 * `MessageHandler` turns each decoded event into a reply.
 *
 * A connection handles its messages one after another (so replies keep
 * request order) and stops reading while a backlog of decoded messages
 * waits, so a pipelining client cannot make us buffer without bound.
 * Concurrency comes from many connections.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import { Cause, Data, Effect, Exit, Fiber, Schedule, type Scope } from "effect"
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

/** Turns each decoded event into exactly one reply. */
export interface MessageHandler<R> {
  /** A reply at once, or an effect computing it (run in its own fiber, under the deadline). */
  readonly handle: (event: DecodedEvent) => Reply | Effect.Effect<Reply, never, R>
  /** How long one event may take; then its fiber is interrupted and `onTimeout` answers instead. */
  readonly timeoutMs: number
  readonly onTimeout: (event: DecodedEvent) => Reply
  /** The answer when an event's effect died instead of producing a reply (it is also logged). */
  readonly onDefect: (event: DecodedEvent, cause: Cause.Cause<unknown>) => Reply
  /** The answer for an event received but not served because the server is closing (its fiber interrupted, or never started). */
  readonly onShutdown: (event: DecodedEvent) => Reply
}

export interface IpcServer {
  readonly socketPath: string
  /** Connections with a request in progress. */
  readonly busyCount: () => number
  /** Stops accepting and removes the socket file; open connections keep being served. */
  readonly stopAccepting: Effect.Effect<void>
  /** Completes when no request is in progress (interruptible, also inside a finalizer). */
  readonly awaitIdle: Effect.Effect<void>
  /**
   * Closes every connection, gracefully and within a bound: requests in
   * progress are interrupted, and they and every request already received are
   * answered (`onShutdown`); then each connection is half-closed and read to
   * its end, so a client never sees a reset after a write the server read.
   */
  readonly closeConnections: Effect.Effect<void>
}

export class ListenError extends Data.TaggedError("ListenError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `cannot listen on ${this.path}: ${this.reason}`
  }
}

/** Decoded events waiting to be handled before the connection reads more. */
const MAX_PENDING_EVENTS = 16

/**
 * A connection being closed delivers its last answers and waits for the
 * client's end; it is destroyed after `CLOSE_STALL_MS` without progress (bytes
 * read, buffer drained), and `CLOSE_LINGER_MS` after its close at the latest.
 */
const CLOSE_STALL_MS = 1_000
const CLOSE_LINGER_MS = 5_000

/** One open connection, as the server's sweeps and shutdown see it. */
interface Connection {
  /** True when it has had no traffic for `idleMs`, and has no request in progress and no answer left to deliver. */
  readonly isIdle: (now: number, idleMs: number) => boolean
  /** Answers what was received, then half-closes; destroys it when it stalls, or after `CLOSE_LINGER_MS` at the latest. */
  readonly close: () => void
}

/**
 * Binds the socket and serves until the scope closes. Closing the scope stops
 * accepting, removes the socket file and closes every connection as
 * `closeConnections` does (its request interrupted, everything it received
 * answered, then a half-close).
 *
 * Each request runs in its own fiber, forked from the scope's runtime and
 * tracked until it ends; a connection starts the next request only when the
 * previous reply is written, so replies keep request order. (One fiber per
 * request and a plain timer for its deadline: this is the hot path.)
 */
export const serve = <R>(
  options: IpcServerOptions,
  handler: MessageHandler<R>
): Effect.Effect<IpcServer, SocketPathError | ListenError, Scope.Scope | R> =>
  Effect.gen(function*() {
    const { socketPath } = options
    yield* claimSocketPath(socketPath)
    // Effect 4: a fiber runs with the captured context (Effect 3 captured a Runtime).
    const runFork = Effect.runForkWith(yield* Effect.context<R>())
    /** Open connections. */
    const connections = new Map<net.Socket, Connection>()
    let closeWaiters: Array<() => void> = []
    const requests = new Set<Fiber.Fiber<Reply>>()
    let busy = 0
    let idleWaiters: Array<() => void> = []
    let closing = false

    const settle = () => {
      busy--
      if (busy === 0 && idleWaiters.length > 0) {
        const waiters = idleWaiters
        idleWaiters = []
        for (const w of waiters) w()
      }
    }

    /**
     * What to send for an event whose fiber ended: its reply; the timeout answer when the deadline
     * interrupted it; the shutdown answer when closing interrupted it; and for a fiber that died,
     * `onDefect`'s answer, so that no request goes unanswered.
     */
    const replyOf = (event: DecodedEvent, exit: Exit.Exit<Reply>, expired: boolean): Reply => {
      if (Exit.isSuccess(exit)) return exit.value
      if (expired) return handler.onTimeout(event)
      if (Cause.hasInterruptsOnly(exit.cause)) return handler.onShutdown(event)
      runFork(Effect.logError("a request ended in a defect; answered INFERENCE_FAILED", exit.cause))
      return handler.onDefect(event, exit.cause)
    }

    const accept = (socket: net.Socket) => {
      if (closing) return void socket.destroy()
      const decoder = new FrameDecoder(options.maxMessageBytes)
      const pending: Array<DecodedEvent> = []
      let head = 0
      /** When the connection last had traffic: bytes read, a request finished, its buffer drained. */
      let lastActive = performance.now()
      /** A request of this connection runs in a fiber. */
      let inProgress = false
      /** The socket's buffer is full: answering resumes on "drain". */
      let waitingForDrain = false
      /** The client sent its end: nothing more will arrive. */
      let ended = false
      /** The server is closing this connection: what was received is answered `onShutdown`, then it half-closes. */
      let closingThis = false
      let linger: ReturnType<typeof setTimeout> | undefined
      let lingerUntil = 0
      /** While closing: (re)starts the countdown to destroying the socket, on every sign of progress. */
      const lingerOn = () => {
        clearTimeout(linger)
        linger = setTimeout(() => socket.destroy(), Math.max(0, Math.min(CLOSE_STALL_MS, lingerUntil - performance.now())))
      }

      /**
       * Ends our side once every answer is written. When the client has ended
       * too, the socket is then destroyed; otherwise it is read (and discarded)
       * until the client ends: a socket destroyed with unread bytes resets the
       * client, even after a write of theirs that succeeded.
       */
      const finish = () => {
        if (socket.destroyed) return
        if (!socket.writableEnded) {
          socket.end(() => {
            if (ended) socket.destroy()
          })
        } else if (ended && socket.writableFinished) socket.destroy()
      }

      /** Handles pending events in order until one needs a fiber, the queue is empty or the socket is full. */
      const pump = (): void => {
        while (!inProgress) {
          if (head === pending.length) {
            pending.length = 0
            head = 0
            // Closing waits for a message half received (within the linger bound) so that it is answered too.
            if (ended || (closingThis && decoder.bufferedBytes === 0)) finish()
            return
          }
          const event = pending[head]!
          pending[head++] = undefined!
          if (pending.length - head < MAX_PENDING_EVENTS && socket.isPaused() && !ended && !decoder.isFailed) {
            socket.resume()
          }
          let handled: Reply | Effect.Effect<Reply, never, R>
          try {
            handled = closingThis ? handler.onShutdown(event) : handler.handle(event)
          } catch (defect) {
            // A bug on the synchronous path must cost one answer, not the process.
            handled = replyOf(event, Exit.die(defect), false)
          }
          if (!Effect.isEffect(handled)) {
            if (!respond(handled)) return
            continue
          }
          // Counted busy before it starts: Effect 4 runs the fiber synchronously until it suspends, and
          // whatever it wakes on the way (a Deferred another fiber awaits, ...) runs nested, inside
          // `runFork`; a drain starting there must see this request in flight.
          inProgress = true
          busy++
          // A request that never waits (a fast model) completes right here, with no timer.
          const fiber = runFork(handled)
          const done = fiber.pollUnsafe()
          if (done !== undefined) {
            inProgress = false
            const goOn = respond(replyOf(event, done, false))
            settle()
            if (goOn) continue
            return
          }
          let expired = false
          requests.add(fiber)
          const timer = setTimeout(() => {
            expired = true
            fiber.interruptUnsafe()
          }, handler.timeoutMs)
          fiber.addObserver((exit) => {
            clearTimeout(timer)
            requests.delete(fiber)
            const reply = replyOf(event, exit, expired)
            inProgress = false
            lastActive = performance.now()
            // The reply is written before the idle waiters wake: in Effect 4 a resumed fiber (the drain
            // waiting in `awaitIdle`) runs at once inside `settle`, and would close this connection first.
            const goOn = respond(reply)
            settle()
            if (goOn) pump()
          })
          // The connections were closed while the fiber was starting (nested, see above): it was not
          // among the requests `closeConnections` interrupted.
          if (closing) fiber.interruptUnsafe()
        }
      }

      /** Writes a reply; false when the connection must not go on now (closing, or its buffer is full). */
      const respond = (reply: Reply): boolean => {
        if (socket.destroyed || socket.writableEnded) return false
        if (reply.close) {
          socket.end(reply.bytes, () => socket.destroy())
          pending.length = 0
          head = 0
          return false
        }
        if (socket.write(reply.bytes)) return true
        // The client reads slower than we answer: wait for the buffer to drain.
        waitingForDrain = true
        socket.once("drain", () => {
          waitingForDrain = false
          lastActive = performance.now()
          if (closingThis) lingerOn()
          pump()
        })
        return false
      }

      connections.set(socket, {
        // Answers still queued or unwritten mean a slow reader, not an idle client.
        isIdle: (now, idleMs) =>
          !closingThis && !inProgress && head === pending.length && socket.writableLength === 0 &&
          now - lastActive >= idleMs,
        close: () => {
          if (closingThis || socket.destroyed) return
          closingThis = true
          lingerUntil = performance.now() + CLOSE_LINGER_MS
          lingerOn()
          if (!inProgress && !waitingForDrain) pump()
        }
      })

      socket.on("data", (chunk: Buffer) => {
        lastActive = performance.now()
        if (closingThis) lingerOn()
        // Half-closed by us: nothing more is answered, but reading on keeps the close from resetting the client.
        if (socket.writableEnded) return
        for (const event of decoder.push(chunk)) pending.push(event)
        if (decoder.isFailed || pending.length - head >= MAX_PENDING_EVENTS) socket.pause()
        pump()
      })
      socket.on("end", () => {
        ended = true
        if (!inProgress && head === pending.length) finish()
      })
      socket.on("error", () => socket.destroy())
      socket.on("close", () => {
        clearTimeout(linger)
        connections.delete(socket)
        if (connections.size === 0 && closeWaiters.length > 0) {
          const waiters = closeWaiters
          closeWaiters = []
          for (const w of waiters) w()
        }
      })
    }

    const server = net.createServer({ allowHalfOpen: true }, accept)
    server.on("error", () => {}) // errors after listen surface per connection

    let accepting = false
    let inode = 0
    const stopAccepting = Effect.suspend(() => {
      if (!accepting) return Effect.void
      accepting = false
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
    accepting = true
    inode = fs.statSync(socketPath).ino
    yield* Effect.try({
      try: () => fs.chmodSync(socketPath, options.socketMode),
      catch: (e) => new ListenError({ path: socketPath, reason: `cannot set mode ${options.socketMode.toString(8)}: ${String(e)}` })
    }).pipe(Effect.tapError(() => stopAccepting))

    /** Completes when every connection has closed (each is destroyed within `CLOSE_LINGER_MS` of its close at the latest). */
    const allClosed = Effect.callback<void>((resume) => {
      if (connections.size === 0) return resume(Effect.void)
      const w = () => resume(Effect.void)
      closeWaiters.push(w)
      return Effect.sync(() => {
        closeWaiters = closeWaiters.filter((x) => x !== w)
      })
    })

    const closeConnections = Effect.suspend(() => {
      closing = true
      for (const connection of connections.values()) connection.close()
      // Each interrupted request is answered `onShutdown`, then its connection goes on answering what it received.
      return Effect.andThen(Fiber.interruptAll(Array.from(requests)), allClosed)
    })
    yield* Effect.addFinalizer(() => Effect.andThen(stopAccepting, closeConnections))

    // One sweep for all connections instead of a timer per socket refreshed on every read and write.
    const sweepEvery = Math.max(25, Math.min(1000, Math.floor(options.idleTimeoutMs / 4)))
    yield* Effect.sync(() => {
      const now = performance.now()
      for (const connection of connections.values()) {
        if (connection.isIdle(now, options.idleTimeoutMs)) connection.close()
      }
    }).pipe(Effect.repeat(Schedule.spaced(sweepEvery)), Effect.forkScoped)

    // Interruptible even where it runs, in a scope's (uninterruptible) finalizer: else a drain deadline could not end it.
    const awaitIdle = Effect.interruptible(Effect.callback<void>((resume) => {
      if (busy === 0) return resume(Effect.void)
      const w = () => resume(Effect.void)
      idleWaiters.push(w)
      return Effect.sync(() => {
        idleWaiters = idleWaiters.filter((x) => x !== w)
      })
    }))

    return {
      socketPath,
      busyCount: () => busy,
      stopAccepting,
      awaitIdle,
      closeConnections
    } satisfies IpcServer
  })
