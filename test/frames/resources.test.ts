/**
 * Resource safety under load, through a real container on a real socket with
 * the live FrameReader: after 10,000 mixed requests — frames read in both
 * layouts, missing, torn and stale frames, clients that hang up mid-request —
 * every descriptor is closed and every pooled buffer is back.
 */
import * as diagnosticsChannel from "node:diagnostics_channel"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { encodeMessage } from "../../src/contract/codec.js"
import type { InferenceHandlerShape } from "../../src/inference/InferenceHandler.js"
import { BufferPool } from "../../src/frames/BufferPool.js"
import { encodeFrameMeta, publishExportDir } from "../../src/frames/publish.js"
import { call, request, startContainer, tempDir, writeFrameFile } from "../support/harness.js"

const TOTAL = 10_000
const CONCURRENCY = 32
const W = 64
const H = 48

const openFds = () => fs.readdirSync("/proc/self/fd").length

let framesHandled = 0

/** Touches every row of the frame (so the bytes are really read) and sleeps `config.sleep_ms` if asked. */
const handler: InferenceHandlerShape = {
  infer: (req, frame) => {
    framesHandled++
    let sum = 0
    for (let i = 0; i < frame.data.length; i += frame.stride) sum += frame.data[i]!
    const sleepMs = req.config?.["sleep_ms"]
    const output = { detections: [], metadata: { sum } }
    return typeof sleepMs === "number" ? Effect.as(Effect.sleep(sleepMs), output) : Effect.succeed(output)
  }
}

/** Connects, sends one request and hangs up at once, without waiting for the reply. */
const hangUp = (socketPath: string, message: unknown): Promise<void> =>
  new Promise((resolve) => {
    const socket = net.connect(socketPath)
    socket.on("connect", () => {
      socket.write(encodeMessage(message))
      socket.destroy()
    })
    socket.on("error", () => socket.destroy())
    socket.on("close", () => resolve())
  })

/** Checks waiting in `until`, run after each change to what they look at. */
const checks = new Set<() => void>()
/** Runs the checks once the current step is over (the step that returns a buffer also frees the request's slot). */
const changed = () => queueMicrotask(() => checks.forEach((check) => check()))

/**
 * Once `done()` holds, checked now and after every change; the caller asserts afterwards. (The
 * bound only turns a leak into the assertion's diff instead of the test's timeout.)
 */
const until = (done: () => boolean) =>
  Effect.promise(() =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!done()) return
        checks.delete(check)
        resolve()
      }
      checks.add(check)
      check()
    })
  ).pipe(Effect.timeoutOption("40 seconds"))

/** A pool that reports each buffer given back. */
class WatchedPool extends BufferPool {
  override release(buf: Uint8Array): void {
    super.release(buf)
    changed()
  }
}

/** Connections the container accepted and has not closed yet, each close reported (net's diagnostics channel). */
const serverConnections = Effect.acquireRelease(
  Effect.sync(() => {
    const open = new Set<net.Socket>()
    const onSocket = (message: unknown) => {
      const { socket } = message as { readonly socket: net.Socket }
      open.add(socket)
      socket.once("close", () => {
        open.delete(socket)
        changed()
      })
    }
    diagnosticsChannel.subscribe("net.server.socket", onSocket)
    return { open, onSocket }
  }),
  ({ onSocket }) => Effect.sync(() => diagnosticsChannel.unsubscribe("net.server.socket", onSocket))
).pipe(Effect.map(({ open }) => open))

describe("FrameReader resources under load", () => {
  it.live(`${TOTAL} mixed requests over the socket leave no descriptor open and no buffer borrowed`, () =>
    Effect.gen(function*() {
      const frames = yield* tempDir()
      const raw = writeFrameFile(frames, "raw", W, H, 5)
      const exportDir = path.join(frames, "camera_1")
      const data = Buffer.alloc(W * H * 1.5, 9)
      publishExportDir(exportDir, { data, width: W, height: H }, 1n)
      // Torn: the header's data_size disagrees with frame.data's size, on every attempt.
      const torn = path.join(frames, "torn")
      publishExportDir(torn, { data, width: W, height: H }, 1n)
      const tornMeta = encodeFrameMeta({ data, width: W, height: H }, 1n)
      tornMeta.writeBigUInt64LE(BigInt(data.length + 1), 40)
      fs.writeFileSync(path.join(torn, "frame.meta"), tornMeta)

      const pool = new WatchedPool(16 << 20)
      const connections = yield* serverConnections
      const container = yield* startContainer({
        handler,
        pool,
        settings: { frameRoots: [frames], maxInflight: 1024, heartbeatIntervalMs: 0 }
      })
      const socket = container.socketPath

      const kinds = [
        { ref: raw, expect: null },
        { ref: raw, expect: null, config: { sleep_ms: 3 } },
        { ref: exportDir, expect: null },
        { ref: exportDir, expect: null, config: { sleep_ms: 2 } },
        { ref: path.join(frames, "missing"), expect: "FRAME_NOT_FOUND" },
        { ref: path.join(frames, "missing-dir", "x"), expect: "FRAME_NOT_FOUND" },
        { ref: torn, expect: "FRAME_TORN" },
        { ref: exportDir, expect: "FRAME_STALE", frameId: 2 },
        { ref: exportDir, expect: "hang-up", config: { sleep_ms: 5 } },
        { ref: raw, expect: "hang-up" }
      ] as const
      const messageFor = (kind: (typeof kinds)[number]) =>
        request(kind.ref, {
          frame_metadata: { width: W, height: H, frame_id: "frameId" in kind ? kind.frameId : 1 },
          ...("config" in kind ? { config: kind.config } : {})
        })

      const run = async (from: number, to: number) => {
        const tally = new Map<string, number>()
        let next = from
        const worker = async () => {
          while (next < to) {
            const kind = kinds[next++ % kinds.length]!
            let outcome: string
            if (kind.expect === "hang-up") {
              await hangUp(socket, messageFor(kind))
              outcome = "hang-up"
            } else {
              const reply = await call(socket, messageFor(kind))
              outcome = reply.error === null ? "ok" : String(reply.error_code)
              expect(outcome).toBe(kind.expect ?? "ok")
            }
            tally.set(outcome, (tally.get(outcome) ?? 0) + 1)
          }
        }
        await Promise.all(Array.from({ length: CONCURRENCY }, worker))
        return tally
      }

      // Warm up every path, so lazily opened descriptors are part of the baseline; then wait for the
      // server to close the warm-up connections (it learns of each client's close asynchronously).
      const settled = () => connections.size === 0 && pool.inUse === 0 && container.snapshot().inflight === 0
      yield* Effect.promise(() => run(0, kinds.length * 2))
      yield* until(settled)
      const baseline = openFds()
      const framesBefore = framesHandled

      const tally = yield* Effect.promise(() => run(0, TOTAL))
      expect(tally.get("ok")).toBe((TOTAL / kinds.length) * 4)
      expect(tally.get("FRAME_TORN")).toBe(TOTAL / kinds.length)
      expect(tally.get("hang-up")).toBe((TOTAL / kinds.length) * 2)
      // The hung-up requests were read and their frames borrowed too, not dropped at the door.
      expect(framesHandled - framesBefore).toBeGreaterThan(tally.get("ok")!)

      // Hung-up requests finish (or are interrupted) after their clients left: wait for the server to catch up.
      yield* until(settled)
      expect({ fds: openFds(), inUse: pool.inUse, inflight: container.snapshot().inflight }).toEqual({
        fds: baseline,
        inUse: 0,
        inflight: 0
      })
    }))
})
