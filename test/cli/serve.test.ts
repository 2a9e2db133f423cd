import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { imageToNv12 } from "../../src/frames/image.js"
import { publishExportDir } from "../../src/frames/publish.js"
import { collectOutput, exitOf, waitForFile } from "../support/child.js"
import { call, request, tempDir } from "../support/harness.js"
import { spawn } from "node:child_process"

describe("ruth-model serve (model.yaml + weights, no code)", () => {
  it.scopedLive("serves the text-detection model until SIGTERM, then exits 0 and removes its socket", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn(process.execPath, ["bin/ruth-model.js", "serve", "--models-dir", "examples/models", "--model-id", "text-detection", "--socket-dir", dir], {
            env: { ...process.env, RUTH_HEARTBEAT_DIR: dir },
            stdio: ["ignore", "pipe", "pipe"]
          })
        ),
        (c) => Effect.sync(() => c.kill("SIGKILL"))
      )
      const output = collectOutput(child)
      const socket = path.join(dir, "vas_model_text-detection.sock")
      yield* Effect.promise(() => waitForFile(socket, 60_000))
      const frameDir = path.join(dir, "cam1")
      const nv12 = yield* Effect.promise(() => imageToNv12("examples/scenes/notice-board.png"))
      publishExportDir(frameDir, nv12, 42n)
      const reply = yield* Effect.promise(() =>
        call(socket, request(frameDir, { model_id: "text-detection", frame_metadata: { width: 1280, height: 720, frame_id: 42 } }))
      )
      expect(reply).toMatchObject({ error: null, frame_id: 42 })
      expect((reply.detections as Array<unknown>).length).toBe(4)
      expect(output()).toContain("effective configuration")
      child.kill("SIGTERM")
      expect(yield* Effect.promise(() => exitOf(child))).toEqual({ code: 0, signal: null })
      expect(fs.existsSync(socket)).toBe(false)
    }))

  it.scopedLive("refuses to start, exit 1, when the model is unavailable, saying why", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      fs.mkdirSync(path.join(dir, "models", "broken"), { recursive: true })
      fs.writeFileSync(path.join(dir, "models", "broken", "model.yaml"), "model_id: broken\nmodel_name: b\nmodel_version: '1'\nmodel_weights: missing.onnx\n")
      const child = spawn(process.execPath, ["bin/ruth-model.js", "serve", "--models-dir", path.join(dir, "models"), "--model-id", "broken", "--socket-dir", dir], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      const output = collectOutput(child)
      expect((yield* Effect.promise(() => exitOf(child))).code).toBe(1)
      expect(output()).toContain("missing_weights")
    }))
})
