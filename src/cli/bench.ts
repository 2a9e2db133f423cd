/**
 * `ruth-model bench`: load against a running container. Closed loop by default (clients that each
 * wait for their answer); open loop with `--cameras K --fps F` (cameras that send at their rate
 * whatever comes back — the only way to see queueing and what callers get under overload).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Command, Flag } from "effect/cli"
import { Console, Effect, Option } from "effect"
import { encodeMessage } from "../contract/codec.js"
import { frameByteLength, minStride } from "../frames/Frame.js"
import { sharedMemoryDir } from "../frames/publish.js"
import { type ConnectionMode, type LoadOptions, type LoadProgress, type LoadResult, runLoad } from "../ipc/loadgen.js"
import { ClientError, openConnection } from "../ipc/ModelClient.js"
import { type OpenLoopCounts, type OpenLoopOptions, type OpenLoopProgress, type OpenLoopResult, runOpenLoop } from "../ipc/openLoop.js"
import { type StageSummary, stageTimes, type StageTimes, summariseStages } from "../ipc/stages.js"
import {
  type CliEnvironment,
  CliFailure,
  clientFlags,
  defaultIs,
  ExitCode,
  imageOption,
  jsonOption,
  modelIdFor,
  positiveFlags,
  publishImage,
  resolveSocket,
  unreachable,
  usage
} from "./common.js"

const options = (env: CliEnvironment) => ({
  ...clientFlags(env),
  concurrency: Flag.Int("concurrency").pipe(
    Flag.withAlias("c"),
    Flag.withDescription(`closed loop: concurrent clients, each with one request outstanding${defaultIs(8)}`),
    Flag.optional
  ),
  cameras: Flag.Int("cameras").pipe(
    Flag.withDescription("open loop: this many cameras (cam-1..cam-K), each sending at its rate whether or not answers came back"),
    Flag.optional
  ),
  fps: Flag.String("fps").pipe(
    Flag.withDescription(`open loop: frames per second, one for every camera or one per camera, e.g. 30,30,30,120${defaultIs(30)}`),
    Flag.optional
  ),
  duration: Flag.Finite("duration").pipe(Flag.withDescription(`how long to run, in seconds${defaultIs(10)}`), Flag.withDefault(10)),
  connectPerRequest: Flag.Boolean("connect-per-request").pipe(Flag.withDefault(false), 
    Flag.withDescription("open a new connection for every request, as the reference callers do (the open loop's default)")
  ),
  persistent: Flag.Boolean("persistent").pipe(Flag.withDefault(false), 
    Flag.withDescription("open loop: one connection per camera, every frame written on it without waiting for answers")
  ),
  frame: Flag.String("frame").pipe(
    Flag.withDescription("frame to reference, already in shared memory (default: a gray 640x360 NV12 frame written to /dev/shm for the run)"),
    Flag.optional
  ),
  image: imageOption("to send with every request (a real scene, so the model and post-processing do real work)"),
  width: Flag.Int("width").pipe(
    Flag.withDescription("frame width (default: 640; with --image: resize to it, default the image's)"),
    Flag.optional
  ),
  height: Flag.Int("height").pipe(
    Flag.withDescription("frame height (default: 360; with --image: resize to it, default the image's)"),
    Flag.optional
  ),
  modelId: Flag.String("model-id").pipe(
    Flag.withDescription("model to ask for (default: the one the socket name vas_model_{id}.sock says, else the container's health answer)"),
    Flag.optional
  ),
  json: jsonOption
})

/** A temporary NV12 frame in shared memory (or the temp dir where there is none), removed after the run. */
const scratchFrame = (width: number, height: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const p = path.join(sharedMemoryDir(), `ruth-bench-${process.pid}.nv12`)
      fs.writeFileSync(p, Buffer.alloc(frameByteLength("NV12", width, height, minStride("NV12", width)), 128))
      return p
    }),
    (p) => Effect.sync(() => fs.rmSync(p, { force: true }))
  )

const fmt = (n: number, digits = 2) => n.toFixed(digits)

