/**
 * OpenTelemetry traces against a real OTLP/HTTP receiver started by the test (a `node:http` server
 * taking `POST /v1/traces`): the container's request spans, their children, the caller's
 * traceparent, the attributes, the sampling (every errored request kept), and traces off without
 * an endpoint. Spans are flushed by closing the container's scope, which waits for the export.
 */
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { vi } from "vitest"
import { ConfigProvider, Context, Effect, Exit, Layer, Scope } from "effect"
import { InferenceFailed } from "../../src/contract/errors.js"
import type { RuntimeSettingsInput } from "../../src/config/RuntimeConfig.js"
import { InferenceHandler, type InferenceHandlerShape } from "../../src/inference/InferenceHandler.js"
import * as OnnxHandler from "../../src/inference/OnnxHandler.js"
import { makeFake } from "../../src/inference/OnnxSession.js"
import { keeps, settingsFromEnvironment } from "../../src/container/Tracing.js"
import { dbTextYaml, loaded, mapModel } from "../support/fakeModel.js"
import { request } from "../support/harness.js"
import { frameRequest as anyFrameRequest, memoryContainer } from "../support/memoryContainer.js"
import { attrs, type OtlpSpan, type Received, spansOf, startOtlpReceiver } from "../../scripts/otlpReceiver.js"

vi.mock("onnxruntime-node", () => {
  throw new Error("onnxruntime-node was loaded by a test that must not need it")
})

/** The receiver of scripts/otlpReceiver.ts on a free port: every POST recorded, answered 200 `{}`; closed with the scope. */
const receiver = Effect.acquireRelease(Effect.promise(() => startOtlpReceiver()), (r) => Effect.promise(r.close))

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
const PARENT_ID = "00f067aa0ba902b7"
const traceparent = (flags: "00" | "01") => `00-${TRACE_ID}-${PARENT_ID}-${flags}`

/**
 * A container on the memory transport in `scope`, its environment `env` (through `ConfigProvider`,
 * as `OTEL_*` are read), with the ONNX backend on a scripted session or `handler`.
 */
const containerIn = (
  scope: Scope.Scope,
  env: Record<string, string>,
  handler?: InferenceHandlerShape,
  settings: Partial<RuntimeSettingsInput> = {}
) =>
  Effect.gen(function*() {
    const handlerLayer = handler !== undefined
      ? Layer.succeed(InferenceHandler, handler)
      : OnnxHandler.layerOn(yield* loaded(dbTextYaml())).pipe(Layer.provide(makeFake(mapModel()).layer))
    return yield* memoryContainer(scope, handlerLayer, { env, settings: { modelVersion: "7", ...settings } })
  })

const frameRequest = (overrides: Record<string, unknown> = {}) => anyFrameRequest({ timestamp: Date.now() / 1000 - 2, ...overrides })

const requestSpans = (r: Received) => r.spans.filter((s) => s.name === "inference.request")
const byRequestId = (r: Received, id: string) => {
  const span = requestSpans(r).find((s) => attrs(s.attributes)["ruth.request_id"] === id)
  if (span === undefined) throw new Error(`no inference.request span for request ${id}`)
  return span
}
const childrenOf = (r: Received, parent: OtlpSpan) => r.spans.filter((s) => s.parentSpanId === parent.spanId)

