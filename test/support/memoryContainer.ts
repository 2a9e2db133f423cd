/**
 * The whole container without a socket, in a scope: `ModelContainer.layerOn` on the in-memory
 * transport, one frame in memory (`cam1/latest`: a bright box at `FRAME_BOX` on grey), the
 * scheduler, and the handler layer a test gives (the ONNX backend on a scripted session, or its own).
 */
import { ConfigProvider, Context, Effect, Layer, type Scope } from "effect"
import { RuntimeConfig, type RuntimeSettingsInput } from "../../src/config/RuntimeConfig.js"
import { FrameReader } from "../../src/frames/FrameReader.js"
import type { InferenceHandler } from "../../src/inference/InferenceHandler.js"
import { layer as schedulerLayer, type Scheduler } from "../../src/inference/Scheduler.js"
import { MemoryTransport, memoryTransport } from "../../src/ipc/IpcServer.js"
import * as ModelContainer from "../../src/container/ModelContainer.js"
import { type Box, nv12Frame, SIZE } from "./fakeModel.js"
import { request, tempDir } from "./harness.js"

/** Where the frame's bright box is, in pixels of its SIZE × SIZE. */
export const FRAME_BOX: Box = [8, 8, 16, 14]

/** A request for the frame in memory. */
export const frameRequest = (overrides: Record<string, unknown> = {}) =>
  request("cam1/latest", { frame_metadata: { width: SIZE, height: SIZE, format: "NV12", frame_id: 7 }, ...overrides })

export interface MemoryContainerOptions {
  readonly settings?: Partial<RuntimeSettingsInput>
  /** The environment the container reads through `Config` (`OTEL_*`); the process' own when not given. */
  readonly env?: Record<string, string>
}

/** The container (model `test-model`) and its memory transport; the socket dir it was given, to check it stays empty. */
export const memoryContainer = <E>(
  scope: Scope.Scope,
  handler: Layer.Layer<InferenceHandler, E, RuntimeConfig | Scheduler>,
  { env, settings = {} }: MemoryContainerOptions = {}
) =>
  Effect.gen(function*() {
    const dir = yield* tempDir("ruth-memory-container-")
    const config = RuntimeConfig.layer({
      modelId: "test-model",
      socketDir: dir,
      heartbeatDir: dir,
      heartbeatIntervalMs: 0,
      handleSignals: false,
      ...settings
    })
    const frames = new Map([["cam1/latest", nv12Frame(SIZE, SIZE, FRAME_BOX)]])
    const layer = ModelContainer.layerOn.pipe(
      Layer.provideMerge(Layer.mergeAll(memoryTransport, handler)),
      Layer.provideMerge(Layer.mergeAll(FrameReader.layerMemory(frames), schedulerLayer)),
      Layer.provideMerge(config)
    )
    const build = Layer.buildWithScope(layer, scope)
    const services = yield* (env === undefined ? build : build.pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))))
    return { container: Context.get(services, ModelContainer.ModelContainer), memory: Context.get(services, MemoryTransport), dir }
  })
