/**
 * The real PP-OCRv4 text detector, end to end: examples/models/text-detection/model.yaml loaded as
 * an operator would, rendered scenes written as raw NV12 frame files, requests over the socket.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { loadModelConfig } from "../../src/config/ModelConfig.js"
import { InferenceHandler } from "../../src/inference/InferenceHandler.js"
import { imageToNv12 } from "../../src/frames/image.js"
import * as OnnxHandler from "../../src/inference/OnnxHandler.js"
import { make as makeScheduler, Scheduler } from "../../src/inference/Scheduler.js"
import { exitOf, spawnTs, waitForListening } from "../support/child.js"
import { ruthModel } from "../support/cli.js"
import { call, request, startContainer, tempDir } from "../support/harness.js"
import { type Box, iou, type Scene, sampleScenes } from "../support/scenes.js"

const MODEL_DIR = fileURLToPath(new URL("../../examples/models/text-detection", import.meta.url))
const BARE_SERVER = fileURLToPath(new URL("../../bench/servers/bareModel.ts", import.meta.url))

interface WireDetection {
  readonly class_name: string
  readonly confidence: number
  readonly bbox: Box
}

/**
 * A text-detection container on a socket, reading frame files from os.tmpdir(); as `ruth-model serve`
 * builds it, the handler and the container share one scheduler (frames are read in their turn).
 */
const textContainer = Effect.gen(function*() {
  const loaded = yield* loadModelConfig(MODEL_DIR)
  const scheduler = yield* makeScheduler({ timeoutMs: 60_000 })
  const context = yield* Layer.build(
    OnnxHandler.layer(loaded, { gpuAvailable: false }).pipe(Layer.provide(Layer.succeed(Scheduler, scheduler)))
  )
  return yield* startContainer({
    handler: Context.get(context, InferenceHandler),
    scheduler,
    settings: { modelId: "text-detection", frameRoots: [os.tmpdir()], requestTimeoutMs: 60_000 }
  })
})

/** The text-detection container and the first sample scene as a raw NV12 frame file. */
const containerAndFrame = (name: string) =>
  Effect.gen(function*() {
    const [scene] = yield* Effect.promise(() => sampleScenes())
    const dir = yield* tempDir(`ruth-text-${name}-`)
    const c = yield* textContainer
    const nv12 = yield* Effect.promise(() => imageToNv12(scene!.png))
    const file = path.join(dir, `vas_frames_${name}`)
    fs.writeFileSync(file, nv12.data)
    return { c, file, nv12 }
  })

/** Writes the scene as a raw NV12 frame file (CONTRACT §5 layout 1) and asks the container about it. */
const detect = (socketPath: string, dir: string, scene: Scene, frameId: number) =>
  Effect.gen(function*() {
    const nv12 = yield* Effect.promise(() => imageToNv12(scene.png))
    const file = path.join(dir, `vas_frames_${scene.name}`)
    fs.writeFileSync(file, nv12.data)
    const reply = yield* Effect.promise(() =>
      call(
        socketPath,
        request(file, {
          model_id: "text-detection",
          frame_metadata: { width: nv12.width, height: nv12.height, format: "NV12", frame_id: frameId }
        })
      )
    )
    expect(reply.error).toBeNull()
    return { detections: reply.detections as ReadonlyArray<WireDetection>, metadata: reply.metadata as Record<string, unknown> }
  })

const bestIou = (box: Box, detections: ReadonlyArray<WireDetection>): number =>
  Math.max(0, ...detections.map((d) => iou(d.bbox, box)))

const bestIouOfLines = (box: Box, scene: Scene): number => Math.max(0, ...scene.lines.map((l) => iou(box, l.box)))

