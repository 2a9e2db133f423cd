/**
 * What a person sees of `ruth-model` before it does anything: `--help` (plain text off a terminal
 * and with NO_COLOR, `ruth-model CMD` usage lines, a description for every flag, defaults as
 * values) and usage errors (one line on stderr naming the flag, exit 2). Every case spawns the CLI.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ExitCode } from "../../src/cli/common.js"
import { VERSION } from "../../src/version.js"
import { ruthModel } from "../support/cli.js"

const SUBCOMMANDS = ["health", "infer", "bench", "top", "validate", "discover", "serve", "demo"] as const

/** The variables help reads, unset (an empty variable counts as unset), so the machine's own do not leak in. */
const cleanEnv = {
  NO_COLOR: "",
  FORCE_COLOR: "",
  RUTH_MODEL_ID: "",
  RUTH_SOCKET_DIR: "",
  RUTH_MODELS_DIR: "",
  RUTH_MAX_INFLIGHT: "",
  RUTH_STREAMS: ""
}

const ESC = "\x1b["

/** The flag rows of a help text's FLAGS section: `[names and type, description]`. */
const flagRows = (help: string): Array<readonly [string, string]> => {
  const lines = help.split("\n")
  const start = lines.indexOf("FLAGS")
  if (start < 0) return []
  const rows: Array<readonly [string, string]> = []
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith("  ")) break
    const m = /^ {2}(--\S.*?)(?: {2,}(\S.*))?$/.exec(line)
    rows.push([m?.[1] ?? line, m?.[2] ?? ""])
  }
  return rows
}

/** `script` runs a command on a pseudo-terminal: the CLI's stdout is then a TTY. */
const hasScript = (() => {
  try {
    return fs.existsSync("/usr/bin/script") || fs.existsSync("/bin/script")
  } catch {
    return false
  }
})()

const onTerminal = (args: string, env: Record<string, string>) =>
  Effect.promise(() =>
    promisify(execFile)("script", ["-qec", `${process.execPath} bin/ruth-model.js ${args}`, "/dev/null"], {
      env: { ...process.env, ...cleanEnv, ...env },
      timeout: 60_000
    }).then(({ stdout }) => stdout)
  )

describe("ruth-model --help", () => {
  it.live("is plain text when stdout is not a terminal: no ANSI codes, for the root and every subcommand", () =>
    Effect.gen(function*() {
      for (const args of [["--help"], [], ...SUBCOMMANDS.map((c) => [c, "--help"])]) {
        const r = yield* ruthModel(args, cleanEnv)
        expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0)
        expect(r.stdout, args.join(" ")).toContain("USAGE")
        expect(r.stdout, args.join(" ")).not.toContain(ESC)
        expect(r.stderr).toBe("")
      }
    }), 120_000)

  it.live.runIf(hasScript)("is coloured on a terminal, and plain there too when NO_COLOR is set", () =>
    Effect.gen(function*() {
      expect(yield* onTerminal("infer --help", {})).toContain(`${ESC}1mUSAGE`)
      const plain = yield* onTerminal("infer --help", { NO_COLOR: "1" })
      expect(plain).toContain("USAGE")
      expect(plain).not.toContain(ESC)
    }), 120_000)

  it.live("the usage line names the program and the command", () =>
    Effect.gen(function*() {
      const root = yield* ruthModel(["--help"], cleanEnv)
      expect(root.stdout).toContain("USAGE\n  ruth-model <subcommand> [flags]\n")
      // A command with an alias is listed as `top, stats`.
      for (const sub of SUBCOMMANDS) expect(root.stdout).toMatch(new RegExp(`^ {2}${sub}(, [a-z]+)? +\\S`, "m"))
      const infer = yield* ruthModel(["infer", "--help"], cleanEnv)
      expect(infer.stdout).toContain("USAGE\n  ruth-model infer [flags]\n")
      expect(infer.stdout).not.toMatch(/\$ infer/)
      const validate = yield* ruthModel(["validate", "--help"], cleanEnv)
      expect(validate.stdout).toContain("USAGE\n  ruth-model validate [flags] <PATH>\n")
    }), 120_000)

  it.live("every flag of every command has a description", () =>
    Effect.gen(function*() {
      for (const sub of SUBCOMMANDS) {
        const rows = flagRows((yield* ruthModel([sub, "--help"], cleanEnv)).stdout)
        expect(rows.length, sub).toBeGreaterThan(0)
        for (const [flag, description] of rows) expect(description, `${sub} ${flag}`).not.toBe("")
      }
      const root = yield* ruthModel(["--help"], cleanEnv)
      for (const line of root.stdout.split("\n").filter((l) => l.startsWith("  --"))) expect(line).toMatch(/\S {2,}\S/)
    }), 120_000)

  it.live("defaults are shown as values, the environment's where it sets them; never as $VARIABLE", () =>
    Effect.gen(function*() {
      const helps = yield* Effect.forEach(SUBCOMMANDS, (sub) => ruthModel([sub, "--help"], cleanEnv), { concurrency: 2 })
      for (const h of helps) expect(h.stdout).not.toMatch(/\$RUTH_|\|\/tmp/)
      const [health, infer, bench, , , discover, serve] = helps.map((h) => h.stdout)
      expect(health).toMatch(/--timeout-ms integer +give up on a reply after this many milliseconds \(default: 10000\)/)
      expect(health).toContain("required unless RUTH_MODEL_ID is set, which makes it /tmp/vas_model_{RUTH_MODEL_ID}.sock")
      expect(infer).toMatch(/--camera-id string +the request's camera_id \(default: cli\)/)
      expect(bench).toMatch(/--duration number +how long to run, in seconds \(default: 10\)/)
      expect(bench).toMatch(/--concurrency, -c integer +.*\(default: 8\)/)
      expect(discover).toContain("(default: /opt/ruth-ai/models, unless RUTH_MODELS_DIR is set)")
      expect(serve).toContain("where the socket goes (default: /tmp, unless RUTH_SOCKET_DIR is set)")
      expect(serve).toContain("(default: 64, unless RUTH_MAX_INFLIGHT or model.yaml's limits.max_inflight is set)")

      // Set, the environment's values are the defaults shown (read through Config, like the commands read them).
      const env = { ...cleanEnv, RUTH_MODEL_ID: "detector", RUTH_SOCKET_DIR: "/run/ruth", RUTH_MODELS_DIR: "/srv/models", RUTH_STREAMS: "2" }
      expect((yield* ruthModel(["health", "--help"], env)).stdout).toMatch(
        /--socket, -s string +the container's socket \(default: \/run\/ruth\/vas_model_detector\.sock\)/
      )
      const served = (yield* ruthModel(["serve", "--help"], env)).stdout
      expect(served).toContain("the model to serve (default: detector, from RUTH_MODEL_ID)")
      expect(served).toContain("where the socket goes (default: /run/ruth, from RUTH_SOCKET_DIR)")
      expect(served).toContain("where models live (default: /srv/models, from RUTH_MODELS_DIR)")
      expect(served).toContain("model runs at once, one session each (default: 2, from RUTH_STREAMS)")
    }), 120_000)

  it.live("ruth-model alone prints the help, exit 0; --version prints the version", () =>
    Effect.gen(function*() {
      const bare = yield* ruthModel([], cleanEnv)
      expect(bare.code).toBe(0)
      expect(bare.stdout).toContain("SUBCOMMANDS")
      const version = yield* ruthModel(["--version"], cleanEnv)
      expect(version).toMatchObject({ code: 0, stdout: `${VERSION}\n` })
    }))
})

