/**
 * Runtime settings of a container: where it listens, how much work it takes
 * on, how it reports liveness. Every value, from any source (flag, environment,
 * model.yaml, code), is checked by one rule per setting (`specs`), and a
 * problem names the key as its source spells it and the source. The service
 * and its layers are in RuntimeConfig.ts.
 */
import * as path from "node:path"
import { Config, ConfigProvider, Data, Effect, Layer, Option, Result } from "effect"
import { DEFAULT_MAX_MESSAGE_BYTES } from "../contract/codec.js"
import { LogRecord } from "../internal/logRecord.js"

export interface RuntimeSettings {
  /** The model this container serves; requests naming another get MODEL_MISMATCH. */
  readonly modelId: string
  /** Reported by health; from model.yaml when there is one. */
  readonly modelVersion: string
  readonly socketDir: string
  /** `{socketDir}/vas_model_{modelId}.sock` unless set explicitly. */
  readonly socketPath: string
  /** File mode of the socket, e.g. 0o600 (default) or 0o660 for a shared group. */
  readonly socketMode: number
  /** Frames may only be read below these directories (after resolving `..` and symlinks). */
  readonly frameRoots: ReadonlyArray<string>
  readonly maxInflight: number
  readonly requestTimeoutMs: number
  readonly idleTimeoutMs: number
  readonly drainTimeoutMs: number
  readonly maxMessageBytes: number
  /** 0 disables the heartbeat file. */
  readonly heartbeatIntervalMs: number
  readonly heartbeatDir: string
  /** Bytes of free frame buffers kept for reuse. */
  readonly framePoolBytes: number
  /**
   * Once the container is stopping (a signal through `NodeRuntime.runMain`, or `shutdown`), a further
   * SIGTERM/SIGINT exits at once (128 + its number); false: the container never touches signals.
   */
  readonly handleSignals: boolean
  /** Freshness budget: a frame older than this (by its `timestamp`) when the model could start on it is FRAME_EXPIRED; 0 = off. */
  readonly maxFrameAgeMs: number
  /** `latest`: a newer frame of a camera answers its waiting older one SUPERSEDED; `all`: every frame waits its turn. */
  readonly perCamera: PerCamera
  /** Model runs at once: the built-in ONNX backend opens this many sessions (streams), its threads shared out among them. */
  readonly streams: number
  /** Frames of waiting requests run as one batch, at most this many (1 = no batching). */
  readonly maxBatch: number
  /** How long a batch may wait for more frames beyond the oldest, ms; 0 = only what already waits. */
  readonly maxQueueDelayMs: number
  /** `host:port` where `GET /metrics` serves the Prometheus text; "" (default): no endpoint. */
  readonly metricsAddr: string
  /** 0 (default): metrics carry no `camera` label. N > 0: requests and frame ages by camera, for the first N cameras (the rest `_other`). */
  readonly metricsCameras: number
  /** `json`: one JSON object per log line; `pretty`: text for a person; `auto`: pretty when stdout or stderr is a terminal, else JSON. */
  readonly logFormat: LogFormat
  /** The least severe log lines written; `debug` adds one line per answered request. */
  readonly logLevel: LogLevelName
}

export const PER_CAMERA = ["all", "latest"] as const
export type PerCamera = (typeof PER_CAMERA)[number]

export const LOG_FORMATS = ["json", "pretty", "auto"] as const
export type LogFormat = (typeof LOG_FORMATS)[number]

/** Most to least verbose; `none` writes nothing. */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "none"] as const
export type LogLevelName = (typeof LOG_LEVELS)[number]

export const defaults = {
  modelVersion: "unknown",
  socketDir: "/tmp",
  socketMode: 0o600,
  frameRoots: ["/dev/shm", "/tmp"] as ReadonlyArray<string>,
  maxInflight: 64,
  requestTimeoutMs: 5_000,
  idleTimeoutMs: 60_000,
  drainTimeoutMs: 10_000,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  heartbeatIntervalMs: 5_000,
  heartbeatDir: "/tmp",
  framePoolBytes: 256 * 1024 * 1024,
  handleSignals: true,
  maxFrameAgeMs: 0,
  perCamera: "all",
  streams: 1,
  maxBatch: 1,
  maxQueueDelayMs: 0,
  metricsAddr: "",
  metricsCameras: 0,
  logFormat: "auto",
  logLevel: "info"
} as const

