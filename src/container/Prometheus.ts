/**
 * The container's Prometheus metrics, kept with Effect's own `Metric` in a registry of the
 * container's own (two containers in one process never mix their series) and rendered by
 * Effect's Prometheus formatter: the text `{"op":"metrics"}` answers and `GET /metrics` serves.
 * Requests are recorded synchronously (`updateUnsafe`) where the pipeline already counts them;
 * the gauges are read when the text is made.
 */
import * as http from "node:http"
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
}

interface RequestSeries {
  readonly requests: Metric.Counter<number>
  readonly duration: Metric.Histogram<number>
}

/** `ok`, or the error code in lower case. */
export const outcomeOf = (code: ErrorCode | undefined): string => (code === undefined ? "ok" : code.toLowerCase())

export class ContainerMetrics {
  /** The container's own registry. */
  readonly context: Context.Context<never> = Context.make(Metric.MetricRegistry, new Map()) as Context.Context<never>
  private readonly series = new Map<string, RequestSeries>()
  private readonly stages = new Map<string, Metric.Histogram<number>>()
  private readonly frameAge: Metric.Histogram<number>

  constructor(readonly modelId: string) {
    this.frameAge = Metric.histogram("ruth_frame_age_seconds", {
      description: "now minus the request's timestamp when its answer leaves, in seconds",
      attributes: { model: modelId },
      boundaries: DURATION_BUCKETS
    })
  }

  private seriesOf(outcome: string): RequestSeries {
    let s = this.series.get(outcome)
    if (s === undefined) {
      const attributes = { model: this.modelId, outcome }
      s = {
        requests: Metric.counter("ruth_requests_total", { description: "Inference requests answered, by outcome", attributes, incremental: true }),
        duration: Metric.histogram("ruth_request_duration_seconds", {
          description: "From a request's bytes to its answer, in seconds",
          attributes,
          boundaries: DURATION_BUCKETS
        })
      }
      this.series.set(outcome, s)
    }
    return s
  }

  /** One answered request: `ok` when `code` is undefined. */
  request(latencyMs: number, code: ErrorCode | undefined): void {
    const s = this.seriesOf(outcomeOf(code))
    s.requests.updateUnsafe(1, this.context)
    s.duration.updateUnsafe(latencyMs / 1000, this.context)
  }

  /** One stage of an answered request (`frame_read`, `preprocess`, `queue`, `inference`, `postprocess`). */
  stage(stage: string, ms: number): void {
    let h = this.stages.get(stage)
    if (h === undefined) {
      h = Metric.histogram("ruth_stage_duration_seconds", {
        description: "A stage of an answered request, in seconds",
        attributes: { model: this.modelId, stage },
        boundaries: DURATION_BUCKETS
      })
      this.stages.set(stage, h)
    }
    h.updateUnsafe(ms / 1000, this.context)
  }

  /**
   * A successful answer's stages: `frame_read` (the runtime's), and what the handler's metadata
   * reports (`STAGE_KEYS`: the ONNX backend's); the frame's age (`timestamp`, Unix seconds) as it leaves.
   */
  answered(readMs: number, metadata: Readonly<Record<string, unknown>> | undefined, timestamp: number): void {
    this.stage("frame_read", readMs)
    if (metadata !== undefined) {
      for (const [key, stage] of STAGE_KEYS) {
        const ms = metadata[key]
        if (typeof ms === "number" && Number.isFinite(ms)) this.stage(stage, ms)
      }
    }
    this.frameAge.updateUnsafe(Date.now() / 1000 - timestamp, this.context)
  }

  /** Registers the gauges, read from `sources` each time the text is made. */
  gauges(sources: GaugeSources): void {
    const model = { model: this.modelId }
    const gauge = (name: string, description: string, value: () => number, attributes: Record<string, string> = model) =>
      Metric.registerUnsafe(Metric.gauge(name, { description, attributes }), this.context, {
        get: () => ({ value: value() }),
        update: () => {},
        modify: () => {}
      })
    gauge("ruth_model_info", "Always 1; the labels say what is served", () => 1, {
      ...model,
      model_version: sources.modelVersion,
      runtime_version: VERSION
    })
    gauge("ruth_model_ready", "1 while the container answers requests, 0 while starting or draining", () => (sources.ready() ? 1 : 0))
    gauge("ruth_inflight_requests", "Requests admitted and not yet answered", sources.inflight)
    gauge("ruth_inflight_limit", "Requests admitted at once (max_inflight)", () => sources.inflightLimit)
    gauge("ruth_connections", "Open connections on the model socket", sources.connections)
  }

  /** The Prometheus text of every series. */
  text(): string {
    return PrometheusMetrics.formatUnsafe(this.context)
  }
}

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
