/**
 * The container's log lines: the JSON and pretty loggers (which stream a line goes to), the log
 * settings' rules, and the per-request debug line written by the pipeline — synchronously, with the
 * fast path still answered without a fiber, and nothing at all at info.
 */
import * as util from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Console, Effect, Layer, Logger, References, Result } from "effect"
import { makeSettings, resolveSettings, type RuntimeSettings } from "../../src/config/RuntimeConfig.js"
import type { DecodedEvent } from "../../src/contract/codec.js"
import { FrameReader } from "../../src/frames/FrameReader.js"
import { InferenceHandler } from "../../src/inference/InferenceHandler.js"
import * as Logging from "../../src/container/Logging.js"
import { ContainerState } from "../../src/container/Metrics.js"
import { makePipeline } from "../../src/container/pipeline.js"
import type { Reply } from "../../src/ipc/IpcServer.js"
import { LogRecord } from "../../src/internal/logRecord.js"
import { memoryFrame, request } from "../support/harness.js"

/** A console that keeps what was written to stdout (`log`) and stderr (`error`). */
const capturedConsole = () => {
  const out: Array<string> = []
  const err: Array<string> = []
  const console = new Proxy(globalThis.console, {
    get: (target, key) =>
      key === "log" ? (...args: Array<unknown>) => void out.push(util.format(...args))
      : key === "error" ? (...args: Array<unknown>) => void err.push(util.format(...args))
      : Reflect.get(target, key)
  }) as Console.Console
  return { out, err, console }
}

const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env, preserveEmptyStrings: true }))

describe("the log settings", () => {
  it.effect("RUTH_LOG_FORMAT and RUTH_LOG_LEVEL: defaults auto and info, `warn` is `warning`, a bad value names the variable", () =>
    Effect.gen(function*() {
      const defaults = yield* resolveSettings({ flags: { modelId: "m" } }).pipe(withEnv({}))
      expect(defaults.settings).toMatchObject({ logFormat: "auto", logLevel: "info" })
      const set = yield* resolveSettings({ flags: { modelId: "m" } }).pipe(withEnv({ RUTH_LOG_FORMAT: "JSON", RUTH_LOG_LEVEL: "warn" }))
      expect(set.settings).toMatchObject({ logFormat: "json", logLevel: "warning" })
      expect(set.sources).toMatchObject({ logFormat: "env", logLevel: "env" })
      const bad = yield* Effect.flip(resolveSettings({ flags: { modelId: "m" } }).pipe(withEnv({ RUTH_LOG_FORMAT: "xml" })))
      expect(bad.message).toBe(`invalid RUTH_LOG_FORMAT (environment): must be one of json, pretty, auto, got "xml"`)
      const level = yield* Effect.flip(resolveSettings({ flags: { modelId: "m" } }).pipe(withEnv({ RUTH_LOG_LEVEL: "loud" })))
      expect(level.message).toBe(
        `invalid RUTH_LOG_LEVEL (environment): must be one of trace, debug, info, warning, error, none, got "loud"`
      )
    }))
})

