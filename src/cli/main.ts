/**
 * `ruth-model`: talk to a running model container (health, infer, bench, top), check and serve models.
 * Exit codes (`ExitCode`, the README's table): 0 success, 1 the answer is negative, 2 usage,
 * 3 the container could not be reached or did not answer, 130/143 `bench` stopped by SIGINT/SIGTERM
 * (and `serve`/`demo` stopped at once by a second signal).
 */
import { CliError, CliOutput, Command, TerminalCapabilities } from "effect/cli"
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Layer, Option } from "effect"
import { programEnvironment } from "../config/RuntimeConfig.js"
import { VERSION } from "../version.js"
import { type CliEnvironment, CliFailure, ExitCode, readCliEnvironment } from "./common.js"
import { benchCommand } from "./bench.js"
import { healthCommand } from "./health.js"
import { inferCommand } from "./infer.js"
import { discoverCommand, validateCommand } from "./models.js"
import { serveCommand } from "./serve.js"
import { demoCommand } from "./demo.js"
import { topCommand } from "./top.js"
import { usageLine } from "./usage.js"

/** The command tree; help shows the defaults the environment makes. */
export const makeRoot = (env: CliEnvironment) =>
  Command.make("ruth-model").pipe(
    Command.withDescription("Run, probe and load-test Ruth AI model containers."),
    Command.withSubcommands([
      healthCommand(env),
      inferCommand(env),
      benchCommand(env),
      topCommand(env),
      validateCommand,
      discoverCommand(env),
      serveCommand(env),
      demoCommand
    ])
  )

/**
 * Help and version on stdout (colour only on a terminal, never with NO_COLOR: `TerminalCapabilities`);
 * a usage error as one line on stderr naming the flag, with where to read more.
 */
const presenter = (formatter: CliOutput.Formatter): CliOutput.Presenter => ({
  present: (event) => {
    switch (event._tag) {
      case "Help":
        return Console.log(formatter.formatHelpDoc(event.helpDoc))
      case "Version":
        return Console.log(event.version)
      case "InvalidInvocation":
        return Console.error(`ruth-model: ${usageLine(event.errors, event.helpDoc)} (see '${event.commandPath.join(" ")} --help')`)
    }
  }
})

/** The exit code of a finished command. */
const exitCodeOf = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return ExitCode.ok
  const failure = Cause.findErrorOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (error instanceof CliFailure) return error.exitCode
    // `ruth-model` alone prints its help, as `--help` does.
    if (CliError.isCliError(error)) return error._tag === "ShowHelp" && error.errors.length === 0 ? ExitCode.ok : ExitCode.usage
    return ExitCode.negative
  }
  // Interrupted by SIGINT/SIGTERM: a clean stop (serve, demo), unless the command set the code it
  // stops with (bench: 130 or 143 after its report). The runtime's interruption replaces any failure the
  // command could end with, so the code travels in `process.exitCode`.
  if (Cause.hasInterruptsOnly(exit.cause)) return typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok
  return ExitCode.negative
}

const program = Effect.gen(function*() {
  const env = yield* readCliEnvironment
  const { canColor } = yield* TerminalCapabilities.TerminalCapabilities
  const formatter = CliOutput.defaultFormatter({ colors: canColor, globalFlags: "summary" })
  yield* Command.runWith(makeRoot(env), { version: VERSION })(process.argv.slice(2)).pipe(
    Effect.provide(Layer.merge(CliOutput.layer(formatter), CliOutput.layerPresenter(presenter(formatter))))
  )
}).pipe(
  Effect.provide(TerminalCapabilities.layer),
  Effect.provide(NodeServices.layer),
  // The settings come from the environment; an empty variable is read as "" (as Effect 3 did) and judged by
  // the rules that read it (RuntimeConfig: "must be a non-empty string"; the CLI's own: unset).
  Effect.provide(programEnvironment),
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
