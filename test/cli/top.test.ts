/**
 * `ruth-model top`: the view's numbers from two samples (rates and p50/p99 over the interval, not
 * since start), and the command against real containers — `--json`'s snapshot, the redrawn view
 * off a terminal stopped by Ctrl-C (exit 0), a container it cannot reach, one without metrics.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Result, Scope } from "effect"
import { renderSnapshot, snapshot, type TopSample } from "../../src/cli/topView.js"
import { ExitCode } from "../../src/cli/common.js"
import { InferenceFailed } from "../../src/contract/errors.js"
import type { InferenceHandlerShape } from "../../src/inference/InferenceHandler.js"
import type { HealthResponse } from "../../src/ipc/ModelClient.js"
import { parsePrometheusText } from "../../src/ipc/prometheusText.js"
import { exitOf } from "../support/child.js"
import { ruthModel, spawnRuthModel } from "../support/cli.js"
import { call, memoryFrame, request, startContainer } from "../support/harness.js"
import { startOriginalServer, startScriptedServer } from "../support/originalServer.js"
import { PrometheusSeries } from "../support/prometheusSeries.js"

const health = (overrides: Partial<HealthResponse> = {}): HealthResponse => ({
  op: "health",
  status: "ready",
  model_id: "m",
  model_version: "2.1",
  version: "0.1.0",
  uptime_seconds: 3723,
  total_requests: 0,
  total_errors: 0,
  inflight: 0,
  max_inflight: 16,
  ...overrides
})

const samplesOf = (series: PrometheusSeries) => {
  const parsed = parsePrometheusText(series.text())
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  return parsed.success
}

describe("the view's numbers, from two samples", () => {
  it("rates are the counters' deltas over the interval; p50/p99 the histograms' deltas, interpolated in their bucket", () => {
    // Before the interval: 5 slow answers (which the interval's percentiles must not see).
    const metrics = new PrometheusSeries("m")
      .gauge("ruth_inflight_requests", 3)
      .gauge("ruth_inflight_limit", 16)
      .gauge("ruth_connections", 2)
      .requests(5, "ok", 1500)
      .detections(4, "person")
    const first: TopSample = { atMs: 10_000, health: health(), metrics: samplesOf(metrics) }
    // In the 2 s interval: 10 answers of 3 ms, 2 FRAME_NOT_FOUND of 700 ms, one frame read of 0.3 ms.
    metrics.requests(10, "ok", 3).requests(2, "frame_not_found", 700).stage(1, "frame_read", 0.3).detections(6, "person").detections(2, "car")
    const second: TopSample = { atMs: 12_000, health: health({ dropped_by_reason: { expired: 1, superseded: 4, deadline: 0, displaced: 0 } }), metrics: samplesOf(metrics) }

    const s = snapshot("/s.sock", first, second)
    expect(s.interval_seconds).toBe(2)
    expect(s.requests).toEqual({ total: 17, per_second: 6 })
    expect(s.outcomes).toEqual({ ok: { count: 15, per_second: 5 }, frame_not_found: { count: 2, per_second: 1 } })
    // 12 in the interval: 10 in (2 ms, 4 ms], 2 in (512 ms, 1024 ms]. p50: rank 6 → 2 + 2·6/10 = 3.2 ms;
    // p99: rank 11.88 → 512 + 512·1.88/2 = 993.28 ms.
    expect(s.request_duration).toEqual({ p50_ms: 3.2, p99_ms: 993.28, samples: 12, beyond_ms: null })
    // One frame read in (0.0 ms, 0.5 ms]: p50 rank 0.5 → 0.25 ms. No other stage reported: "—".
    expect(s.stages.frame_read).toEqual({ p50_ms: 0.25, p99_ms: 0.495, samples: 1, beyond_ms: null })
    expect(Object.keys(s.stages)).toEqual(["frame_read", "preprocess", "queue", "inference", "postprocess"])
    expect(s.stages.inference).toEqual({ p50_ms: null, p99_ms: null, samples: 0, beyond_ms: null })
    expect(s.frame_age).toEqual({ p50_ms: null, p99_ms: null, samples: 0, beyond_ms: null })
    expect(s.inflight).toEqual({ current: 3, limit: 16 })
    expect(s.connections).toBe(2)
    // Detections by class, most frequent first: since start, and per second over the interval.
    expect(s.detections).toEqual({ person: { count: 10, per_second: 3 }, car: { count: 2, per_second: 1 } })

    const text = renderSnapshot(s).join("\n")
    expect(text).toContain("model        m 2.1 (runtime 0.1.0), ready, up 1h02m03s")
    expect(text).toContain("requests     6.0/s  (17 since start)")
    expect(text).toContain("outcomes     ok 5.0/s (15)  frame_not_found 1.0/s (2)")
    expect(text).toContain("in flight    3 / 16")
    expect(text).toContain("detections   person 3.0/s (10)  car 1.0/s (2)")
    expect(text).toMatch(/^request +3\.20 ms +993 ms +12$/m)
    expect(text).toMatch(/^inference +— +— +0$/m)
    expect(text).toContain("not run      4 superseded, 1 expired, 0 past their deadline, 0 displaced")
  })

  it("a percentile beyond the highest bucket (2.048 s) is shown as at least that bound", () => {
    const metrics = new PrometheusSeries("m")
    const first: TopSample = { atMs: 0, health: health(), metrics: samplesOf(metrics) }
    metrics.requests(1, "ok", 3).requests(3, "timeout", 5000)
    const s = snapshot("/s.sock", first, { atMs: 1000, health: health(), metrics: samplesOf(metrics) })
    expect(s.request_duration).toEqual({ p50_ms: 2048, p99_ms: 2048, samples: 4, beyond_ms: 2048 })
    expect(renderSnapshot(s).join("\n")).toMatch(/^request +≥2048 ms +≥2048 ms +4$/m)
  })

  it("a counter that went down (the container restarted) counts from zero", () => {
    const before = new PrometheusSeries("m").requests(50, "ok", 3)
    const after = new PrometheusSeries("m").requests(4, "ok", 3)
    const s = snapshot("/s.sock", { atMs: 0, health: health(), metrics: samplesOf(before) }, { atMs: 1000, health: health(), metrics: samplesOf(after) })
    expect(s.outcomes.ok).toEqual({ count: 4, per_second: 4 })
    expect(s.request_duration?.samples).toBe(4)
  })

  it("without metrics: health's counts and rates by outcome, no durations", () => {
    const s = snapshot(
      "/s.sock",
      { atMs: 0, health: health({ total_requests: 10, total_errors: 2, errors_by_code: { TIMEOUT: 2 } }), metrics: undefined },
      { atMs: 500, health: health({ total_requests: 20, total_errors: 3, errors_by_code: { TIMEOUT: 3 }, inflight: 1 }), metrics: undefined }
    )
    expect(s).toMatchObject({
      metrics: false,
      requests: { total: 20, per_second: 20 },
      outcomes: { ok: { count: 17, per_second: 18 }, timeout: { count: 3, per_second: 2 } },
      request_duration: null,
      stages: {},
      inflight: { current: 1, limit: 16 },
      connections: null
    })
    expect(s.detections).toBeNull()
    expect(renderSnapshot(s).join("\n")).toContain("this container does not serve metrics")
  })
})

const frames = new Map([["/dev/shm/cam1", memoryFrame()]])

/** Fails with INFERENCE_FAILED when the request id starts with "fail". */
const handler: InferenceHandlerShape = {
  infer: (req) =>
    String(req.request_id ?? "").startsWith("fail") ? Effect.fail(new InferenceFailed({ reason: "asked to" })) : Effect.succeed({ detections: [] })
}

