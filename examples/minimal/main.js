/**
 * examples/minimal/main.ts as plain JavaScript, for the minimal model image
 * (examples/minimal/Dockerfile): a handler that reads the frame and returns no
 * detections. In the image, "@ruth-ai/model-runtime", "effect" and
 * "@effect/platform-node" come from the base image (ruth-ai/model-runtime);
 * nothing is vendored.
 *
 *   RUTH_MODEL_ID=minimal node examples/minimal/main.js      (after npm run build)
 *
 * `MINIMAL_LATENCY_MS` adds simulated model latency.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { InferenceHandler, ModelContainer } from "@ruth-ai/model-runtime"

const latencyMs = Number(process.env.MINIMAL_LATENCY_MS ?? 0)

const Handler = Layer.succeed(
  InferenceHandler,
  InferenceHandler.of({
    infer: (_request, frame) =>
      Effect.succeed({ detections: [], metadata: { bytes_read: frame.data.length } }).pipe(
        Effect.delay(latencyMs)
      )
  })
)

NodeRuntime.runMain(
  ModelContainer.launchWith({ modelId: process.env.RUTH_MODEL_ID ?? "minimal" }).pipe(Effect.provide(Handler))
)
