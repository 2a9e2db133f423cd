/** Pieces shared by the `ruth-model` subcommands. */
import { Options } from "@effect/cli"
import { Data, Effect } from "effect"
import { socketPathFor } from "../config/RuntimeConfig.js"
import { type ClientError, makeClient } from "../ipc/ModelClient.js"

/** Ends the command with a message on stderr and an exit code. */
export class CliFailure extends Data.TaggedError("CliFailure")<{ readonly message: string; readonly exitCode: number }> {}

export const socketOption = Options.text("socket").pipe(
  Options.withAlias("s"),
  Options.withDescription(`the container's socket (default: ${socketPathFor("$RUTH_SOCKET_DIR|/tmp", "$RUTH_MODEL_ID")})`),
  Options.optional
)

/** The socket to talk to: the flag, else the default path from the environment. */
export const resolveSocket = (flag: { _tag: "Some"; value: string } | { _tag: "None" }) =>
  Effect.suspend(() => {
    if (flag._tag === "Some") return Effect.succeed(flag.value)
    const modelId = process.env.RUTH_MODEL_ID
    if (modelId === undefined || modelId === "") {
      return Effect.fail(new CliFailure({ message: "give --socket PATH (or set RUTH_MODEL_ID to use the default path)", exitCode: 2 }))
    }
    return Effect.succeed(socketPathFor(process.env.RUTH_SOCKET_DIR ?? "/tmp", modelId))
  })

export const timeoutOption = Options.integer("timeout-ms").pipe(
  Options.withDescription("give up on a reply after this many milliseconds"),
  Options.withDefault(10_000)
)

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("print one JSON object instead of text"))

/** A client error as a CLI failure: the container could not be reached or did not answer. */
export const unreachable = (e: ClientError) => new CliFailure({ message: e.message, exitCode: 2 })

/** The model id a container serves, asked over its socket. */
export const modelIdOf = (socketPath: string, timeoutMs: number) =>
  Effect.scoped(
    Effect.flatMap(makeClient({ socketPath, timeoutMs }), (client) => client.health)
  ).pipe(
    Effect.map((h) => h.model_id),
    Effect.mapError(unreachable)
  )
