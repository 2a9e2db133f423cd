/**
 * What `ruth-model top` shows, from two samples of a container taken an interval apart: rates
 * from the counters' deltas (not since start) and p50/p99 from the histograms' deltas. Pure: the
 * command (`top.ts`) takes the samples and draws the text.
 */
import type { DroppedByReason } from "../contract/schema.js"
import type { HealthResponse } from "../ipc/ModelClient.js"
import {
  counterDelta,
  type Histogram,
  histogramDelta,
  histogramOf,
  histogramQuantile,
  type PrometheusSample,
  sumBy,
  sumOf
} from "../ipc/prometheusText.js"
import { dropsByReason } from "./health.js"

/** One look at a container: its health answer and, when it serves them, its metrics' samples. */
export interface TopSample {
  /** When the answers arrived, in milliseconds (any clock; only differences are used). */
  readonly atMs: number
  readonly health: HealthResponse
  /** `undefined`: the container does not serve `{"op":"metrics"}` (the view falls back to health's numbers). */
  readonly metrics: ReadonlyArray<PrometheusSample> | undefined
}

/** p50/p99 over the interval, in milliseconds; `null` without observations. */
export interface Quantiles {
  readonly p50_ms: number | null
  readonly p99_ms: number | null
  /** Observations in the interval. */
  readonly samples: number
  /**
   * The highest finite bucket bound when some of the interval's observations were beyond it
   * (a percentile equal to it then means "at least"), else `null`.
   */
  readonly beyond_ms: number | null
}

/** The numbers of one view (`--json` prints this object). */
export interface TopSnapshot {
  readonly socket: string
  /** Seconds between the two samples the rates and quantiles are over. */
  readonly interval_seconds: number
  readonly model: {
    readonly id: string
    readonly version: string
    readonly runtime_version: string
    readonly status: string
    readonly uptime_seconds: number
  }
  /** Whether the container serves `{"op":"metrics"}`; without, only health's numbers (no durations, connections or frame age). */
  readonly metrics: boolean
  readonly requests: { readonly total: number; readonly per_second: number }
  /** By outcome (`ok` or the lower-case error code): answered since start, and per second over the interval. */
  readonly outcomes: Readonly<Record<string, { readonly count: number; readonly per_second: number }>>
  readonly request_duration: Quantiles | null
  /** By stage (`frame_read`, `preprocess`, `queue`, `inference`, `postprocess`, and any other the container reports). */
  readonly stages: Readonly<Record<string, Quantiles>>
  readonly frame_age: Quantiles | null
  /** Detections by class (the model's `class_name`): answered since start, and per second over the interval; `null` without metrics. */
  readonly detections: Readonly<Record<string, { readonly count: number; readonly per_second: number }>> | null
  readonly inflight: { readonly current: number; readonly limit: number }
  readonly connections: number | null
  readonly dropped_by_reason: DroppedByReason | null
}

/** The stages the runtime reports, in the order a request passes them. */
export const STAGES: ReadonlyArray<string> = ["frame_read", "preprocess", "queue", "inference", "postprocess"]

/** To a thousandth: microseconds of a duration in ms, a rate to 0.001/s (a float's noise is not a number to show). */
const round3 = (v: number) => Math.round(v * 1000) / 1000

const quantiles = (previous: Histogram | undefined, current: Histogram | undefined): Quantiles => {
  if (current === undefined) return { p50_ms: null, p99_ms: null, samples: 0, beyond_ms: null }
  const delta = histogramDelta(previous, current)
  const ms = (q: number) => {
    const v = histogramQuantile(q, delta)
    return v === undefined ? null : round3(v * 1000)
  }
  const finite = delta.buckets.filter((b) => b.le !== Infinity)
  const top = finite[finite.length - 1]
  return {
    p50_ms: ms(0.5),
    p99_ms: ms(0.99),
    samples: delta.count,
    beyond_ms: top !== undefined && delta.count > top.count ? round3(top.le * 1000) : null
  }
}

