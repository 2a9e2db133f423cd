/** `ruth-model bench`: closed-loop load against a running container. */
import * as fs from "node:fs"
import * as path from "node:path"
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { encodeMessage } from "../contract/codec.js"
import { sharedMemoryDir } from "../frames/publish.js"
import { type ConnectionMode, type LoadOptions, type LoadProgress, type LoadResult, runLoad } from "../ipc/loadgen.js"
import { ClientError, openConnection } from "../ipc/ModelClient.js"
import { type StageSummary, stageTimes, type StageTimes, summariseStages } from "../ipc/stages.js"
import {
  CliFailure,
  ExitCode,
  imageOption,
  jsonOption,
  modelIdFor,
  positiveFlags,
  publishImage,
  resolveSocket,
  socketOption,
  timeoutOption,
  unreachable,
  usage
} from "./common.js"

const options = {
  socket: socketOption,
  concurrency: Options.integer("concurrency").pipe(
    Options.withAlias("c"),
    Options.withDescription("concurrent clients, each with one request outstanding"),
    Options.withDefault(8)
  ),
  duration: Options.float("duration").pipe(Options.withDescription("seconds"), Options.withDefault(10)),
  connectPerRequest: Options.boolean("connect-per-request").pipe(
    Options.withDescription("open a new connection for every request, as the reference callers do")
  ),
  frame: Options.text("frame").pipe(
    Options.withDescription("frame to reference (default: a gray 640x360 NV12 frame written to /dev/shm for the run)"),
    Options.optional
  ),
  image: imageOption("to send with every request (a real scene, so the model and post-processing do real work)"),
  width: Options.integer("width").pipe(
    Options.withDescription("frame width (default 640; with --image: resize to it, default the image's)"),
    Options.optional
  ),
  height: Options.integer("height").pipe(
    Options.withDescription("frame height (default 360; with --image: resize to it, default the image's)"),
    Options.optional
  ),
  modelId: Options.text("model-id").pipe(Options.optional),
  timeoutMs: timeoutOption,
  json: jsonOption
}

/** A temporary NV12 frame in shared memory (or the temp dir where there is none), removed after the run. */
const scratchFrame = (width: number, height: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const p = path.join(sharedMemoryDir(), `ruth-bench-${process.pid}.nv12`)
      fs.writeFileSync(p, Buffer.alloc(width * height + width * Math.ceil(height / 2), 128))
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

/** Fails with `unreachable` when nothing accepts a connection at `socketPath`, so a run does not spin on refusals. */
const probe = (socketPath: string) =>
  Effect.async<void, CliFailure>((resume) => {
    const socket = openConnection(socketPath, 0, (conn) => {
      if (conn instanceof ClientError) return resume(Effect.fail(unreachable(conn)))
      conn.socket.destroy()
      resume(Effect.void)
    })
    return Effect.sync(() => socket.destroy())
  })

/** Runs the load until its end, or until SIGINT/SIGTERM stops it early, saying which signal. */
const loadUntilSignal = (options: LoadOptions) =>
  Effect.async<{ readonly result: LoadResult; readonly signal: NodeJS.Signals | undefined }>((resume) => {
    const stop = new AbortController()
    let received: NodeJS.Signals | undefined
    const onSignal = (signal: NodeJS.Signals) => {
      received ??= signal
      stop.abort()
    }
    process.once("SIGINT", onSignal)
    process.once("SIGTERM", onSignal)
    void runLoad({ ...options, signal: stop.signal }).then((result) => {
      process.off("SIGINT", onSignal)
      process.off("SIGTERM", onSignal)
      resume(Effect.succeed({ result, signal: received }))
    })
  })

export const benchCommand = Command.make("bench", options, (o) =>
  Effect.gen(function*() {
    yield* positiveFlags({
      integers: { "--concurrency": o.concurrency, "--width": o.width, "--height": o.height, "--timeout-ms": o.timeoutMs },
      seconds: { "--duration": o.duration }
    })
    const socketPath = yield* resolveSocket(o.socket)
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
    const message = encodeMessage({
      frame_reference: frame.reference,
      frame_metadata: { width: frame.width, height: frame.height, format: "NV12", frame_id: 0 },
      camera_id: "bench",
      model_id: modelId,
      timestamp: Date.now() / 1000
    })
    const tty = process.stderr.isTTY === true
    const onProgress = (p: LoadProgress) =>
      process.stderr.write(
        `${tty ? "\r\x1b[2K" : ""}  ${fmt(p.elapsedMs / 1000, 0)}s  ${p.requests} requests  ${fmt(p.recentRps, 0)} req/s  ` +
          `${p.errorResponses} error responses  ${p.failures} failures${tty ? "" : "\n"}`
      )
    const times: Array<StageTimes> = []
    const onAnswer = (payload: Uint8Array, latencyMs: number) => {
      const reply = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("utf8")) as {
        readonly metadata?: unknown
      }
      const t = stageTimes(reply.metadata, latencyMs)
      if (t !== undefined) times.push(t)
    }
    // Uninterruptible: the runtime's own reaction to Ctrl+C (interrupting the command) waits for the report.
    yield* Effect.uninterruptible(Effect.gen(function*() {
      const { result, signal } = yield* loadUntilSignal({
        socketPath,
        concurrency: o.concurrency,
        durationMs: o.duration * 1000,
        connectPerRequest: o.connectPerRequest,
        message,
        onProgress,
        onAnswer
      })
      const stages = summariseStages(times)
      if (tty) process.stderr.write("\n")
      yield* Console.log(
        o.json
          ? JSON.stringify({ socket: socketPath, ...result, ...(stages !== undefined ? { stages } : {}) })
          : formatResult(result, stages)
      )
      if (signal !== undefined) {
        // The runtime interrupts the command on the same signal, so the code goes where main.ts reads it.
        // Ctrl+C: 130; SIGTERM: 143 (128 + the signal's number, as a shell reports it).
        return yield* Effect.sync(() => void (process.exitCode = signal === "SIGINT" ? ExitCode.interrupted : 143))
      }
      if (result.requests === 0 && result.failures > 0) {
        return yield* new CliFailure({ message: `no answer from ${socketPath}: ${result.firstFailure ?? ""}`, exitCode: ExitCode.unreachable })
      }
    }))
  }).pipe(
    Effect.scoped,
    // Stopped before the load began (asking for the model id, publishing the image): nothing to report, still 130.
    Effect.onInterrupt(() => Effect.sync(() => void (process.exitCode ||= ExitCode.interrupted)))
  )
).pipe(Command.withDescription(
    "Load-test a container: req/s and p50/p90/p99 latency, with live progress, and where the time went (the answers' stage timings); Ctrl+C prints the report of what ran and exits 130."
  ))
