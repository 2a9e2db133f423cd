/**
 * A closed-loop load generator for the contract's socket protocol, shared by
 * `ruth-model bench` and `bench/ipc`. Plain callbacks on purpose: the
 * generator must cost as little as possible so it measures the server.
 */
import * as net from "node:net"
import { FrameDecoder } from "../contract/codec.js"

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
}

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
class Samples {
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

/** The reply's `error`, or undefined when it is null: a byte search first, parsing only the rare error replies. */
const errorOf = (payload: Uint8Array): string | undefined => {
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.length)
  if (bytes.indexOf(ERROR_NULL) !== -1) return undefined
  try {
    const reply = JSON.parse(bytes.toString("utf8")) as { error?: unknown }
    return reply.error === null || reply.error === undefined ? undefined : String(reply.error)
  } catch {
    return "reply is not JSON"
  }
}

export const runLoad = (options: LoadOptions): Promise<LoadResult> =>
  new Promise((resolve) => {
    const latencies = new Samples()
    let errorResponses = 0
    let failures = 0
    let firstFailure: string | undefined
    let firstError: string | undefined
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

    const finishWorker = () => {
      running--
      if (running > 0) return
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

    const fail = (reason: string) => {
      failures++
      firstFailure ??= reason
    }

    /** One client: sends, waits for the reply, repeats until the deadline. */
    const worker = () => {
      let socket: net.Socket | undefined
      let decoder = new FrameDecoder()
      let sentAt = 0
      let awaiting = false

      const onReply = (payload: Uint8Array) => {
        awaiting = false
        const latency = performance.now() - sentAt
        latencies.push(latency)
        const error = errorOf(payload)
        if (error !== undefined) {
          errorResponses++
          firstError ??= error
        } else {
          options.onAnswer?.(payload, latency)
        }
        if (options.connectPerRequest) {
          socket?.destroy()
          socket = undefined
        }
        next()
      }

      const open = () => {
        decoder = new FrameDecoder()
        const s = net.connect(options.socketPath)
        socket = s
        s.setNoDelay?.(true)
        s.on("connect", () => s.write(options.message)) // latency counts from before the connect
        s.on("data", (chunk: Buffer) => {
          for (const event of decoder.push(chunk)) {
            if (event._tag === "Message") onReply(event.payload)
          }
        })
        s.on("error", (e) => {
          if (socket === s) {
            socket = undefined
            fail(e.message)
            if (awaiting || s.connecting) {
              awaiting = false
              setTimeout(next, 1) // back off a little on connect errors
            }
          }
        })
        s.on("close", () => {
          if (socket === s) {
            socket = undefined
            if (awaiting) {
              awaiting = false
              fail("connection closed without a reply")
              next()
            }
          }
        })
      }

      const send = () => {
        awaiting = true
        sentAt = performance.now()
        socket?.write(options.message)
      }

      const next = () => {
        if (performance.now() >= deadline) {
          socket?.destroy()
          socket = undefined
          finishWorker()
          return
        }
        if (socket === undefined) {
          sentAt = performance.now()
          awaiting = true
          open()
        } else {
          send()
        }
      }

      next()
    }

    for (let i = 0; i < options.concurrency; i++) worker()
  })
