/**
 * One connection of the IPC server: it reads length-prefixed messages,
 * answers each in order (at once, or from a request fiber under its deadline),
 * and ends when the client goes, or is closed by the server (idle for the idle
 * timeout, or the server closing). Closing is graceful: what it received is
 * answered (`onShutdown`), then it half-closes and reads to the client's end,
 * so the client never sees a reset.
 *
 * An open connection is plain state and socket callbacks, not a fiber: in
 * Effect 4.1 every fiber that suspends captures an async context
 * (`AsyncResource`), which cost a connect-per-request caller a quarter more
 * server CPU per request (bench/serverCpu.ts). Its requests are fibers; its
 * close, when the server closes it, is an effect the server runs.
 *
 * A connection handles its messages one after another (so replies keep
 * request order) and stops reading while a backlog of decoded messages waits,
 * so a pipelining client cannot make us buffer without bound.
 */
import type { Duplex } from "node:stream"
import { Cause, type Clock, Effect, Exit, type Fiber } from "effect"
import { type DecodedEvent, FrameDecoder } from "../contract/codec.js"

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
  /** The answer for an event received but not served because the server is draining or closing (its fiber interrupted, or never started). */
  readonly onShutdown: (event: DecodedEvent) => Reply
}

/** What a connection needs from its server. */
export interface ConnectionContext<R> {
  readonly handler: MessageHandler<R>
  readonly maxMessageBytes: number
  readonly idleTimeoutMs: number
  /** The server's clock: idle and close deadlines are measured on it (a test drives it with `TestClock`). */
  readonly clock: Clock.Clock
  /** Forks a request's effect into the server's requests (started at once: one that never waits completes inside). */
  readonly runRequest: (effect: Effect.Effect<Reply, never, R>) => Fiber.Fiber<Reply>
  /** Forks a request's deadline into the server's deadlines. */
  readonly runDeadline: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  /** True once the server drains: new events are answered `onShutdown`. */
  readonly isDraining: () => boolean
  /** Logs the cause of a request that died (it is answered `onDefect`). */
  readonly logDefect: (cause: Cause.Cause<unknown>) => void
  /** Puts the connection among the server's open connections until its socket closes (returns its removal). */
  readonly track: (connection: OpenConnection) => () => void
  /** Runs a connection's close in a fiber of the server's scope (the idle sweep's closes). */
  readonly runClose: (close: Effect.Effect<void>) => void
}