/** Where the time went, when the answers carried the pipeline's timings (three lines), else nothing. */
const formatStages = (s: StageSummary | undefined): ReadonlyArray<string> => {
  if (s === undefined) return []
  const onnx = s.modelField === "inference_ms"
  const parts: Array<[string, number | undefined]> = [
    ["socket+codec", s.socketAndCodec],
    ["frame read", s.frameRead],
    ["preprocess", s.preprocess],
    ["hand-off", s.handoff],
    ["session wait", s.sessionWait],
    [onnx ? "model" : "handler", s.model],
    ["postprocess", s.postprocess],
    ["runtime", s.runtime]
  ]
  const share = (ms: number, fraction: number) => `${fmt(ms)} ms (${fmt(fraction * 100, 1)}%)`
  const split = [
    `${onnx ? "model (session.run)" : "handler (its whole time)"} ${share(s.model, s.modelShare)}`,
    ...(s.sessionWait !== undefined && s.sessionWaitShare !== undefined
      ? [`queueing (session wait) ${share(s.sessionWait, s.sessionWaitShare)}`]
      : []),
    `outside ${s.sessionWait !== undefined ? "model and queue" : onnx ? "the model" : "the handler"} ` +
    share(s.outsideModelAndQueueMs, s.shareOutsideModelAndQueue)
  ]
  return [
    `stages      medians of ${s.samples} answers, ms: ` +
    parts.flatMap(([name, v]) => (v === undefined ? [] : [`${name} ${fmt(v)}`])).join("  "),
    `split       of the median round trip ${fmt(s.totalMs)} ms: ${split.join(", ")}`
  ]
}

const CONNECTIONS: Record<ConnectionMode, string> = {
  persistent: "pooled (persistent)",
  "per-request": "one per request (--connect-per-request)",
  "per-request-server-closes": "one per request (the server closes after each answer)"
}

const formatResult = (r: LoadResult, stages: StageSummary | undefined): string =>
  [
    `${r.requests} requests in ${fmt(r.durationMs / 1000)} s with ${r.concurrency} client(s)` +
    (r.stopped ? " (stopped early)" : ""),
    `connections ${CONNECTIONS[r.connections]}`,
    `throughput  ${fmt(r.rps, 0)} req/s`,
    `latency     p50 ${fmt(r.latencyMs.p50, 3)} ms   p90 ${fmt(r.latencyMs.p90, 3)} ms   p99 ${fmt(r.latencyMs.p99, 3)} ms   max ${fmt(r.latencyMs.max, 3)} ms`,
    `errors      ${r.errorResponses} error responses, ${r.failures} transport failures` +
    (r.firstError !== undefined ? `\n            first error response: ${r.firstError}` : "") +
    (r.firstFailure !== undefined ? `\n            first failure: ${r.firstFailure}` : ""),
    ...formatStages(stages)
  ].join("\n")

const OPEN_LOOP_COLUMNS: ReadonlyArray<[string, (c: OpenLoopCounts) => string]> = [
  ["sent", (c) => String(c.sent)],
  ["ok", (c) => String(c.ok)],
  ["expired", (c) => String(c.expired)],
  ["superseded", (c) => String(c.superseded)],
  ["overloaded", (c) => String(c.overloaded)],
  ["timeout", (c) => String(c.timeout)],
  ["other", (c) => String(Object.values(c.otherErrors).reduce((a, b) => a + b, 0))],
  ["unanswered", (c) => String(c.unanswered)],
  ["failed", (c) => String(c.failures)],
  ["ok/s", (c) => fmt(c.okPerSecond, 1)],
  ["age p50 ms", (c) => fmt(c.frameAgeMs.p50, 1)],
  ["age p99 ms", (c) => fmt(c.frameAgeMs.p99, 1)],
  ["age max ms", (c) => fmt(c.frameAgeMs.max, 1)]
]

