/**
 * `ruth-model`: talk to a running model container (health, infer, bench).
 * Exit codes: 0 success, 1 the answer was a failure (not ready, error
 * response, invalid config), 2 bad usage or the container could not be reached.
 */
import { Command } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit } from "effect"
import { VERSION } from "../version.js"
import { CliFailure } from "./common.js"
import { benchCommand } from "./bench.js"
import { healthCommand } from "./health.js"
import { inferCommand } from "./infer.js"
import { discoverCommand, validateCommand } from "./models.js"
import { serveCommand } from "./serve.js"
import { demoCommand } from "./demo.js"

const root = Command.make("ruth-model").pipe(
  Command.withDescription("Run, probe and load-test Ruth AI model containers."),
  Command.withSubcommands([healthCommand, inferCommand, benchCommand, validateCommand, discoverCommand, serveCommand, demoCommand])
)

const cli = Command.run(root, { name: "ruth-model", version: VERSION })

const program = Effect.suspend(() => cli(process.argv)).pipe(
  Effect.provide(NodeContext.layer),
  Effect.onExit((exit) =>
    Effect.sync(() => {
      if (Exit.isSuccess(exit)) return
      const failure = Cause.failureOption(exit.cause)
      if (failure._tag === "Some" && failure.value instanceof CliFailure) {
        if (failure.value.message !== "") console.error(`ruth-model: ${failure.value.message}`)
        process.exitCode = failure.value.exitCode
      } else if (failure._tag === "Some") {
        process.exitCode = 2 // usage errors: @effect/cli has printed them
      } else if (!Cause.isInterruptedOnly(exit.cause)) {
        console.error(Cause.pretty(exit.cause))
        process.exitCode = 2
      }
    })
  ),
  Effect.catchAllCause(() => Effect.void)
)

NodeRuntime.runMain(program, { disableErrorReporting: true })
