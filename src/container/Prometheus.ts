/**
 * The container's Prometheus metrics, kept with Effect's own `Metric` in a registry of the
 * container's own (two containers in one process never mix their series) and rendered by
 * Effect's Prometheus formatter: the text `{"op":"metrics"}` answers and `GET /metrics` serves.
 * Requests are recorded synchronously (`updateUnsafe`) where the pipeline already counts them;
 * the gauges are read when the text is made.
 */
import * as http from "node:http"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Context, Data, Effect, Metric, type Scope } from "effect"
import { parseListenAddress } from "../config/RuntimeConfig.js"
import { PrometheusMetrics } from "effect/observability"
import type { ErrorCode } from "../contract/schema.js"
import { VERSION } from "../version.js"

/** The content type of the Prometheus text format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/** Seconds: 0.5 ms doubling up to ~2 s (0.0005 … 2.048). */
export const DURATION_BUCKETS: ReadonlyArray<number> = Metric.exponentialBoundaries({ start: 0.0005, factor: 2, count: 14 })

/** Metadata keys a handler reports its stages in (ms), and the stage each is. */
const STAGE_KEYS: ReadonlyArray<readonly [string, string]> = [
  ["preprocess_ms", "preprocess"],
  ["session_wait_ms", "queue"],
  ["inference_ms", "inference"],
  ["postprocess_ms", "postprocess"]
]

/** What the gauges read when the text is made. */
export interface GaugeSources {
  readonly inflight: () => number
  readonly inflightLimit: number
  readonly connections: () => number
  readonly ready: () => boolean
  readonly modelVersion: string
  /** Where the model runs (`cpu`, `cuda`), as the handler says; `unknown` when it does not. */
  readonly executionProvider: string
}

/** At most this many distinct `class` values; detections of any further class count as `class="_other"`. */
export const MAX_CLASSES = 256
/** The `camera` value of cameras beyond the `metricsCameras` cap. */
export const OTHER = "_other"

interface RequestSeries {
  readonly requests: Metric.Counter<number>
  readonly duration: Metric.Histogram<number>
}

/** `ok`, or the error code in lower case. */
export const outcomeOf = (code: ErrorCode | undefined): string => (code === undefined ? "ok" : code.toLowerCase())

/** The series of one label value, made on first use; past `cap` distinct values, the value `OTHER`'s. */
class Family<A> {
  private readonly byValue = new Map<string, A>()
  constructor(private readonly cap: number, private readonly make: (value: string) => A) {}
  get(value: string): A {
    const known = this.byValue.get(value)
    if (known !== undefined) return known
    const key = this.byValue.size < this.cap ? value : OTHER
    const made = this.byValue.get(key) ?? this.make(key)
    this.byValue.set(key, made)
    return made
  }
}

export interface MetricsOptions {
  readonly modelId: string
  /** 0: no `camera` label. N > 0: requests and frame ages also by camera, for the first N cameras seen (the rest `_other`). */
  readonly cameras: number
}

export class ContainerMetrics {
  /** The container's own registry. */
  readonly context: Context.Context<never> = Context.make(Metric.MetricRegistry, new Map()) as Context.Context<never>
  readonly modelId: string
  private readonly byCamera: boolean
  private readonly series = new Map<string, RequestSeries>()
  private readonly stages: Family<Metric.Histogram<number>>
  private readonly detections: Family<Metric.Counter<number>>
  private readonly frameAge: Family<Metric.Histogram<number>>
  private readonly cameras: Family<string>

  constructor({ cameras, modelId }: MetricsOptions) {
    this.modelId = modelId
    this.byCamera = cameras > 0
    const model = { model: modelId }
    this.cameras = new Family(cameras, (camera) => camera)
    this.frameAge = new Family(Infinity, (camera) =>
      Metric.histogram("ruth_frame_age_seconds", {
        description: "now minus the request's timestamp when its answer leaves, in seconds",
        attributes: this.byCamera ? { ...model, camera } : model,
        boundaries: DURATION_BUCKETS
      }))
    this.stages = new Family(Infinity, (stage) =>
      Metric.histogram("ruth_stage_duration_seconds", {
        description: "A stage of an answered request, in seconds",
        attributes: { ...model, stage },
        boundaries: DURATION_BUCKETS
      }))
    this.detections = new Family(MAX_CLASSES, (cls) =>
      Metric.counter("ruth_detections_total", {
        description: "Detections answered, by class",
        attributes: { ...model, class: cls },
        incremental: true
      }))
  }

  /** The camera label value of `camera` (bounded), or undefined when there is no camera label. */
  private cameraOf(camera: string): string | undefined {
    return this.byCamera ? this.cameras.get(camera) : undefined
  }

