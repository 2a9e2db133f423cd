/**
 * The Prometheus text format (0.0.4), read back: the samples of a `{"op":"metrics"}` answer or a
 * `GET /metrics` body, and the histogram math an operator's view needs — the difference of two
 * scrapes and `histogram_quantile` over it (linear inside a bucket, as Prometheus computes it).
 * Pure functions; `ruth-model top` is their first caller.
 */
import { Data, Result } from "effect"

/** One sample line: `name{label="value",…} value`. */
export interface PrometheusSample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** A line that is neither a comment, blank, nor a sample. */
export class PrometheusTextError extends Data.TaggedError("PrometheusTextError")<{
  readonly line: number
  readonly reason: string
}> {
  readonly code = "PROMETHEUS_TEXT_INVALID"
  override get message() {
    return `line ${this.line} of the metrics text: ${this.reason}`
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/

/** A sample value: a float, or `NaN`, `+Inf`, `-Inf`. */
const parseValue = (text: string): number | undefined => {
  if (text === "+Inf" || text === "Inf") return Infinity
  if (text === "-Inf") return -Infinity
  if (text === "NaN") return NaN
  const n = Number(text)
  return text !== "" && !Number.isNaN(n) ? n : undefined
}

/** Parses one sample line (not a comment, not blank); the reason when it is not one. */
const parseSample = (line: string): PrometheusSample | string => {
  const name = NAME.exec(line)?.[0]
  if (name === undefined) return "expected a metric name"
  let i = name.length
  const labels: Record<string, string> = {}
  if (line[i] === "{") {
    i++
    for (;;) {
      while (line[i] === " ") i++
      if (line[i] === "}") {
        i++
        break
      }
      const label = LABEL_NAME.exec(line.slice(i))?.[0]
      if (label === undefined) return `expected a label name at column ${i + 1}`
      i += label.length
      if (line[i] !== "=" || line[i + 1] !== "\"") return `expected ="…" after label ${label}`
      i += 2
      let value = ""
      for (;; i++) {
        const c = line[i]
        if (c === undefined) return `label ${label}: unterminated value`
        if (c === "\"") break
        if (c === "\\") {
          const next = line[++i]
          value += next === "n" ? "\n" : next === "\\" ? "\\" : next === "\"" ? "\"" : `\\${next ?? ""}`
        } else {
          value += c
        }
      }
      i++
      labels[label] = value
      while (line[i] === " ") i++
      if (line[i] === ",") i++
      else if (line[i] !== "}") return `expected , or } after label ${label}`
    }
  }
  // The value, then an optional timestamp (ignored).
  const [valueText = "", ...rest] = line.slice(i).trim().split(/\s+/)
  const value = parseValue(valueText)
  if (value === undefined || rest.length > 1) return `${name}: expected a value (and at most a timestamp), got ${JSON.stringify(line.slice(i).trim())}`
  return { name, labels, value }
}

/** Every sample of `text`, in order; comments (`# HELP`, `# TYPE`) and blank lines are skipped. */
export const parsePrometheusText = (text: string): Result.Result<ReadonlyArray<PrometheusSample>, PrometheusTextError> => {
  const samples: Array<PrometheusSample> = []
  const lines = text.split("\n")
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim()
    if (line === "" || line.startsWith("#")) continue
    const sample = parseSample(line)
    if (typeof sample === "string") return Result.fail(new PrometheusTextError({ line: n + 1, reason: sample }))
    samples.push(sample)
  }
  return Result.succeed(samples)
}

/** Whether `sample` carries every label of `match` with its value. */
const matches = (sample: PrometheusSample, match: Readonly<Record<string, string>>): boolean =>
  Object.entries(match).every(([k, v]) => sample.labels[k] === v)

/** The sum of the samples `name{match…}` (every series of a counter or gauge that carries the labels); undefined when there are none. */
export const sumOf = (
  samples: ReadonlyArray<PrometheusSample>,
  name: string,
  match: Readonly<Record<string, string>> = {}
): number | undefined => {
  let sum: number | undefined
  for (const s of samples) if (s.name === name && matches(s, match)) sum = (sum ?? 0) + s.value
  return sum
}

/** The samples `name{match…}` summed by the value of label `by` (`ruth_requests_total` by `outcome`). */
export const sumBy = (
  samples: ReadonlyArray<PrometheusSample>,
  name: string,
  by: string,
  match: Readonly<Record<string, string>> = {}
): ReadonlyMap<string, number> => {
  const sums = new Map<string, number>()
  for (const s of samples) {
    const key = s.labels[by]
    if (s.name === name && key !== undefined && matches(s, match)) sums.set(key, (sums.get(key) ?? 0) + s.value)
  }
  return sums
}

/** A histogram: cumulative counts by upper bound (`le`, ascending, the last `+Inf`), as exposed. */
export interface Histogram {
  readonly buckets: ReadonlyArray<{ readonly le: number; readonly count: number }>
  /** Observations (the `+Inf` bucket). */
  readonly count: number
}

/**
 * The histogram `name` (its `_bucket` series) summed over every series carrying `match`'s labels —
 * `sum by (le)`, e.g. the request durations of every outcome; undefined when it has no buckets.
 */
export const histogramOf = (
  samples: ReadonlyArray<PrometheusSample>,
  name: string,
  match: Readonly<Record<string, string>> = {}
): Histogram | undefined => {
  const byLe = new Map<number, number>()
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || !matches(s, match)) continue
    const le = s.labels.le === undefined ? undefined : parseValue(s.labels.le)
    if (le === undefined || Number.isNaN(le)) continue
    byLe.set(le, (byLe.get(le) ?? 0) + s.value)
  }
  if (byLe.size === 0) return undefined
  const buckets = [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le)
  return { buckets, count: buckets[buckets.length - 1]!.le === Infinity ? buckets[buckets.length - 1]!.count : NaN }
}

