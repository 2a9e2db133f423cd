import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { makeSettings } from "../../src/config/RuntimeConfig.js"
import { writeHeartbeat } from "../../src/container/Heartbeat.js"
import { ContainerState } from "../../src/container/Metrics.js"
import { tempDir } from "../support/harness.js"

const settingsIn = (dir: string) => Result.getOrThrow(makeSettings({ modelId: "beat", heartbeatDir: dir, socketDir: dir }))

describe("heartbeat file safety", () => {
  it.effect("a symlink planted at the temp file's old name: its target is untouched, the heartbeat still written", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const outside = yield* tempDir()
      const victim = path.join(outside, "precious")
      fs.writeFileSync(victim, "keep me")
      const file = path.join(dir, "vas_heartbeat_beat.json")
      // The name the temp file used to have: predictable from the pid.
      fs.symlinkSync(victim, `${file}.${process.pid}.tmp`)
      yield* writeHeartbeat(settingsIn(dir), new ContainerState())
      expect(fs.readFileSync(victim, "utf8")).toBe("keep me")
      expect(fs.lstatSync(file).isFile()).toBe(true)
      expect(JSON.parse(fs.readFileSync(file, "utf8"))).toMatchObject({ model_id: "beat", status: "healthy" })
    }))

  it.effect("the heartbeat file is 0644 whatever the umask, and no temp file is left", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const previous = yield* Effect.acquireRelease(Effect.sync(() => process.umask(0)), (mask) => Effect.sync(() => process.umask(mask)))
      expect(previous).toBeTypeOf("number")
      yield* writeHeartbeat(settingsIn(dir), new ContainerState())
      const file = path.join(dir, "vas_heartbeat_beat.json")
      expect(fs.statSync(file).mode & 0o777).toBe(0o644)
      expect(fs.readdirSync(dir)).toEqual(["vas_heartbeat_beat.json"])
    }))
})
