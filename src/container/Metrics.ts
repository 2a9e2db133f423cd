/**
 * Counters of a running container, shared by the request pipeline, the
 * heartbeat and the health answer. Plain fields: they are touched on the hot
 * path from one thread.
 */
import type { ErrorCode } from "../contract/schema.js"
import type { ContainerMetrics } from "./Prometheus.js"

export type ContainerStatus = "starting" | "ready" | "draining" | "stopped"

export interface MetricsSnapshot {
  readonly total_requests: number
  readonly total_errors: number
  readonly avg_latency_ms: number
  readonly uptime_seconds: number
  readonly inflight: number
  readonly errors_by_code: Readonly<Partial<Record<ErrorCode, number>>>
}

export class ContainerState {
  status: ContainerStatus = "starting"
  inflight = 0
  private totalRequests = 0
  private totalErrors = 0
  private latencySumMs = 0
  private readonly errorsByCode: Partial<Record<ErrorCode, number>> = {}
  private readonly startedAt = Date.now()

  /** `metrics`: the Prometheus series every answered request is recorded in too, when the container has them. */
  constructor(readonly metrics?: ContainerMetrics) {}

  /** Records one answered inference request of `camera` ("" when not known). */
  record(latencyMs: number, errorCode: ErrorCode | undefined, camera: string): void {
    this.totalRequests++
    this.latencySumMs += latencyMs
    if (errorCode !== undefined) {
      this.totalErrors++
      this.errorsByCode[errorCode] = (this.errorsByCode[errorCode] ?? 0) + 1
    }
    this.metrics?.request(latencyMs, errorCode, camera)
  }

  snapshot(): MetricsSnapshot {
    return {
      total_requests: this.totalRequests,
      total_errors: this.totalErrors,
      avg_latency_ms: this.totalRequests === 0 ? 0 : Math.round((this.latencySumMs / this.totalRequests) * 1000) / 1000,
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 10) / 100,
      inflight: this.inflight,
      errors_by_code: { ...this.errorsByCode }
    }
  }
}
