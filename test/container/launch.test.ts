import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { exitOf, spawnTs } from "../support/child.js"
import { tempDir } from "../support/harness.js"

/** Everything a child wrote to one stream. */
const streamOf = (stream: NodeJS.ReadableStream | null): (() => string) => {
  let text = ""
  stream?.on("data", (d) => (text += d))
  return () => text
}

describe("ModelContainer.launch: a failure to start (child process running the example)", () => {
  it.scopedLive("is one line on stderr naming the setting, nothing about it on stdout, exit code 1", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawnTs("examples/minimal/main.ts", [], { RUTH_SOCKET_DIR: dir, RUTH_HEARTBEAT_DIR: dir, RUTH_MAX_INFLIGHT: "abc" })
        ),
        (c) => Effect.sync(() => c.kill("SIGKILL"))
      )
      const stdout = streamOf(child.stdout)
      const stderr = streamOf(child.stderr)
      const exit = yield* Effect.promise(() => exitOf(child))
      expect(exit, stderr()).toEqual({ code: 1, signal: null })
      const line = `invalid RUTH_MAX_INFLIGHT (environment): must be a positive integer, got "abc"`
      // npm or node may add their own warnings to stderr; ours is exactly one line.
      expect(stderr().split("\n").filter((l) => l.includes("RUTH_MAX_INFLIGHT"))).toEqual([`model-runtime: ${line}`])
      expect(stderr()).not.toMatch(/^\s+at /m)
      expect(stdout()).not.toContain("RUTH_MAX_INFLIGHT")
    }))
})
