import { execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import sharp from "sharp"
import { tempDir } from "../support/harness.js"

const exec = promisify(execFile)

describe("ruth-model demo (npm start), non-interactive", () => {
  it.live("serves the bundled model, detects the text of the bundled scenes, writes annotated JPEGs, exits 0", () =>
    Effect.gen(function*() {
      const out = yield* tempDir()
      const { stdout } = yield* Effect.promise(() =>
        exec(process.execPath, ["bin/ruth-model.js", "demo", "--once", "--out", out], { timeout: 120_000 })
      )
      const truth = JSON.parse(fs.readFileSync("examples/scenes/scenes.json", "utf8")) as Array<{ name: string; lines: Array<unknown> }>
      for (const scene of truth) {
        // One table row per scene: its name, then the number of detections.
        const row = stdout.split("\n").find((l) => l.startsWith(scene.name))
        expect(row, stdout).toBeDefined()
        expect(Number(row!.trim().split(/\s+/)[1])).toBe(scene.lines.length)
        const jpeg = path.join(out, `${scene.name}.jpg`)
        const meta = yield* Effect.promise(() => sharp(jpeg).metadata())
        expect(meta).toMatchObject({ format: "jpeg", width: 1280, height: 720 })
      }
      // Nothing left behind in shared memory.
      expect(fs.readdirSync("/dev/shm").filter((f) => f.startsWith("ruth-demo-"))).toEqual([])
    }))

  it.live("Ctrl+C while the demo is still starting or sending: drains, cleans up, exits 0", () =>
    Effect.gen(function*() {
      const out = yield* tempDir()
      const shmBefore = fs.readdirSync("/dev/shm").filter((f) => f.startsWith("ruth-demo-"))
      const { code, stdout } = yield* Effect.promise(() =>
        new Promise<{ code: number | null; stdout: string }>((resolve) => {
          const child = spawn(process.execPath, ["bin/ruth-model.js", "demo", "--out", out], { stdio: ["ignore", "pipe", "inherit"] })
          let stdout = ""
          let sent = false
          child.stdout.on("data", (chunk: Buffer) => {
            stdout += chunk.toString()
            // As soon as the container is on its way: before the scenes' answers (the model is still loading).
            if (!sent && stdout.includes("starting model")) {
              sent = true
              setTimeout(() => child.kill("SIGINT"), 300)
            }
          })
          child.on("exit", (code) => resolve({ code, stdout }))
        })
      )
      expect(code, stdout).toBe(0)
      expect(stdout).not.toContain("annotated images")
      expect(fs.readdirSync("/dev/shm").filter((f) => f.startsWith("ruth-demo-"))).toEqual(shmBefore)
    }))
})
