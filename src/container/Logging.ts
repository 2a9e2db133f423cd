/**
 * How a container program logs (`logFormat` / `RUTH_LOG_FORMAT`, `logLevel` / `RUTH_LOG_LEVEL`), as
 * one layer: `launch*`, `ruth-model serve` and `demo` install it (`ModelContainer.withLogging`).
 *
 * - `json`: one object per line — `timestamp` (ISO), `level`, `message`, the log annotations
 *   (`model_id`), a `LogRecord`'s fields, and `cause` (with its stack) when there is one.
 * - `pretty`: Effect's default look, `[12:00:00.000] INFO (#1): message`, without the model id (a
 *   person watching one container knows it; the start-up lines say it).
 *
 * Warnings and errors go to stderr (something for the operator to look at), the rest to stdout.
 */
import { Cause, Console, Effect, Formatter, Layer, Logger, LogLevel, References } from "effect"
import type { LogFormat, LogLevelName } from "../config/RuntimeConfig.js"
import { LogRecord } from "../internal/logRecord.js"
import { roundMs } from "../internal/time.js"

/** The annotation that carries a container program's model id on each of its lines. */
export const MODEL_ID_KEY = "model_id"

/** A setting's level as Effect names it. */
const EFFECT_LEVELS: Record<LogLevelName, LogLevel.LogLevel> = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warning: "Warn",
  error: "Error",
  none: "None"
}

/** Effect's level as a JSON line names it: the setting's spelling. */
const LEVEL_NAMES: Record<LogLevel.LogLevel, string> = {
  All: "all",
  Trace: "trace",
  Debug: "debug",
  Info: "info",
  Warn: "warning",
  Error: "error",
  Fatal: "fatal",
  None: "none"
}

const toStderr = (level: LogLevel.LogLevel): boolean => level === "Warn" || level === "Error" || level === "Fatal"

const partsOf = (message: unknown): ReadonlyArray<unknown> => (Array.isArray(message) ? message : [message])

/** The fiber's console, by level: warnings and errors to stderr. */
const writerFor = (console: Console.Console, level: LogLevel.LogLevel) =>
  toStderr(level) ? console.error.bind(console) : console.log.bind(console)

/** One JSON object per line. Fields never replace `timestamp`, `level` or `message`; annotations win over a record's fields. */
export const jsonLogger: Logger.Logger<unknown, void> = Logger.make(({ cause, date, fiber, logLevel, message }) => {
  const texts: Array<string> = []
  const fields: Array<Readonly<Record<string, unknown>>> = [fiber.getRef(References.CurrentLogAnnotations)]
  for (const part of partsOf(message)) {
    if (part instanceof LogRecord) {
      texts.push(part.message)
      fields.push(part.fields)
    } else {
      texts.push(typeof part === "string" ? part : Formatter.format(part))
    }
  }
  const line: Record<string, unknown> = { timestamp: date.toISOString(), level: LEVEL_NAMES[logLevel], message: texts.join(" ") }
  for (const group of fields) {
    for (const [key, value] of Object.entries(group)) if (!Object.hasOwn(line, key)) line[key] = value
  }
  if (cause.reasons.length > 0) line.cause = Cause.pretty(cause)
  writerFor(fiber.getRef(Console.Console), logLevel)(Formatter.formatJson(line))
})

const pad = (n: number, width = 2) => n.toString().padStart(width, "0")

/** Effect's default logger's look (a record as its text, annotations but the model id as an object), by level to stdout or stderr. */
export const prettyLogger: Logger.Logger<unknown, void> = Logger.make(({ cause, date, fiber, logLevel, message }) => {
  const parts = partsOf(message).map((part) => (part instanceof LogRecord ? part.text : part))
  if (cause.reasons.length > 0) parts.push(Cause.pretty(cause))
  const { [MODEL_ID_KEY]: _, ...annotations } = fiber.getRef(References.CurrentLogAnnotations)
  if (Object.keys(annotations).length > 0) parts.push(annotations)
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
  writerFor(fiber.getRef(Console.Console), logLevel)(`[${time}] ${logLevel.toUpperCase()} (#${fiber.id}):`, ...parts)
})

/** `auto` is pretty when a person may be reading: stdout or stderr is a terminal. */
export const resolveFormat = (format: LogFormat): "json" | "pretty" =>
  format !== "auto" ? format : process.stdout.isTTY === true || process.stderr.isTTY === true ? "pretty" : "json"

export interface LogSettings {
  readonly logFormat: LogFormat
  readonly logLevel: LogLevelName
}

/** The logger and the minimum level for the settings (replacing Effect's default logger). */
export const layer = ({ logFormat, logLevel }: LogSettings): Layer.Layer<never> =>
  Layer.merge(
    Logger.layer([resolveFormat(logFormat) === "json" ? jsonLogger : prettyLogger]),
    Layer.succeed(References.MinimumLogLevel, EFFECT_LEVELS[logLevel])
  )

/** What a per-request line says about its request. */
export interface AnsweredRequest {
  readonly camera_id: string
  readonly frame_id: unknown
  readonly request_id?: string | number | undefined
}

/**
 * The per-request debug line's writer: `request answered` with outcome (`ok` or the wire's error
 * code), server_time_ms, request_id, camera_id, frame_id — or `undefined` when debug lines are off.
 * The level is read once (it is fixed for a container's life), so at info the pipeline only tests
 * for `undefined`; at debug each line runs synchronously, the request's answer never waits for a fiber.
 */
export const answeredLogger: Effect.Effect<
  ((request: AnsweredRequest, serverTimeMs: number, errorCode: string | undefined) => void) | undefined
> = Effect.gen(function*() {
  if (!(yield* LogLevel.isEnabled("Debug"))) return undefined
  const runSync = Effect.runSyncWith(yield* Effect.context<never>())
  return (request, serverTimeMs, errorCode) =>
    runSync(Effect.logDebug(
      new LogRecord("request answered", {
        outcome: errorCode ?? "ok",
        server_time_ms: roundMs(serverTimeMs),
        request_id: request.request_id,
        camera_id: request.camera_id,
        frame_id: request.frame_id
      })
    ))
})