/** Model ids become file names; keep them to a safe alphabet (model.yaml's `model_id` uses the same). */
export const MODEL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export const socketPathFor = (socketDir: string, modelId: string): string =>
  path.join(socketDir, `vas_model_${modelId}.sock`)

/** The inverse of `socketPathFor`: the model id a `vas_model_{id}.sock` path names, if it follows the pattern. */
export const modelIdOfSocketPath = (socketPath: string): Option.Option<string> => {
  const match = /^vas_model_(.+)\.sock$/.exec(path.basename(socketPath))
  return match !== null && MODEL_ID_PATTERN.test(match[1]!) ? Option.some(match[1]!) : Option.none()
}

export const heartbeatPathFor = (heartbeatDir: string, modelId: string): string =>
  path.join(heartbeatDir, `vas_heartbeat_${modelId}.json`)

export type RuntimeSettingsInput = { readonly modelId: string } & Partial<Omit<RuntimeSettings, "modelId">>

/** A value as it appears in a reason: `"abc"` for text, `-3` for a number. */
export const showValue = (u: unknown): string => {
  if (u === undefined) return "nothing"
  if (u === null) return "null (empty value)"
  if (typeof u === "string") return JSON.stringify(u)
  if (typeof u === "number" || typeof u === "boolean" || typeof u === "bigint") return String(u)
  if (Array.isArray(u) || typeof u === "object") {
    const text = Array.isArray(u) ? JSON.stringify(u) : "a mapping"
    return text.length > 60 ? `${text.slice(0, 57)}...` : text
  }
  return typeof u
}

// ---------------------------------------------------------------------------
// Rules: one per kind of value, each reading the raw value of any source
// (environment text, a flag's number, a model.yaml value).
// ---------------------------------------------------------------------------

type Rule<A> = (raw: unknown) => Result.Result<A, string>

const rule = <A>(what: string, parse: (raw: unknown) => A | undefined): Rule<A> => (raw) => {
  const value = parse(raw)
  return value === undefined ? Result.fail(`must be ${what}, got ${showValue(raw)}`) : Result.succeed(value)
}

const integerOf = (raw: unknown): number | undefined =>
  typeof raw === "number"
    ? Number.isInteger(raw) ? raw : undefined
    : typeof raw === "string" && /^\s*[+-]?\d+\s*$/.test(raw)
    ? Number(raw)
    : undefined

const numberOf = (raw: unknown): number | undefined =>
  typeof raw === "number"
    ? Number.isFinite(raw) ? raw : undefined
    : typeof raw === "string" && raw.trim() !== "" && Number.isFinite(Number(raw))
    ? Number(raw)
    : undefined

const positiveInt = rule("a positive integer", (raw) => {
  const n = integerOf(raw)
  return n !== undefined && n > 0 ? n : undefined
})
const nonNegativeInt = rule("a non-negative integer", (raw) => {
  const n = integerOf(raw)
  return n !== undefined && n >= 0 ? n : undefined
})
const messageBytes = rule("a positive integer up to 4294967295 (the u32 length prefix)", (raw) => {
  const n = integerOf(raw)
  return n !== undefined && n > 0 && n <= 0xffffffff ? n : undefined
})
const text = rule("a non-empty string", (raw) => (typeof raw === "string" && raw.trim() !== "" ? raw : undefined))
const modelId = rule(
  "letters, digits, '.', '_' or '-' (it becomes part of file names)",
  (raw) => (typeof raw === "string" && MODEL_ID_PATTERN.test(raw) ? raw : undefined)
)
const fileMode = rule("an octal file mode like 0600 or 0660", (raw) =>
  typeof raw === "number"
    ? Number.isInteger(raw) && raw >= 0 && raw <= 0o777 ? raw : undefined
    : typeof raw === "string" && /^0?[0-7]{3}$/.test(raw.trim())
    ? parseInt(raw.trim(), 8)
    : undefined)
