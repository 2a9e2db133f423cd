/** Test harness: real containers on real sockets in temp dirs. */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer, type Scope } from "effect"
import { encodeMessage, FrameDecoder } from "../../src/contract/codec.js"
import { RuntimeConfig, type RuntimeSettingsInput } from "../../src/config/RuntimeConfig.js"
import type { Frame } from "../../src/frames/Frame.js"
import type { BufferPool } from "../../src/frames/BufferPool.js"
import { FrameReader, type FrameReaderShape } from "../../src/frames/FrameReader.js"
import { InferenceHandler, type InferenceHandlerShape } from "../../src/inference/InferenceHandler.js"
import * as ModelContainer from "../../src/container/ModelContainer.js"
import { Scheduler, type SchedulerShape } from "../../src/inference/Scheduler.js"

/** A fresh directory under os.tmpdir(), removed with the scope. */
export const tempDir = (prefix = "ruth-test-"): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

export const noDetections: InferenceHandlerShape = { infer: () => Effect.succeed({ detections: [] }) }

export interface TestContainerOptions {
  readonly handler?: InferenceHandlerShape
  readonly settings?: Partial<RuntimeSettingsInput>
  /** In-memory frames by reference; when absent, frames are read from the filesystem. */
  readonly frames?: ReadonlyMap<string, Omit<Frame, "reference">>
  /** The live reader's buffer pool, so a test can watch its occupancy (ignored with `frames`). */
  readonly pool?: BufferPool
  /** A frame reader of the test's own (wins over `frames` and `pool`). */
  readonly reader?: FrameReaderShape
  /** The container's scheduler (a scheduled handler then runs in its turns); none by default. */
  readonly scheduler?: SchedulerShape
}

/** Starts a container on a socket in a temp dir; stops (drains) it when the scope closes. */
export const startContainer = (options: TestContainerOptions = {}) =>
  Effect.gen(function*() {
    const dir = yield* tempDir()
    const config = RuntimeConfig.layer({
      modelId: "test-model",
      socketDir: dir,
      heartbeatDir: dir,
      handleSignals: false,
      drainTimeoutMs: 2_000,
      ...options.settings
    })
    const reader = options.reader
      ? Layer.succeed(FrameReader, options.reader)
      : options.frames
      ? FrameReader.layerMemory(options.frames)
      : options.pool
      ? FrameReader.layerWithPool(options.pool)
      : FrameReader.layer
    const scheduler = options.scheduler ? Layer.succeed(Scheduler, options.scheduler) : Layer.empty
    const layer = Layer.mergeAll(reader, scheduler, Layer.succeed(InferenceHandler, options.handler ?? noDetections)).pipe(
      Layer.provideMerge(config)
    )
    const context = yield* Layer.build(layer).pipe(Effect.orDie)
    const container = yield* ModelContainer.start.pipe(Effect.provide(context), Effect.orDie)
    return { ...container, dir }
  })

/** A valid request for `frame_reference`, with overrides. */
export const request = (frameReference: string, overrides: Record<string, unknown> = {}) => ({
  frame_reference: frameReference,
  frame_metadata: { width: 64, height: 48, format: "NV12", frame_id: 1 },
  camera_id: "camera_1",
  model_id: "test-model",
  timestamp: 1_700_000_000.5,
  ...overrides
})

/** An in-memory NV12 frame of the given size. */
export const memoryFrame = (width = 64, height = 48): Omit<Frame, "reference"> => ({
  format: "NV12",
  width,
  height,
  stride: width,
  data: new Uint8Array((width * height * 3) / 2)
})

/**
 * A raw socket conversation: writes `chunks` (framed or not), collects every
 * reply until `expect` replies arrived or the server closed the connection.
 */
export const converse = (
  socketPath: string,
  chunks: ReadonlyArray<Uint8Array>,
  expect = 1,
  timeoutMs = 10_000
): Promise<{ replies: Array<Record<string, unknown>>; closedByServer: boolean }> =>
  new Promise((resolve, reject) => {
    const socket = net.connect(socketPath)
    const decoder = new FrameDecoder(64 * 1024 * 1024)
    const replies: Array<Record<string, unknown>> = []
    let settled = false
    const finish = (closedByServer: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ replies, closedByServer })
    }
    const timer = setTimeout(() => {
      settled = true
      socket.destroy()
      reject(new Error(`timed out with ${replies.length}/${expect} replies`))
    }, timeoutMs)
    socket.on("connect", () => {
      for (const c of chunks) socket.write(c)
    })
    socket.on("data", (d) => {
      for (const ev of decoder.push(d)) {
        if (ev._tag === "Message") replies.push(JSON.parse(Buffer.from(ev.payload).toString("utf8")))
      }
      if (replies.length >= expect) finish(false)
    })
    socket.on("end", () => finish(true))
    socket.on("close", () => finish(true))
    socket.on("error", (e) => {
      if (!settled) {
        settled = true
        clearTimeout(timer)
        reject(e)
      }
    })
  })

/** One request, one reply, on a fresh connection. */
export const call = async (socketPath: string, message: unknown): Promise<Record<string, unknown>> => {
  const { replies } = await converse(socketPath, [encodeMessage(message)], 1)
  const reply = replies[0]
  if (reply === undefined) throw new Error("connection closed without a reply")
  return reply
}

/** Writes an NV12 frame file of zeros (or `fill`) and returns its path. */
export const writeFrameFile = (dir: string, name: string, width: number, height: number, fill = 0): string => {
  const p = path.join(dir, name)
  fs.writeFileSync(p, Buffer.alloc((width * height * 3) / 2, fill))
  return p
}

/** Resolves once `condition` holds (polling); fails the test after a generous deadline. */
export const until = (condition: () => boolean, what: string) =>
  Effect.promise(async () => {
    const deadline = Date.now() + 20_000
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`${what} did not happen within 20 s`)
      await new Promise((r) => setTimeout(r, 10))
    }
  })
