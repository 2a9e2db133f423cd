/**
 * OpenTelemetry traces of inference requests, exported over OTLP/HTTP by Effect's own
 * `OtlpTracer` when the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`
 * is set (read through Effect's `Config`, once, at start-up); off otherwise — no exporter, and the
 * pipeline's one check per request finds no tracer.
 *
 * One `inference.request` span per answered inference request, with children `frame.read`,
 * `preprocess`, `inference` and `postprocess` (a handler that reports no stages: `frame.read` and
 * `inference`). Nothing is made while a request runs: when it has been answered, the sampler
 * decides, and only a kept request's spans are made, after the fact, from the times the pipeline
 * measured (`frame.read`, the request) and the durations the backend reports in its metadata (the
 * rest, laid out back from the handler's end: their durations are exact, their placement close).
 * So every errored request can be kept — the decision waits for the outcome — and the synchronous
 * fast path stays synchronous.
 *
 * Sampling: `OTEL_TRACES_SAMPLER` (default `parentbased_traceidratio`) with the ratio
 * `OTEL_TRACES_SAMPLER_ARG` (default 0.01); a request's W3C `traceparent` continues its trace and,
 * parent-based, its sampled flag decides; a request answered with an error is always kept.
 */
import { Config, Context, Effect, Exit, Layer, Option, Schema, type Scope, type Tracer } from "effect"
import { FetchHttpClient, Headers, HttpBody, HttpTraceContext } from "effect/http"
import { OtlpExporter, OtlpSerialization, OtlpTracer } from "effect/observability"
import { environmentVariable, InvalidSettings, type RuntimeSettings } from "../config/RuntimeConfig.js"
import type { RequestError } from "../contract/errors.js"
import type { InferenceRequest } from "../contract/schema.js"
import { encodeTracesData } from "../internal/otlpProtobuf.js"
import { VERSION } from "../version.js"
import { outcomeOf } from "./Prometheus.js"

/** Which requests are kept besides the errored ones: `ratio` of the roots; `parentBased`: a caller's traceparent decides for its trace. */
export interface Sampler {
  readonly name: string
  readonly parentBased: boolean
  /** 0 … 1. */
  readonly ratio: number
}

export interface TracingSettings {
  /** The full traces URL (`…/v1/traces`). */
  readonly url: string
  /** The variable it came from, for the start-up line. */
  readonly endpointVariable: string
  readonly protocol: "http/protobuf" | "http/json"
  readonly serviceName: string
  readonly headers: Readonly<Record<string, string>> | undefined
  /** How long one export may take before it is abandoned (and retried), ms. */
  readonly timeoutMs: number
  readonly sampler: Sampler
}

/** The default ratio when `OTEL_TRACES_SAMPLER_ARG` is not set: 1 in 100. */
export const DEFAULT_SAMPLE_RATIO = 0.01

const SAMPLERS: Readonly<Record<string, { readonly parentBased: boolean; readonly ratio?: number }>> = {
  always_on: { parentBased: false, ratio: 1 },
  always_off: { parentBased: false, ratio: 0 },
  traceidratio: { parentBased: false },
  parentbased_always_on: { parentBased: true, ratio: 1 },
  parentbased_always_off: { parentBased: true, ratio: 0 },
  parentbased_traceidratio: { parentBased: true }
}

/** A variable of the environment, trimmed, or undefined when unset or blank (as OpenTelemetry reads it). */
const variable = (name: string): Effect.Effect<string | undefined> => Effect.map(environmentVariable(name), Option.getOrUndefined)

const problem = (name: string, reason: string) =>
  new InvalidSettings({ problems: [{ name, where: "environment", source: "env", reason }] })

const headersOf = (name: string): Effect.Effect<Readonly<Record<string, string>> | undefined, InvalidSettings> =>
  Effect.flatMap(variable(name), (raw) =>
    raw === undefined
      ? Effect.succeed(undefined)
      : Effect.mapError(
        Config.Record(Schema.String, Schema.StringFromUriComponent, name),
        () => problem(name, "must be key=value pairs separated by ',' (values percent-encoded)")
      ))

const httpUrl = (name: string, raw: string): Effect.Effect<URL, InvalidSettings> => {
  const url = URL.parse(raw)
  return url !== null && (url.protocol === "http:" || url.protocol === "https:")
    ? Effect.succeed(url)
    : Effect.fail(problem(name, `must be an http(s) URL, e.g. http://otel-collector:4318, got ${JSON.stringify(raw)}`))
}

