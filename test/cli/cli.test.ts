import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { startContainer, writeFrameFile } from "../support/harness.js"

const exec = promisify(execFile)

/** Runs the `ruth-model` bin; resolves with its exit code and output, whatever the code. */
export const ruthModel = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.promise(() =>
    exec(process.execPath, ["bin/ruth-model.js", ...args], { env: { ...process.env, ...env }, timeout: 60_000 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" })
    )
  )

describe("ruth-model CLI", () => {
  it.scopedLive("health: exit 0 and a summary when ready; exit 2 when nothing listens", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const ok = yield* ruthModel(["health", "--socket", c.socketPath])
      expect(ok.code).toBe(0)
      expect(ok.stdout).toMatch(/^ready: model test-model/)
      const json = yield* ruthModel(["health", "--socket", c.socketPath, "--json"])
      expect(JSON.parse(json.stdout)).toMatchObject({ op: "health", status: "ready", model_id: "test-model" })
      const down = yield* ruthModel(["health", "--socket", `${c.dir}/nothing.sock`])
      expect(down.code).toBe(2)
      expect(down.stderr).toContain("cannot connect")
    }))

  it.scopedLive("infer: prints the response, exit 1 on an error response", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const frame = writeFrameFile(c.dir, "frame", 64, 48)
      const ok = yield* ruthModel(["infer", "--socket", c.socketPath, "--frame", frame, "--width", "64", "--height", "48", "--frame-id", "9"])
      expect(ok.code).toBe(0)
      expect(JSON.parse(ok.stdout)).toMatchObject({ model_id: "test-model", frame_id: 9, error: null, detections: [] })
      const missing = yield* ruthModel(["infer", "--socket", c.socketPath, "--frame", `${c.dir}/none`, "--width", "64", "--height", "48"])
      expect(missing.code).toBe(1)
      expect(JSON.parse(missing.stdout)).toMatchObject({ error_code: "FRAME_NOT_FOUND" })
    }))

  it.scopedLive("bench --json: one JSON object with throughput and percentiles, no failures", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const r = yield* ruthModel(["bench", "--socket", c.socketPath, "--concurrency", "4", "--duration", "1", "--connect-per-request", "--json"])
      expect(r.code).toBe(0)
      const result = JSON.parse(r.stdout)
      expect(result).toMatchObject({ concurrency: 4, connectPerRequest: true, errorResponses: 0, failures: 0 })
      expect(result.requests).toBeGreaterThan(0)
      expect(result.latencyMs.p99).toBeGreaterThanOrEqual(result.latencyMs.p50)
      expect(r.stderr).toMatch(/req\/s/) // live progress
    }))

  it.live("--help lists every subcommand", () =>
    Effect.gen(function*() {
      const r = yield* ruthModel(["--help"])
      for (const sub of ["health", "infer", "bench"]) expect(r.stdout).toContain(sub)
      const h = yield* ruthModel(["bench", "--help"])
      expect(h.stdout).toContain("--connect-per-request")
    }))
})
