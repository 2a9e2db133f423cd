/**
 * `ruth-model infer`: send one request and print the response. The frame is
 * either already in shared memory (`--frame`) or made from an image file
 * (`--image`), published to shared memory for the request and removed after.
 */
import * as fs from "node:fs"
import { Command, Flag } from "effect/cli"
import { Console, Effect, Option } from "effect"
import type { InferenceResponse } from "../contract/schema.js"
import { annotateJpeg } from "../frames/image.js"
import { makeClient } from "../ipc/ModelClient.js"
import * as Cli from "./common.js"

const options = (env: Cli.CliEnvironment) => ({
  ...Cli.clientFlags(env),
  frame: Flag.String("frame").pipe(
    Flag.withDescription("path of a frame already in shared memory (raw file or frame-export directory)"),
    Flag.optional
  ),
  image: Cli.imageOption("to send"),
  layout: Flag.Literals("layout", ["raw", "export-dir"]).pipe(
    Flag.withDescription(`how --image is published in shared memory: a raw NV12 file or a frame-export directory${Cli.defaultIs("raw")}`),
    Flag.withDefault("raw" as const)
  ),
  out: Flag.String("out").pipe(Flag.withDescription("with --image: write a JPEG with the detections drawn"), Flag.optional),
  width: Flag.Int("width").pipe(Flag.withDescription("frame width (with --image: resize to it)"), Flag.optional),
  height: Flag.Int("height").pipe(Flag.withDescription("frame height (with --image: resize to it)"), Flag.optional),
  format: Flag.String("format").pipe(Flag.withDescription(`pixel format of --frame${Cli.defaultIs("NV12")}`), Flag.withDefault("NV12")),
  stride: Flag.Int("stride").pipe(Flag.withDescription("bytes per row of --frame, when padded"), Flag.optional),
  cameraId: Flag.String("camera-id").pipe(Flag.withDescription(`the request's camera_id${Cli.defaultIs("cli")}`), Flag.withDefault("cli")),
  frameId: Flag.Int("frame-id").pipe(Flag.withDescription(`the request's frame_id${Cli.defaultIs(0)}`), Flag.withDefault(0)),
  traceparent: Flag.String("traceparent").pipe(
    Flag.withDescription("a W3C traceparent (00-{trace id}-{span id}-{flags}) the request's span continues, when the container exports traces"),
    Flag.optional
  ),
  modelId: Flag.String("model-id").pipe(
    Flag.withDescription("model to ask for (default: the one the socket name vas_model_{id}.sock says, else the container's health answer)"),
    Flag.optional
  )
})

export const inferCommand = (env: Cli.CliEnvironment) => Command.make("infer", options(env), (o) =>
  Effect.gen(function*() {
    yield* Cli.positiveFlags({ integers: { "--width": o.width, "--height": o.height, "--stride": o.stride, "--timeout-ms": o.timeoutMs } })
    const socketPath = yield* Cli.resolveSocket(o.socket, env)
    if (Option.isSome(o.frame) === Option.isSome(o.image)) return yield* Cli.usage("give exactly one of --frame PATH or --image FILE")
    if (Option.isSome(o.out) && Option.isNone(o.image)) return yield* Cli.usage("--out needs --image")
    let reference: string
    let width: number
    let height: number
    let published: Cli.PublishedImage | undefined
    if (Option.isSome(o.image)) {
      published = yield* Cli.publishImage(o.image.value, "ruth-infer", {
        layout: o.layout,
        frameId: o.frameId,
        ...(Option.isSome(o.width) ? { width: o.width.value } : {}),
        ...(Option.isSome(o.height) ? { height: o.height.value } : {})
      })
      ;({ reference, width, height } = published)
    } else {
      if (Option.isNone(o.width) || Option.isNone(o.height)) return yield* Cli.usage("--frame needs --width and --height")
      reference = Option.getOrThrow(o.frame)
      width = o.width.value
      height = o.height.value
    }
    const modelId = yield* Cli.modelIdFor(socketPath, o.modelId, o.timeoutMs)
    const response: InferenceResponse = yield* Effect.scoped(
      Effect.flatMap(makeClient({ socketPath, timeoutMs: o.timeoutMs }), (client) =>
        client.infer({
          frame_reference: reference,
          frame_metadata: {
            width,
            height,
            format: published !== undefined ? "NV12" : o.format,
            frame_id: o.frameId,
            ...(Option.isSome(o.stride) && published === undefined ? { stride: o.stride.value } : {})
          },
          camera_id: o.cameraId,
          model_id: modelId,
          timestamp: Date.now() / 1000,
          ...(Option.isSome(o.traceparent) ? { traceparent: o.traceparent.value } : {})
        })
      )
    ).pipe(Effect.mapError(Cli.unreachable))
    yield* Console.log(JSON.stringify(response, null, 2))
    if (Option.isSome(o.out) && published !== undefined) {
      const out = o.out.value
      const frame = { ...published, stride: published.width, format: "NV12" as const }
      yield* Effect.tryPromise({
        try: async () => fs.promises.writeFile(out, await annotateJpeg(frame, response.detections ?? [])),
        catch: (e) => new Cli.CliFailure({ message: `cannot write ${out}: ${e instanceof Error ? e.message : String(e)}`, exitCode: Cli.ExitCode.negative })
      })
      yield* Console.error(`annotated image written to ${out}`)
    }
    if (response.error !== null) return yield* new Cli.CliFailure({ message: "", exitCode: Cli.ExitCode.negative })
  }).pipe(Effect.scoped)
).pipe(Command.withDescription("Send one inference request and print the response (exit 1 on an error response)."))