/** 3 good answers, 2 of another model (MODEL_MISMATCH), 1 failed by the handler. */
const sendSome = (socketPath: string) =>
  Effect.promise(async () => {
    for (let i = 0; i < 3; i++) await call(socketPath, request("/dev/shm/cam1"))
    for (let i = 0; i < 2; i++) await call(socketPath, request("/dev/shm/cam1", { model_id: "other" }))
    await call(socketPath, request("/dev/shm/cam1", { request_id: "fail" }))
  })

describe("ruth-model top", () => {
  it.live("--json: one snapshot with the outcome counts, rates over the interval and the in-flight limit", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ handler, frames, settings: { maxInflight: 7, modelVersion: "3" } })
      yield* sendSome(c.socketPath)
      // Good answers keep coming while top samples, so the interval has some.
      const sender = yield* Effect.forkChild(Effect.forever(Effect.promise(() => call(c.socketPath, request("/dev/shm/cam1")))))
      const r = yield* ruthModel(["top", "--json", "--socket", c.socketPath, "--interval-ms", "300"])
      yield* Fiber.interrupt(sender)
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toBe("")
      const s = JSON.parse(r.stdout)
      expect(s).toMatchObject({
        socket: c.socketPath,
        model: { id: "test-model", version: "3", status: "ready" },
        metrics: true,
        inflight: { limit: 7 },
        outcomes: {
          model_mismatch: { count: 2, per_second: 0 },
          inference_failed: { count: 1, per_second: 0 }
        },
        dropped_by_reason: { expired: 0, superseded: 0, deadline: 0, displaced: 0 }
      })
      expect(Object.keys(s.outcomes)).toEqual(["ok", "inference_failed", "model_mismatch"])
      expect(s.outcomes.ok.count).toBeGreaterThan(3)
      expect(s.outcomes.ok.per_second).toBeGreaterThan(0)
      expect(s.requests.total).toBe(s.outcomes.ok.count + 3)
      expect(s.interval_seconds).toBeGreaterThanOrEqual(0.3)
      expect(s.request_duration.samples).toBeGreaterThan(0)
      expect(s.request_duration.p50_ms).toBeGreaterThan(0)
      expect(s.stages.frame_read.samples).toBeGreaterThan(0)
      // The handler reports no backend stages.
      expect(s.stages.inference).toEqual({ p50_ms: null, p99_ms: null, samples: 0, beyond_ms: null })
      expect(s.frame_age.samples).toBeGreaterThan(0)
      expect(s.connections).toBeGreaterThanOrEqual(1)
    }), 60_000)

  it.live("off a terminal: successive plain frames with every row; Ctrl-C (SIGINT) and SIGTERM stop it, exit 0", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ handler, frames, settings: { maxInflight: 7 } })
      yield* sendSome(c.socketPath)
      for (const stop of ["SIGINT", "SIGTERM"] as const) {
        const child = spawnRuthModel(["stats", "--socket", c.socketPath, "--interval-ms", "100"])
        let stdout = ""
        let stderr = ""
        child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
        // Once a whole frame has been printed, stop.
        yield* Effect.promise(() =>
          new Promise<void>((resolve) => {
            child.stdout!.on("data", (d: Buffer) => {
              stdout += d.toString()
              if (/^not run .*\n\n/m.test(stdout) && child.signalCode === null && !child.killed) {
                child.kill(stop)
                resolve()
              }
            })
          })
        )
        const { code } = yield* Effect.promise(() => exitOf(child))
        expect(code, `${stop} ${stderr}`).toBe(ExitCode.ok)
        const frame = stdout.split("\n\n")[0]!
        expect(frame).not.toContain("\x1b[")
        const lines = frame.split("\n")
        expect(lines[0]).toBe(`ruth-model top: ${c.socketPath}, every 0.1 s (Ctrl-C to stop)`)
        expect(lines.slice(1).map((l) => l.split(/ {2,}/)[0])).toEqual([
          "model",
          "requests",
          "outcomes",
          "detections",
          "in flight",
          "connections",
          "",
          "request",
          "frame_read",
          "preprocess",
          "queue",
          "inference",
          "postprocess",
          "frame age",
          "not run"
        ])
        expect(frame).toMatch(/^model +test-model unknown \(runtime [^)]+\), ready, up \d+s$/m)
        expect(frame).toMatch(/^outcomes +ok 0\.0\/s \(3\) {2}inference_failed 0\.0\/s \(1\) {2}model_mismatch 0\.0\/s \(2\)$/m)
        expect(frame).toMatch(/^in flight +0 \/ 7$/m)
        expect(frame).toMatch(/^inference +— +— +0$/m)
      }
    }), 60_000)

  it.live("a container that stops answering while watched: a `no answer` frame, still running; Ctrl-C exits 0", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const c = yield* Scope.provide(scope)(startContainer({ frames }))
      const child = spawnRuthModel(["top", "--socket", c.socketPath, "--interval-ms", "100"])
      let stdout = ""
      const seen = (pattern: RegExp) =>
        Effect.promise(() =>
          new Promise<void>((resolve) => {
            if (pattern.test(stdout)) return resolve()
            child.stdout!.on("data", () => pattern.test(stdout) && resolve())
          })
        )
      child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
      yield* seen(/^not run .*\n\n/m)
      yield* Scope.close(scope, Exit.void)
      yield* seen(/^no answer: .*cannot connect.*\(asking again every 0\.1 s\)\n\n/m)
      child.kill("SIGINT")
      expect((yield* Effect.promise(() => exitOf(child))).code).toBe(ExitCode.ok)
    }), 60_000)

  it.live("help: listed as `top, stats`; each flag with its description and default; a bad interval is a usage error", () =>
    Effect.gen(function*() {
      const root = yield* ruthModel(["--help"], { NO_COLOR: "1" })
      expect(root.stdout).toMatch(/^ {2}top, stats +A live view of a container/m)
      const help = (yield* ruthModel(["stats", "--help"], { NO_COLOR: "1" })).stdout
      expect(help).toContain("USAGE\n  ruth-model top [flags]\n")
      expect(help).toMatch(/--interval-ms integer +time between two samples .*\(default: 1000\)/)
      expect(help).toMatch(/--json +print one snapshot as a JSON object/)
      expect(help).toMatch(/--timeout-ms integer +give up on a reply/)
      const bad = yield* ruthModel(["top", "--socket", "/x.sock", "--interval-ms", "0"])
      expect(bad).toMatchObject({ code: ExitCode.usage, stdout: "", stderr: "ruth-model: --interval-ms must be a positive integer, got 0\n" })
    }), 60_000)

  it.live("a container it cannot reach: exit 3, one line", () =>
    Effect.gen(function*() {
      const r = yield* ruthModel(["top", "--socket", "/nonexistent/vas_model_x.sock"])
      expect(r.code).toBe(ExitCode.unreachable)
      expect(r.stdout).toBe("")
      expect(r.stderr).toBe("ruth-model: /nonexistent/vas_model_x.sock: cannot connect: connect ENOENT /nonexistent/vas_model_x.sock\n")
    }), 60_000)

  it.live("an original container (closes the connection on health and metrics): exit 3, saying it serves neither", () =>
    Effect.gen(function*() {
      const original = yield* startOriginalServer()
      const r = yield* ruthModel(["top", "--json", "--socket", original.socketPath])
      expect(r.code).toBe(ExitCode.unreachable)
      expect(r.stdout).toBe("")
      expect(r.stderr).toContain("this container serves neither health nor metrics")
    }), 60_000)

  it.live("a container with health but no metrics: says so once on stderr, health's numbers, metrics asked once", () =>
    Effect.gen(function*() {
      let asked = 0
      let requests = 10
      const server = yield* startScriptedServer((m) => {
        const op = (m as { readonly op?: unknown }).op
        if (op === "metrics") asked++
        // An older runtime reads {"op":"metrics"} as a request without a frame.
        if (op !== "health") return { error: "frame_reference: is required", error_code: "INVALID_REQUEST" }
        requests += 5
        return health({ model_id: "old", total_requests: requests, max_inflight: 4 })
      })
      const r = yield* ruthModel(["top", "--json", "--socket", server.socketPath, "--interval-ms", "100"])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toMatch(/^ruth-model: \S+ does not serve metrics \(\{"op":"metrics"\}: reply is not a metrics answer: .*\); showing health's numbers only\n$/)
      expect(JSON.parse(r.stdout)).toMatchObject({
        metrics: false,
        model: { id: "old" },
        requests: { total: 20 },
        outcomes: { ok: { count: 20 } },
        inflight: { limit: 4 },
        request_duration: null
      })
      expect(asked).toBe(1)
    }), 60_000)
})
