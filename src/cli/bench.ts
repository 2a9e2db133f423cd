/** `ruth-model bench`: closed-loop load against a running container. */
import * as fs from "node:fs"
import * as path from "node:path"
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { encodeMessage } from "../contract/codec.js"
import { sharedMemoryDir } from "../frames/publish.js"
import { type LoadProgress, type LoadResult, runLoad } from "../ipc/loadgen.js"
import { type StageSummary, stageTimes, type StageTimes, summariseStages } from "../ipc/stages.js"
import { imageOption, jsonOption, modelIdOf, publishImage, resolveSocket, socketOption, timeoutOption, usage } from "./common.js"

const options = {
  socket: socketOption,
  concurrency: Options.integer("concurrency").pipe(Options.withAlias("c"), Options.withDefault(8)),
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

/** Where the time went, when the answers carried the pipeline's timings (two lines), else nothing. */
const formatStages = (s: StageSummary | undefined): ReadonlyArray<string> => {
  if (s === undefined) return []
  const parts: Array<[string, number | undefined]> = [
    ["socket+codec", s.socketAndCodec],
    ["frame read", s.frameRead],
    ["preprocess", s.preprocess],
    ["hand-off", s.handoff],
    ["session wait", s.sessionWait],
    [s.modelField === "inference_ms" ? "model" : "handler", s.model],
    ["postprocess", s.postprocess],
    ["runtime", s.runtime]
  ]
  const outside = s.modelField === "inference_ms" ? "the model" : "the handler"
  return [
    `stages      medians of ${s.samples} answers, ms: ` +
    parts.flatMap(([name, v]) => (v === undefined ? [] : [`${name} ${fmt(v)}`])).join("  "),
    `outside ${outside}: ${fmt(s.outsideModelMs)} ms, ${fmt(s.outsideModelShare * 100, 1)}% of the median round trip`
  ]
}

const formatResult = (r: LoadResult, stages: StageSummary | undefined): string =>
  [
    `${r.requests} requests in ${fmt(r.durationMs / 1000)} s with ${r.concurrency} ${r.connectPerRequest ? "connect-per-request" : "persistent"} client(s)`,
    `throughput  ${fmt(r.rps, 0)} req/s`,
    `latency     p50 ${fmt(r.latencyMs.p50, 3)} ms   p90 ${fmt(r.latencyMs.p90, 3)} ms   p99 ${fmt(r.latencyMs.p99, 3)} ms   max ${fmt(r.latencyMs.max, 3)} ms`,
    `errors      ${r.errorResponses} error responses, ${r.failures} transport failures` +
      (r.firstError !== undefined ? `\n            first error response: ${r.firstError}` : "") +
      (r.firstFailure !== undefined ? `\n            first failure: ${r.firstFailure}` : ""),
    ...formatStages(stages)
  ].join("\n")

export const benchCommand = Command.make("bench", options, (o) =>
  Effect.gen(function*() {
    const socketPath = yield* resolveSocket(o.socket)
    if (Option.isSome(o.frame) && Option.isSome(o.image)) return yield* usage("give at most one of --frame PATH or --image FILE")
    const modelId = Option.isSome(o.modelId) ? o.modelId.value : yield* modelIdOf(socketPath, o.timeoutMs)
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
    const result = yield* Effect.promise(() =>
      runLoad({
        socketPath,
        concurrency: o.concurrency,
        durationMs: o.duration * 1000,
        connectPerRequest: o.connectPerRequest,
        message,
        onProgress,
        onAnswer
      })
    )
    const stages = summariseStages(times)
    if (tty) process.stderr.write("\n")
    yield* Console.log(
      o.json
        ? JSON.stringify({ socket: socketPath, ...result, ...(stages !== undefined ? { stages } : {}) })
        : formatResult(result, stages)
    )
  }).pipe(Effect.scoped)
).pipe(Command.withDescription(
    "Load-test a container: req/s and p50/p90/p99 latency, with live progress, and where the time went (the answers' stage timings)."
  ))
