/**
 * The liveness file monitoring already reads (CONTRACT §7):
 * `{heartbeatDir}/vas_heartbeat_{model_id}.json`, replaced atomically
 * (temp file + rename) every interval.
 */
import { Effect, Schedule, type Scope } from "effect"
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

/** Writes the heartbeat now and every interval until the scope closes. */
export const startHeartbeat = (settings: RuntimeSettings, state: ContainerState): Effect.Effect<void, never, Scope.Scope> =>
  settings.heartbeatIntervalMs === 0
    ? Effect.void
    : writeHeartbeat(settings, state).pipe(
      Effect.repeat(Schedule.spaced(settings.heartbeatIntervalMs)),
      Effect.forkScoped,
      Effect.asVoid
    )
