/**
 * A usage error (unknown flag, missing value, bad number…) as the one line `ruth-model` prints
 * on stderr before exiting 2: it names the flag and says what was expected, in the words of the
 * commands' own checks (`--width must be a positive integer, got -5`).
 */
import type { CliError, HelpDoc } from "effect/cli"

/** What a flag of this help type takes, as a phrase. */
const takes: Record<string, string> = {
  integer: "an integer",
  number: "a number",
  file: "a file",
  directory: "a directory",
  path: "a path",
  string: "a value"
}

const quoted = (v: string) => JSON.stringify(v)

const suggest = (suggestions: ReadonlyArray<string>) =>
  suggestions.length > 0 ? `; did you mean ${suggestions.join(" or ")}?` : ""

/** One error as a phrase; `doc` is the help of the command it is about (flag types). */
export const describeUsageError = (error: CliError.NonShowHelpErrors, doc: HelpDoc.HelpDoc | undefined): string => {
  switch (error._tag) {
    case "UnrecognizedOption":
      return `unknown flag ${error.option}${suggest(error.suggestions)}`
    case "MissingOption":
      return `missing --${error.option}`
    case "MissingArgument":
      return `missing ${error.argument}`
    case "UnexpectedArgument":
      return `unexpected argument${error.arguments.length === 1 ? "" : "s"} ${error.arguments.map(quoted).join(" ")}`
    case "UnknownSubcommand": {
      const commands = doc?.subcommands?.flatMap((group) => group.commands.map((c) => c.name)) ?? []
      return `unknown command ${quoted(error.subcommand)}${suggest(error.suggestions)}` +
        (commands.length > 0 ? ` (commands: ${commands.join(", ")})` : "")
    }
    case "InvalidValue": {
      if (error.kind === "argument") return `invalid ${error.option} ${quoted(error.value)}: ${lowerFirst(error.expected)}`
      const type = doc?.flags.find((f) => f.name === error.option)?.type ?? ""
      // Files and directories: the check says what is wrong (`Path does not exist: /abs/path`).
      if (error.value !== "" && (type === "file" || type === "directory" || type === "path")) {
        return `--${error.option}: ${lowerFirst(error.expected)}`
      }
      // Choices: the parser says `"raw" | "export-dir"`.
      const expected = type === "choice" || !(type in takes)
        ? `one of ${error.expected.replace(/^Expected:?\s*/, "")}`
        : takes[type]!
      return error.value === ""
        ? `--${error.option} needs ${expected}`
        : `--${error.option} must be ${expected}, got ${quoted(error.value)}`
    }
    default:
      // DuplicateOption (a bug in the command tree), ValidationError, UserError: their own first line.
      return error.message.split("\n")[0]!
  }
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1)

/** Every error of one invocation, in one line. */
export const usageLine = (errors: ReadonlyArray<CliError.NonShowHelpErrors>, doc: HelpDoc.HelpDoc | undefined): string =>
  errors.map((e) => describeUsageError(e, doc)).join("; ")
