/**
 * What a kept request's spans cost the container, in process: `RequestTracing.answered` (the
 * pipeline's call after an answer) N times with Effect's OTLP exporter posting to
 * `scripts/otlpReceiver.ts`, CPU per request for the loop and with the final flush, for each
 * protocol at the given sampling ratios. The request path pays the loop's share synchronously
 * (the spans are made and handed to the exporter there); the serialisation runs in the exporter's
 * fiber, on the same thread; the longest single call is the stall a batch's encoding causes when it
 * fills (Effect's exporter: 1000 spans) inside the call that ends a request.
 *
 *   npx tsx bench/traces.ts [--requests 20000] [--ratios 1,0.01,0]
 */
import { ConfigProvider, Effect, Exit, References, Result, Scope } from "effect"
import * as Tracing from "../src/container/Tracing.js"
import { makeSettings } from "../src/config/RuntimeSettings.js"
import type { InferenceRequest } from "../src/contract/schema.js"
import { startOtlpReceiver } from "../scripts/otlpReceiver.js"
import { option } from "./cli.js"

const requests = Number(option("requests") ?? 20000)
const ratios = (option("ratios") ?? "1,0.01,0").split(",")
const settings = Result.getOrThrow(makeSettings({ modelId: "bench", modelVersion: "1" }))
const request = {
  model_id: "bench",
  camera_id: "cam-1",
  frame_reference: "/dev/shm/bench",
  frame_metadata: { width: 640, height: 360, format: "NV12", frame_id: 1 },
  timestamp: Date.now() / 1000
} as InferenceRequest

const cpuMicros = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since)
  return u.user + u.system
}

const run = async (protocol: string, ratio: string) => {
  const receiver = await startOtlpReceiver()
  const scope = Effect.runSync(Scope.make())
  const made = await Effect.runPromise(Tracing.make(settings).pipe(
    Scope.provide(scope),
    Effect.provideService(
      ConfigProvider.ConfigProvider,
      ConfigProvider.fromEnv({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_TRACES_SAMPLER_ARG: ratio } })
    ),
    Effect.provideService(References.MinimumLogLevel, "Warn")
  ))
  const tracing = made!.tracing
  const start = process.cpuUsage()
  const calls = new Float64Array(requests)
  for (let i = 0; i < requests; i++) {
    const t = performance.now()
    tracing.answered(request, t, t + 0.01, { readAt: t, readMs: 0.001 }, undefined)
    calls[i] = performance.now() - t
  }
  const loop = cpuMicros(start)
  // The longest calls: the first post also loads the HTTP client (undici), so the second is the steady stall.
  const [first = 0, second = 0] = [...calls].sort((a, b) => b - a)
  await Effect.runPromise(Scope.close(scope, Exit.void))
  const all = cpuMicros(start)
  await receiver.close()
  console.log(
    `${protocol.padEnd(14)} ratio ${ratio.padEnd(5)} ${(loop / requests).toFixed(2).padStart(8)} µs/request in the loop, ` +
      `${(all / requests).toFixed(2).padStart(8)} with the flush; longest calls ${first.toFixed(1)}, ${second.toFixed(1)} ms; ${receiver.posts.length} posts`
  )
}

for (const ratio of ratios) for (const protocol of ["http/protobuf", "http/json"]) await run(protocol, ratio)