const directories = rule("absolute directories (separated by ',' or ':')", (raw) => {
  const list = typeof raw === "string"
    ? raw.split(/[,:]/).map((r) => r.trim()).filter((r) => r !== "")
    : Array.isArray(raw) && raw.every((r): r is string => typeof r === "string")
    ? raw
    : undefined
  return list !== undefined && list.length > 0 && list.every((r) => path.isAbsolute(r))
    ? list.map((r) => path.resolve(r))
    : undefined
})
const heartbeatSeconds = rule("a number of seconds >= 0 (0 disables the heartbeat)", (raw) => {
  const n = numberOf(raw)
  return n !== undefined && n >= 0 ? Math.round(n * 1000) : undefined
})
const perCamera = rule(
  `one of ${PER_CAMERA.join(", ")}`,
  (raw) => PER_CAMERA.find((p) => typeof raw === "string" && raw.trim() === p)
)
/** `host:port` (`[::1]:9464` for IPv6; port 0 picks a free one), split; "" turns the endpoint off. */
export const parseListenAddress = (raw: string): { readonly host: string; readonly port: number } | undefined => {
  const m = /^\[?([^\[\]]+?)\]?:(\d{1,5})$/.exec(raw.trim())
  return m !== null && Number(m[2]) <= 65535 ? { host: m[1]!, port: Number(m[2]) } : undefined
}
const listenAddress = rule("host:port, e.g. 127.0.0.1:9464 (or empty for none)", (raw) =>
  typeof raw === "string" && (raw.trim() === "" || parseListenAddress(raw) !== undefined) ? raw.trim() : undefined)
const logFormat = rule(
  `one of ${LOG_FORMATS.join(", ")}`,
  (raw) => LOG_FORMATS.find((f) => typeof raw === "string" && raw.trim().toLowerCase() === f)
)
const logLevel = rule(`one of ${LOG_LEVELS.join(", ")}`, (raw) => {
  const name = typeof raw === "string" ? raw.trim().toLowerCase() : undefined
  return name === "warn" ? "warning" : LOG_LEVELS.find((l) => name === l)
})
const bool = rule("true or false", (raw) => (typeof raw === "boolean" ? raw : undefined))

interface Spec<A> {
  /** Environment variables, first found wins. */
  readonly env?: ReadonlyArray<string>
  readonly check: Rule<A>
  /** When the variable's unit differs from the setting's (seconds vs ms). */
  readonly checkEnv?: Rule<A>
}

/** Every setting: its environment variable and its rule. The one place a value is validated. */
const specs: { readonly [K in keyof RuntimeSettings]: Spec<RuntimeSettings[K]> } = {
  modelId: { env: ["RUTH_MODEL_ID"], check: modelId },
  modelVersion: { env: ["RUTH_MODEL_VERSION"], check: text },
  socketDir: { env: ["RUTH_SOCKET_DIR"], check: text },
  socketPath: { env: ["RUTH_SOCKET_PATH"], check: text },
  socketMode: { env: ["RUTH_SOCKET_MODE"], check: fileMode },
  frameRoots: { env: ["RUTH_FRAME_ROOTS"], check: directories },
  maxInflight: { env: ["RUTH_MAX_INFLIGHT"], check: positiveInt },
  requestTimeoutMs: { env: ["RUTH_REQUEST_TIMEOUT_MS"], check: positiveInt },
  idleTimeoutMs: { env: ["RUTH_IDLE_TIMEOUT_MS"], check: positiveInt },
  drainTimeoutMs: { env: ["RUTH_DRAIN_TIMEOUT_MS"], check: nonNegativeInt },
  maxMessageBytes: { env: ["RUTH_MAX_MESSAGE_BYTES"], check: messageBytes },
  heartbeatIntervalMs: {
    env: ["RUTH_HEARTBEAT_INTERVAL_SECONDS", "VAS_HEARTBEAT_INTERVAL_SECONDS"],
    check: nonNegativeInt,
    checkEnv: heartbeatSeconds
  },
  heartbeatDir: { env: ["RUTH_HEARTBEAT_DIR"], check: text },
  framePoolBytes: { env: ["RUTH_FRAME_POOL_BYTES"], check: nonNegativeInt },
  handleSignals: { check: bool },
  maxFrameAgeMs: { env: ["RUTH_MAX_FRAME_AGE_MS"], check: nonNegativeInt },
  perCamera: { env: ["RUTH_PER_CAMERA"], check: perCamera },
  streams: { env: ["RUTH_STREAMS"], check: positiveInt },
  maxBatch: { env: ["RUTH_MAX_BATCH"], check: positiveInt },
  maxQueueDelayMs: { env: ["RUTH_MAX_QUEUE_DELAY_MS"], check: nonNegativeInt },
  metricsAddr: { env: ["RUTH_METRICS_ADDR"], check: listenAddress },
  metricsCameras: { env: ["RUTH_METRICS_CAMERAS"], check: nonNegativeInt },
  logFormat: { env: ["RUTH_LOG_FORMAT"], check: logFormat },
  logLevel: { env: ["RUTH_LOG_LEVEL"], check: logLevel }
}

