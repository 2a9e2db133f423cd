/** `ruth-model infer`: send one request for a frame in shared memory and print the response. */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { makeClient } from "../ipc/ModelClient.js"
import { CliFailure, modelIdOf, resolveSocket, socketOption, timeoutOption, unreachable } from "./common.js"

const options = {
  socket: socketOption,
  frame: Options.text("frame").pipe(Options.withDescription("path of the frame in shared memory (raw NV12 file)")),
  width: Options.integer("width").pipe(Options.withDescription("frame width in pixels")),
  height: Options.integer("height").pipe(Options.withDescription("frame height in pixels")),
  format: Options.text("format").pipe(Options.withDescription("pixel format"), Options.withDefault("NV12")),
  stride: Options.integer("stride").pipe(Options.withDescription("bytes per row, when padded"), Options.optional),
  cameraId: Options.text("camera-id").pipe(Options.withDefault("cli")),
  frameId: Options.integer("frame-id").pipe(Options.withDefault(0)),
  modelId: Options.text("model-id").pipe(
    Options.withDescription("model to ask for (default: the one the container serves)"),
    Options.optional
  ),
  timeoutMs: timeoutOption
}

export const inferCommand = Command.make("infer", options, (o) =>
  Effect.gen(function*() {
    const socketPath = yield* resolveSocket(o.socket)
    const modelId = Option.isSome(o.modelId) ? o.modelId.value : yield* modelIdOf(socketPath, o.timeoutMs)
    const response = yield* Effect.scoped(
      Effect.flatMap(makeClient({ socketPath, timeoutMs: o.timeoutMs }), (client) =>
        client.infer({
          frame_reference: o.frame,
          frame_metadata: {
            width: o.width,
            height: o.height,
            format: o.format,
            frame_id: o.frameId,
            ...(Option.isSome(o.stride) ? { stride: o.stride.value } : {})
          },
          camera_id: o.cameraId,
          model_id: modelId,
          timestamp: Date.now() / 1000
        })
      )
    ).pipe(Effect.mapError(unreachable))
    yield* Console.log(JSON.stringify(response, null, 2))
    if (response.error !== null) return yield* new CliFailure({ message: "", exitCode: 1 })
  })
).pipe(Command.withDescription("Send one inference request and print the response (exit 1 on an error response)."))
