/**
 * `ruth-model`: talk to a running model container (health, infer, bench), check and serve models.
 * Exit codes (`ExitCode`, the README's table): 0 success, 1 the answer is negative, 2 usage,
 * 3 the container could not be reached or did not answer, 130 `bench` stopped by Ctrl+C.
 */
import { Command } from "effect/cli"
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Option } from "effect"
import { VERSION } from "../version.js"
import { CliFailure, ExitCode } from "./common.js"
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

const cli = Command.runWith(root, { version: VERSION })

/** The exit code of a finished command. */
const exitCodeOf = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return ExitCode.ok
  const failure = Cause.findErrorOption(exit.cause)
  if (Option.isSome(failure)) {
    // Anything else in the error channel is @effect/cli's own validation (unknown flag, bad value), which it has printed.
    return failure.value instanceof CliFailure ? failure.value.exitCode : ExitCode.usage
  }
  // Interrupted by SIGINT/SIGTERM: a clean stop (serve, demo), unless the command set the code it
  // stops with (bench: 130 after its report). The runtime's interruption replaces any failure the
  // command could end with, so the code travels in `process.exitCode`.
  if (Cause.hasInterruptsOnly(exit.cause)) return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok
  return ExitCode.negative
}

const program = Effect.suspend(() => cli(process.argv.slice(2))).pipe(
  Effect.provide(NodeServices.layer),
  Effect.onExit((exit) =>
    Effect.sync(() => {
      if (Exit.isSuccess(exit)) return
      const failure = Cause.findErrorOption(exit.cause)
      if (Option.isSome(failure)) {
        if (failure.value instanceof CliFailure && failure.value.message !== "") console.error(`ruth-model: ${failure.value.message}`)
      } else if (!Cause.hasInterruptsOnly(exit.cause)) {
        // A defect: one line for the person; the stack is for a debugger, not the terminal.
        const defect = Cause.squash(exit.cause)
        console.error(`ruth-model: unexpected failure: ${defect instanceof Error ? defect.message : String(defect)}`)
      }
    })
  )
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => onExit(exitCodeOf(exit))
})
