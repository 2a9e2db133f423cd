/**
 * Runtime settings of a container: where it listens, how much work it takes
 * on, how it reports liveness. Read once from the environment at start-up
 * (`RuntimeConfig.fromEnv`); tests build them directly (`RuntimeConfig.layer`).
 */
import * as path from "node:path"
import { Config, ConfigError, Context, Effect, Either, Layer, Option } from "effect"
import { DEFAULT_MAX_MESSAGE_BYTES } from "../contract/codec.js"

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
  /** Install SIGTERM/SIGINT handlers that drain and stop the container. */
  readonly handleSignals: boolean
}

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
  handleSignals: true
} as const

/** Model ids become file names; keep them to a safe alphabet. */
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export const socketPathFor = (socketDir: string, modelId: string): string =>
  path.join(socketDir, `vas_model_${modelId}.sock`)

/** The inverse of `socketPathFor`: the model id a `vas_model_{id}.sock` path names, if it follows the pattern. */
export const modelIdOfSocketPath = (socketPath: string): Option.Option<string> => {
  const match = /^vas_model_(.+)\.sock$/.exec(path.basename(socketPath))
  return match !== null && MODEL_ID.test(match[1]!) ? Option.some(match[1]!) : Option.none()
}

export const heartbeatPathFor = (heartbeatDir: string, modelId: string): string =>
  path.join(heartbeatDir, `vas_heartbeat_${modelId}.json`)

export type RuntimeSettingsInput = { readonly modelId: string } & Partial<Omit<RuntimeSettings, "modelId">>

/** Fills defaults and checks invariants; the reason names the setting. */
export const makeSettings = (input: RuntimeSettingsInput): Either.Either<RuntimeSettings, string> => {
  const s = { ...defaults, ...input }
  if (!MODEL_ID.test(s.modelId)) {
    return Either.left(`model id '${s.modelId}' must match ${MODEL_ID.source} (it becomes part of file names)`)
  }
  const positive = ["maxInflight", "requestTimeoutMs", "idleTimeoutMs", "maxMessageBytes"] as const
  if (!Number.isInteger(s.framePoolBytes) || s.framePoolBytes < 0) {
    return Either.left(`framePoolBytes must be a non-negative integer, got ${s.framePoolBytes}`)
  }
  for (const key of positive) {
    if (!Number.isInteger(s[key]) || s[key] <= 0) return Either.left(`${key} must be a positive integer, got ${s[key]}`)
  }
  for (const key of ["drainTimeoutMs", "heartbeatIntervalMs"] as const) {
    if (!Number.isInteger(s[key]) || s[key] < 0) return Either.left(`${key} must be a non-negative integer, got ${s[key]}`)
  }
  if (s.maxMessageBytes > 0xffffffff) return Either.left(`maxMessageBytes cannot exceed 4 GiB (u32 length prefix)`)
  if (!Number.isInteger(s.socketMode) || s.socketMode < 0 || s.socketMode > 0o777) {
    return Either.left(`socketMode must be a file mode like 0600, got ${s.socketMode}`)
  }
  if (s.frameRoots.length === 0 || s.frameRoots.some((r) => !path.isAbsolute(r))) {
    return Either.left(`frameRoots must be absolute directories, got ${JSON.stringify(s.frameRoots)}`)
  }
  return Either.right({
    ...s,
    frameRoots: s.frameRoots.map((r) => path.resolve(r)),
    socketPath: input.socketPath ?? socketPathFor(s.socketDir, s.modelId)
  })
}

const octalMode = (name: string) =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) =>
      /^0?[0-7]{3}$/.test(raw.trim())
        ? Either.right(parseInt(raw.trim(), 8))
        : Either.left(ConfigError.InvalidData([], `expected an octal file mode like 0600 or 0660, got '${raw}'`))
    )
  )

const positiveInt = (name: string) =>
  Config.integer(name).pipe(Config.validate({ message: "must be a positive integer", validation: (n) => n > 0 }))
const nonNegativeInt = (name: string) =>
  Config.integer(name).pipe(Config.validate({ message: "must be >= 0", validation: (n) => n >= 0 }))

/** Where an effective setting came from, highest precedence first. */
export type SettingSource = "flag" | "env" | "model.yaml" | "default"

export interface ResolvedSettings {
  readonly settings: RuntimeSettings
  readonly sources: Readonly<Record<keyof RuntimeSettings, SettingSource>>
}