/** The open loop's report: one row per camera and a total, then the error codes outside the columns. */
const formatOpenLoop = (r: OpenLoopResult): string => {
  const rows = [
    ["camera", "fps", ...OPEN_LOOP_COLUMNS.map(([name]) => name)],
    ...[...r.cameras, { camera_id: "total", ...r.total }].map((c) => [
      c.camera_id,
      fmt(c.fps, Number.isInteger(c.fps) ? 0 : 1),
      ...OPEN_LOOP_COLUMNS.map(([, cell]) => cell(c))
    ])
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  const other = Object.entries(r.total.otherErrors)
  return [
    `open loop: ${r.cameras.length} camera(s), ${fmt(r.total.fps, 0)} frames/s in all for ${fmt(r.durationMs / 1000)} s, ` +
    (r.connections === "persistent" ? "one pipelined connection per camera (--persistent)" : "one connection per request") +
    (r.stopped ? " (stopped early)" : ""),
    ...rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")),
    ...(other.length > 0 ? [`other error codes: ${other.map(([code, n]) => `${code} ${n}`).join(", ")}`] : []),
    ...(r.firstError !== undefined ? [`first error answer: ${r.firstError}`] : []),
    ...(r.firstFailure !== undefined ? [`first failure: ${r.firstFailure}`] : [])
  ].join("\n")
}

/** `--fps`: one positive rate for every camera, or one per camera. */
const parseFps = (flag: Option.Option<string>, cameras: number): Effect.Effect<ReadonlyArray<number>, CliFailure> =>
  Effect.suspend(() => {
    if (Option.isNone(flag)) return Effect.succeed(Array.from({ length: cameras }, () => 30))
    const parts = flag.value.split(",").map((p) => p.trim())
    const rates = parts.map(Number)
    const bad = parts.find((p, i) => p === "" || !(Number.isFinite(rates[i]) && rates[i]! > 0))
    if (bad !== undefined) return Effect.fail(usage(`--fps must be positive frames per second, one value or one per camera, got ${flag.value}`))
    if (rates.length === 1) return Effect.succeed(Array.from({ length: cameras }, () => rates[0]!))
    if (rates.length !== cameras) {
      return Effect.fail(usage(`--fps gives ${rates.length} rates for ${cameras} camera(s): give one for all or one per camera`))
    }
    return Effect.succeed(rates)
  })

/** Fails with `unreachable` when nothing accepts a connection at `socketPath`, so a run does not spin on refusals. */
const probe = (socketPath: string) =>
  Effect.callback<void, CliFailure>((resume) => {
    const socket = openConnection(socketPath, 0, (conn) => {
      if (conn instanceof ClientError) return resume(Effect.fail(unreachable(conn)))
      conn.socket.destroy()
      resume(Effect.void)
    })
    return Effect.sync(() => socket.destroy())
  })

/** Runs a load until its end, or until SIGINT/SIGTERM stops it early, saying which signal. */
const untilSignal = <R>(run: (signal: AbortSignal) => Promise<R>) =>
  Effect.callback<{ readonly result: R; readonly signal: NodeJS.Signals | undefined }>((resume) => {
    const stop = new AbortController()
    let received: NodeJS.Signals | undefined
    const onSignal = (signal: NodeJS.Signals) => {
      received ??= signal
      stop.abort()
    }
    process.once("SIGINT", onSignal)
    process.once("SIGTERM", onSignal)
    void run(stop.signal).then((result) => {
      process.off("SIGINT", onSignal)
      process.off("SIGTERM", onSignal)
      resume(Effect.succeed({ result, signal: received }))
    })
  })

/** The exit code of a run a signal stopped: Ctrl+C 130, SIGTERM 143 (128 + the signal's number, as a shell reports it). */
const exitAfter = (signal: NodeJS.Signals) =>
  // The runtime interrupts the command on the same signal, so the code goes where main.ts reads it.
  Effect.sync(() => void (process.exitCode = signal === "SIGINT" ? ExitCode.interrupted : ExitCode.terminated))

const tty = () => process.stderr.isTTY === true

/** One line of live progress on stderr (rewritten in place on a terminal). */
const progressLine = (line: string) => process.stderr.write(tty() ? `\r\x1b[2K${line}` : `${line}\n`)

/** The closed loop: `concurrency` clients, each waiting for its answer before the next request. */
const closedLoop = (
  socketPath: string,
  message: Uint8Array,
  o: { readonly concurrency: number; readonly durationMs: number; readonly connectPerRequest: boolean; readonly json: boolean }
) =>
  Effect.gen(function*() {
    const onProgress = (p: LoadProgress) =>
      progressLine(
        `  ${fmt(p.elapsedMs / 1000, 0)}s  ${p.requests} requests  ${fmt(p.recentRps, 0)} req/s  ` +
          `${p.errorResponses} error responses  ${p.failures} failures`
      )
    const times: Array<StageTimes> = []
    const onAnswer = (payload: Uint8Array, latencyMs: number) => {
      const reply = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("utf8")) as {
        readonly metadata?: unknown
      }
      const t = stageTimes(reply.metadata, latencyMs)
      if (t !== undefined) times.push(t)
    }
    const load: LoadOptions = {
      socketPath,
      concurrency: o.concurrency,
      durationMs: o.durationMs,
      connectPerRequest: o.connectPerRequest,
      message,
      onProgress,
      onAnswer
    }
    const { result, signal } = yield* untilSignal((stop) => runLoad({ ...load, signal: stop }))
    const stages = summariseStages(times)
    if (tty()) process.stderr.write("\n")
    yield* Console.log(
      o.json
        ? JSON.stringify({ socket: socketPath, mode: "closed-loop", ...result, ...(stages !== undefined ? { stages } : {}) })
        : formatResult(result, stages)
    )
    if (signal !== undefined) return yield* exitAfter(signal)
    if (result.requests === 0 && result.failures > 0) {
      return yield* new CliFailure({ message: `no answer from ${socketPath}: ${result.firstFailure ?? ""}`, exitCode: ExitCode.unreachable })
    }
  })

