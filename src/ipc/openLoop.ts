/**
 * An open-loop load generator: K cameras, each sending frames at its own rate whether or not
 * answers came back, as real cameras do. A closed loop (loadgen.ts) slows down with the server and
 * so hides queueing; under overload only an open loop shows what callers get: how many frames were
 * answered in time, how old they were at answer, and what each camera got.
 *
 * Every frame is a new request (camera `cam-k`, a frame id increasing per camera, `timestamp` = its
 * send time). By default each request has its own connection, as the video core does; with
 * `connectPerRequest: false` each camera keeps one connection and writes every frame on it without
 * waiting (the server answers a connection's requests in order, so they are matched in order).
 * Error answers are counted by their `error_code` string, whatever the codes are. Plain callbacks,
 * like loadgen.ts: the generator must cost little so it measures the server.
 */
import * as net from "node:net"
import { DEFAULT_MAX_MESSAGE_BYTES, encodeMessage, FrameDecoder } from "../contract/codec.js"
import { quantile, replyError, Samples } from "./loadgen.js"
import { ClientError, openConnection } from "./ModelClient.js"

/** The request for one frame (the generator encodes it). */
export type FrameRequest = (frame: { readonly cameraId: string; readonly frameId: number; readonly timestamp: number }) => unknown

export interface OpenLoopOptions {
  readonly socketPath: string
  /** Frames per second of each camera; cameras are named `cam-1`..`cam-K` in this order. */
  readonly fps: ReadonlyArray<number>
  /** How long the cameras send. */
  readonly durationMs: number
  /** After sending ends, how long answers are still awaited before the rest count as `unanswered`. */
  readonly graceMs: number
  /** A new connection per request (the video core's way); otherwise one pipelined connection per camera. */
  readonly connectPerRequest: boolean
  readonly request: FrameRequest
  /** Called about every `progressIntervalMs` with the running totals. */
  readonly onProgress?: (progress: OpenLoopProgress) => void
  readonly progressIntervalMs?: number
  /** Ends the run at once (e.g. Ctrl+C): requests in flight count as `unanswered`. */
  readonly signal?: AbortSignal
}

export interface OpenLoopProgress {
  readonly elapsedMs: number
  readonly sent: number
  readonly ok: number
  readonly errorResponses: number
  readonly failures: number
  /** Ok answers per second since the last progress. */
  readonly recentOkPerSecond: number
}

/** The error codes a report names as fields; every other code is counted in `otherErrors`. */
const NAMED_CODES = {
  FRAME_EXPIRED: "expired",
  SUPERSEDED: "superseded",
  OVERLOADED: "overloaded",
  TIMEOUT: "timeout"
} as const

type NamedCount = (typeof NAMED_CODES)[keyof typeof NAMED_CODES]

/** The key under which an error answer without an `error_code` is counted (servers before the codes). */
export const NO_CODE = "NO_CODE"

/** What one camera (or all of them) sent and got. `sent` = ok + every error + unanswered + failures. */
export interface OpenLoopCounts extends Readonly<Record<NamedCount, number>> {
  readonly sent: number
  readonly ok: number
  /** Error answers of any other code, by code. */
  readonly otherErrors: Readonly<Record<string, number>>
  /** No answer by the end of the grace period (or of a stopped run). */
  readonly unanswered: number
  /** Connections refused, reset or closed without an answer. */
  readonly failures: number
  /**
   * Ok answers per second, over the time answers came in: from the start until the end of sending
   * or the last ok answer, whichever is later (a backlog answered after sending stopped is not
   * counted as if it had been answered while sending).
   */
  readonly okPerSecond: number
  /** Age of the frame when its ok answer arrived (arrival − request `timestamp`), ms. */
  readonly frameAgeMs: { readonly p50: number; readonly p99: number; readonly max: number }
}

export interface OpenLoopCamera extends OpenLoopCounts {
  readonly camera_id: string
  readonly fps: number
}

export interface OpenLoopResult {
  readonly mode: "open-loop"
  readonly connections: "per-request" | "persistent"
  /** Whether the run was ended early by `signal`. */
  readonly stopped: boolean
  /** How long the cameras sent. */
  readonly durationMs: number
  readonly graceMs: number
  readonly cameras: ReadonlyArray<OpenLoopCamera>
  readonly total: OpenLoopCounts & { readonly fps: number }
  /** The first failure's reason, when there was one. */
  readonly firstFailure?: string
  /** The first error answer's `error`, when there was one. */
  readonly firstError?: string
}

/** Wall clock in ms with sub-ms resolution: request timestamps and answer times use the same clock. */
const nowMs = () => performance.timeOrigin + performance.now()