  private seriesOf(outcome: string, camera: string | undefined): RequestSeries {
    const key = camera === undefined ? outcome : `${outcome}\u0000${camera}`
    let s = this.series.get(key)
    if (s === undefined) {
      const attributes = { model: this.modelId, outcome }
      s = {
        requests: Metric.counter("ruth_requests_total", {
          description: "Inference requests answered, by outcome",
          attributes: camera === undefined ? attributes : { ...attributes, camera },
          incremental: true
        }),
        duration: Metric.histogram("ruth_request_duration_seconds", {
          description: "From a request's bytes to its answer, in seconds",
          attributes,
          boundaries: DURATION_BUCKETS
        })
      }
      this.series.set(key, s)
    }
    return s
  }

  /** One answered request of `camera` (empty when unknown): `ok` when `code` is undefined. */
  request(latencyMs: number, code: ErrorCode | undefined, camera: string): void {
    const s = this.seriesOf(outcomeOf(code), this.cameraOf(camera))
    s.requests.updateUnsafe(1, this.context)
    s.duration.updateUnsafe(latencyMs / 1000, this.context)
  }

  /** One stage of an answered request (`frame_read`, `preprocess`, `queue`, `inference`, `postprocess`). */
  stage(stage: string, ms: number): void {
    this.stages.get(stage).updateUnsafe(ms / 1000, this.context)
  }

  /**
   * A successful answer: its stages — `frame_read` (the runtime's), and what the handler's metadata
   * reports (`STAGE_KEYS`: the ONNX backend's) —, its detections by class, and the frame's age
   * (`timestamp`, Unix seconds) as it leaves.
   */
  answered(
    readMs: number,
    metadata: Readonly<Record<string, unknown>> | undefined,
    request: { readonly timestamp: number; readonly camera_id: string },
    detections: ReadonlyArray<{ readonly class_name: string }>
  ): void {
    this.stage("frame_read", readMs)
    if (metadata !== undefined) {
      for (const [key, stage] of STAGE_KEYS) {
        const ms = metadata[key]
        if (typeof ms === "number" && Number.isFinite(ms)) this.stage(stage, ms)
      }
    }
    this.detected(detections)
    this.frameAge.get(this.cameraOf(request.camera_id) ?? "").updateUnsafe(Date.now() / 1000 - request.timestamp, this.context)
  }

  /** Detections answered, counted by class. */
  detected(detections: ReadonlyArray<{ readonly class_name: string }>): void {
    for (const d of detections) this.detections.get(d.class_name).updateUnsafe(1, this.context)
  }

  /** Registers `metric` as read from `get` each time the text is made. */
  private readUnsafe<S>(metric: Metric.Metric<never, S> | Metric.Metric<number, S>, get: () => S): void {
    Metric.registerUnsafe(metric as Metric.Metric<number, S>, this.context, { get, update: () => {}, modify: () => {} })
  }

  /** Registers the gauges, read from `sources` each time the text is made. */
  gauges(sources: GaugeSources): void {
    const model = { model: this.modelId }
    const gauge = (name: string, description: string, value: () => number, attributes: Record<string, string> = model) =>
      this.readUnsafe(Metric.gauge(name, { description, attributes }), () => ({ value: value() }))
    gauge("ruth_model_info", "Always 1; the labels say what is served", () => 1, {
      ...model,
      model_version: sources.modelVersion,
      runtime_version: VERSION,
      execution_provider: sources.executionProvider
    })
    gauge("ruth_model_ready", "1 while the container answers requests, 0 while starting or draining", () => (sources.ready() ? 1 : 0))
    gauge("ruth_inflight_requests", "Requests admitted and not yet answered", sources.inflight)
    gauge("ruth_inflight_limit", "Requests admitted at once (max_inflight)", () => sources.inflightLimit)
    gauge("ruth_connections", "Open connections on the model socket", sources.connections)
  }