describe("traces over OTLP/HTTP", () => {
  it.live("one inference.request span per request, its stages as children, the caller's traceparent continued, errors with their code", () =>
    Effect.gen(function*() {
      const { posts, url } = yield* receiver
      const scope = yield* Scope.make()
      const { container, memory } = yield* containerIn(scope, {
        OTEL_EXPORTER_OTLP_ENDPOINT: url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc,x-tenant=cams",
        OTEL_TRACES_SAMPLER_ARG: "1"
      })
      expect(container.tracesUrl).toBe(`${url}/v1/traces`)
      expect(yield* memory.request(frameRequest({ request_id: "joined", traceparent: traceparent("01") }))).toMatchObject({ error: null })
      expect(yield* memory.request(frameRequest({ request_id: "own" }))).toMatchObject({ error: null })
      expect(yield* memory.request(request("cam9/latest", { request_id: "missing" }))).toMatchObject({ error_code: "FRAME_NOT_FOUND" })
      expect(yield* memory.request({ op: "health" })).toMatchObject({ op: "health" })
      yield* Scope.close(scope, Exit.void)

      expect(posts.length).toBeGreaterThan(0)
      expect(posts.every((p) => p.path === "/v1/traces" && p.contentType === "application/json")).toBe(true)
      expect(posts[0]!.headers).toMatchObject({ authorization: "Bearer abc", "x-tenant": "cams" })
      const r = spansOf(posts)
      expect(r.resource).toMatchObject({
        "service.name": "ruth-model-test-model",
        "ruth.model_id": "test-model",
        "ruth.model_version": "7"
      })
      expect(typeof r.resource["ruth.runtime_version"]).toBe("string")
      // Health is no request: three requests, three request spans.
      expect(requestSpans(r)).toHaveLength(3)

      const joined = byRequestId(r, "joined")
      expect(joined).toMatchObject({ traceId: TRACE_ID, parentSpanId: PARENT_ID, kind: 2, status: { code: 1 } })
      expect(attrs(joined.attributes)).toMatchObject({
        "ruth.model_id": "test-model",
        "ruth.camera_id": "camera_1",
        "ruth.frame_id": 7,
        "ruth.outcome": "ok"
      })
      expect(attrs(joined.attributes)["ruth.frame_age_seconds"]).toBeGreaterThanOrEqual(2)
      expect(attrs(joined.attributes)).not.toHaveProperty("ruth.error_code")
      const children = childrenOf(r, joined)
      expect(children.map((c) => c.name).sort()).toEqual(["frame.read", "inference", "postprocess", "preprocess"])
      for (const child of children) {
        expect(child.traceId, child.name).toBe(TRACE_ID)
        // Within the request, in a waterfall.
        expect(BigInt(child.startTimeUnixNano) >= BigInt(joined.startTimeUnixNano), child.name).toBe(true)
        expect(BigInt(child.endTimeUnixNano) <= BigInt(joined.endTimeUnixNano), child.name).toBe(true)
        expect(BigInt(child.startTimeUnixNano) <= BigInt(child.endTimeUnixNano), child.name).toBe(true)
      }
      const inference = children.find((c) => c.name === "inference")!
      expect(attrs(inference.attributes)).toHaveProperty("ruth.session_wait_ms")
      expect(typeof attrs(inference.attributes)["ruth.inference_ms"]).toBe("number")

      // Without a traceparent: a trace of its own, rooted at the request.
      const own = byRequestId(r, "own")
      expect(own.traceId).toMatch(/^[0-9a-f]{32}$/)
      expect(own.traceId).not.toBe(TRACE_ID)
      expect(own.parentSpanId ?? "").toBe("")
      expect(childrenOf(r, own)).toHaveLength(4)

      const missing = byRequestId(r, "missing")
      expect(missing.status.code).toBe(2)
      expect(missing.status.message).toMatch(/frame/i)
      expect(attrs(missing.attributes)).toMatchObject({ "ruth.outcome": "frame_not_found", "ruth.error_code": "FRAME_NOT_FOUND" })
      expect(childrenOf(r, missing)).toEqual([])
    }))

  it.live("ratio 0: an errored request is still exported, an ok one is not unless the caller's traceparent is sampled; a bad traceparent is ignored", () =>
    Effect.gen(function*() {
      const { posts, url } = yield* receiver
      const scope = yield* Scope.make()
      const handler: InferenceHandlerShape = {
        infer: (req) =>
          req.request_id === "fails"
            ? Effect.fail(new InferenceFailed({ reason: "asked to" }))
            : req.request_id === "hangs"
            ? Effect.never
            : Effect.succeed({ detections: [] })
      }
      const { memory } = yield* containerIn(scope, {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${url}/v1/traces`,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
        OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG: "0",
        OTEL_SERVICE_NAME: "edge-detector",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test"
      }, handler, { requestTimeoutMs: 300 })
      expect(yield* memory.request(frameRequest({ request_id: "ok" }))).toMatchObject({ error: null })
      expect(yield* memory.request(frameRequest({ request_id: "unsampled", traceparent: traceparent("00") }))).toMatchObject({ error: null })
      for (const bad of ["garbage", `01-${TRACE_ID}-${PARENT_ID}-01`, `00-${"0".repeat(32)}-${PARENT_ID}-01`, 42, { a: 1 }]) {
        expect(yield* memory.request(frameRequest({ request_id: "bad", traceparent: bad }))).toMatchObject({ error: null })
      }
      expect(yield* memory.request(frameRequest({ request_id: "sampled", traceparent: traceparent("01") }))).toMatchObject({ error: null })
      expect(yield* memory.request(frameRequest({ request_id: "fails" }))).toMatchObject({ error_code: "INFERENCE_FAILED" })
      expect(yield* memory.request(frameRequest({ request_id: "fails", traceparent: traceparent("00") }))).toMatchObject({ error_code: "INFERENCE_FAILED" })
      expect(yield* memory.request(frameRequest({ request_id: "hangs" }))).toMatchObject({ error_code: "TIMEOUT" })
      yield* Scope.close(scope, Exit.void)

      const r = spansOf(posts)
      expect(r.resource).toMatchObject({ "service.name": "edge-detector", "deployment.environment": "test", "ruth.model_id": "test-model" })
      const kept = requestSpans(r).map((s) => attrs(s.attributes)["ruth.request_id"]).sort()
      expect(kept).toEqual(["fails", "fails", "hangs", "sampled"])
      expect(attrs(byRequestId(r, "hangs").attributes)).toMatchObject({ "ruth.outcome": "timeout", "ruth.error_code": "TIMEOUT" })
      // A handler that reports no stages: the frame read and the handler's time.
      expect(childrenOf(r, byRequestId(r, "sampled")).map((c) => c.name).sort()).toEqual(["frame.read", "inference"])
      for (const failed of requestSpans(r).filter((s) => attrs(s.attributes)["ruth.request_id"] === "fails")) {
        expect(failed.status.code).toBe(2)
        expect(attrs(failed.attributes)).toMatchObject({ "ruth.outcome": "inference_failed", "ruth.error_code": "INFERENCE_FAILED" })
      }
      // The unsampled caller's errored request still continues the caller's trace.
      expect(requestSpans(r).filter((s) => s.traceId === TRACE_ID && s.parentSpanId === PARENT_ID)).toHaveLength(2)
    }))

  it.live("the default protocol is OTLP protobuf, posted to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given", () =>
    Effect.gen(function*() {
      const { posts, url } = yield* receiver
      const scope = yield* Scope.make()
      const { memory } = yield* containerIn(scope, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${url}/custom/traces` }, { infer: () => Effect.succeed([]) })
      expect(yield* memory.request(request("cam9/latest"))).toMatchObject({ error_code: "FRAME_NOT_FOUND" })
      yield* Scope.close(scope, Exit.void)
      expect(posts).toHaveLength(1)
      expect(posts[0]).toMatchObject({ path: "/custom/traces", contentType: "application/x-protobuf" })
      // Protobuf keeps strings as UTF-8 bytes: the span's name and the error code are in the body.
      const body = posts[0]!.body.toString("latin1")
      expect(body).toContain("inference.request")
      expect(body).toContain("FRAME_NOT_FOUND")
      expect(body).toContain("ruth-model-test-model")
    }))

  it.live("off without an endpoint; an unreachable collector costs requests nothing", () =>
    Effect.gen(function*() {
      const off = yield* containerIn(yield* Effect.scope, {}, { infer: () => Effect.succeed([]) })
      expect(off.container.tracesUrl).toBeUndefined()
      expect(yield* off.memory.request(frameRequest())).toMatchObject({ error: null })

      // A port nobody listens on.
      const port = yield* Effect.promise(() =>
        new Promise<number>((resolve) => {
          const s = net.createServer().listen(0, "127.0.0.1", () => {
            const p = (s.address() as net.AddressInfo).port
            s.close(() => resolve(p))
          })
        })
      )
      const scope = yield* Scope.make()
      const down = yield* containerIn(scope, {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        OTEL_TRACES_SAMPLER: "always_on"
      }, { infer: () => Effect.succeed([]) })
      expect(down.container.tracesUrl).toBe(`http://127.0.0.1:${port}/v1/traces`)
      for (let i = 0; i < 20; i++) expect(yield* down.memory.request(frameRequest())).toMatchObject({ error: null })
      expect(yield* down.memory.request(request("cam9/latest"))).toMatchObject({ error_code: "FRAME_NOT_FOUND" })
      // Stopping still ends: the last export is given up.
      expect(yield* Effect.exit(Scope.close(scope, Exit.void))).toEqual(Exit.void)
    }))

  it.live("a tracing variable that cannot be used stops the start with one message naming it", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Record<string, string>, RegExp]> = [
        [{ OTEL_TRACES_SAMPLER_ARG: "abc" }, /^invalid OTEL_TRACES_SAMPLER_ARG \(environment\): must be a number from 0 to 1/],
        [{ OTEL_TRACES_SAMPLER: "jaeger_remote" }, /^invalid OTEL_TRACES_SAMPLER \(environment\): must be one of always_on/],
        [{ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }, /^invalid OTEL_EXPORTER_OTLP_PROTOCOL \(environment\): must be http\/protobuf or http\/json/],
        [{ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, /^invalid OTEL_EXPORTER_OTLP_ENDPOINT \(environment\): must be an http\(s\) URL/]
      ]
      for (const [env, message] of cases) {
        const exit = yield* Effect.exit(Effect.scoped(Effect.flatMap(Effect.scope, (scope) =>
          containerIn(scope, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", ...env }, { infer: () => Effect.succeed([]) })
        )))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
          expect(reason?._tag === "Fail" && reason.error).toMatchObject({ _tag: "InvalidSettings" })
          expect(reason?._tag === "Fail" && reason.error.message).toMatch(message)
        }
      }
    }))
})

