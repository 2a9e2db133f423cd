/**
 * A container's series with the values a test chooses, without a container: recorded by the
 * container's own `ContainerMetrics` (the names and labels a container answers), on demand, and
 * rendered by Effect's Prometheus formatter.
 */
import { Metric } from "effect"
import type { ErrorCode } from "../../src/contract/schema.js"
import { ContainerMetrics } from "../../src/container/Prometheus.js"

export class PrometheusSeries {
  private readonly metrics: ContainerMetrics

  constructor(readonly model: string) {
    this.metrics = new ContainerMetrics({ modelId: model, cameras: 0 })
  }

  /** `n` answered requests of `outcome` (`ok`, `frame_not_found`…) that took `ms` each. */
  requests(n: number, outcome: string, ms: number): this {
    const code = outcome === "ok" ? undefined : (outcome.toUpperCase() as ErrorCode)
    for (let i = 0; i < n; i++) this.metrics.request(ms, code, "")
    return this
  }

  /** `n` observations of `stage` (`frame_read`, `inference`…) of `ms` each. */
  stage(n: number, stage: string, ms: number): this {
    for (let i = 0; i < n; i++) this.metrics.stage(stage, ms)
    return this
  }

  /** `n` detections of `className`. */
  detections(n: number, className: string): this {
    this.metrics.detected(Array.from({ length: n }, () => ({ class_name: className })))
    return this
  }

  /** A gauge `name{model, …labels}` set to `value`. */
  gauge(name: string, value: number, labels: Record<string, string> = {}): this {
    Metric.gauge(name, { attributes: { model: this.model, ...labels } }).updateUnsafe(value, this.metrics.context)
    return this
  }

  text(): string {
    return this.metrics.text()
  }
}
