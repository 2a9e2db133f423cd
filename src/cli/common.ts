/** Pieces shared by the `ruth-model` subcommands. */
import * as fs from "node:fs"
import * as path from "node:path"
import { Flag } from "effect/cli"
import { Data, Effect, Option } from "effect"
import { defaults, environmentVariable, modelIdOfSocketPath, type RuntimeSettings, socketPathFor, variableOf } from "../config/RuntimeConfig.js"
import { imageToNv12 } from "../frames/image.js"
import { publishExportDir, publishRaw, sharedMemoryDir } from "../frames/publish.js"
import { type ClientError, makeClient } from "../ipc/ModelClient.js"

/** The exit codes of every `ruth-model` command (README, "The `ruth-model` CLI"). */
export const ExitCode = {
  /** Success: ready, answered, ran to its end, valid, stopped cleanly. */
  ok: 0,
  /** The command ran and the answer is negative (not ready, an error response, invalid, could not start or write). */
  negative: 1,
  /** A bad or missing flag or value. */
  usage: 2,
  /** The container could not be reached or did not answer. */
  unreachable: 3,
  /** Ctrl+C (SIGINT) during `bench`, after its report; `serve`/`demo` stopped at once by a second signal that is SIGINT. */
  interrupted: 130,
  /** SIGTERM during `bench`, after its report; `serve`/`demo` stopped at once by a second signal that is SIGTERM. */
  terminated: 143
} as const

/** Ends the command with a message on stderr (none when empty) and an exit code. */
export class CliFailure extends Data.TaggedError("CliFailure")<{ readonly message: string; readonly exitCode: number }> {}

/**
 * The settings the CLI takes from the environment, read once through Effect's `Config` (the
 * provider `main.ts` installs: the process environment). Help shows the defaults they make.
 * An empty variable counts as unset.
 */
export interface CliEnvironment {
  /** `RUTH_MODEL_ID`: the model whose default socket `--socket` means. */
  readonly modelId: Option.Option<string>
  /** `RUTH_SOCKET_DIR`, else `/tmp`. */
  readonly socketDir: string
  /** `RUTH_MODELS_DIR`, else `/opt/ruth-ai/models`. */
  readonly modelsDir: string
  /** Where `modelsDir` came from, for help: the variable or the built-in default. */
  readonly modelsDirFromEnv: boolean
  readonly socketDirFromEnv: boolean
  /** The other `RUTH_*` variables `serve` takes a flag for (`RUTH_MAX_INFLIGHT` → "32"), for help. */
  readonly settings: Readonly<Record<string, string>>
}

export const DEFAULT_MODELS_DIR = "/opt/ruth-ai/models"

/** The scheduling, limit, metrics and log settings `serve` has flags for (its help shows their variables' values). */
export const SERVED_SETTINGS = [
  "maxInflight",
  "requestTimeoutMs",
  "maxFrameAgeMs",
  "perCamera",
  "streams",
  "maxBatch",
  "maxQueueDelayMs",
  "metricsAddr",
  "metricsCameras",
  "logFormat",
  "logLevel"
] as const satisfies ReadonlyArray<keyof RuntimeSettings>
export type ServedSetting = (typeof SERVED_SETTINGS)[number]

/** The variables of `SERVED_SETTINGS`, as the settings' table names them. */
export const SERVE_VARIABLES: ReadonlyArray<string> = SERVED_SETTINGS.flatMap((key) => variableOf(key) ?? [])

export const readCliEnvironment: Effect.Effect<CliEnvironment> = Effect.gen(function*() {
  const modelId = yield* environmentVariable("RUTH_MODEL_ID")
  const socketDir = yield* environmentVariable("RUTH_SOCKET_DIR")
  const modelsDir = yield* environmentVariable("RUTH_MODELS_DIR")
  const settings: Record<string, string> = {}
  for (const name of SERVE_VARIABLES) {
    const value = yield* environmentVariable(name)
    if (Option.isSome(value)) settings[name] = value.value
  }
  return {
    modelId,
    socketDir: Option.getOrElse(socketDir, () => defaults.socketDir),
    socketDirFromEnv: Option.isSome(socketDir),
    modelsDir: Option.getOrElse(modelsDir, () => DEFAULT_MODELS_DIR),
    modelsDirFromEnv: Option.isSome(modelsDir),
    settings
  }
})

/**
 * " (default: X)", the way every flag's help says its default; with the variable that can set it,
 * " (default: X, from VAR)" when it did, " (default: X, unless VAR is set)" when not.
 */
export const defaultIs = (value: string | number, variable?: { readonly name: string; readonly set: boolean }): string =>
  variable === undefined
    ? ` (default: ${value})`
    : ` (default: ${value}, ${variable.set ? "from" : "unless"} ${variable.name}${variable.set ? "" : " is set"})`

export const socketOption = (env: CliEnvironment) =>
  Flag.String("socket").pipe(
    Flag.withAlias("s"),
    Flag.withDescription(
      Option.match(env.modelId, {
        onSome: (id) => `the container's socket${defaultIs(socketPathFor(env.socketDir, id))}`,
        onNone: () =>
          `the container's socket; required unless RUTH_MODEL_ID is set, which makes it ${socketPathFor(env.socketDir, "{RUTH_MODEL_ID}")}`
      })
    ),
    Flag.optional
  )