/**
 * What a counter gained between two scrapes. A counter that went down was reset (the container
 * restarted): it gained its whole current value, as Prometheus' `rate` reads it.
 */
export const counterDelta = (previous: number | undefined, current: number): number =>
  previous === undefined || current < previous ? current : current - previous

/**
 * The observations between two scrapes of a histogram, bucket by bucket (`current` when there was
 * no earlier one, or it was reset: fewer observations than before).
 */
export const histogramDelta = (previous: Histogram | undefined, current: Histogram): Histogram => {
  if (previous === undefined || !(current.count >= previous.count)) return current
  const before = new Map(previous.buckets.map((b) => [b.le, b.count]))
  return {
    buckets: current.buckets.map((b) => ({ le: b.le, count: Math.max(0, b.count - (before.get(b.le) ?? 0)) })),
    count: current.count - previous.count
  }
}

/**
 * The q-quantile (0–1) of a histogram, as Prometheus' `histogram_quantile`: the bucket holding
 * the rank `q · count`, interpolated linearly between its bounds (the first bucket starts at 0);
 * a rank in the `+Inf` bucket is the highest finite bound. Undefined without observations.
 */
export const histogramQuantile = (q: number, histogram: Histogram): number | undefined => {
  const { buckets } = histogram
  const last = buckets[buckets.length - 1]
  if (last === undefined || last.le !== Infinity || !(last.count > 0)) return undefined
  const rank = q * last.count
  let i = buckets.findIndex((b) => b.count >= rank)
  if (i < 0) i = buckets.length - 1
  const bucket = buckets[i]!
  if (bucket.le === Infinity) return buckets.length >= 2 ? buckets[buckets.length - 2]!.le : undefined
  if (i === 0 && bucket.le <= 0) return bucket.le
  const start = i === 0 ? 0 : buckets[i - 1]!.le
  const below = i === 0 ? 0 : buckets[i - 1]!.count
  const inBucket = bucket.count - below
  return inBucket > 0 ? start + (bucket.le - start) * ((rank - below) / inBucket) : bucket.le
}