describe("the sampler", () => {
  const parent = (traceId: string, sampled: boolean) => ({ _tag: "ExternalSpan" as const, traceId, spanId: PARENT_ID, sampled, annotations: Context.empty() })
  const ratio = (r: number, parentBased = true) => ({ name: "test", parentBased, ratio: r })

  it("keeps every failed request, whatever the ratio and the parent say", () => {
    expect(keeps(ratio(0), undefined, true)).toBe(true)
    expect(keeps(ratio(0), parent(TRACE_ID, false), true)).toBe(true)
  })

  it("parent-based: the caller's sampled flag decides; not parent-based: the ratio on the trace id, the same for every service", () => {
    expect(keeps(ratio(0), parent(TRACE_ID, true), false)).toBe(true)
    expect(keeps(ratio(1), parent(TRACE_ID, false), false)).toBe(false)
    const low = `${"f".repeat(19)}0000000000001`
    const high = `${"0".repeat(19)}fffffffffffff`
    expect(keeps(ratio(0.5, false), parent(low, false), false)).toBe(true)
    expect(keeps(ratio(0.5, false), parent(high, true), false)).toBe(false)
  })

  it("a new trace is kept in about `ratio` of the requests", () => {
    let kept = 0
    for (let i = 0; i < 20_000; i++) if (keeps(ratio(0.1), undefined, false)) kept++
    expect(kept).toBeGreaterThan(1_500)
    expect(kept).toBeLessThan(2_500)
  })
})

