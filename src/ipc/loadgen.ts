/**
 * A closed-loop load generator for the contract's socket protocol, shared by
 * `ruth-model bench` and `bench/ipc`. Plain callbacks on purpose: the
 * generator must cost as little as possible so it measures the server.
 * Persistent clients notice a server that closes after each answer (as the
 * original one does), retry the request it cannot have answered once on a
 * fresh connection, and go on with one connection per request.
 */
import { DEFAULT_MAX_MESSAGE_BYTES } from "../contract/codec.js"
import { type ClientConnection, ClientError, openConnection } from "./ModelClient.js"

export interface LoadOptions {
  readonly socketPath: string
  /** Concurrent clients, each with at most one request outstanding. */
  readonly concurrency: number
  readonly durationMs: number
  /** New connection per request (the reference callers' way) instead of one persistent connection per client. */
  readonly connectPerRequest: boolean
  /** The framed request to send (same bytes every time). */
  readonly message: Uint8Array
  /** Called about every `progressIntervalMs` with the running totals. */
  readonly onProgress?: (progress: LoadProgress) => void
  readonly progressIntervalMs?: number
  /** Called with every answer that is not an error response, and its round trip (e.g. to read its metadata). */
  readonly onAnswer?: (payload: Uint8Array, latencyMs: number) => void
  /** Ends the run early (e.g. Ctrl+C): requests in flight are abandoned, the result covers what was answered. */
  readonly signal?: AbortSignal
}

/**
 * How the clients ended up connecting: `persistent`, `per-request` (asked for), or
 * `per-request-server-closes` (asked for persistent, but the server closes after each answer).
 */
export type ConnectionMode = "persistent" | "per-request" | "per-request-server-closes"

export interface LoadProgress {
  readonly elapsedMs: number
  readonly requests: number
  readonly errorResponses: number
  readonly failures: number
  readonly recentRps: number
}

export interface LoadResult {
  readonly concurrency: number
  readonly connectPerRequest: boolean
  readonly connections: ConnectionMode
  /** Whether the run was ended early by `signal`. */
  readonly stopped: boolean
  readonly durationMs: number
  /** Replies received. */
  readonly requests: number
  /** Replies whose `error` was not null. */
  readonly errorResponses: number
  /** Connections refused, reset or closed without a reply. */
  readonly failures: number
  readonly rps: number
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number; readonly mean: number }
  /** The first failure's reason, when there was one. */
  readonly firstFailure?: string
  /** The first error response's `error`, when there was one. */
  readonly firstError?: string
}

/** Growable sample store: no per-sample allocation. */
export class Samples {
  private data = new Float64Array(1 << 16)
  length = 0
  push(v: number) {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2)
      next.set(this.data)
      this.data = next
    }
    this.data[this.length++] = v
  }
  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort()
  }
}

/** The q-quantile (0–1) of sorted samples, nearest rank. */
export const quantile = (sorted: Float64Array, q: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

/** The median of unsorted samples (nearest rank). */
export const median = (xs: ReadonlyArray<number>): number => quantile(Float64Array.from(xs).sort(), 0.5)

const ERROR_NULL = Buffer.from('"error":null')

/** An error reply's `error` and, when it has one, its `error_code` (servers before the codes give none). */
export interface ReplyError {
  readonly error: string
  readonly code: string | undefined
}

/**
 * The reply's error, or undefined when `error` is null: a byte search first, parsing only the rare
 * error replies (shared with the open-loop generator).
 */
export const replyError = (payload: Uint8Array): ReplyError | undefined => {
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.length)
  if (bytes.indexOf(ERROR_NULL) !== -1) return undefined
  try {
    const reply = JSON.parse(bytes.toString("utf8")) as { error?: unknown; error_code?: unknown }
    if (reply.error === null || reply.error === undefined) return undefined
    return { error: String(reply.error), code: typeof reply.error_code === "string" ? reply.error_code : undefined }
  } catch {
    return { error: "reply is not JSON", code: undefined }
  }
}

