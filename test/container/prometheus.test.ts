/**
 * The Prometheus metrics agree with the truth: a container sent N good and M failing requests of
 * known codes answers exactly those counts (and histogram counts) over `{"op":"metrics"}` and, when
 * `metricsAddr` is set, over `GET /metrics`.
 */
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { InferenceFailed } from "../../src/contract/errors.js"
import { RuntimeConfig } from "../../src/config/RuntimeConfig.js"
import { FrameReader } from "../../src/frames/FrameReader.js"
import { InferenceHandler, type InferenceHandlerShape } from "../../src/inference/InferenceHandler.js"
import * as ModelContainer from "../../src/container/ModelContainer.js"
import { ContainerMetrics, DURATION_BUCKETS, MAX_CLASSES } from "../../src/container/Prometheus.js"
import { call, memoryFrame, request, startContainer, tempDir } from "../support/harness.js"

const frames = new Map([["/dev/shm/cam1", memoryFrame()]])

const box = (class_name: string, class_id: number) => ({ class_id, class_name, confidence: 0.9, bbox: [0.1, 0.1, 0.5, 0.5] })

/** Fails with INFERENCE_FAILED when the request id starts with "fail"; otherwise two people and a car. */
const handler: InferenceHandlerShape = {
  infer: (req) =>
    String(req.request_id ?? "").startsWith("fail")
      ? Effect.fail(new InferenceFailed({ reason: "asked to" }))
      : Effect.succeed({ detections: [box("person", 0), box("person", 0), box("car", 2)] })
}

/** The value of the one sample `name{labels}` in `text` (labels as the formatter writes them), or undefined. */
const sample = (text: string, name: string, labels: string): number | undefined => {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1))
}

const OUTCOMES = { ok: 5, model_mismatch: 3, frame_not_found: 2, inference_failed: 1, invalid_request: 1 } as const

/** Sends the requests of `OUTCOMES`: each count of each outcome, one at a time. */
const sendAll = (socket: string) =>
  Effect.promise(async () => {
    const minuteOld = Date.now() / 1000 - 60
    for (let i = 0; i < OUTCOMES.ok; i++) await call(socket, request("/dev/shm/cam1", { request_id: `ok${i}`, timestamp: minuteOld }))
    for (let i = 0; i < OUTCOMES.model_mismatch; i++) await call(socket, request("/dev/shm/cam1", { model_id: "other" }))
    for (let i = 0; i < OUTCOMES.frame_not_found; i++) await call(socket, request("/dev/shm/missing"))
    for (let i = 0; i < OUTCOMES.inference_failed; i++) await call(socket, request("/dev/shm/cam1", { request_id: `fail${i}` }))
    for (let i = 0; i < OUTCOMES.invalid_request; i++) await call(socket, { camera_id: "camera_1" })
  })

