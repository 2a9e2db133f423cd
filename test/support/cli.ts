/** Runs the `ruth-model` bin (from the repository root, as `npm test` does). */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { promisify } from "node:util"
import { Effect } from "effect"

const exec = promisify(execFile)

/** Runs `bin/ruth-model.js` with `args`; resolves with its exit code and output, whatever the code. */
export const ruthModel = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.promise(() =>
    exec(process.execPath, ["bin/ruth-model.js", ...args], { env: { ...process.env, ...env }, timeout: 60_000 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" })
    )
  )

/** Starts `bin/ruth-model.js` with `args` as a child process (stdout and stderr piped), for tests that signal it. */
export const spawnRuthModel = (args: ReadonlyArray<string>): ChildProcess =>
  spawn(process.execPath, ["bin/ruth-model.js", ...args], { stdio: ["ignore", "pipe", "pipe"] })