/** Outcomes since start from health alone: `ok` and its `errors_by_code`, lower-cased like the metrics' labels. */
const healthOutcomes = (h: HealthResponse): ReadonlyMap<string, number> =>
  new Map([
    ["ok", h.total_requests - h.total_errors],
    ...Object.entries(h.errors_by_code ?? {}).map(([code, n]) => [code.toLowerCase(), n] as const)
  ])

/** The view's numbers between `previous` and `current` (a counter that went down was reset: it counts from 0). */
export const snapshot = (socket: string, previous: TopSample, current: TopSample): TopSnapshot => {
  const seconds = Math.max(current.atMs - previous.atMs, 1) / 1000
  const rate = (before: number | undefined, now: number) => round3(counterDelta(before, now) / seconds)
  const h = current.health
  const now = current.metrics
  const before = previous.metrics
  const model = { model: h.model_id }

  /** A counter of `samples` summed by one label (none: empty). */
  const countsOf = (samples: ReadonlyArray<PrometheusSample> | undefined, name: string, label: string): ReadonlyMap<string, number> =>
    samples === undefined ? new Map() : sumBy(samples, name, label, model)
  const counts = now !== undefined ? countsOf(now, "ruth_requests_total", "outcome") : healthOutcomes(h)
  const countsBefore = now !== undefined ? countsOf(before, "ruth_requests_total", "outcome") : healthOutcomes(previous.health)
  /** Counts by label value: since start, and per second over the interval, in `order`. */
  const counted = (at: ReadonlyMap<string, number>, since: ReadonlyMap<string, number>, order: (a: [string, number], b: [string, number]) => number) =>
    Object.fromEntries([...at].sort(order).map(([key, count]) => [key, { count, per_second: rate(since.get(key), count) }]))
  const outcomes = counted(counts, countsBefore, ([a], [b]) => (a === "ok" ? -1 : b === "ok" ? 1 : a.localeCompare(b)))
  const total = now !== undefined ? [...counts.values()].reduce((a, b) => a + b, 0) : h.total_requests
  const totalBefore = now !== undefined ? [...countsBefore.values()].reduce((a, b) => a + b, 0) : previous.health.total_requests

  const histogram = (samples: ReadonlyArray<PrometheusSample> | undefined, name: string, match: Record<string, string> = {}) =>
    samples === undefined ? undefined : histogramOf(samples, name, { ...model, ...match })
  const stages: Record<string, Quantiles> = {}
  if (now !== undefined) {
    const reported = [...sumBy(now, "ruth_stage_duration_seconds_count", "stage", model).keys()]
    for (const stage of [...STAGES, ...reported.filter((s) => !STAGES.includes(s)).sort()]) {
      stages[stage] = quantiles(histogram(before, "ruth_stage_duration_seconds", { stage }), histogram(now, "ruth_stage_duration_seconds", { stage }))
    }
  }

  return {
    socket,
    interval_seconds: seconds,
    model: { id: h.model_id, version: h.model_version, runtime_version: h.version, status: h.status, uptime_seconds: h.uptime_seconds },
    metrics: now !== undefined,
    requests: { total, per_second: rate(totalBefore, total) },
    outcomes,
    request_duration: now === undefined
      ? null
      : quantiles(histogram(before, "ruth_request_duration_seconds"), histogram(now, "ruth_request_duration_seconds")),
    stages,
    frame_age: now === undefined ? null : quantiles(histogram(before, "ruth_frame_age_seconds"), histogram(now, "ruth_frame_age_seconds")),
    // Most frequent first, then by name.
    detections: now === undefined
      ? null
      : counted(countsOf(now, "ruth_detections_total", "class"), countsOf(before, "ruth_detections_total", "class"), ([a, x], [b, y]) => y - x || a.localeCompare(b)),
    inflight: {
      current: (now !== undefined ? sumOf(now, "ruth_inflight_requests", model) : undefined) ?? h.inflight,
      limit: (now !== undefined ? sumOf(now, "ruth_inflight_limit", model) : undefined) ?? h.max_inflight
    },
    connections: (now !== undefined ? sumOf(now, "ruth_connections", model) : undefined) ?? null,
    dropped_by_reason: h.dropped_by_reason ?? null
  }
}