describe("the loggers", () => {
  const logAll = Effect.gen(function*() {
    yield* Effect.logDebug("a debug line")
    yield* Effect.logInfo(new LogRecord("a record", { count: 2, nested: { a: 1 } }))
    yield* Effect.logWarning("a warning")
    yield* Effect.logError("an error", Cause.die(new Error("boom")))
  }).pipe(Effect.annotateLogs({ model_id: "m", stage: "warm-up" }))

  it.effect("json: one object per line with timestamp, level, message, model_id and a record's fields; warnings and errors on stderr", () =>
    Effect.gen(function*() {
      const { out, err, console } = capturedConsole()
      yield* logAll.pipe(
        Effect.provide(Logging.layer({ logFormat: "json", logLevel: "debug" })),
        Effect.provideService(Console.Console, console)
      )
      const stdout = out.map((l) => JSON.parse(l))
      const stderr = err.map((l) => JSON.parse(l))
      for (const line of [...stdout, ...stderr]) {
        expect(new Date(line.timestamp).toISOString()).toBe(line.timestamp)
        expect(line).toMatchObject({ model_id: "m", stage: "warm-up" })
      }
      expect(stdout).toMatchObject([
        { level: "debug", message: "a debug line" },
        { level: "info", message: "a record", count: 2, nested: { a: 1 } }
      ])
      expect(stderr).toMatchObject([{ level: "warning", message: "a warning" }, { level: "error", message: "an error" }])
      // The cause, with its stack, stays in the log line.
      expect(stderr[1].cause).toContain("boom")
      expect(stderr[1].cause).toMatch(/\n\s+at /)
    }))

  it.effect("pretty: Effect's default look, annotations but the model id; the level decides the stream; below the minimum level nothing", () =>
    Effect.gen(function*() {
      const { out, err, console } = capturedConsole()
      yield* logAll.pipe(
        Effect.provide(Logging.layer({ logFormat: "pretty", logLevel: "info" })),
        Effect.provideService(Console.Console, console)
      )
      expect(out).toHaveLength(1)
      expect(out[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(#\d+\): a record count=2 nested=\{"a":1\} \{ stage: 'warm-up' \}$/)
      expect(err).toHaveLength(2)
      expect(err[0]).toMatch(/^\[[\d:.]+\] WARN \(#\d+\): a warning/)
      expect(err[1]).toMatch(/^\[[\d:.]+\] ERROR \(#\d+\): an error/)
    }))

  it.effect("level none writes nothing", () =>
    Effect.gen(function*() {
      const { out, err, console } = capturedConsole()
      yield* logAll.pipe(
        Effect.provide(Logging.layer({ logFormat: "json", logLevel: "none" })),
        Effect.provideService(Console.Console, console)
      )
      expect([...out, ...err]).toEqual([])
    }))
})

describe("the per-request line (debug level)", () => {
  const frames = new Map([["cam1/latest", memoryFrame()]])
  const settings: RuntimeSettings = Result.getOrThrow(makeSettings({ modelId: "test-model", heartbeatIntervalMs: 0 }))
  const event = (body: unknown): DecodedEvent => ({ _tag: "Message", payload: new TextEncoder().encode(JSON.stringify(body)) })

  /** The pipeline with a handler that answers at once, its log lines captured; `handle` called directly. */
  const pipelineAt = (logLevel: "debug" | "info") =>
    Effect.gen(function*() {
      const lines: Array<{ readonly logLevel: string; readonly part: unknown }> = []
      const capture = Logger.make(({ message, logLevel }) => {
        for (const part of Array.isArray(message) ? message : [message]) lines.push({ logLevel, part })
      })
      const state = new ContainerState()
      state.status = "ready"
      const pipeline = yield* makePipeline({ settings, state }).pipe(
        Effect.provide(Layer.mergeAll(
          FrameReader.layerMemory(frames),
          Layer.succeed(InferenceHandler, InferenceHandler.of({ infer: () => Effect.succeed({ detections: [] }) })),
          Logger.layer([capture]),
          Layer.succeed(References.MinimumLogLevel, logLevel === "debug" ? "Debug" : "Info")
        ))
      )
      return { pipeline, lines }
    })

  it.effect("at debug: one line per answered request, with outcome, server time, request, camera and frame ids; still no fiber", () =>
    Effect.gen(function*() {
      const { lines, pipeline } = yield* pipelineAt("debug")
      const ok = pipeline.handle(event(request("cam1/latest", { request_id: "r-1", camera_id: "cam-a", frame_metadata: { width: 64, height: 48, format: "NV12", frame_id: 42 } })))
      // The fast path answers synchronously: a reply, not an effect.
      expect(Effect.isEffect(ok)).toBe(false)
      expect(JSON.parse(new TextDecoder().decode((ok as Reply).bytes.subarray(4)))).toMatchObject({ error: null })
      pipeline.handle(event(request("cam9/none", { request_id: 7, camera_id: "cam-b" })))
      pipeline.handle(event({ op: "health" }))
      const records: Array<Record<string, unknown>> = lines.flatMap(({ logLevel, part }) =>
        part instanceof LogRecord ? [{ logLevel, message: part.message, ...part.fields }] : []
      )
      expect(records).toMatchObject([
        { logLevel: "Debug", message: "request answered", outcome: "ok", request_id: "r-1", camera_id: "cam-a", frame_id: 42 },
        { logLevel: "Debug", message: "request answered", outcome: "FRAME_NOT_FOUND", request_id: 7, camera_id: "cam-b", frame_id: 1 }
      ])
      for (const r of records) expect(typeof r.server_time_ms).toBe("number")
    }))

  it.effect("at info: no line, and the fast path is answered without a fiber", () =>
    Effect.gen(function*() {
      const { lines, pipeline } = yield* pipelineAt("info")
      const ok = pipeline.handle(event(request("cam1/latest")))
      expect(Effect.isEffect(ok)).toBe(false)
      expect(JSON.parse(new TextDecoder().decode((ok as Reply).bytes.subarray(4)))).toMatchObject({ error: null })
      pipeline.handle(event(request("cam9/none")))
      expect(lines).toEqual([])
    }))
})
