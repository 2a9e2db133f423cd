/**
 * The liveness file monitoring already reads (CONTRACT §7):
 * `{heartbeatDir}/vas_heartbeat_{model_id}.json`, replaced atomically
 * (temp file + rename) every interval.
 */
import { Effect, FiberHandle, Schedule, type Scope } from "effect"
import { heartbeatPathFor, type RuntimeSettings } from "../config/RuntimeConfig.js"
import { writeFileAtomically } from "../internal/files.js"
import type { ContainerState } from "./Metrics.js"

/** The reference's statuses: healthy while serving, draining during shutdown, stopped at the end. */
export type HeartbeatStatus = "healthy" | "draining" | "stopped"

const statusOf = (state: ContainerState): HeartbeatStatus =>
  state.status === "draining" ? "draining" : state.status === "stopped" ? "stopped" : "healthy"

/** Writes one heartbeat now; failures are logged, never fatal (monitoring must not kill serving). */
export const writeHeartbeat = (settings: RuntimeSettings, state: ContainerState): Effect.Effect<void> =>
  Effect.suspend(() => {
    const file = heartbeatPathFor(settings.heartbeatDir, settings.modelId)
    const m = state.snapshot()
    const body = {
      model_id: settings.modelId,
      timestamp: new Date().toISOString(),
      status: statusOf(state),
      metrics: {
        total_requests: m.total_requests,
        total_errors: m.total_errors,
        avg_latency_ms: m.avg_latency_ms,
        uptime_seconds: m.uptime_seconds
      }
    }
    try {
      writeFileAtomically(file, JSON.stringify(body))
      return Effect.void
    } catch (e) {
      return Effect.logWarning(`heartbeat not written to ${file}: ${String(e)}`)
    }
  })

/** A container's heartbeat, for as long as its scope is open. */
export interface Heartbeat {
  /** Writes the heartbeat now and every interval from then on. */
  readonly start: Effect.Effect<void>
  /** Writes the heartbeat now (a change of status). */
  readonly beat: Effect.Effect<void>
}

/**
 * The heartbeat of the current scope (none when the interval is 0). Acquire it
 * before whatever it reports on: as the scope closes, once everything acquired
 * after it has stopped, the beats stop and the last one says `stopped`.
 */
export const make = (settings: RuntimeSettings, state: ContainerState): Effect.Effect<Heartbeat, never, Scope.Scope> =>
  Effect.gen(function*() {
    const enabled = settings.heartbeatIntervalMs > 0
    const beat = enabled ? writeHeartbeat(settings, state) : Effect.void
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        state.status = "stopped"
        return beat
      })
    )
    const beats = yield* FiberHandle.make<void>()
    const start = enabled
      ? FiberHandle.run(beats, Effect.asVoid(Effect.repeat(beat, Schedule.spaced(settings.heartbeatIntervalMs)))).pipe(Effect.asVoid)
      : Effect.void
    return { start, beat }
  })
