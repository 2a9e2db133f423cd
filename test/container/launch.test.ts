import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { exitOf, spawnTs, waitForListening } from "../support/child.js"
import { tempDir } from "../support/harness.js"

/** Everything a child wrote to one stream. */
const streamOf = (stream: NodeJS.ReadableStream | null): (() => string) => {
  let text = ""
  stream?.on("data", (d) => (text += d))
  return () => text
}

describe("ModelContainer.launch: a failure to start (child process running the example)", () => {
  for (const value of ["abc", ""]) {
  it.live(`is one line on stderr naming the setting, nothing about it on stdout, exit code 1 (RUTH_MAX_INFLIGHT=${JSON.stringify(value)})`, () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawnTs("examples/minimal/main.ts", [], { RUTH_SOCKET_DIR: dir, RUTH_HEARTBEAT_DIR: dir, RUTH_MAX_INFLIGHT: value })
        ),
        (c) => Effect.sync(() => c.kill("SIGKILL"))
      )
      const stdout = streamOf(child.stdout)
      const stderr = streamOf(child.stderr)
      const exit = yield* Effect.promise(() => exitOf(child))
      expect(exit, stderr()).toEqual({ code: 1, signal: null })
      // An empty variable is a value, as it was under Effect 3 (Effect 4 would read it as unset).
      const line = `invalid RUTH_MAX_INFLIGHT (environment): must be a positive integer, got ${JSON.stringify(value)}`
      // npm or node may add their own warnings to stderr; ours is exactly one line.
      expect(stderr().split("\n").filter((l) => l.includes("RUTH_MAX_INFLIGHT"))).toEqual([`model-runtime: ${line}`])
      expect(stderr()).not.toMatch(/^\s+at /m)
      expect(stdout()).not.toContain("RUTH_MAX_INFLIGHT")
    }))
  }

  it.live("a socket path held by a live container is the same: one line on stderr, exit 1, the first keeps serving", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const env = { RUTH_MODEL_ID: "minimal", RUTH_SOCKET_DIR: dir, RUTH_HEARTBEAT_DIR: dir }
      const first = yield* Effect.acquireRelease(
        Effect.sync(() => spawnTs("examples/minimal/main.ts", [], env)),
        (c) => Effect.sync(() => c.kill("SIGKILL"))
      )
      const socket = path.join(dir, "vas_model_minimal.sock")
      yield* Effect.promise(() => waitForListening(socket))
      const second = yield* Effect.acquireRelease(
        Effect.sync(() => spawnTs("examples/minimal/main.ts", [], env)),
        (c) => Effect.sync(() => c.kill("SIGKILL"))
      )
      const stdout = streamOf(second.stdout)
      const stderr = streamOf(second.stderr)
      expect(yield* Effect.promise(() => exitOf(second))).toEqual({ code: 1, signal: null })
      const ours = stderr().split("\n").filter((l) => l.startsWith("model-runtime: "))
      expect(ours).toHaveLength(1)
      expect(ours[0]).toContain(socket)
      expect(stderr()).not.toMatch(/^\s+at /m)
      expect(stdout()).not.toContain(ours[0]!.slice("model-runtime: ".length))
      expect(first.exitCode).toBeNull()
      expect(fs.existsSync(socket)).toBe(true)
    }))
})