/** The open loop: cameras sending at their rates whatever comes back. */
const openLoop = (socketPath: string, load: Omit<OpenLoopOptions, "signal" | "onProgress">, json: boolean) =>
  Effect.gen(function*() {
    const onProgress = (p: OpenLoopProgress) =>
      progressLine(
        `  ${fmt(p.elapsedMs / 1000, 0)}s  ${p.sent} sent  ${p.ok} ok  ${fmt(p.recentOkPerSecond, 0)} ok/s  ` +
          `${p.errorResponses} error answers  ${p.failures} failures`
      )
    const { result, signal } = yield* untilSignal((stop) => runOpenLoop({ ...load, onProgress, signal: stop }))
    if (tty()) process.stderr.write("\n")
    yield* Console.log(json ? JSON.stringify({ socket: socketPath, ...result }) : formatOpenLoop(result))
    if (signal !== undefined) return yield* exitAfter(signal)
    if (result.total.failures > 0 && result.total.failures === result.total.sent) {
      return yield* new CliFailure({ message: `no answer from ${socketPath}: ${result.firstFailure ?? ""}`, exitCode: ExitCode.unreachable })
    }
  })

export const benchCommand = (env: CliEnvironment) => Command.make("bench", options(env), (o) =>
  Effect.gen(function*() {
    yield* positiveFlags({
      integers: {
        "--concurrency": o.concurrency,
        "--cameras": o.cameras,
        "--width": o.width,
        "--height": o.height,
        "--timeout-ms": o.timeoutMs
      },
      seconds: { "--duration": o.duration }
    })
    const openLoopOnly = o.persistent ? "--persistent" : Option.isSome(o.fps) ? "--fps" : undefined
    if (Option.isSome(o.cameras) && Option.isSome(o.concurrency)) {
      return yield* usage("--cameras excludes --concurrency (open loop: cameras at their rates; closed loop: clients waiting for answers)")
    }
    if (Option.isNone(o.cameras) && openLoopOnly !== undefined) return yield* usage(`${openLoopOnly} needs --cameras K (the open loop)`)
    if (o.persistent && o.connectPerRequest) return yield* usage("give at most one of --connect-per-request or --persistent")
    const fps = Option.isSome(o.cameras) ? yield* parseFps(o.fps, o.cameras.value) : undefined
    const socketPath = yield* resolveSocket(o.socket, env)
    if (Option.isSome(o.frame) && Option.isSome(o.image)) return yield* usage("give at most one of --frame PATH or --image FILE")
    const modelId = yield* modelIdFor(socketPath, o.modelId, o.timeoutMs)
    yield* probe(socketPath)
    const width = Option.getOrUndefined(o.width)
    const height = Option.getOrUndefined(o.height)
    const frame = Option.isSome(o.image)
      ? yield* publishImage(o.image.value, "ruth-bench", {
        layout: "raw",
        frameId: 0,
        ...(width !== undefined ? { width } : {}),
        ...(height !== undefined ? { height } : {})
      })
      : {
        reference: Option.isSome(o.frame) ? o.frame.value : yield* scratchFrame(width ?? 640, height ?? 360),
        width: width ?? 640,
        height: height ?? 360
      }
    const request = (cameraId: string, frameId: number, timestamp: number) => ({
      frame_reference: frame.reference,
      frame_metadata: { width: frame.width, height: frame.height, format: "NV12", frame_id: frameId },
      camera_id: cameraId,
      model_id: modelId,
      timestamp
    })
    // Uninterruptible: the runtime's own reaction to Ctrl+C (interrupting the command) waits for the report.
    yield* Effect.uninterruptible(
      fps === undefined
        ? closedLoop(socketPath, encodeMessage(request("bench", 0, Date.now() / 1000)), {
          concurrency: Option.getOrElse(o.concurrency, () => 8),
          durationMs: o.duration * 1000,
          connectPerRequest: o.connectPerRequest,
          json: o.json
        })
        : openLoop(socketPath, {
          socketPath,
          fps,
          durationMs: o.duration * 1000,
          // Answers still awaited after the cameras stop: as long as a single reply is (--timeout-ms).
          graceMs: o.timeoutMs,
          connectPerRequest: !o.persistent,
          request: (f) => request(f.cameraId, f.frameId, f.timestamp)
        }, o.json)
    )
  }).pipe(
    Effect.scoped,
    // Stopped before the load began (asking for the model id, publishing the image): nothing to report, still 130.
    Effect.onInterrupt(() => Effect.sync(() => void (process.exitCode ||= ExitCode.interrupted)))
  )
).pipe(Command.withDescription(
    "Load-test a container. Closed loop (--concurrency): req/s and p50/p90/p99 latency, and where the time went (the answers' stage timings). " +
      "Open loop (--cameras K --fps F[,F...]): cameras sending at their rates whatever comes back; per camera sent, ok, expired, superseded, overloaded, " +
      "timeout, other error codes, unanswered, failed, ok/s and the p50/p99 age of frames at answer. Live progress on stderr; " +
      "Ctrl+C prints the report of what ran and exits 130."
  ))