const settingKeys = Object.keys(specs) as ReadonlyArray<keyof RuntimeSettings>

/** The environment variable a setting is read from (the first, where it has several), if any. */
export const variableOf = (key: keyof RuntimeSettings): string | undefined => specs[key].env?.[0]

// ---------------------------------------------------------------------------
// Sources and their errors
// ---------------------------------------------------------------------------

/** Where an effective setting came from, highest precedence first. */
export type SettingSource = "flag" | "env" | "model.yaml" | "default"

/** One invalid value, named as its source spells it. */
export interface SettingProblem {
  /** `--max-inflight`, `RUTH_MAX_INFLIGHT`, `limits.max_inflight`, or an option key like `maxInflight`. */
  readonly name: string
  /** The source as a person reads it: `flag`, `option`, `environment`, `model.yaml /path/model.yaml`. */
  readonly where: string
  readonly source: SettingSource
  /** What is wrong, e.g. `must be a positive integer, got "abc"`. */
  readonly reason: string
}

/** `invalid RUTH_MAX_INFLIGHT (environment): must be a positive integer, got "abc"` */
export const formatSettingProblem = (p: Pick<SettingProblem, "name" | "where" | "reason">): string =>
  `invalid ${p.name} (${p.where}): ${p.reason}`

/** Settings that cannot be used, every problem at once. */
export class InvalidSettings extends Data.TaggedError("InvalidSettings")<{
  readonly problems: ReadonlyArray<SettingProblem>
}> {
  override get message() {
    return this.problems.map(formatSettingProblem).join("; ")
  }
}

/** No model id from any source. `flag` is how the caller's flag is spelled, when it has one. */
export class MissingModelId extends Data.TaggedError("MissingModelId")<{ readonly flag: string | undefined }> {
  override get message() {
    return this.flag !== undefined
      ? `give ${this.flag} ID (or set RUTH_MODEL_ID)`
      : "RUTH_MODEL_ID is required: the id of the model this container serves"
  }
}

export type SettingsError = InvalidSettings | MissingModelId

/** Raw values of one source, keyed by setting, with the names that source gives them. */
interface SettingsLayer {
  readonly source: Exclude<SettingSource, "default">
  readonly where: string
  readonly values: Readonly<Partial<Record<keyof RuntimeSettings, unknown>>>
  readonly names: Readonly<Partial<Record<keyof RuntimeSettings, string>>>
}

/** How a caller spells its options: the CLI passes `{ maxInflight: "--max-inflight", ... }`. */
export type FlagNames = Readonly<Partial<Record<keyof RuntimeSettings, string>>>

/**
 * Options given in code or as flags. Without `names` they are code options, named by key
 * (`invalid maxInflight (option)`); with them, flags (`invalid --max-inflight (flag)`).
 */
const optionLayer = (values: Partial<RuntimeSettingsInput>, names?: FlagNames): SettingsLayer => ({
  source: "flag",
  where: names === undefined ? "option" : "flag",
  values,
  names: names ?? {}
})

/** Values from a model.yaml, named by their keys there (`limits.max_inflight`). */
export interface ModelYamlSettings {
  readonly file: string
  readonly values: Partial<RuntimeSettingsInput>
  readonly names: FlagNames
}

/**
 * One variable of the environment (through `Config`), trimmed; missing, empty or blank is `None`.
 * A string read cannot be invalid: only a broken provider fails, and then the variable is not there.
 */