describe("ruth-model usage errors: exit 2, one line on stderr naming the flag, nothing on stdout", () => {
  const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
    [["health", "--bogus"], "unknown flag --bogus (see 'ruth-model health --help')"],
    [["health", "--jsno"], "unknown flag --jsno; did you mean --json? (see 'ruth-model health --help')"],
    [["health", "--timeout-ms"], "--timeout-ms needs an integer (see 'ruth-model health --help')"],
    [["health", "--timeout-ms", "soon"], `--timeout-ms must be an integer, got "soon" (see 'ruth-model health --help')`],
    [["infer", "--width", "1.5"], `--width must be an integer, got "1.5" (see 'ruth-model infer --help')`],
    [["bench", "--duration", "x"], `--duration must be a number, got "x" (see 'ruth-model bench --help')`],
    [["bench", "-c", "many"], `--concurrency must be an integer, got "many" (see 'ruth-model bench --help')`],
    [["infer", "--layout", "tiled"], `--layout must be one of "raw" | "export-dir", got "tiled" (see 'ruth-model infer --help')`],
    [["infer", "--image", "/nonexistent/photo.jpg"], "--image: path does not exist: /nonexistent/photo.jpg (see 'ruth-model infer --help')"],
    [["serve", "--streams", "two"], `--streams must be an integer, got "two" (see 'ruth-model serve --help')`],
    [["validate"], "missing PATH (see 'ruth-model validate --help')"],
    [["validate", "a", "b"], `unexpected argument "b" (see 'ruth-model validate --help')`],
    [["helth"], `unknown command "helth"; did you mean health? (commands: ${SUBCOMMANDS.join(", ")}) (see 'ruth-model --help')`]
  ]

  it.live("each case", () =>
    Effect.gen(function*() {
      const results = yield* Effect.forEach(cases, ([args]) => ruthModel(args, cleanEnv), { concurrency: 2 })
      for (const [i, r] of results.entries()) {
        const [args, line] = cases[i]!
        expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(ExitCode.usage)
        expect(r.stderr, args.join(" ")).toBe(`ruth-model: ${line}\n`)
        expect(r.stdout, args.join(" ")).toBe("")
      }
    }), 120_000)
})

describe("the README's exit-code table", () => {
  /** The codes in the table under "Exit codes, the same for every command". */
  const documented = (): Array<number> => {
    const readme = fs.readFileSync("README.md", "utf8")
    const after = readme.slice(readme.indexOf("Exit codes, the same for every command")).split("\n").slice(1)
    const first = after.findIndex((l) => l.startsWith("|"))
    const end = after.findIndex((l, i) => i > first && !l.startsWith("|"))
    // Without the header row and the |---| row.
    return after.slice(first + 2, end).map((l) => Number(l.split("|")[1]!.trim()))
  }

  it("lists exactly the codes the commands return (ExitCode)", () => {
    expect(documented().sort((a, b) => a - b)).toEqual(Object.values(ExitCode).sort((a, b) => a - b))
  })
})
