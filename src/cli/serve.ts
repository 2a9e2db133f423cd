/** `ruth-model serve`: a model.yaml + weights served by the built-in backend, no code. */
import { Command, Flag } from "effect/cli"
import { Effect, Option } from "effect"
import { type FlagNames, InvalidSettings, MissingModelId } from "../config/RuntimeConfig.js"
import type { LaunchOptions } from "../container/ModelContainer.js"
import * as ModelContainer from "../container/ModelContainer.js"
import { CliFailure } from "./common.js"
import { modelsDirOption, resolveModelsDir } from "./models.js"

/** An optional flag with its description. */
const described = <A>(option: Flag.Flag<A>, description: string) =>
  option.pipe(Flag.withDescription(description), Flag.optional)

const options = {
  modelsDir: modelsDirOption,
  modelId: described(Flag.String("model-id"), "the model to serve (default: $RUTH_MODEL_ID)"),
  socketDir: described(Flag.String("socket-dir"), "where the socket goes (default: $RUTH_SOCKET_DIR or /tmp)"),
  maxInflight: described(Flag.Int("max-inflight"), "requests admitted at once; more are answered OVERLOADED (default: $RUTH_MAX_INFLIGHT, model.yaml, 64)"),
  requestTimeoutMs: described(Flag.Int("request-timeout-ms"), "a request's deadline (default: $RUTH_REQUEST_TIMEOUT_MS, model.yaml, 5000)"),
  maxFrameAgeMs: described(
    Flag.Int("max-frame-age-ms"),
    "freshness budget: older frames are answered FRAME_EXPIRED, never run; 0 = off (default: $RUTH_MAX_FRAME_AGE_MS, model.yaml, 0)"
  ),
  perCamera: described(
    Flag.String("per-camera"),
    "all | latest: a newer frame of a camera answers its waiting older one SUPERSEDED (default: $RUTH_PER_CAMERA, model.yaml, all)"
  ),
  streams: described(Flag.Int("streams"), "model runs at once, one session each (default: $RUTH_STREAMS, model.yaml, 1)"),
  maxBatch: described(Flag.Int("max-batch"), "waiting frames run as one batch, at most this many (default: $RUTH_MAX_BATCH, model.yaml, 1)"),
  maxQueueDelayMs: described(
    Flag.Int("max-queue-delay-ms"),
    "how long a batch may wait for more frames (default: $RUTH_MAX_QUEUE_DELAY_MS, model.yaml, 0)"
  )
}

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
  o: { readonly modelsDir: Option.Option<string> } & { readonly [K in keyof typeof flagNames]: Option.Option<string | number> }
): LaunchOptions => {
  const given: Record<string, unknown> = {}
  for (const key of Object.keys(flagNames) as Array<keyof typeof flagNames>) {
    const value = o[key]
    if (Option.isSome(value)) given[key] = value.value
  }
  return { ...(given as Partial<LaunchOptions>), modelsDir: resolveModelsDir(o.modelsDir), flagNames }
}

export const serveCommand = Command.make("serve", options, (o) =>
  ModelContainer.serveModel(launchOptionsOf(o)).pipe(
    Effect.mapError((e) => new CliFailure({ message: e.message, exitCode: exitCodeOf(e) }))
  )
).pipe(
  Command.withDescription(
    "Serve a discovered model (model.yaml + weights) with the built-in ONNX backend until SIGTERM/SIGINT."
  )
)