class Camera {
  sent = 0
  ok = 0
  failures = 0
  unanswered = 0
  readonly errors = new Map<string, number>()
  readonly ages = new Samples()
  /** Frames sent and not yet settled, by frame id (their timestamps in ms). */
  readonly pending = new Map<number, number>()
  /** The persistent connection and its frames awaiting an answer, in order. */
  pipe: { readonly socket: net.Socket; readonly queue: Array<number> } | undefined
  next = 0

  constructor(readonly id: string, readonly fps: number, readonly intervalMs: number, readonly phaseMs: number) {}
}

const emptyCounts = () => ({ expired: 0, superseded: 0, overloaded: 0, timeout: 0 })

/** One camera's (or all cameras') counts and frame ages. */
const countsOf = (cams: ReadonlyArray<Camera>, windowMs: number): OpenLoopCounts => {
  const named: Record<NamedCount, number> = emptyCounts()
  const otherErrors: Record<string, number> = {}
  const ages = new Samples()
  let sent = 0, ok = 0, unanswered = 0, failures = 0
  for (const c of cams) {
    sent += c.sent
    ok += c.ok
    unanswered += c.unanswered
    failures += c.failures
    for (const [code, n] of c.errors) {
      const key = (NAMED_CODES as Record<string, NamedCount | undefined>)[code]
      if (key !== undefined) named[key] += n
      else otherErrors[code] = (otherErrors[code] ?? 0) + n
    }
    const sorted = c.ages.sorted()
    for (let i = 0; i < sorted.length; i++) ages.push(sorted[i]!)
  }
  const sorted = ages.sorted()
  return {
    sent,
    ok,
    ...named,
    otherErrors,
    unanswered,
    failures,
    okPerSecond: windowMs > 0 ? (ok * 1000) / windowMs : 0,
    frameAgeMs: { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: quantile(sorted, 1) }
  }
}