/**
 * The tracing settings from the standard OpenTelemetry variables, or undefined when traces are off
 * (no endpoint, `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`). A value that cannot be used
 * is an `InvalidSettings` naming the variable, like any runtime setting.
 */
export const settingsFromEnvironment = (modelId: string): Effect.Effect<TracingSettings | undefined, InvalidSettings> =>
  Effect.gen(function*() {
    const tracesEndpoint = yield* variable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    const baseEndpoint = yield* variable("OTEL_EXPORTER_OTLP_ENDPOINT")
    if (tracesEndpoint === undefined && baseEndpoint === undefined) return undefined
    if ((yield* variable("OTEL_SDK_DISABLED"))?.toLowerCase() === "true") return undefined
    const exporters = (yield* variable("OTEL_TRACES_EXPORTER"))?.toLowerCase().split(",").map((e) => e.trim())
    if (exporters?.includes("none")) return undefined
    if (exporters !== undefined && !exporters.includes("otlp")) {
      return yield* problem("OTEL_TRACES_EXPORTER", `must be otlp or none (this runtime exports traces over OTLP/HTTP), got ${JSON.stringify(exporters.join(","))}`)
    }

    // The traces endpoint is used as given; the base endpoint gets the signal's path appended (the OpenTelemetry rule).
    const endpointVariable = tracesEndpoint !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT"
    const url = yield* httpUrl(endpointVariable, (tracesEndpoint ?? baseEndpoint)!)
    if (tracesEndpoint === undefined) url.pathname = `${url.pathname.replace(/\/$/, "")}/v1/traces`

    const protocolVariable = (yield* variable("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")) !== undefined
      ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
      : "OTEL_EXPORTER_OTLP_PROTOCOL"
    const protocol = (yield* variable(protocolVariable)) ?? "http/protobuf"
    if (protocol !== "http/protobuf" && protocol !== "http/json") {
      return yield* problem(protocolVariable, `must be http/protobuf or http/json (OTLP over gRPC is not supported), got ${JSON.stringify(protocol)}`)
    }

    const timeoutVariable = (yield* variable("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")) !== undefined
      ? "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
      : "OTEL_EXPORTER_OTLP_TIMEOUT"
    const timeout = yield* variable(timeoutVariable)
    const timeoutMs = timeout === undefined ? 10_000 : Number(timeout)
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      return yield* problem(timeoutVariable, `must be a positive integer (milliseconds), got ${JSON.stringify(timeout)}`)
    }

    const samplerName = ((yield* variable("OTEL_TRACES_SAMPLER")) ?? "parentbased_traceidratio").toLowerCase()
    const known = SAMPLERS[samplerName]
    if (known === undefined) {
      return yield* problem("OTEL_TRACES_SAMPLER", `must be one of ${Object.keys(SAMPLERS).join(", ")}, got ${JSON.stringify(samplerName)}`)
    }
    let ratio = known.ratio
    if (ratio === undefined) {
      const arg = yield* variable("OTEL_TRACES_SAMPLER_ARG")
      ratio = arg === undefined ? DEFAULT_SAMPLE_RATIO : Number(arg)
      if (!(ratio >= 0 && ratio <= 1)) {
        return yield* problem("OTEL_TRACES_SAMPLER_ARG", `must be a number from 0 to 1 (the share of requests traced), got ${JSON.stringify(arg)}`)
      }
    }

    const headers = (yield* headersOf("OTEL_EXPORTER_OTLP_TRACES_HEADERS")) ?? (yield* headersOf("OTEL_EXPORTER_OTLP_HEADERS"))
    return {
      url: url.toString(),
      endpointVariable,
      protocol,
      serviceName: (yield* variable("OTEL_SERVICE_NAME")) ?? `ruth-model-${modelId}`,
      headers,
      timeoutMs,
      sampler: { name: samplerName, parentBased: known.parentBased, ratio }
    } satisfies TracingSettings
  })

/** The W3C traceparent of a request, when it is a valid one. */
export const parseTraceparent = (value: unknown): Tracer.ExternalSpan | undefined =>
  typeof value === "string"
    ? Option.getOrUndefined(HttpTraceContext.w3c(Headers.fromRecordUnsafe({ traceparent: value })))
    : undefined

/**
 * Whether a request's spans are exported: always when it failed; else, parent-based with a
 * traceparent, the parent's sampled flag; else the ratio (on the trace id's low 52 bits when the
 * trace is the caller's, so every service sampling by ratio agrees; at random for a new trace).
 */
