/**
 * The README's "Testing your handler" and "Calling a container from code", as they are printed
 * there: if this file stops compiling or passing, the README is wrong.
 */
// README: testing-your-handler (begin)
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import {
  FrameReader,
  InferenceHandler,
  makeClient,
  ModelContainer,
  publishRaw,
  RuntimeConfig,
  sharedMemoryDir
} from "@ruth-ai/model-runtime"

// The handler under test: "bright" when the frame's mean luma is above 128.
const Handler = Layer.succeed(InferenceHandler, InferenceHandler.of({
  infer: (_request, frame) => {
    let sum = 0
    for (let i = 0; i < frame.width * frame.height; i++) sum += frame.data[i]!
    const bright = sum / (frame.width * frame.height) > 128
    return Effect.succeed({
      detections: bright ? [{ class_id: 0, class_name: "bright", confidence: 1, bbox: [0, 0, 1, 1] }] : []
    })
  }
}))

// A container on a socket in a temp dir, stopped (drained) when the test's scope closes.
const startWith = (frames: Layer.Layer<FrameReader, never, RuntimeConfig>) =>
  Effect.gen(function*() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "my-model-test-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    const config = RuntimeConfig.layer({ modelId: "my-model", socketDir: dir, heartbeatDir: dir, handleSignals: false })
    return yield* ModelContainer.start.pipe(
      Effect.provide(Layer.mergeAll(frames, Handler).pipe(Layer.provideMerge(config)))
    )
  })

const request = (frameReference: string) => ({
  frame_reference: frameReference,
  frame_metadata: { width: 64, height: 48, format: "NV12", frame_id: 7 },
  camera_id: "cam1",
  model_id: "my-model",
  timestamp: Date.now() / 1000
})

describe("my handler", () => {
  it.effect("finds a bright frame published to shared memory", () =>
    Effect.gen(function*() {
      const container = yield* startWith(FrameReader.layer)
      // Publish a frame the way the core does: an NV12 file in /dev/shm (width × height × 3/2 bytes).
      const frame = path.join(sharedMemoryDir(), `my-model-test-${process.pid}.nv12`)
      publishRaw(frame, { width: 64, height: 48, data: new Uint8Array(64 * 48 * 1.5).fill(200) })
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(frame, { force: true })))

      const client = yield* makeClient({ socketPath: container.socketPath, timeoutMs: 5000 })
      const response = yield* client.infer(request(frame))
      expect(response.error).toBeNull()
      expect(response.frame_id).toBe(7)
      expect(response.detections.map((d) => d.class_name)).toEqual(["bright"])
    }))

  it.effect("swaps the frame source: frames from memory, no shared memory at all", () =>
    Effect.gen(function*() {
      const dark = { format: "NV12" as const, width: 64, height: 48, stride: 64, data: new Uint8Array(64 * 48 * 1.5).fill(20) }
      const container = yield* startWith(FrameReader.layerMemory(new Map([["cam1/latest", dark]])))
      const client = yield* makeClient({ socketPath: container.socketPath, timeoutMs: 5000 })
      const response = yield* client.infer(request("cam1/latest"))
      expect(response.error).toBeNull()
      expect(response.detections).toEqual([])
    }))
})
// README: testing-your-handler (end)

// README: calling-a-container (begin)
import { ClientError } from "@ruth-ai/model-runtime"

/** Asks a running container about one frame; the client is closed when the call ends. */
const inferOnce = (socketPath: string, frameReference: string) =>
  Effect.scoped(Effect.gen(function*() {
    // poolSize 0 (default): a connection per request, as the original callers do; N > 0: up to N kept open.
    const client = yield* makeClient({ socketPath, timeoutMs: 5000, poolSize: 4 })
    return yield* client.infer({
      frame_reference: frameReference,
      frame_metadata: { width: 64, height: 48, format: "NV12", frame_id: 1 },
      camera_id: "cam1",
      model_id: "my-model",
      timestamp: Date.now() / 1000
    })
  }))
// README: calling-a-container (end)

describe("calling a container from code", () => {
  it.effect("answers through the README's snippet, and an absent socket is a typed ClientError", () =>
    Effect.gen(function*() {
      const dark = { format: "NV12" as const, width: 64, height: 48, stride: 64, data: new Uint8Array(64 * 48 * 1.5) }
      const container = yield* startWith(FrameReader.layerMemory(new Map([["f", dark]])))
      const response = yield* inferOnce(container.socketPath, "f")
      expect(response.error).toBeNull()
      const missing = yield* Effect.flip(inferOnce(path.join(container.settings.socketDir, "absent.sock"), "f"))
      expect(missing).toBeInstanceOf(ClientError)
      expect(missing.kind).toBe("connect")
    }))
})