export const environmentVariable = (name: string): Effect.Effect<Option.Option<string>> =>
  Config.option(Config.String(name)).pipe(
    Effect.map(Option.flatMap((v) => (v.trim() === "" ? Option.none() : Option.some(v.trim())))),
    Effect.orElseSucceed(() => Option.none<string>())
  )

/** The `RUTH_*` environment (plus `VAS_HEARTBEAT_INTERVAL_SECONDS`, as the reference read it), unparsed. */
const environmentLayer: Effect.Effect<SettingsLayer> = Effect.gen(function*() {
  const values: Partial<Record<keyof RuntimeSettings, unknown>> = {}
  const names: Partial<Record<keyof RuntimeSettings, string>> = {}
  for (const key of settingKeys) {
    for (const name of specs[key].env ?? []) {
      // A string read cannot be invalid; only a missing variable fails, which `option` turns into None.
      // Effect 4's environment provider reads an empty variable as missing unless told otherwise
      // (`ConfigProvider.fromEnv({ preserveEmptyStrings: true })`); the rules here judge what is read.
      const raw = yield* Config.option(Config.String(name)).pipe(Effect.orElseSucceed(() => Option.none<string>()))
      if (Option.isSome(raw)) {
        values[key] = raw.value
        names[key] = name
        break
      }
    }
  }
  return { source: "env", where: "environment", values, names }
})

/** Checks every value a layer gives; all problems at once. */
const checkLayer = (
  layer: SettingsLayer
): Result.Result<Partial<Record<keyof RuntimeSettings, unknown>>, ReadonlyArray<SettingProblem>> => {
  const checked: Partial<Record<keyof RuntimeSettings, unknown>> = {}
  const problems: Array<SettingProblem> = []
  for (const key of settingKeys) {
    const raw = layer.values[key]
    if (raw === undefined) continue
    const spec: Spec<unknown> = specs[key]
    const result = (layer.source === "env" ? spec.checkEnv ?? spec.check : spec.check)(raw)
    if (Result.isSuccess(result)) checked[key] = result.success
    else problems.push({ name: layer.names[key] ?? key, where: layer.where, source: layer.source, reason: result.failure })
  }
  return problems.length === 0 ? Result.succeed(checked) : Result.fail(problems)
}

/** Checks the layers (highest precedence first) and merges them over the defaults. */
const merge = (
  layers: ReadonlyArray<SettingsLayer>,
  flagForModelId: string | undefined
): Result.Result<ResolvedSettings, SettingsError> => {
  const checked = layers.map((layer) => [layer.source, checkLayer(layer)] as const)
  const problems = checked.flatMap(([, result]) => (Result.isFailure(result) ? result.failure : []))
  if (problems.length > 0) return Result.fail(new InvalidSettings({ problems }))
  const merged: Record<string, unknown> = { ...defaults }
  const sources: Record<string, SettingSource> = {}
  for (const key of settingKeys) {
    const hit = checked.find(([, result]) => Result.isSuccess(result) && result.success[key] !== undefined)
    sources[key] = hit?.[0] ?? "default"
    if (hit !== undefined && Result.isSuccess(hit[1])) merged[key] = hit[1].success[key]
  }
  if (merged.modelId === undefined) return Result.fail(new MissingModelId({ flag: flagForModelId }))
  if (sources.socketPath === "default") {
    merged.socketPath = socketPathFor(merged.socketDir as string, merged.modelId as string)
    sources.socketPath = sources.socketDir!
  }
  return Result.succeed({
    settings: merged as unknown as RuntimeSettings,
    sources: sources as Record<keyof RuntimeSettings, SettingSource>
  })
}

/** Fills defaults and checks every value given in code; problems name the option key. */
export const makeSettings = (input: RuntimeSettingsInput): Result.Result<RuntimeSettings, SettingsError> =>
  Result.map(merge([optionLayer(input)], undefined), (r) => r.settings)

export interface ResolvedSettings {
  readonly settings: RuntimeSettings
  readonly sources: Readonly<Record<keyof RuntimeSettings, SettingSource>>
}

/** What `resolveSettings` takes besides the environment. */
export interface SettingsLayers {
  /** Settings that win over the environment (flags, or options in code). */
  readonly flags?: Partial<RuntimeSettingsInput>
  /** How the caller spells them (the CLI: `--max-inflight`); absent for options in code. */
  readonly flagNames?: FlagNames
  /** Settings from the model's model.yaml, below the environment. */
  readonly modelYaml?: ModelYamlSettings
}