describe("the tracing settings (the standard OpenTelemetry variables)", () => {
  const settingsOf = (env: Record<string, string>) =>
    settingsFromEnvironment("cam-model").pipe(
      Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env })),
      Effect.runSync
    )

  it("off without an endpoint (a blank one too), with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none", () => {
    expect(settingsOf({})).toBeUndefined()
    expect(settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: " " })).toBeUndefined()
    expect(settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" })).toBeUndefined()
    expect(settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" })).toBeUndefined()
  })

  it("defaults: protobuf, parent-based 1 in 100, service ruth-model-{model_id}, 10 s per export", () => {
    expect(settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" })).toEqual({
      url: "http://c:4318/v1/traces",
      endpointVariable: "OTEL_EXPORTER_OTLP_ENDPOINT",
      protocol: "http/protobuf",
      serviceName: "ruth-model-cam-model",
      headers: undefined,
      timeoutMs: 10_000,
      sampler: { name: "parentbased_traceidratio", parentBased: true, ratio: 0.01 }
    })
  })

  it("the base endpoint gets /v1/traces after its path; the traces endpoint wins and is used as given", () => {
    expect(settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://c/otlp/" })?.url).toBe("https://c/otlp/v1/traces")
    expect(settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:9/t" })).toMatchObject({
      url: "http://b:9/t",
      endpointVariable: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    })
  })

  it("the traces-specific variables win over the general ones; a fixed sampler ignores the ratio", () => {
    expect(settingsOf({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_TIMEOUT: "5000",
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "250",
      OTEL_EXPORTER_OTLP_HEADERS: "a=1",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "b=2",
      OTEL_TRACES_SAMPLER: "always_on",
      OTEL_TRACES_SAMPLER_ARG: "0.5"
    })).toMatchObject({ protocol: "http/json", timeoutMs: 250, headers: { b: "2" }, sampler: { name: "always_on", parentBased: false, ratio: 1 } })
  })
})