/** The `RUTH_*` environment (plus `VAS_HEARTBEAT_INTERVAL_SECONDS`, as the reference read it). */
const fromEnvironment = Effect.gen(function*() {
  const env = yield* Config.all({
    modelId: Config.option(Config.nonEmptyString("RUTH_MODEL_ID")),
    modelVersion: Config.option(Config.nonEmptyString("RUTH_MODEL_VERSION")),
    socketDir: Config.option(Config.nonEmptyString("RUTH_SOCKET_DIR")),
    socketPath: Config.option(Config.nonEmptyString("RUTH_SOCKET_PATH")),
    socketMode: Config.option(octalMode("RUTH_SOCKET_MODE")),
    frameRoots: Config.option(
      Config.nonEmptyString("RUTH_FRAME_ROOTS").pipe(
        Config.map((raw) => raw.split(/[,:]/).map((r) => r.trim()).filter((r) => r !== ""))
      )
    ),
    maxInflight: Config.option(positiveInt("RUTH_MAX_INFLIGHT")),
    requestTimeoutMs: Config.option(positiveInt("RUTH_REQUEST_TIMEOUT_MS")),
    idleTimeoutMs: Config.option(positiveInt("RUTH_IDLE_TIMEOUT_MS")),
    drainTimeoutMs: Config.option(nonNegativeInt("RUTH_DRAIN_TIMEOUT_MS")),
    maxMessageBytes: Config.option(positiveInt("RUTH_MAX_MESSAGE_BYTES")),
    heartbeatIntervalMs: Config.option(
      Config.number("RUTH_HEARTBEAT_INTERVAL_SECONDS").pipe(
        Config.orElse(() => Config.number("VAS_HEARTBEAT_INTERVAL_SECONDS")),
        Config.validate({ message: "must be >= 0 (0 disables the heartbeat)", validation: (n) => n >= 0 }),
        Config.map((seconds) => Math.round(seconds * 1000))
      )
    ),
    heartbeatDir: Config.option(Config.nonEmptyString("RUTH_HEARTBEAT_DIR")),
    framePoolBytes: Config.option(nonNegativeInt("RUTH_FRAME_POOL_BYTES"))
  })
  const present: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(env) as Array<[string, Option.Option<unknown>]>) {
    if (Option.isSome(value)) present[key] = value.value
  }
  return present as Partial<RuntimeSettingsInput>
})

/**
 * Resolves the settings once, by precedence: `flags` > environment >
 * `modelYaml` > defaults, and says where each value came from.
 */
export const resolveSettings = (
  layers: { readonly flags?: Partial<RuntimeSettingsInput>; readonly modelYaml?: Partial<RuntimeSettingsInput> } = {}
): Effect.Effect<ResolvedSettings, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    const env = yield* fromEnvironment
    const ordered: ReadonlyArray<readonly [SettingSource, Partial<RuntimeSettingsInput>]> = [
      ["flag", layers.flags ?? {}],
      ["env", env],
      ["model.yaml", layers.modelYaml ?? {}]
    ]
    const merged: Record<string, unknown> = {}
    const sources: Record<string, SettingSource> = {}
    for (const key of [...Object.keys(defaults), "modelId", "socketPath"] as Array<keyof RuntimeSettings>) {
      const layer = ordered.find(([, values]) => values[key] !== undefined)
      if (layer !== undefined) {
        merged[key] = layer[1][key]
        sources[key] = layer[0]
      } else {
        sources[key] = "default"
      }
    }
    if (merged.modelId === undefined) {
      return yield* Effect.fail(
        ConfigError.MissingData(["RUTH_MODEL_ID"], "RUTH_MODEL_ID is required: the id of the model this container serves")
      )
    }
    const settings = yield* Either.match(makeSettings({ ...merged, modelId: String(merged.modelId) }), {
      onLeft: (reason) => Effect.fail(ConfigError.InvalidData([], reason)),
      onRight: Effect.succeed
    })
    if (sources.socketPath === "default") sources.socketPath = sources.socketDir!
    return { settings, sources: sources as Record<keyof RuntimeSettings, SettingSource> }
  })

/** The effective settings, one `key=value (source)` per line, for the start-up log. */
export const describeSettings = ({ settings, sources }: ResolvedSettings): string =>
  (Object.keys(sources) as Array<keyof RuntimeSettings>)
    .map((key) => {
      const value = settings[key]
      const shown = key === "socketMode" ? `0${(value as number).toString(8)}` : JSON.stringify(value)
      return `  ${key}=${shown} (${sources[key]})`
    })
    .join("\n")

export class RuntimeConfig extends Context.Tag("@ruth-ai/model-runtime/RuntimeConfig")<RuntimeConfig, RuntimeSettings>() {
  /** Settings from the environment, `flags` winning over it; validated once, errors name the key. */
  static readonly fromEnv = (flags: Partial<RuntimeSettingsInput> = {}) =>
    Layer.effect(RuntimeConfig, Effect.map(resolveSettings({ flags }), (r) => r.settings))

  /** Settings given directly (tests, embedding); defaults fill the rest. */
  static readonly layer = (input: RuntimeSettingsInput) =>
    Layer.effect(
      RuntimeConfig,
      Either.match(makeSettings(input), {
        onLeft: (reason) => Effect.fail(ConfigError.InvalidData([], reason)),
        onRight: Effect.succeed
      })
    )
}
