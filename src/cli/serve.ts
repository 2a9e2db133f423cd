/** `ruth-model serve`: a model.yaml + weights served by the built-in backend, no code. */
import { Command, Flag } from "effect/cli"
import { Effect, Option } from "effect"
import { defaults, type FlagNames, InvalidSettings, MissingModelId, modelYamlKeyOf, variableOf } from "../config/RuntimeConfig.js"
import type { LaunchOptions } from "../container/ModelContainer.js"
import * as ModelContainer from "../container/ModelContainer.js"
import { type CliEnvironment, CliFailure, defaultIs, SERVED_SETTINGS, type ServedSetting } from "./common.js"
import { modelsDirOption, resolveModelsDir } from "./models.js"

/** An optional flag with its description. */
const described = <A>(option: Flag.Flag<A>, description: string) =>
  option.pipe(Flag.withDescription(description), Flag.optional)

/** What each of `serve`'s setting flags is: its kind, its name, what it does. */
const SETTING_FLAGS: { readonly [K in ServedSetting]: readonly ["int" | "string", string, string] } = {
  maxInflight: ["int", "max-inflight", "requests admitted at once; more are answered OVERLOADED"],
  requestTimeoutMs: ["int", "request-timeout-ms", "a request's deadline in milliseconds"],
  maxFrameAgeMs: ["int", "max-frame-age-ms", "freshness budget: older frames are answered FRAME_EXPIRED, never run; 0 = off"],
  perCamera: ["string", "per-camera", "all | latest: with latest, a newer frame of a camera answers its waiting older one SUPERSEDED"],
  streams: ["int", "streams", "model runs at once, one session each"],
  maxBatch: ["int", "max-batch", "waiting frames run as one batch, at most this many"],
  maxQueueDelayMs: ["int", "max-queue-delay-ms", "how long a batch may wait for more frames, in milliseconds"],
  metricsAddr: ["string", "metrics-addr", "host:port where GET /metrics serves Prometheus metrics"],
  metricsCameras: ["int", "metrics-cameras", "label requests and frame ages by camera, for at most this many cameras (0: no camera label)"],
  logFormat: ["string", "log-format", "json | pretty | auto: one JSON object per log line, or text; auto is pretty on a terminal"],
  logLevel: ["string", "log-level", "trace | debug | info | warning | error | none: the least severe log lines written; debug adds one per request"]
}

/**
 * A scheduling or limit flag: what it does, then its default as a value — the variable's when it
 * is set, else the built-in one, which a model.yaml key can also replace (variable, key and
 * default from the settings' own tables).
 */
const setting = (key: ServedSetting, env: CliEnvironment): Flag.Flag<Option.Option<string | number>> => {
  const [kind, name, what] = SETTING_FLAGS[key]
  const variable = variableOf(key)
  const fromEnv = variable === undefined ? undefined : env.settings[variable]
  const flag: Flag.Flag<string | number> = kind === "int" ? Flag.Int(name) : Flag.String(name)
  const yamlKey = modelYamlKeyOf(key)
  const fallback = defaults[key] === "" ? "none" : defaults[key]
  return described(
    flag,
    fromEnv !== undefined
      ? `${what} (default: ${fromEnv}, from ${variable})`
      : `${what} (default: ${fallback}, unless ${variable}${yamlKey === undefined ? "" : ` or model.yaml's ${yamlKey}`} is set)`
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
  ...(Object.fromEntries(SERVED_SETTINGS.map((key) => [key, setting(key, env)])) as {
    readonly [K in ServedSetting]: Flag.Flag<Option.Option<string | number>>
  })
})

/** How `serve` spells the settings it takes, so a problem names the flag that was typed. */
const flagNames = {
  modelId: "--model-id",
  socketDir: "--socket-dir",
  ...Object.fromEntries(SERVED_SETTINGS.map((key) => [key, `--${SETTING_FLAGS[key][1]}`]))
} as { readonly [K in "modelId" | "socketDir" | ServedSetting]: string } satisfies FlagNames

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

export const serveCommand = (env: CliEnvironment) => Command.make("serve", options(env), (o) => {
  const launch = launchOptionsOf(o, env)
  return ModelContainer.serveModel(launch).pipe(
    ModelContainer.withLogging(launch),
    Effect.mapError((e) => new CliFailure({ message: e.message, exitCode: exitCodeOf(e) }))
  )
}).pipe(
  Command.withDescription(
    "Serve a discovered model (model.yaml + weights) with the built-in ONNX backend until SIGTERM/SIGINT."
  )
)
