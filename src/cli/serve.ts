/** `ruth-model serve`: a model.yaml + weights served by the built-in backend, no code. */
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { type FlagNames, InvalidSettings, MissingModelId } from "../config/RuntimeConfig.js"
import type { LaunchOptions } from "../container/ModelContainer.js"
import * as ModelContainer from "../container/ModelContainer.js"
import { CliFailure } from "./common.js"
import { modelsDirOption, resolveModelsDir } from "./models.js"

const options = {
  modelsDir: modelsDirOption,
  modelId: Options.text("model-id").pipe(Options.withDescription("the model to serve (default: $RUTH_MODEL_ID)"), Options.optional),
  socketDir: Options.text("socket-dir").pipe(Options.withDescription("where the socket goes (default: $RUTH_SOCKET_DIR or /tmp)"), Options.optional),
  maxInflight: Options.integer("max-inflight").pipe(Options.optional),
  requestTimeoutMs: Options.integer("request-timeout-ms").pipe(Options.optional)
}

/** How `serve` spells the settings it takes, so a problem names the flag that was typed. */
const flagNames: FlagNames = {
  modelId: "--model-id",
  socketDir: "--socket-dir",
  maxInflight: "--max-inflight",
  requestTimeoutMs: "--request-timeout-ms"
}

/** A bad or missing flag is usage (2); anything else that stops the start (environment, model.yaml, socket) is 1. */
const exitCodeOf = (error: { readonly _tag: string }): number =>
  error instanceof MissingModelId || (error instanceof InvalidSettings && error.problems.some((p) => p.source === "flag"))
    ? 2
    : 1

/** Flags that were given, as settings that win over the environment and model.yaml. */
export const launchOptionsOf = (o: {
  readonly modelsDir: Option.Option<string>
  readonly modelId: Option.Option<string>
  readonly socketDir: Option.Option<string>
  readonly maxInflight: Option.Option<number>
  readonly requestTimeoutMs: Option.Option<number>
}): LaunchOptions => ({
  modelsDir: resolveModelsDir(o.modelsDir),
  flagNames,
  ...(Option.isSome(o.modelId) ? { modelId: o.modelId.value } : {}),
  ...(Option.isSome(o.socketDir) ? { socketDir: o.socketDir.value } : {}),
  ...(Option.isSome(o.maxInflight) ? { maxInflight: o.maxInflight.value } : {}),
  ...(Option.isSome(o.requestTimeoutMs) ? { requestTimeoutMs: o.requestTimeoutMs.value } : {})
})

export const serveCommand = Command.make("serve", options, (o) =>
  ModelContainer.serveModel(launchOptionsOf(o)).pipe(
    Effect.mapError((e) => new CliFailure({ message: e.message, exitCode: exitCodeOf(e) }))
  )
).pipe(
  Command.withDescription(
    "Serve a discovered model (model.yaml + weights) with the built-in ONNX backend until SIGTERM/SIGINT."
  )
)