/** `1h02m03s`, `4m05s`, `12s`. */
export const formatUptime = (seconds: number): string => {
  const s = Math.max(0, Math.floor(seconds))
  const [hours, minutes, secs] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60]
  const two = (n: number) => String(n).padStart(2, "0")
  return hours > 0 ? `${hours}h${two(minutes)}m${two(secs)}s` : minutes > 0 ? `${minutes}m${two(secs)}s` : `${secs}s`
}

/** Milliseconds with about three significant digits; "—" for none. */
const ms = (v: number | null): string =>
  v === null ? "—" : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ms`

const perSecond = (v: number) => `${v.toFixed(1)}/s`

const LABEL = 13

/** The detection classes a view line names (the most frequent; `--json` has them all). */
const MAX_CLASSES_SHOWN = 6

const row = (label: string, value: string) => `${label.padEnd(LABEL)}${value}`

/** The view as text lines: the numbers of `s`, one row each. */
export const renderSnapshot = (s: TopSnapshot): ReadonlyArray<string> => {
  const m = s.model
  // A percentile in the +Inf bucket is the highest bound: at least that.
  const cell = (v: number | null, q: Quantiles) => `${v !== null && v === q.beyond_ms ? "≥" : ""}${ms(v)}`.padStart(10)
  const quantileRow = (label: string, q: Quantiles) =>
    `${label.padEnd(LABEL)}${cell(q.p50_ms, q)}${cell(q.p99_ms, q)}${String(q.samples).padStart(9)}`
  const dropped = s.dropped_by_reason
  return [
    row("model", `${m.id} ${m.version} (runtime ${m.runtime_version}), ${m.status}, up ${formatUptime(m.uptime_seconds)}`),
    row("requests", `${perSecond(s.requests.per_second)}  (${s.requests.total} since start)`),
    row(
      "outcomes",
      Object.keys(s.outcomes).length === 0
        ? "none yet"
        : Object.entries(s.outcomes).map(([outcome, o]) => `${outcome} ${perSecond(o.per_second)} (${o.count})`).join("  ")
    ),
    ...(s.detections === null ? [] : [
      row(
        "detections",
        Object.keys(s.detections).length === 0
          ? "none yet"
          : Object.entries(s.detections).slice(0, MAX_CLASSES_SHOWN).map(([cls, d]) => `${cls} ${perSecond(d.per_second)} (${d.count})`).join("  ") +
            (Object.keys(s.detections).length > MAX_CLASSES_SHOWN ? `  … ${Object.keys(s.detections).length - MAX_CLASSES_SHOWN} more` : "")
      )
    ]),
    row("in flight", `${s.inflight.current} / ${s.inflight.limit}`),
    row("connections", s.connections === null ? "—" : String(s.connections)),
    ...(s.request_duration === null
      ? ["durations    — (this container does not serve metrics: health's numbers only)"]
      : [
        `${"".padEnd(LABEL)}${"p50".padStart(10)}${"p99".padStart(10)}${"samples".padStart(9)}`,
        quantileRow("request", s.request_duration),
        ...Object.entries(s.stages).map(([stage, q]) => quantileRow(stage, q)),
        ...(s.frame_age === null ? [] : [quantileRow("frame age", s.frame_age)])
      ]),
    row(
      "not run",
      dropped === null
        ? "—"
        : dropsByReason(dropped).map(([what, n]) => `${n} ${what}`).join(", ")
    )
  ]
}
