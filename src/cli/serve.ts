/** `ruth-model serve`: a model.yaml + weights served by the built-in backend, no code. */
import { Command, Flag } from "effect/cli"
import { Effect, Option } from "effect"
import { defaults, type FlagNames, InvalidSettings, MissingModelId } from "../config/RuntimeConfig.js"
import type { LaunchOptions } from "../container/ModelContainer.js"
import * as ModelContainer from "../container/ModelContainer.js"
import { type CliEnvironment, CliFailure, defaultIs, SERVE_VARIABLES } from "./common.js"
import { modelsDirOption, resolveModelsDir } from "./models.js"

/** An optional flag with its description. */
const described = <A>(option: Flag.Flag<A>, description: string) =>
  option.pipe(Flag.withDescription(description), Flag.optional)

/**
 * A scheduling or limit flag: what it does, then its default as a value — the variable's when it
 * is set, else the built-in one, which a model.yaml key can also replace.
 */
const setting = <A>(option: Flag.Flag<A>, what: string, variable: (typeof SERVE_VARIABLES)[number], yamlKey: string, builtIn: string | number, env: CliEnvironment) => {
  const fromEnv = env.settings[variable]
  return described(
    option,
    fromEnv !== undefined
      ? `${what} (default: ${fromEnv}, from ${variable})`
      : `${what} (default: ${builtIn}, unless ${variable} or model.yaml's ${yamlKey} is set)`
  )
}

const options = (env: CliEnvironment) => ({
  modelsDir: modelsDirOption(env),
  modelId: described(
    Flag.String("model-id"),
    Option.match(env.modelId, {
      onSome: (id) => `the model to serve (default: ${id}, from RUTH_MODEL_ID)`,
      onNone: () => "the model to serve; required unless RUTH_MODEL_ID is set"
    })
  ),
  socketDir: described(
    Flag.String("socket-dir"),
    `where the socket goes${defaultIs(env.socketDir, { name: "RUTH_SOCKET_DIR", set: env.socketDirFromEnv })}`
  ),
  maxInflight: setting(
    Flag.Int("max-inflight"),
    "requests admitted at once; more are answered OVERLOADED",
    "RUTH_MAX_INFLIGHT", "limits.max_inflight", defaults.maxInflight, env
  ),
  requestTimeoutMs: setting(
    Flag.Int("request-timeout-ms"),
    "a request's deadline in milliseconds",
    "RUTH_REQUEST_TIMEOUT_MS", "limits.request_timeout_ms", defaults.requestTimeoutMs, env
  ),
  maxFrameAgeMs: setting(
    Flag.Int("max-frame-age-ms"),
    "freshness budget: older frames are answered FRAME_EXPIRED, never run; 0 = off",
    "RUTH_MAX_FRAME_AGE_MS", "scheduling.max_frame_age_ms", defaults.maxFrameAgeMs, env
  ),
  perCamera: setting(
    Flag.String("per-camera"),
    "all | latest: with latest, a newer frame of a camera answers its waiting older one SUPERSEDED",
    "RUTH_PER_CAMERA", "scheduling.per_camera", defaults.perCamera, env
  ),
  streams: setting(
    Flag.Int("streams"),
    "model runs at once, one session each",
    "RUTH_STREAMS", "scheduling.streams", defaults.streams, env
  ),
  maxBatch: setting(
    Flag.Int("max-batch"),
    "waiting frames run as one batch, at most this many",
    "RUTH_MAX_BATCH", "scheduling.max_batch", defaults.maxBatch, env
  ),
  maxQueueDelayMs: setting(
    Flag.Int("max-queue-delay-ms"),
    "how long a batch may wait for more frames, in milliseconds",
    "RUTH_MAX_QUEUE_DELAY_MS", "scheduling.max_queue_delay_ms", defaults.maxQueueDelayMs, env
  )
})

/** How `serve` spells the settings it takes, so a problem names the flag that was typed. */
const flagNames = {
  modelId: "--model-id",
  socketDir: "--socket-dir",
  maxInflight: "--max-inflight",
  requestTimeoutMs: "--request-timeout-ms",
  maxFrameAgeMs: "--max-frame-age-ms",
  perCamera: "--per-camera",
  streams: "--streams",
  maxBatch: "--max-batch",
  maxQueueDelayMs: "--max-queue-delay-ms"
} as const satisfies FlagNames

/** A bad or missing flag is usage (2); anything else that stops the start (environment, model.yaml, socket) is 1. */
const exitCodeOf = (error: { readonly _tag: string }): number =>
  error instanceof MissingModelId || (error instanceof InvalidSettings && error.problems.some((p) => p.source === "flag"))
    ? 2
    : 1

/** Flags that were given, as settings that win over the environment and model.yaml (each checked there, by its flag name). */
export const launchOptionsOf = (
  o: { readonly modelsDir: Option.Option<string> } & { readonly [K in keyof typeof flagNames]: Option.Option<string | number> },
  env: CliEnvironment
): LaunchOptions => {
  const given: Record<string, unknown> = {}
  for (const key of Object.keys(flagNames) as Array<keyof typeof flagNames>) {
    const value = o[key]
    if (Option.isSome(value)) given[key] = value.value
  }
  return { ...(given as Partial<LaunchOptions>), modelsDir: resolveModelsDir(o.modelsDir, env), flagNames }
}

export const serveCommand = (env: CliEnvironment) => Command.make("serve", options(env), (o) =>
  ModelContainer.serveModel(launchOptionsOf(o, env)).pipe(
    Effect.mapError((e) => new CliFailure({ message: e.message, exitCode: exitCodeOf(e) }))
  )
).pipe(
  Command.withDescription(
    "Serve a discovered model (model.yaml + weights) with the built-in ONNX backend until SIGTERM/SIGINT."
  )
)
