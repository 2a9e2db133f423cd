/**
 * The runtime under test: a ModelContainer with a no-op handler.
 * Usage (through tsx): bench/servers/ours.ts SOCKET_DIR MODEL_ID [memory|shm]
 *   memory: frames served by FrameReader.layerMemory (measures IPC + validation + orchestration)
 *   shm:    frames read from shared memory by the live FrameReader (adds open/read/close per request)
 */
import * as fs from "node:fs"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, References } from "effect"
import { FrameReader, InferenceHandler, ModelContainer, RuntimeConfig } from "@ruth-ai/model-runtime"

const [socketDir, modelId, frames = "shm", frameRef = ""] = process.argv.slice(2) as [string, string, string?, string?]
const NoOp = Layer.succeed(InferenceHandler, InferenceHandler.of({ infer: () => Effect.succeed({ detections: [] }) }))
const config = RuntimeConfig.layer({ modelId, socketDir, heartbeatIntervalMs: 0, maxInflight: 1024 })
const reader = frames === "memory"
  ? (() => {
    const data = fs.readFileSync(frameRef)
    return FrameReader.layerMemory(new Map([[frameRef, { format: "NV12" as const, width: 640, height: 360, stride: 640, data }]]))
  })()
  : FrameReader.layer

NodeRuntime.runMain(
  ModelContainer.run.pipe(
    Effect.provide(Layer.mergeAll(NoOp, reader).pipe(Layer.provideMerge(config))),
    Effect.provideService(References.MinimumLogLevel, "Warn")
  ),
  { teardown: ModelContainer.teardown }
)
