/**
 * The Prometheus text read back (the container's own formatter's output, escaped label values
 * included) and `histogram_quantile` over the difference of two scrapes, on buckets whose answer
 * is known by hand.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import {
  counterDelta,
  type Histogram,
  histogramDelta,
  histogramOf,
  histogramQuantile,
  parsePrometheusText,
  type PrometheusSample,
  sumBy,
  sumOf
} from "../../src/ipc/prometheusText.js"
import { PrometheusSeries } from "../support/prometheusSeries.js"

const parsed = (text: string): ReadonlyArray<PrometheusSample> => {
  const r = parsePrometheusText(text)
  if (Result.isFailure(r)) throw new Error(r.failure.message)
  return r.success
}

/** Cumulative buckets from `[le, count]` pairs, `+Inf` last. */
const hist = (...pairs: ReadonlyArray<readonly [number, number]>): Histogram => ({
  buckets: pairs.map(([le, count]) => ({ le, count })),
  count: pairs[pairs.length - 1]![1]
})

describe("parsePrometheusText", () => {
  it("reads the formatter's output the container answers: names, labels (escaped values unescaped), counters, gauges and histograms", () => {
    const model = "we\"ird\\model\nid"
    const text = new PrometheusSeries(model)
      .requests(4, "ok", 3)
      .requests(1, "frame_not_found", 700)
      .stage(1, "inference", 12)
      .gauge("ruth_inflight_limit", 9)
      .gauge("ruth_connections", 3)
      .gauge("ruth_model_info", 1, { model_version: "v\"1" })
      .text()
    // The formatter escapes the quote, the backslash and the newline of the label value.
    expect(text).toContain(`model="we\\"ird\\\\model\\nid"`)

    const samples = parsed(text)
    expect(sumBy(samples, "ruth_requests_total", "outcome", { model })).toEqual(new Map([["ok", 4], ["frame_not_found", 1]]))
    expect(sumOf(samples, "ruth_inflight_limit", { model })).toBe(9)
    expect(sumOf(samples, "ruth_connections", { model })).toBe(3)
    expect(samples.find((s) => s.name === "ruth_model_info")?.labels).toEqual({ model, model_version: "v\"1" })

    const duration = histogramOf(samples, "ruth_request_duration_seconds", { model })!
    expect(duration.count).toBe(5)
    expect(duration.buckets[duration.buckets.length - 1]).toEqual({ le: Infinity, count: 5 })
    // Summed over both outcomes: four at 3 ms (bucket le=0.004), one at 700 ms (le=1.024).
    expect(duration.buckets.find((b) => b.le === 0.004)?.count).toBe(4)
    expect(duration.buckets.find((b) => b.le === 0.512)?.count).toBe(4)
    expect(duration.buckets.find((b) => b.le === 1.024)?.count).toBe(5)
    expect(histogramOf(samples, "ruth_stage_duration_seconds", { model, stage: "inference" })?.count).toBe(1)
    expect(histogramOf(samples, "ruth_stage_duration_seconds", { model, stage: "queue" })).toBeUndefined()
  })

  it("takes NaN, ±Inf, exponents, a timestamp and spaces around labels; skips comments and blank lines", () => {
    const samples = parsed([
      "# HELP x something",
      "# TYPE x gauge",
      "",
      "x NaN",
      "y{a=\"1\" , b=\"two words\"} +Inf 1700000000000",
      "z -1.5e-3",
      "w{} -Inf"
    ].join("\n"))
    expect(samples.map((s) => s.name)).toEqual(["x", "y", "z", "w"])
    expect(samples[0]!.value).toBeNaN()
    expect(samples[1]).toEqual({ name: "y", labels: { a: "1", b: "two words" }, value: Infinity })
    expect(samples[2]!.value).toBe(-0.0015)
    expect(samples[3]!.value).toBe(-Infinity)
  })

  it("names the line and the fault of text that is not the format", () => {
    for (const [text, line, reason] of [
      ["ok 1\n{a=\"1\"} 2", 2, "expected a metric name"],
      ["a{b=\"1} 2", 1, "label b: unterminated value"],
      ["a{b=1} 2", 1, "expected =\"…\" after label b"],
      ["a 1\nb\n", 2, "b: expected a value"],
      ["a two", 1, "a: expected a value"]
    ] as const) {
      const r = parsePrometheusText(text)
      expect(Result.isFailure(r), text).toBe(true)
      if (Result.isFailure(r)) {
        expect(r.failure.line, text).toBe(line)
        expect(r.failure.message, text).toContain(reason)
      }
    }
  })
})

describe("histogramQuantile (Prometheus' histogram_quantile)", () => {
  const h = hist([1, 10], [2, 20], [4, 40], [Infinity, 40])

  it("interpolates linearly inside the bucket holding the rank; the first bucket starts at 0", () => {
    expect(histogramQuantile(0.25, h)).toBe(1) // rank 10: the top of the first bucket
    expect(histogramQuantile(0.125, h)).toBe(0.5) // rank 5: halfway through [0, 1]
    expect(histogramQuantile(0.5, h)).toBe(2) // rank 20
    expect(histogramQuantile(0.75, h)).toBe(3) // rank 30: halfway through (2, 4]
    expect(histogramQuantile(0.99, h)).toBeCloseTo(3.96, 12) // rank 39.6: 2 + 2 · 19.6/20
  })

  it("a rank in the +Inf bucket is the highest finite bound; no observations is undefined", () => {
    expect(histogramQuantile(0.99, hist([1, 5], [2, 5], [Infinity, 10]))).toBe(2)
    expect(histogramQuantile(0.5, hist([1, 0], [Infinity, 0]))).toBeUndefined()
    expect(histogramQuantile(0.5, { buckets: [], count: 0 })).toBeUndefined()
  })
})

describe("deltas between two scrapes", () => {
  it("a histogram's delta holds only the interval's observations, so its quantiles are the interval's", () => {
    // 100 slow observations before; 10 fast ones since (the counts are cumulative).
    const before = hist([0.001, 0], [0.01, 0], [1, 100], [Infinity, 100])
    const after = hist([0.001, 10], [0.01, 10], [1, 110], [Infinity, 110])
    const delta = histogramDelta(before, after)
    expect(delta).toEqual(hist([0.001, 10], [0.01, 10], [1, 10], [Infinity, 10]))
    expect(histogramQuantile(0.5, delta)).toBe(0.0005)
    // Since start, the median would be a slow one.
    expect(histogramQuantile(0.5, after)!).toBeGreaterThan(0.01)
  })

  it("a reset (fewer observations than before: the container restarted) counts from zero", () => {
    const before = hist([1, 50], [Infinity, 50])
    const after = hist([1, 3], [Infinity, 4])
    expect(histogramDelta(before, after)).toEqual(after)
    expect(histogramDelta(undefined, after)).toEqual(after)
    expect(counterDelta(50, 4)).toBe(4)
    expect(counterDelta(40, 50)).toBe(10)
    expect(counterDelta(undefined, 7)).toBe(7)
  })
})