describe("text detection (PP-OCRv4) end to end", () => {
  it.live("finds every rendered text line (IoU >= 0.5) and nothing in a frame without text", () =>
    Effect.gen(function*() {
      const scenes = yield* Effect.promise(() => sampleScenes())
      expect(scenes.map((s) => s.name)).toEqual(["street-sign", "notice-board", "blank"])
      const dir = yield* tempDir("ruth-text-e2e-")
      const c = yield* textContainer

      for (const [index, scene] of scenes.entries()) {
        const { detections, metadata } = yield* detect(c.socketPath, dir, scene, index + 1)
        expect(metadata).toMatchObject({ device: "cpu", input_size: [640, 640], frame_width: 1280, frame_height: 720 })
        for (const line of scene.lines) {
          expect(bestIou(line.box, detections), `${scene.name}: "${line.text}"`).toBeGreaterThanOrEqual(0.5)
        }
        // Nothing is found outside the known lines (no false positives on the panels and borders).
        for (const d of detections) {
          expect(d.class_name).toBe("text")
          expect(bestIouOfLines(d.bbox, scene), `${scene.name}: detection at ${d.bbox.join(", ")}`).toBeGreaterThan(0.3)
        }
        if (scene.lines.length === 0) expect(detections).toEqual([])
      }
    }))

  it.live("timings tell the model's run from its queue and from the hand-off, and add up to the request's", () =>
    Effect.gen(function*() {
      const { c, file, nv12 } = yield* containerAndFrame("timing")
      const ask = (frameId: number) =>
        call(c.socketPath, request(file, { model_id: "text-detection", frame_metadata: { width: nv12.width, height: nv12.height, format: "NV12", frame_id: frameId } }))
      // Three at once: the session runs one at a time, so the later ones queue behind a whole run.
      const replies = yield* Effect.promise(() => Promise.all([1, 2, 3].map(ask)))
      const timings = replies.map((r) => {
        expect(r.error).toBeNull()
        const m = r.metadata as Record<string, number>
        return {
          run: m.inference_ms!,
          wait: m.session_wait_ms!,
          handoff: m.handoff_ms!,
          stages: m.preprocess_ms! + m.session_wait_ms! + m.handoff_ms! + m.inference_ms! + m.postprocess_ms!,
          handler: m.inference_time_ms!
        }
      })
      const shortestRun = Math.min(...timings.map((t) => t.run))
      expect(shortestRun).toBeGreaterThan(1)
      expect(Math.max(...timings.map((t) => t.wait))).toBeGreaterThan(shortestRun / 2)
      for (const t of timings) {
        // The queue is not counted as hand-off, and the stages are the handler's time (to rounding).
        expect(t.handoff).toBeLessThan(t.run)
        expect(t.stages).toBeLessThanOrEqual(t.handler + 0.05)
        expect(t.stages).toBeGreaterThan(t.handler * 0.9)
      }
    }))

  it.live("ruth-model bench shows the backend's stages and the share outside the model", () =>
    Effect.gen(function*() {
      const { c, file, nv12 } = yield* containerAndFrame("bench")
      const args = ["bench", "--socket", c.socketPath, "--frame", file, "--width", String(nv12.width), "--height", String(nv12.height)]
      const json = yield* ruthModel([...args, "--concurrency", "2", "--duration", "1", "--json"])
      expect(json.code, json.stderr).toBe(0)
      const result = JSON.parse(json.stdout)
      expect(result.errorResponses).toBe(0)
      const stages = result.stages
      expect(stages).toMatchObject({ samples: result.requests, modelField: "inference_ms" })
      for (const stage of ["preprocess", "handoff", "sessionWait", "postprocess"]) expect(stages[stage]).toBeGreaterThanOrEqual(0)
      // Two cameras on one session: a frame waits for the other's run, which is the model's time too.
      expect(stages.sessionWait).toBeGreaterThan(1)
      expect(stages.model).toBeGreaterThan(1)
      // Queueing is named apart: what is outside the model and the queue excludes both.
      expect(stages.outsideModelAndQueueMs).toBeGreaterThan(0)
      expect(stages.outsideModelAndQueueMs).toBeLessThan(stages.totalMs - stages.model)
      expect(stages.sessionWaitShare).toBeGreaterThan(0)
      const human = yield* ruthModel([...args, "--concurrency", "1", "--duration", "0.5"])
      expect(human.code).toBe(0)
      expect(human.stdout).toMatch(/preprocess [\d.]+ {2}hand-off [\d.]+ {2}session wait [\d.]+ {2}model [\d.]+ {2}postprocess [\d.]+ {2}runtime [\d.]+/)
      expect(human.stdout).toMatch(/split {7}of the median round trip [\d.]+ ms: model \(session\.run\) [\d.]+ ms \([\d.]+%\), queueing \(session wait\) [\d.]+ ms \([\d.]+%\), outside model and queue [\d.]+ ms \([\d.]+%\)/)
    }))

  // bench/e2e's floors are baselines only if they do the container's work: same frame, same answer.
  it.live("the bench's bare floors (bench/servers/bareModel.ts, inline and --worker) answer what the container answers", () =>
    Effect.gen(function*() {
      const { c, file, nv12 } = yield* containerAndFrame("floor")
      const ask = (socketPath: string) =>
        Effect.promise(() =>
          call(socketPath, request(file, { model_id: "text-detection", frame_metadata: { width: nv12.width, height: nv12.height, format: "NV12", frame_id: 7 } }))
        )
      const expected = yield* ask(c.socketPath)
      expect(expected.error).toBeNull()
      const want = expected.detections as ReadonlyArray<WireDetection>
      expect(want.length).toBeGreaterThan(0)

      for (const mode of [[], ["--worker"]]) {
        const socket = path.join(path.dirname(file), `bare${mode.length}.sock`)
        yield* Effect.acquireRelease(
          Effect.sync(() => spawnTs(BARE_SERVER, [socket, MODEL_DIR, ...mode], {})),
          (server) => Effect.promise(() => (server.kill("SIGTERM"), exitOf(server)))
        )
        yield* Effect.promise(() => waitForListening(socket, 60_000))
        const reply = yield* ask(socket)
        expect(reply.error, `bare server ${mode.join(" ")}`).toBeNull()
        const got = reply.detections as ReadonlyArray<WireDetection>
        expect(got.length, `bare server ${mode.join(" ")}`).toBe(want.length)
        got.forEach((d, i) => {
          expect(d.confidence).toBeCloseTo(want[i]!.confidence, 4)
          d.bbox.forEach((v, k) => expect(v).toBeCloseTo(want[i]!.bbox[k]!, 4))
        })
        const m = reply.metadata as Record<string, number>
        expect(m.inference_ms).toBeGreaterThan(1)
        // Only the worker variant hands the tensor to another thread, and says how long that took.
        if (mode.length > 0) expect(m.handoff_ms).toBeGreaterThan(0)
        else expect(m.handoff_ms).toBeUndefined()
        expect(m.server_time_ms).toBeGreaterThan(m.inference_ms! + m.preprocess_ms! + m.frame_read_ms!)
      }
    }))
})