/** The socket to talk to: the flag, else the default path from the environment. */
export const resolveSocket = (flag: Option.Option<string>, env: CliEnvironment): Effect.Effect<string, CliFailure> =>
  Option.match(flag, {
    onSome: Effect.succeed,
    onNone: () =>
      Option.match(env.modelId, {
        onSome: (id) => Effect.succeed(socketPathFor(env.socketDir, id)),
        onNone: () => Effect.fail(usage("give --socket PATH (or set RUTH_MODEL_ID to use the default path)"))
      })
  })

export const TIMEOUT_MS = 10_000

export const timeoutOption = Flag.Int("timeout-ms").pipe(
  Flag.withDescription(`give up on a reply after this many milliseconds${defaultIs(TIMEOUT_MS)}`),
  Flag.withDefault(TIMEOUT_MS)
)

/** The flags every command that talks to a container starts with: where, and how long to wait. */
export const clientFlags = (env: CliEnvironment) => ({ socket: socketOption(env), timeoutMs: timeoutOption })

export const jsonOption = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("print one JSON object instead of text"))

/** A client error as a CLI failure: the container could not be reached or did not answer. */
export const unreachable = (e: ClientError) => new CliFailure({ message: e.message, exitCode: ExitCode.unreachable })

/**
 * The model id to ask for: `--model-id`, else the one the socket's name says (`vas_model_{id}.sock`),
 * else the container's health answer — an extension the original containers do not know, so only
 * where the name does not follow the pattern.
 */
export const modelIdFor = (socketPath: string, flag: Option.Option<string>, timeoutMs: number) =>
  Option.orElse(flag, () => modelIdOfSocketPath(socketPath)).pipe(
    Option.match({
      onSome: Effect.succeed,
      onNone: () =>
        Effect.scoped(Effect.flatMap(makeClient({ socketPath, timeoutMs }), (client) => client.health)).pipe(
          Effect.map((h) => h.model_id),
          Effect.mapError((e) =>
            e.kind === "connect" || e.kind === "timeout"
              ? unreachable(e)
              : new CliFailure({
                message: `${e.message} (asked the container for its model id, since the socket's name is not ` +
                  `vas_model_{id}.sock; a container that knows no health request needs --model-id ID)`,
                exitCode: ExitCode.unreachable
              })
          )
        )
    })
  )

/** A wrong or missing flag: exit code 2. */
export const usage = (message: string) => new CliFailure({ message, exitCode: ExitCode.usage })

/**
 * Checks numeric flags before anything else runs, naming the flag the user typed:
 * `integers` must be positive integers, `seconds` positive numbers.
 */
export const positiveFlags = (flags: {
  readonly integers?: Readonly<Record<string, Option.Option<number> | number>>
  readonly seconds?: Readonly<Record<string, number>>
}): Effect.Effect<void, CliFailure> =>
  Effect.suspend(() => {
    for (const [flag, value] of Object.entries(flags.integers ?? {})) {
      const v = typeof value === "number" ? value : Option.getOrUndefined(value)
      if (v !== undefined && !(Number.isInteger(v) && v > 0)) return Effect.fail(usage(`${flag} must be a positive integer, got ${v}`))
    }
    for (const [flag, v] of Object.entries(flags.seconds ?? {})) {
      if (!(Number.isFinite(v) && v > 0)) return Effect.fail(usage(`${flag} must be a positive number of seconds, got ${v}`))
    }
    return Effect.void
  })

/** `--image FILE`, for the commands that can make a frame from an image. */
export const imageOption = (purpose: string) =>
  Flag.File("image", { mustExist: true }).pipe(
    Flag.withDescription(`a JPEG/PNG/WebP ${purpose}: written to /dev/shm as an NV12 frame for the command, removed after`),
    Flag.optional
  )

/** An image published as an NV12 frame in shared memory. */
export interface PublishedImage {
  readonly reference: string
  readonly width: number
  readonly height: number
  readonly data: Uint8Array
}

/**
 * The image as an NV12 frame in shared memory (`/dev/shm/{prefix}-{pid}`) for the scope, in the
 * chosen layout, resized to `options.width` / `options.height` when given; removed when the scope closes.
 */
export const publishImage = (
  image: string,
  prefix: string,
  options: { readonly layout: "raw" | "export-dir"; readonly frameId: number; readonly width?: number; readonly height?: number }
) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async (): Promise<PublishedImage> => {
        const nv12 = await imageToNv12(image, {
          ...(options.width !== undefined ? { width: options.width } : {}),
          ...(options.height !== undefined ? { height: options.height } : {})
        })
        const base = path.join(sharedMemoryDir(), `${prefix}-${process.pid}`)
        if (options.layout === "raw") publishRaw(`${base}.nv12`, nv12)
        else publishExportDir(base, nv12, BigInt(options.frameId))
        return { reference: options.layout === "raw" ? `${base}.nv12` : base, ...nv12 }
      },
      catch: (e) => usage(`cannot read ${image} as an image: ${e instanceof Error ? e.message : String(e)}`)
    }),
    (p) => Effect.sync(() => fs.rmSync(p.reference, { recursive: true, force: true }))
  )