export const keeps = (sampler: Sampler, parent: Tracer.ExternalSpan | undefined, failed: boolean): boolean => {
  if (failed) return true
  if (parent !== undefined && sampler.parentBased) return parent.sampled
  if (sampler.ratio >= 1) return true
  if (sampler.ratio <= 0) return false
  const draw = parent === undefined ? Math.random() : parseInt(parent.traceId.slice(-13), 16) / 2 ** 52
  return draw < sampler.ratio
}

/** A finite number of milliseconds from a handler's metadata, or undefined. */
const msOf = (metadata: Readonly<Record<string, unknown>> | undefined, key: string): number | undefined => {
  const v = metadata?.[key]
  return typeof v === "number" && Number.isFinite(v) ? v : undefined
}

/** The frame read of an answered request, as the pipeline measured it (a `performance.now()` instant and ms). */
export interface ReadTimes {
  /** When the frame read began. */
  readonly readAt: number
  readonly readMs: number
}

/** What a request's span says of it: whatever the caller sent that could be read. */
export interface RequestFacts {
  readonly camera_id: string
  readonly frame_id: unknown
  readonly request_id?: string | number
  readonly traceparent?: unknown
  readonly timestamp?: unknown
}

/** Makes and exports the spans of answered requests; one per container. */
export class RequestTracing {
  constructor(
    private readonly tracer: Tracer.Tracer,
    private readonly modelId: string,
    private readonly sampler: Sampler
  ) {}

  /**
   * The wall clock's Unix ms at `performance.now()` 0, taken anew for each request kept (the
   * monotonic clock drifts from the wall clock over days; within a request, placement stays exact).
   */
  private origin = 0

  /** A `performance.now()` instant as the Unix nanoseconds spans carry (to the microsecond: a double holds that exactly). */
  private nanos(t: number): bigint {
    return BigInt(Math.round((this.origin + t) * 1000)) * 1000n
  }

  private span(name: string, parent: Tracer.AnySpan | undefined, start: number, kind: Tracer.SpanKind = "internal"): Tracer.Span {
    return this.tracer.span({
      name,
      parent: parent === undefined ? Option.none() : Option.some(parent),
      annotations: Context.empty(),
      links: [],
      startTime: this.nanos(start),
      kind,
      root: parent === undefined,
      sampled: true
    })
  }

  /** A stage of a request, from `start` to `end`. */
  private child(parent: Tracer.Span, name: string, start: number, end: number): void {
    this.span(name, parent, start).end(this.nanos(end), Exit.void)
  }

  /** The request span, its attributes set; ended by the caller. */
  private request(
    parent: Tracer.ExternalSpan | undefined,
    started: number,
    facts: RequestFacts,
    code: RequestError["code"] | undefined
  ): Tracer.Span {
    const span = this.span("inference.request", parent, started, "server")
    span.attribute("ruth.model_id", this.modelId)
    span.attribute("ruth.camera_id", facts.camera_id)
    if (facts.frame_id !== undefined) span.attribute("ruth.frame_id", facts.frame_id)
    if (facts.request_id !== undefined) span.attribute("ruth.request_id", facts.request_id)
    const { timestamp } = facts
    if (typeof timestamp === "number" && Number.isFinite(timestamp)) span.attribute("ruth.frame_age_seconds", Date.now() / 1000 - timestamp)
    span.attribute("ruth.outcome", outcomeOf(code))
    if (code !== undefined) span.attribute("ruth.error_code", code)
    return span
  }

  /**
   * A request answered with detections: when sampled, its span and its stages' — `frame.read` as
   * measured; with the backend's stage durations (`preprocess_ms`, `session_wait_ms`,
   * `inference_ms`, `handoff_ms`, `postprocess_ms`) `preprocess`, `inference` and `postprocess`
   * back from `handlerEnd`, else `inference` from the frame read to `handlerEnd`.
   */
  answered(
    request: InferenceRequest,
    started: number,
    handlerEnd: number,
    measured: ReadTimes,
    metadata: Readonly<Record<string, unknown>> | undefined
  ): void {
    const parent = parseTraceparent(request.traceparent)
    if (!keeps(this.sampler, parent, false)) return
    this.origin = Date.now() - performance.now()
    const facts: RequestFacts = {
      camera_id: request.camera_id,
      frame_id: request.frame_metadata.frame_id,
      timestamp: request.timestamp,
      ...(request.request_id !== undefined ? { request_id: request.request_id } : {})
    }
    const span = this.request(parent, started, facts, undefined)
    const readEnd = measured.readAt + measured.readMs
    this.child(span, "frame.read", measured.readAt, readEnd)
    const run = msOf(metadata, "inference_ms")
    if (run === undefined) {
      this.child(span, "inference", readEnd, handlerEnd)
    } else {
      const post = msOf(metadata, "postprocess_ms")
      const handoff = msOf(metadata, "handoff_ms") ?? 0
      const wait = msOf(metadata, "session_wait_ms")
      const runEnd = handlerEnd - (post ?? 0)
      const runStart = runEnd - handoff - run
      const inference = this.span("inference", span, runStart)
      inference.attribute("ruth.inference_ms", run)
      inference.attribute("ruth.handoff_ms", handoff)
      if (wait !== undefined) {
        inference.attribute("ruth.session_wait_ms", wait)
        // The wait for the model (the scheduler's turn, then the session): queued behind other frames' runs.
        if (wait > 0) inference.event("session_wait", this.nanos(runStart), { "ruth.session_wait_ms": wait })
      }
      inference.end(this.nanos(runEnd), Exit.void)
      const pre = msOf(metadata, "preprocess_ms")
      if (pre !== undefined) this.child(span, "preprocess", runStart - pre, runStart)
      if (post !== undefined) this.child(span, "postprocess", runEnd, handlerEnd)
    }
    span.end(this.nanos(performance.now()), Exit.void)
  }