/**
 * Resolves the settings once, by precedence: `flags` > environment >
 * `modelYaml` > defaults, and says where each value came from. Every value
 * given by any source is checked here; a problem names the key as its
 * source spells it and the source.
 */
export const resolveSettings = (layers: SettingsLayers = {}): Effect.Effect<ResolvedSettings, SettingsError> =>
  Effect.flatMap(environmentLayer, (env) =>
    // A Result is no Effect in Effect 4 (Either was): lift it.
    Effect.fromResult(merge(
      [
        optionLayer(layers.flags ?? {}, layers.flagNames),
        env,
        ...(layers.modelYaml === undefined ? [] : [{
          source: "model.yaml" as const,
          where: `model.yaml ${layers.modelYaml.file}`,
          values: layers.modelYaml.values,
          names: layers.modelYaml.names
        }])
      ],
      layers.flagNames?.modelId
    )))

/** What the flags and the environment alone settle, before a model.yaml is read (which cannot set these). */
export interface EarlySettings {
  /** The model to select, when given. */
  readonly modelId: string | undefined
  readonly logFormat: LogFormat
  readonly logLevel: LogLevelName
}

/**
 * The flags and the environment alone, checked (before a model.yaml is read): the model id
 * to select and how to log, or the problems with what was given.
 */
export const checkFlagsAndEnvironment = (
  layers: Pick<SettingsLayers, "flags" | "flagNames">
): Effect.Effect<EarlySettings, InvalidSettings> =>
  Effect.flatMap(environmentLayer, (env) => {
    const checked = [optionLayer(layers.flags ?? {}, layers.flagNames), env].map(checkLayer)
    const problems = checked.flatMap((r) => (Result.isFailure(r) ? r.failure : []))
    if (problems.length > 0) return Effect.fail(new InvalidSettings({ problems }))
    const first = <K extends keyof EarlySettings>(key: K): RuntimeSettings[K] | undefined => {
      for (const r of checked) if (Result.isSuccess(r) && r.success[key] !== undefined) return r.success[key] as RuntimeSettings[K]
      return undefined
    }
    return Effect.succeed({
      modelId: first("modelId"),
      logFormat: first("logFormat") ?? defaults.logFormat,
      logLevel: first("logLevel") ?? defaults.logLevel
    })
  })

/** The socket's file mode as a person writes it: `0600`. */
const octal = (mode: number): string => `0${mode.toString(8)}`

/** The effective settings, one `key=value (source)` per line, for the start-up log. */
export const describeSettings = ({ settings, sources }: ResolvedSettings): string =>
  (Object.keys(sources) as Array<keyof RuntimeSettings>)
    .map((key) => {
      const value = settings[key]
      const shown = key === "socketMode" ? octal(value as number) : JSON.stringify(value)
      return `  ${key}=${shown} (${sources[key]})`
    })
    .join("\n")

/**
 * The start-up record: the effective settings, logged once. As JSON, one record with the values
 * under `config` and where each came from under `config_sources`; as text, `describeSettings`.
 */
export const settingsRecord = (resolved: ResolvedSettings): LogRecord => {
  const config: Record<string, unknown> = {}
  for (const key of Object.keys(resolved.sources) as Array<keyof RuntimeSettings>) {
    const value = resolved.settings[key]
    config[key] = key === "socketMode" ? octal(value as number) : value
  }
  const message = "effective configuration (flag > env > model.yaml > default)"
  return new LogRecord(message, { config, config_sources: resolved.sources }, () => `${message}:\n${describeSettings(resolved)}`)
}

/**
 * A program's environment as Effect 3 read it, and as the runtime and the CLI read it: an empty
 * variable is "", judged by its setting's rule (`invalid RUTH_MAX_INFLIGHT (environment): … got ""`),
 * not taken for unset (Effect 4's default). Tests provide their own `ConfigProvider` instead.
 */
export const programEnvironment: Layer.Layer<never> = ConfigProvider.layer(
  // Read when the layer is built, not when this module is loaded.
  Effect.sync(() => ConfigProvider.fromEnv({ preserveEmptyStrings: true }))
)
