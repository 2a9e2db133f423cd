/**
 * Spans on the per-request path, recorded only when somebody collects them.
 *
 * Effect's built-in tracer keeps spans in memory and exports nothing, yet creating and ending one
 * costs ~0.15 ms on a request's path right after a model run (caches cold). So a request span is
 * made when a tracer of the application's own is installed (`Layer.setTracer`, an OpenTelemetry
 * layer, ...), and skipped under the built-in one.
 */
import { Effect, type Tracer } from "effect"

/** The tracer every fiber has unless the application provides one. */
const builtInTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

/** `Effect.withSpan(name, options)` when a tracer other than Effect's built-in one is installed; `self` otherwise. */
export const withRequestSpan =
  (name: string, options: Tracer.SpanOptions) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(
      Effect.tracer,
      (tracer) => (tracer === builtInTracer ? self : Effect.withSpan(self, name, { captureStackTrace: false, ...options }))
    )
