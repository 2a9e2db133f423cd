/**
 * The container's series, recorded straight into Effect's `Metric` (a registry of their own) and
 * rendered by Effect's Prometheus formatter — the text a container answers, with the values a test
 * chooses, without a container (`ContainerMetrics` records from the pipeline; this records on demand).
 */
import { Context, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { DURATION_BUCKETS } from "../../src/container/Prometheus.js"

export class PrometheusSeries {
  private readonly context = Context.make(Metric.MetricRegistry, new Map()) as Context.Context<never>

  constructor(readonly model: string) {}

  /** `n` answered requests of `outcome` (`ok`, `frame_not_found`…) that took `ms` each. */
  requests(n: number, outcome: string, ms: number): this {
    const attributes = { model: this.model, outcome }
    const counter = Metric.counter("ruth_requests_total", { attributes, incremental: true })
    const duration = Metric.histogram("ruth_request_duration_seconds", { attributes, boundaries: DURATION_BUCKETS })
    for (let i = 0; i < n; i++) {
      counter.updateUnsafe(1, this.context)
      duration.updateUnsafe(ms / 1000, this.context)
    }
    return this
  }

  /** `n` observations of `stage` (`frame_read`, `inference`…) of `ms` each. */
  stage(n: number, stage: string, ms: number): this {
    const h = Metric.histogram("ruth_stage_duration_seconds", { attributes: { model: this.model, stage }, boundaries: DURATION_BUCKETS })
    for (let i = 0; i < n; i++) h.updateUnsafe(ms / 1000, this.context)
    return this
  }

  /** A gauge `name{model, …labels}` set to `value`. */
  gauge(name: string, value: number, labels: Record<string, string> = {}): this {
    Metric.gauge(name, { attributes: { model: this.model, ...labels } }).updateUnsafe(value, this.context)
    return this
  }

  text(): string {
    return PrometheusMetrics.formatUnsafe(this.context)
  }
}