  /** A request answered with an error: its span, always (errors are never sampled away), with the error's code and message. */
  failed(facts: RequestFacts, started: number, error: RequestError): void {
    this.origin = Date.now() - performance.now()
    const span = this.request(parseTraceparent(facts.traceparent), started, facts, error.code)
    span.end(this.nanos(performance.now()), Exit.fail(error))
  }
}

/** What a running container says about its traces: where they go and how they are sampled. */
export const describeTracing = (settings: TracingSettings): string =>
  `traces over OTLP/HTTP (${settings.protocol}) to ${settings.url} (${settings.endpointVariable}) as service '${settings.serviceName}', ` +
  `sampler ${settings.sampler.name} (ratio ${settings.sampler.ratio}); errored requests always kept`

/**
 * Effect's protobuf serialisation with the runtime's own traces encoder (the same bytes, ~10× less
 * CPU: a full batch is encoded at once on the event loop, `bench/traces.ts`).
 */
const protobufSerialization = Layer.effect(
  OtlpSerialization.OtlpSerialization,
  Effect.map(Effect.service(OtlpSerialization.OtlpSerialization), (effects) => ({
    ...effects,
    traces: (data: OtlpTracer.TraceData) => HttpBody.uint8Array(encodeTracesData(data), "application/x-protobuf")
  }))
).pipe(Layer.provide(OtlpSerialization.layerProtobuf))

/** `fetch` that gives up after `timeoutMs` (the exporter then retries, then pauses): a collector that never answers holds nothing. */
const fetchWithTimeout = (timeoutMs: number): typeof globalThis.fetch => (input, init) =>
  globalThis.fetch(input, {
    ...init,
    signal: init?.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs)
  })

/**
 * The container's request tracing, for as long as the scope is open, or undefined when traces are
 * off. Spans are batched and posted by Effect's OTLP exporter in its own fiber (every 5 s, or 1000
 * spans); a collector that fails or is unreachable costs requests nothing: the exporter retries,
 * then drops its batch and pauses for a minute. Closing the scope posts what is left (waiting at
 * most a few seconds). The tracer is the container's own, not the fibers' `Tracer`: Effect spans
 * elsewhere (the ONNX backend's `withRequestSpan`) stay as they were.
 */
export const make = (
  settings: RuntimeSettings
): Effect.Effect<{ readonly tracing: RequestTracing; readonly settings: TracingSettings } | undefined, InvalidSettings, Scope.Scope> =>
  Effect.gen(function*() {
    const tracing = yield* settingsFromEnvironment(settings.modelId)
    if (tracing === undefined) return undefined
    const tracer = yield* OtlpTracer.make({
      url: tracing.url,
      resource: {
        serviceName: tracing.serviceName,
        attributes: {
          "ruth.model_id": settings.modelId,
          "ruth.model_version": settings.modelVersion,
          "ruth.runtime_version": VERSION
        }
      },
      headers: tracing.headers
    }).pipe(
      Effect.provide(Layer.mergeAll(
        tracing.protocol === "http/json" ? OtlpSerialization.layerJson : protobufSerialization,
        FetchHttpClient.layer,
        OtlpExporter.layerFlusher
      )),
      Effect.provideService(FetchHttpClient.Fetch, fetchWithTimeout(tracing.timeoutMs))
    )
    yield* Effect.logInfo(describeTracing(tracing))
    return { tracing: new RequestTracing(tracer, settings.modelId, tracing.sampler), settings: tracing }
  })