/** An open connection, as the server's idle sweep and drain see it. */
export interface OpenConnection {
  /** Closes it (`close`, in a fiber of the server) when it has been idle for the idle timeout at `now`. */
  readonly closeIfIdle: (now: number) => void
  /** Closes it gracefully and within a bound; completes when its socket has closed. */
  readonly close: Effect.Effect<void>
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

/**
 * Serves one accepted socket until it closes. Each request that needs a fiber
 * runs in its own (`runRequest`), with a deadline fiber beside it only once it
 * has suspended; a request that completes synchronously is answered without a
 * timer or a fork. (This is the hot path.)
 */
export const serveConnection = <R>(socket: Duplex, ctx: ConnectionContext<R>): void => {
  const { handler, clock } = ctx
  const decoder = new FrameDecoder(ctx.maxMessageBytes)
  const pending: Array<DecodedEvent> = []
  let head = 0
  /** When the connection last had traffic: bytes read, a request finished, its buffer drained. */
  let lastActive = clock.currentTimeMillisUnsafe()
  /** A request of this connection runs in a fiber (set before the fiber starts, see `pump`). */
  let inProgress = false
  /** That request's fiber, once its fork has returned. */
  let current: Fiber.Fiber<Reply> | undefined
  /** The socket's buffer is full: answering resumes on "drain". */
  let waitingForDrain = false
  /** The client sent its end: nothing more will arrive. */
  let ended = false
  /** The socket has closed. */
  let closed = false
  /** Closing: what was received is answered `onShutdown`, then it half-closes. */
  let closing = false
  let closeStarted = 0

  /**
   * What to send for an event whose fiber ended: its reply; the timeout answer when the deadline
   * interrupted it; the shutdown answer when closing interrupted it; and for a fiber that died,
   * `onDefect`'s answer, so that no request goes unanswered.
   */
  const replyOf = (event: DecodedEvent, exit: Exit.Exit<Reply>, expired: boolean): Reply => {
    if (Exit.isSuccess(exit)) return exit.value
    if (expired) return handler.onTimeout(event)
    if (Cause.hasInterruptsOnly(exit.cause)) return handler.onShutdown(event)
    ctx.logDefect(exit.cause)
    return handler.onDefect(event, exit.cause)
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
        if (ended || (closing && decoder.bufferedBytes === 0)) finish()
        return
      }
      const event = pending[head]!
      pending[head++] = undefined!
      if (pending.length - head < MAX_PENDING_EVENTS && socket.isPaused() && !ended && !decoder.isFailed) {
        socket.resume()
      }
      let handled: Reply | Effect.Effect<Reply, never, R>
      try {
        handled = closing || ctx.isDraining() ? handler.onShutdown(event) : handler.handle(event)
      } catch (defect) {
        // A bug on the synchronous path must cost one answer, not the process.
        handled = replyOf(event, Exit.die(defect), false)
      }
      if (!Effect.isEffect(handled)) {
        if (!respond(handled)) return
        continue
      }
      // In progress before it starts: Effect 4 runs the fiber synchronously until it suspends, and
      // whatever it wakes on the way (a Deferred another fiber awaits, ...) runs nested, inside the
      // fork; a close starting there must leave this request to be interrupted below.
      inProgress = true
      // A request that never waits (a fast model) completes right here, with no timer.
      const fiber = ctx.runRequest(handled)
      const done = fiber.pollUnsafe()
      if (done !== undefined) {
        inProgress = false
        if (respond(replyOf(event, done, false))) continue
        return
      }
      current = fiber
      let expired = false
      const deadline = ctx.runDeadline(Effect.sleep(handler.timeoutMs))
      deadline.addObserver((exit) => {
        if (Exit.isSuccess(exit)) {
          expired = true
          fiber.interruptUnsafe()
        }
      })
      fiber.addObserver((exit) => {
        deadline.interruptUnsafe()
        current = undefined
        inProgress = false
        lastActive = clock.currentTimeMillisUnsafe()
        // The reply is written before anything waiting for this request wakes (the drain awaits the
        // fiber with an observer added after this one): in Effect 4 it would run at once, and could
        // close this connection before its answer is written.
        if (respond(replyOf(event, exit, expired))) pump()
      })
      // Closed while the fiber was starting (nested, see above): its request is interrupted like any other.
      if (closing) fiber.interruptUnsafe()
      return
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
      lastActive = clock.currentTimeMillisUnsafe()
      pump()
    })
    return false
  }

  socket.on("data", (chunk: Buffer) => {
    lastActive = clock.currentTimeMillisUnsafe()
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
    closed = true
    // A request it left runs on to its deadline, answered to no one.
    untrack()
  })

  /**
   * Milliseconds until the connection counts as idle (0: it is). Answers
   * still queued or unwritten mean a slow reader, not an idle client; while
   * busy, a full timeout is the earliest it can be idle, as the end of being
   * busy counts as traffic.
   */
  const idleIn = (now: number): number =>
    inProgress || waitingForDrain || head !== pending.length || socket.writableLength > 0
      ? ctx.idleTimeoutMs
      : lastActive + ctx.idleTimeoutMs - now

  /** Answers what was received (its request interrupted: `onShutdown`), half-closes, and waits for the socket to close, within the bound. */
  const close = Effect.suspend(() => {
    if (closed) return Effect.void
    if (!closing) {
      closing = true
      closeStarted = clock.currentTimeMillisUnsafe()
      if (current !== undefined) current.interruptUnsafe()
      else if (!inProgress && !waitingForDrain) pump()
    }
    // Built here, not per connection: most connections are never closed by the server.
    /** Completes when the socket has closed. */
    const untilClosed = Effect.callback<void>((resume) => {
      if (closed) return resume(Effect.void)
      const onClose = () => resume(Effect.void)
      socket.once("close", onClose)
      return Effect.sync(() => socket.off("close", onClose))
    })
    /** Destroys the socket after `CLOSE_STALL_MS` without progress, or `CLOSE_LINGER_MS` after the close began. */
    const lingerBound = Effect.suspend(function wait(): Effect.Effect<void> {
      const at = Math.min(Math.max(closeStarted, lastActive) + CLOSE_STALL_MS, closeStarted + CLOSE_LINGER_MS)
      const ms = at - clock.currentTimeMillisUnsafe()
      return ms <= 0 ? Effect.sync(() => socket.destroy()) : Effect.andThen(Effect.sleep(ms), Effect.suspend(wait))
    })
    return Effect.raceFirst(untilClosed, lingerBound)
  })

  const untrack = ctx.track({
    closeIfIdle: (now) => {
      if (!closing && !closed && idleIn(now) <= 0) ctx.runClose(close)
    },
    close
  })
}