export const runLoad = (options: LoadOptions): Promise<LoadResult> =>
  new Promise((resolve) => {
    const latencies = new Samples()
    let errorResponses = 0
    let failures = 0
    let firstFailure: string | undefined
    let firstError: string | undefined
    let serverCloses = false
    let finished = false
    const open = new Set<ClientConnection>()
    const started = performance.now()
    const deadline = started + options.durationMs
    let running = options.concurrency
    let lastProgressAt = started
    let lastProgressCount = 0

    const report = () => {
      const now = performance.now()
      const requests = latencies.length
      options.onProgress?.({
        elapsedMs: now - started,
        requests,
        errorResponses,
        failures,
        recentRps: ((requests - lastProgressCount) * 1000) / (now - lastProgressAt)
      })
      lastProgressAt = now
      lastProgressCount = requests
    }
    const progressTimer = options.onProgress === undefined ? undefined : setInterval(report, options.progressIntervalMs ?? 1000)

    const finish = () => {
      if (finished) return
      finished = true
      options.signal?.removeEventListener("abort", finish)
      for (const conn of open) conn.socket.destroy()
      if (progressTimer !== undefined) {
        clearInterval(progressTimer)
        // The last stretch is reported too, so a run shorter than the interval still shows progress.
        if (latencies.length > lastProgressCount) report()
      }
      const elapsed = performance.now() - started
      const sorted = latencies.sorted()
      let sum = 0
      for (let i = 0; i < sorted.length; i++) sum += sorted[i]!
      resolve({
        concurrency: options.concurrency,
        connectPerRequest: options.connectPerRequest,
        connections: options.connectPerRequest ? "per-request" : serverCloses ? "per-request-server-closes" : "persistent",
        stopped: options.signal?.aborted === true,
        durationMs: elapsed,
        requests: sorted.length,
        errorResponses,
        failures,
        rps: (sorted.length * 1000) / elapsed,
        latencyMs: {
          p50: quantile(sorted, 0.5),
          p90: quantile(sorted, 0.9),
          p99: quantile(sorted, 0.99),
          max: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
          mean: sorted.length === 0 ? 0 : sum / sorted.length
        },
        ...(firstFailure !== undefined ? { firstFailure } : {}),
        ...(firstError !== undefined ? { firstError } : {})
      })
    }
    if (options.signal?.aborted === true) return finish()
    options.signal?.addEventListener("abort", finish)

    const finishWorker = () => {
      running--
      if (running === 0) finish()
    }

    const fail = (reason: string) => {
      failures++
      firstFailure ??= reason
    }

    /** One client: sends, waits for the reply, repeats until the deadline. */
    const worker = () => {
      let conn: ClientConnection | undefined
      let perRequest = options.connectPerRequest

      const drop = (c: ClientConnection) => {
        c.socket.destroy()
        open.delete(c)
        if (conn === c) conn = undefined
      }

      const onReply = (payload: Uint8Array, sentAt: number) => {
        const latency = performance.now() - sentAt
        latencies.push(latency)
        const error = replyError(payload)
        if (error !== undefined) {
          errorResponses++
          firstError ??= error.error
        } else {
          options.onAnswer?.(payload, latency)
        }
      }

      /** Sends on `c`; a request a reused connection's server cannot have answered is retried once on a fresh one. */
      const sendOn = (c: ClientConnection, sentAt: number, retried: boolean) => {
        const reused = c.answered > 0
        c.send(options.message, (outcome) => {
          if (finished) return
          if (outcome.ok) {
            onReply(outcome.payload, sentAt)
            if (perRequest) drop(c)
            return next()
          }
          drop(c)
          if (outcome.retryable && reused && !retried) {
            // The server closed the connection after its answer: from now on, one connection per request.
            serverCloses = true
            perRequest = true
            return connect(sentAt, true)
          }
          fail(outcome.error.reason)
          next()
        })
      }

      const connect = (sentAt: number, retried: boolean) =>
        openConnection(options.socketPath, DEFAULT_MAX_MESSAGE_BYTES, (c) => {
          if (finished) return c instanceof ClientError ? undefined : void c.socket.destroy()
          if (c instanceof ClientError) {
            fail(c.reason)
            return void setTimeout(next, 1) // back off a little on connect errors
          }
          c.socket.setNoDelay?.(true)
          open.add(c)
          conn = c
          sendOn(c, sentAt, retried)
        })

      const next = () => {
        if (finished) return
        if (performance.now() >= deadline) {
          if (conn !== undefined) drop(conn)
          return finishWorker()
        }
        const sentAt = performance.now() // latency counts from before the connect
        if (conn === undefined) connect(sentAt, false)
        else sendOn(conn, sentAt, false)
      }

      next()
    }

    for (let i = 0; i < options.concurrency; i++) worker()
  })
