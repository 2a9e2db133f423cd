/**
 * The seed's minimal model container, in this runtime's API: a handler that
 * reads the frame and returns no detections.
 *
 *   RUTH_MODEL_ID=minimal npm run example:minimal
 *
 * `MINIMAL_LATENCY_MS` adds simulated model latency (for demos and the
 * graceful-shutdown test).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { InferenceHandler, ModelContainer } from "@ruth-ai/model-runtime"

const latencyMs = Number(process.env.MINIMAL_LATENCY_MS ?? 0)

const Handler = Layer.succeed(
  InferenceHandler,
  InferenceHandler.of({
    infer: (_request, frame) => {
      const answer = Effect.succeed({ detections: [], metadata: { bytes_read: frame.data.length } })
      // Delay only when asked: even a zero delay is a timer, and an answer that is already an
      // `Effect.succeed` / `Effect.fail` is served on the spot, without a fiber (the fast path).
      return latencyMs > 0 ? Effect.delay(answer, latencyMs) : answer
    }
  })
)

NodeRuntime.runMain(
  ModelContainer.launchWith({ modelId: process.env.RUTH_MODEL_ID ?? "minimal" }).pipe(Effect.provide(Handler)),
  // Exit 0 after a drained SIGTERM, 1 after a start failure (Effect 4's default exits 130 for both).
  { teardown: ModelContainer.teardown }
)