/** Every outcome's counter and histogram count is exactly what was sent; buckets are cumulative up to the count. */
const expectTruth = (text: string) => {
  for (const [outcome, n] of Object.entries(OUTCOMES)) {
    const labels = `model="test-model",outcome="${outcome}"`
    expect(sample(text, "ruth_requests_total", labels), outcome).toBe(n)
    expect(sample(text, "ruth_request_duration_seconds_count", labels), outcome).toBe(n)
    expect(sample(text, "ruth_request_duration_seconds_bucket", `${labels},le="+Inf"`), outcome).toBe(n)
    const buckets = DURATION_BUCKETS.filter(Number.isFinite).map((le) =>
      sample(text, "ruth_request_duration_seconds_bucket", `${labels},le="${le}"`)
    )
    expect(buckets.length).toBe(13)
    expect(buckets.every((b, i) => b !== undefined && b <= n && (i === 0 || b >= buckets[i - 1]!)), outcome).toBe(true)
  }
  expect(text).toContain("# TYPE ruth_requests_total counter")
  expect(text).toContain("# TYPE ruth_request_duration_seconds histogram")
  expect(sample(text, "ruth_inflight_requests", `model="test-model"`)).toBe(0)
  expect(sample(text, "ruth_inflight_limit", `model="test-model"`)).toBe(7)
  expect(sample(text, "ruth_model_ready", `model="test-model"`)).toBe(1)
  expect(text).toMatch(/^ruth_model_info\{model="test-model",model_version="3",runtime_version="[^"]+",execution_provider="unknown"\} 1$/m)
  // Detections by class: what the good answers carried.
  expect(sample(text, "ruth_detections_total", `model="test-model",class="person"`)).toBe(2 * OUTCOMES.ok)
  expect(sample(text, "ruth_detections_total", `model="test-model",class="car"`)).toBe(OUTCOMES.ok)
  // No camera label unless asked for.
  expect(text).not.toContain("camera=")
  // The process' own series.
  expect(text).toMatch(/^process_cpu_seconds_total [0-9.e+-]+$/m)
  expect(Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(1e6)
  expect(Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(0)
  expect(text).toMatch(/^nodejs_eventloop_delay_p99_seconds \S+$/m)
  // A handler that reports no stages: only the runtime's frame read, once per good answer; frames a minute old.
  expect(sample(text, "ruth_stage_duration_seconds_count", `model="test-model",stage="frame_read"`)).toBe(OUTCOMES.ok)
  expect(text).not.toContain(`stage="inference"`)
  expect(sample(text, "ruth_frame_age_seconds_count", `model="test-model"`)).toBe(OUTCOMES.ok)
  expect(sample(text, "ruth_frame_age_seconds_bucket", `model="test-model",le="2.048"`)).toBe(0)
  // The connection that asks is open.
  expect(sample(text, "ruth_connections", `model="test-model"`)).toBeGreaterThanOrEqual(1)
}

describe("Prometheus metrics", () => {
  it.live("{\"op\":\"metrics\"} answers the Prometheus text with exactly the requests sent, by outcome", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ handler, frames, settings: { maxInflight: 7, modelVersion: "3" } })
      yield* sendAll(c.socketPath)
      const reply = yield* Effect.promise(() => call(c.socketPath, { op: "metrics" }))
      expect(reply).toMatchObject({ op: "metrics", content_type: "text/plain; version=0.0.4; charset=utf-8" })
      expectTruth(reply.text as string)
      // Off by default: no endpoint.
      expect(c.metricsAddress).toBeUndefined()
      // A metrics read is no request: the counts do not move.
      const again = yield* Effect.promise(() => call(c.socketPath, { op: "metrics" }))
      expect(sample(again.text as string, "ruth_requests_total", `model="test-model",outcome="ok"`)).toBe(OUTCOMES.ok)
    }))

  it.live("with metricsAddr, GET /metrics serves the same numbers; other paths are 404", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ handler, frames, settings: { maxInflight: 7, modelVersion: "3", metricsAddr: "127.0.0.1:0" } })
      expect(c.metricsAddress).toMatch(/^127\.0\.0\.1:\d+$/)
      yield* sendAll(c.socketPath)
      const text = yield* Effect.promise(async () => {
        // Hold a socket connection open while scraping, so the gauge has one to count.
        const held = net.connect(c.socketPath)
        await new Promise((resolve) => held.once("connect", resolve))
        try {
          const res = await fetch(`http://${c.metricsAddress}/metrics`)
          expect(res.status).toBe(200)
          expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
          return await res.text()
        } finally {
          held.destroy()
        }
      })
      expectTruth(text)
      const other = yield* Effect.promise(() => fetch(`http://${c.metricsAddress}/other`))
      expect(other.status).toBe(404)
    }))

  it.live("with metricsCameras N, requests and frame ages by camera for the first N cameras, the rest as _other", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ handler, frames, settings: { metricsCameras: 2 } })
      const sent = { cam_a: 3, cam_b: 1, cam_c: 2, cam_d: 1 } as const
      const text = yield* Effect.promise(async () => {
        for (const [camera, n] of Object.entries(sent)) {
          for (let i = 0; i < n; i++) await call(c.socketPath, request("/dev/shm/cam1", { camera_id: camera }))
        }
        await call(c.socketPath, request("/dev/shm/missing", { camera_id: "cam_a" }))
        return (await call(c.socketPath, { op: "metrics" })).text as string
      })
      const ok = (camera: string) => sample(text, "ruth_requests_total", `model="test-model",outcome="ok",camera="${camera}"`)
      expect([ok("cam_a"), ok("cam_b"), ok("_other")]).toEqual([3, 1, 3])
      expect(text).not.toContain(`camera="cam_c"`)
      expect(sample(text, "ruth_requests_total", `model="test-model",outcome="frame_not_found",camera="cam_a"`)).toBe(1)
      expect(sample(text, "ruth_frame_age_seconds_count", `model="test-model",camera="_other"`)).toBe(3)
      // The duration histograms stay per outcome only: a camera label multiplies their series.
      expect(sample(text, "ruth_request_duration_seconds_count", `model="test-model",outcome="ok"`)).toBe(7)
    }))

  it.live("the event loop's delay shows from the start, before the first 10 s window has closed", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ handler, frames })
      const max = () =>
        Effect.promise(async () => Number(/^nodejs_eventloop_delay_max_seconds (\S+)$/m.exec((await call(c.socketPath, { op: "metrics" })).text as string)?.[1]))
      // The monitor measures between its ticks (every 10 ms): wait (asking, not sleeping) until it has measured.
      let first = 0
      for (let asked = 0; first === 0 && asked < 10_000; asked++) first = yield* max()
      expect(first).toBeGreaterThan(0)
      // Hold the event loop for 60 ms: the monitor's next tick is that late.
      const until = performance.now() + 60
      while (performance.now() < until) { /* busy */ }
      expect(yield* max()).toBeGreaterThanOrEqual(0.04)
    }))

  it("detections of more classes than MAX_CLASSES: the classes past the cap count as class=\"_other\"", () => {
    const metrics = new ContainerMetrics({ modelId: "m", cameras: 0 })
    const classes = Array.from({ length: MAX_CLASSES + 5 }, (_, i) => ({ class_name: `c${i}` }))
    metrics.answered(1, undefined, { timestamp: Date.now() / 1000, camera_id: "" }, classes)
    metrics.answered(1, undefined, { timestamp: Date.now() / 1000, camera_id: "" }, [{ class_name: "c0" }, { class_name: "new" }])
    const text = metrics.text()
    expect(text.split("\n").filter((l) => l.startsWith("ruth_detections_total{")).length).toBe(MAX_CLASSES + 1)
    expect(sample(text, "ruth_detections_total", `model="m",class="c0"`)).toBe(2)
    expect(sample(text, "ruth_detections_total", `model="m",class="_other"`)).toBe(6)
  })

  it.live("a metricsAddr that cannot be bound fails the start with one message naming the setting", () =>
    Effect.gen(function*() {
      const busy = yield* Effect.acquireRelease(
        Effect.promise(() =>
          new Promise<net.Server>((resolve) => {
            const s = net.createServer().listen(0, "127.0.0.1", () => resolve(s))
          })
        ),
        (s) => Effect.promise(() => new Promise<void>((resolve) => s.close(() => resolve())))
      )
      const port = (busy.address() as net.AddressInfo).port
      const dir = yield* tempDir()
      const layer = Layer.mergeAll(FrameReader.layerMemory(frames), Layer.succeed(InferenceHandler, handler)).pipe(
        Layer.provideMerge(RuntimeConfig.layer({
          modelId: "test-model",
          socketDir: dir,
          heartbeatDir: dir,
          handleSignals: false,
          metricsAddr: `127.0.0.1:${port}`
        }))
      )
      const exit = yield* Effect.exit(Effect.scoped(ModelContainer.start.pipe(Effect.provide(layer))))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = exit.cause.reasons.find((r) => r._tag === "Fail")
        expect(error?._tag === "Fail" && error.error).toMatchObject({ _tag: "MetricsListenError", code: "METRICS_LISTEN_FAILED" })
        expect(error?._tag === "Fail" && error.error.message).toMatch(
          new RegExp(`^cannot serve metrics on 127\\.0\\.0\\.1:${port} \\(metricsAddr / RUTH_METRICS_ADDR\\): .*EADDRINUSE`)
        )
      }
    }))
})