export const runOpenLoop = (options: OpenLoopOptions): Promise<OpenLoopResult> =>
  new Promise((resolve) => {
    const K = options.fps.length
    // Cameras start spread over one frame interval, as independent cameras would, not all at once.
    const cameras = options.fps.map((fps, k) => new Camera(`cam-${k + 1}`, fps, 1000 / fps, ((1000 / fps) * k) / K))
    const sockets = new Set<net.Socket>()
    const started = performance.now()
    let sendingEnded: number | undefined
    let finished = false
    let outstanding = 0
    let firstFailure: string | undefined
    let firstError: string | undefined
    let sendTimer: ReturnType<typeof setTimeout> | undefined
    let graceTimer: ReturnType<typeof setTimeout> | undefined
    const totals = { ok: 0, errorResponses: 0, failures: 0 }
    let lastProgressAt = started
    let lastProgressOk = 0
    let lastOkAt = started

    const report = () => {
      const now = performance.now()
      options.onProgress?.({
        elapsedMs: now - started,
        sent: cameras.reduce((n, c) => n + c.sent, 0),
        ...totals,
        recentOkPerSecond: ((totals.ok - lastProgressOk) * 1000) / (now - lastProgressAt)
      })
      lastProgressAt = now
      lastProgressOk = totals.ok
    }
    const progressTimer = options.onProgress === undefined ? undefined : setInterval(report, options.progressIntervalMs ?? 1000)

    const finish = () => {
      if (finished) return
      finished = true
      options.signal?.removeEventListener("abort", finish)
      clearTimeout(sendTimer)
      clearTimeout(graceTimer)
      sendingEnded ??= performance.now()
      for (const s of sockets) s.destroy()
      for (const c of cameras) {
        c.unanswered += c.pending.size
        c.pending.clear()
      }
      if (progressTimer !== undefined) {
        clearInterval(progressTimer)
        report()
      }
      const sendingMs = sendingEnded - started
      const windowMs = Math.max(sendingMs, lastOkAt - started)
      const total = countsOf(cameras, windowMs)
      resolve({
        mode: "open-loop",
        connections: options.connectPerRequest ? "per-request" : "persistent",
        stopped: options.signal?.aborted === true,
        durationMs: sendingMs,
        graceMs: options.graceMs,
        cameras: cameras.map((c) => ({ camera_id: c.id, fps: c.fps, ...countsOf([c], windowMs) })),
        total: { fps: options.fps.reduce((a, b) => a + b, 0), ...total },
        ...(firstFailure !== undefined ? { firstFailure } : {}),
        ...(firstError !== undefined ? { firstError } : {})
      })
    }

    /** A frame's request ended; once sending is over and nothing is outstanding, the run is done. */
    const settled = (cam: Camera, frameId: number): number | undefined => {
      const timestampMs = cam.pending.get(frameId)
      if (timestampMs === undefined) return undefined
      cam.pending.delete(frameId)
      outstanding--
      if (sendingEnded !== undefined && outstanding === 0) setImmediate(finish)
      return timestampMs
    }

    const answered = (cam: Camera, frameId: number, payload: Uint8Array) => {
      if (finished) return
      const timestampMs = settled(cam, frameId)
      if (timestampMs === undefined) return
      const error = replyError(payload)
      if (error === undefined) {
        cam.ok++
        totals.ok++
        lastOkAt = performance.now()
        cam.ages.push(nowMs() - timestampMs)
        return
      }
      totals.errorResponses++
      firstError ??= error.error
      const code = error.code ?? NO_CODE
      cam.errors.set(code, (cam.errors.get(code) ?? 0) + 1)
    }

    const failed = (cam: Camera, frameId: number, reason: string) => {
      if (finished || settled(cam, frameId) === undefined) return
      cam.failures++
      totals.failures++
      firstFailure ??= reason
    }

    const track = (socket: net.Socket) => {
      sockets.add(socket)
      socket.once("close", () => sockets.delete(socket))
    }

    /** One connection for one request, closed after its answer. */
    const sendPerRequest = (cam: Camera, frameId: number, bytes: Uint8Array) =>
      track(openConnection(options.socketPath, DEFAULT_MAX_MESSAGE_BYTES, (conn) => {
        if (conn instanceof ClientError) return failed(cam, frameId, conn.reason)
        if (finished) return void conn.socket.destroy()
        conn.socket.setNoDelay?.(true)
        conn.send(bytes, (outcome) => {
          conn.socket.destroy()
          if (outcome.ok) answered(cam, frameId, outcome.payload)
          else failed(cam, frameId, outcome.error.reason)
        })
      }))

    /** The camera's pipelined connection (opened on first use, and again after it broke): answers come in request order. */
    const pipeOf = (cam: Camera) => {
      if (cam.pipe !== undefined) return cam.pipe
      const queue: Array<number> = []
      const decoder = new FrameDecoder(DEFAULT_MAX_MESSAGE_BYTES)
      // Writes before the connection is up are buffered by the socket; its own decoder matches answers in order.
      const socket = net.connect(options.socketPath)
      const pipe = { socket, queue }
      const broke = (reason: string) => {
        if (cam.pipe === pipe) cam.pipe = undefined
        socket.destroy()
        for (const frameId of queue.splice(0)) failed(cam, frameId, reason)
      }
      socket.on("data", (chunk: Buffer) => {
        for (const event of decoder.push(chunk)) {
          if (event._tag === "TooLarge") return broke(`answer of ${event.length} bytes exceeds the limit`)
          const frameId = queue.shift()
          if (frameId !== undefined) answered(cam, frameId, event.payload)
        }
      })
      socket.on("error", (e) => broke(e.message))
      socket.on("close", () => broke("connection closed before an answer"))
      track(socket)
      cam.pipe = pipe
      return pipe
    }

    const sendFrame = (cam: Camera) => {
      const frameId = ++cam.sent
      const timestampMs = nowMs()
      cam.pending.set(frameId, timestampMs)
      outstanding++
      const bytes = encodeMessage(options.request({ cameraId: cam.id, frameId, timestamp: timestampMs / 1000 }))
      if (options.connectPerRequest) return sendPerRequest(cam, frameId, bytes)
      const pipe = pipeOf(cam)
      pipe.queue.push(frameId)
      pipe.socket.write(bytes)
    }

    /** Sends every frame that is due (catching up after a late wake-up, so the rate holds), then sleeps until the next. */
    const tick = () => {
      if (finished) return
      const elapsed = performance.now() - started
      let nextDue = Infinity
      for (const cam of cameras) {
        for (;;) {
          const due = cam.phaseMs + cam.next * cam.intervalMs
          if (due >= options.durationMs) break
          if (due > elapsed) {
            nextDue = Math.min(nextDue, due)
            break
          }
          cam.next++
          sendFrame(cam)
        }
      }
      if (nextDue !== Infinity) {
        sendTimer = setTimeout(tick, Math.max(0, nextDue - (performance.now() - started)))
        return
      }
      // Sending is over (the last frames' slots are past): wait for what is outstanding, at most the grace period.
      sendTimer = setTimeout(() => {
        sendingEnded = started + options.durationMs
        if (outstanding === 0) return finish()
        graceTimer = setTimeout(finish, options.graceMs)
      }, Math.max(0, options.durationMs - (performance.now() - started)))
    }

    if (options.signal?.aborted === true) return finish()
    options.signal?.addEventListener("abort", finish)
    tick()
  })
