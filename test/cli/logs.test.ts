/**
 * The log lines of a real container process (`ruth-model serve`, and `launch` in the minimal
 * example): RUTH_LOG_FORMAT=json makes every line of stdout and stderr one JSON object; the
 * start-up record is one structured record; RUTH_LOG_LEVEL=debug adds a line per request,
 * RUTH_LOG_LEVEL=error hides the rest; warnings and errors go to stderr.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { imageToNv12 } from "../../src/frames/image.js"
import { publishExportDir } from "../../src/frames/publish.js"
import { exitOf, spawnTs, waitForListening } from "../support/child.js"
import { call, request, tempDir } from "../support/harness.js"

/** What a child writes to stdout and to stderr, each on its own. */
const streamsOf = (child: ChildProcess) => {
  let stdout = ""
  let stderr = ""
  child.stdout?.on("data", (d) => (stdout += d))
  child.stderr?.on("data", (d) => (stderr += d))
  return () => ({ stdout, stderr })
}

/** Every line of a stream, each parsed as JSON (a line that is not JSON fails the test, showing it). */
const jsonLines = (text: string): Array<Record<string, any>> =>
  text.split("\n").filter((l) => l !== "").map((line) => {
    try {
      return JSON.parse(line) as Record<string, any>
    } catch {
      throw new Error(`not a JSON line: ${line}`)
    }
  })

/** A child killed when the test's scope closes, should the test fail before it exits. */
const child = (start: () => ChildProcess) => Effect.acquireRelease(Effect.sync(start), (c) => Effect.sync(() => c.kill("SIGKILL")))

describe("container logs (RUTH_LOG_FORMAT, RUTH_LOG_LEVEL)", () => {
  it.live("serve, json at debug: every line is JSON with timestamp, level, message, model_id; the start-up record's fields; a line per request; a warning on stderr", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const serve = yield* child(() =>
        spawn(process.execPath, [
          "bin/ruth-model.js", "serve", "--models-dir", "examples/models", "--model-id", "text-detection", "--socket-dir", dir, "--streams", "2"
        ], {
          // An invalid RUTH_GPU_AVAILABLE is ignored with a warning: a warning-level line to look for.
          env: { ...process.env, RUTH_HEARTBEAT_DIR: dir, RUTH_LOG_FORMAT: "json", RUTH_LOG_LEVEL: "debug", RUTH_GPU_AVAILABLE: "maybe" },
          stdio: ["ignore", "pipe", "pipe"]
        })
      )
      const output = streamsOf(serve)
      const socket = path.join(dir, "vas_model_text-detection.sock")
      yield* Effect.promise(() => waitForListening(socket, 60_000))
      const frameDir = path.join(dir, "cam7")
      publishExportDir(frameDir, yield* Effect.promise(() => imageToNv12("examples/scenes/notice-board.png")), 42n)
      const reply = yield* Effect.promise(() =>
        call(socket, request(frameDir, {
          model_id: "text-detection",
          camera_id: "cam-7",
          request_id: "req-1",
          frame_metadata: { width: 1280, height: 720, format: "NV12", frame_id: 42 }
        }))
      )
      expect(reply).toMatchObject({ error: null, request_id: "req-1" })
      serve.kill("SIGTERM")
      expect(yield* Effect.promise(() => exitOf(serve))).toEqual({ code: 0, signal: null })

      const { stdout, stderr } = output()
      const out = jsonLines(stdout)
      const err = jsonLines(stderr)
      for (const line of [...out, ...err]) {
        expect(new Date(line.timestamp).toISOString(), JSON.stringify(line)).toBe(line.timestamp)
        expect(typeof line.message).toBe("string")
        expect(line.model_id).toBe("text-detection")
      }
      // Errors and warnings on stderr, the rest on stdout.
      expect(new Set(out.map((l) => l.level))).toEqual(new Set(["debug", "info"]))
      expect(err.map((l) => l.level)).toEqual(["warning"])
      expect(err[0]!.message).toContain("RUTH_GPU_AVAILABLE")

      const startup = out.filter((l) => l.message.startsWith("effective configuration"))
      expect(startup).toHaveLength(1)
      expect(startup[0]).toMatchObject({
        level: "info",
        message: "effective configuration (flag > env > model.yaml > default)",
        config: { modelId: "text-detection", streams: 2, socketMode: "0600", logLevel: "debug", maxInflight: 64 },
        config_sources: { streams: "flag", logLevel: "env", socketDir: "flag", maxInflight: "default" }
      })
      expect(out.some((l) => l.level === "info" && l.message.includes("serving model 'text-detection'"))).toBe(true)

      const answered = out.filter((l) => l.message === "request answered")
      expect(answered).toHaveLength(1)
      expect(answered[0]).toMatchObject({ level: "debug", outcome: "ok", request_id: "req-1", camera_id: "cam-7", frame_id: 42 })
      expect(answered[0]!.server_time_ms).toBeGreaterThan(0)
    }))

  it.live("launch: without a terminal the default is JSON at info; RUTH_LOG_LEVEL=error hides the info lines", () =>
    Effect.gen(function*() {
      /** The minimal example with `logEnv`, asked once and stopped; what it wrote. */
      const runWith = (logEnv: Record<string, string>) =>
        Effect.gen(function*() {
          const dir = yield* tempDir()
          const env = { RUTH_SOCKET_DIR: dir, RUTH_HEARTBEAT_DIR: dir, ...logEnv }
          const launched = yield* child(() => spawnTs("examples/minimal/main.ts", [], env))
          const output = streamsOf(launched)
          const socket = path.join(dir, "vas_model_minimal.sock")
          yield* Effect.promise(() => waitForListening(socket))
          // A request answered with an error code is no error of the container's: nothing at level error.
          const reply = yield* Effect.promise(() => call(socket, request(path.join(dir, "missing"), { model_id: "minimal" })))
          expect(reply).toMatchObject({ error_code: "FRAME_NOT_FOUND" })
          launched.kill("SIGTERM")
          expect(yield* Effect.promise(() => exitOf(launched))).toEqual({ code: 0, signal: null })
          return output()
        }).pipe(Effect.scoped)

      // The child's stdout and stderr are pipes: `auto` means JSON.
      const byDefault = yield* runWith({})
      const lines = jsonLines(byDefault.stdout)
      expect(lines.some((l) => l.level === "info" && l.model_id === "minimal" && l.message.includes("serving model 'minimal'"))).toBe(true)
      expect(lines.some((l) => l.message.startsWith("effective configuration"))).toBe(true)
      // No per-request lines below debug.
      expect(lines.filter((l) => l.message === "request answered")).toEqual([])

      const quiet = yield* runWith({ RUTH_LOG_FORMAT: "json", RUTH_LOG_LEVEL: "error" })
      expect(quiet.stdout).toBe("")
      expect(quiet.stderr).not.toContain("{")
    }))
})