  /**
   * The process' own series, under the names Prometheus' Node.js client uses (no `model` label: a
   * container is one process): CPU seconds, resident memory, heap, start time, and the event loop's
   * delay (p50, p99, max over the last `EVENT_LOOP_WINDOW_MS`), for as long as the scope is open.
   * CPU and memory are read once per text, so the series of one text agree with each other.
   */
  processMetrics(): Effect.Effect<void, never, Scope.Scope> {
    const self = this
    return Effect.gen(function*() {
      const delay = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const h = monitorEventLoopDelay({ resolution: 10 })
          h.enable()
          return h
        }),
        (h) => Effect.sync(() => h.disable())
      )
      const measured = () =>
        delay.count === 0
          ? { p50: 0, p99: 0, max: 0 }
          : { p50: delay.percentile(50) / 1e9, p99: delay.percentile(99) / 1e9, max: delay.max / 1e9 }
      // The last complete window's percentiles (every reader sees the same numbers, however often it
      // reads); until the first window closes, what has been measured since the start.
      let window: ReturnType<typeof measured> | undefined = undefined
      const roll = setInterval(() => {
        window = measured()
        delay.reset()
      }, EVENT_LOOP_WINDOW_MS)
      roll.unref()
      yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(roll)))

      let sample = { cpu: process.cpuUsage(), memory: process.memoryUsage(), loop: measured() }
      self.beforeText = () => {
        sample = { cpu: process.cpuUsage(), memory: process.memoryUsage(), loop: window ?? measured() }
      }
      const counter = (name: string, description: string, value: () => number) =>
        self.readUnsafe(Metric.counter(name, { description }), () => ({ count: value() }))
      const gauge = (name: string, description: string, value: () => number) =>
        self.readUnsafe(Metric.gauge(name, { description }), () => ({ value: value() }))
      counter("process_cpu_user_seconds_total", "User CPU time spent, in seconds", () => sample.cpu.user / 1e6)
      counter("process_cpu_system_seconds_total", "System CPU time spent, in seconds", () => sample.cpu.system / 1e6)
      counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds", () => (sample.cpu.user + sample.cpu.system) / 1e6)
      gauge("process_resident_memory_bytes", "Resident memory size, in bytes", () => sample.memory.rss)
      const startTime = Math.round(Date.now() / 1000 - process.uptime())
      gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds", () => startTime)
      gauge("nodejs_heap_size_used_bytes", "V8 heap used, in bytes", () => sample.memory.heapUsed)
      gauge("nodejs_heap_size_total_bytes", "V8 heap allocated, in bytes", () => sample.memory.heapTotal)
      gauge("nodejs_external_memory_bytes", "Memory of C++ objects bound to JavaScript (Buffers), in bytes", () => sample.memory.external)
      const over = `over the last ${EVENT_LOOP_WINDOW_MS / 1000} s`
      gauge("nodejs_eventloop_delay_p50_seconds", `Event loop delay, median ${over}`, () => sample.loop.p50)
      gauge("nodejs_eventloop_delay_p99_seconds", `Event loop delay, 99th percentile ${over}`, () => sample.loop.p99)
      gauge("nodejs_eventloop_delay_max_seconds", `Event loop delay, maximum ${over}`, () => sample.loop.max)
    })
  }

  /** Reads what the process series show, once per text (set by `processMetrics`). */
  private beforeText: () => void = () => {}

  /** The Prometheus text of every series. */
  text(): string {
    this.beforeText()
    return PrometheusMetrics.formatUnsafe(this.context)
  }
}

/** The window the event loop delay percentiles are over. */
export const EVENT_LOOP_WINDOW_MS = 10_000

/** The metrics endpoint could not be served where `metricsAddr` (`RUTH_METRICS_ADDR`) says. */
export class MetricsListenError extends Data.TaggedError("MetricsListenError")<{
  readonly address: string
  readonly reason: string
}> {
  readonly code = "METRICS_LISTEN_FAILED"
  override get message() {
    return `cannot serve metrics on ${this.address} (metricsAddr / RUTH_METRICS_ADDR): ${this.reason}`
  }
}

/**
 * `GET /metrics` on `address` (`host:port`) with `metrics`' text, for as long as the scope is
 * open; anything else is 404. Returns the bound `host:port` (the port chosen when it was 0).
 */
export const serveHttp = (
  address: string,
  metrics: ContainerMetrics
): Effect.Effect<string, MetricsListenError, Scope.Scope> => {
  const parsed = parseListenAddress(address)
  if (parsed === undefined) return Effect.fail(new MetricsListenError({ address, reason: "not host:port" }))
  return Effect.acquireRelease(
    Effect.callback<http.Server, MetricsListenError>((resume) => {
      const server = http.createServer((req, res) => {
        const path = (req.url ?? "").split("?")[0]
        if (req.method === "GET" && path === "/metrics") {
          res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE }).end(metrics.text())
        } else {
          res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n")
        }
      })
      const onError = (e: Error) => resume(Effect.fail(new MetricsListenError({ address, reason: e.message })))
      server.once("error", onError)
      server.listen(parsed.port, parsed.host, () => {
        server.off("error", onError)
        resume(Effect.succeed(server))
      })
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  ).pipe(Effect.map((server) => {
    const bound = server.address()
    return bound !== null && typeof bound === "object"
      ? `${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`
      : address
  }))
}
