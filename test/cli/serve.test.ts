import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { imageToNv12 } from "../../src/frames/image.js"
import { publishExportDir } from "../../src/frames/publish.js"
import { collectOutput, exitOf, waitForListening } from "../support/child.js"
import { ruthModel } from "../support/cli.js"
import { call, request, tempDir } from "../support/harness.js"
import { spawn } from "node:child_process"

/** A models dir holding `detector`: a valid model.yaml plus `extra`, and a weights file. */
const modelDir = (extra: string) =>
  Effect.map(tempDir(), (dir) => {
    const model = path.join(dir, "models", "detector")
    fs.mkdirSync(model, { recursive: true })
    fs.writeFileSync(path.join(model, "model.onnx"), "weights")
    fs.writeFileSync(path.join(model, "model.yaml"), `model_id: detector\nmodel_name: d\nmodel_version: '1'\nmodel_weights: model.onnx\n${extra}`)
    return { dir, model }
  })

/** `ruth-model serve` of `detector` from `modelDir`'s directory. */
const serveModelDir = (dir: string) =>
  ruthModel(["serve", "--models-dir", path.join(dir, "models"), "--model-id", "detector", "--socket-dir", dir])

describe("ruth-model serve (model.yaml + weights, no code)", () => {
  it.live("serves the text-detection model (with scheduling flags) until SIGTERM, then exits 0 and removes its socket", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const child = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn(process.execPath, [
            "bin/ruth-model.js", "serve", "--models-dir", "examples/models", "--model-id", "text-detection", "--socket-dir", dir,
            // Scheduling flags win over model.yaml: two one-thread sessions, batches of up to 2 (the model's batch is dynamic).
            "--streams", "2", "--max-batch", "2", "--per-camera", "latest"
          ], {
            // Pretty, as on a terminal (without one the default is JSON: test/cli/logs.test.ts).
            env: { ...process.env, RUTH_HEARTBEAT_DIR: dir, RUTH_LOG_FORMAT: "pretty" },
            stdio: ["ignore", "pipe", "pipe"]
          })
        ),
        (c) => Effect.sync(() => c.kill("SIGKILL"))
      )
      const output = collectOutput(child)
      const socket = path.join(dir, "vas_model_text-detection.sock")
      yield* Effect.promise(() => waitForListening(socket, 60_000))
      const frameDir = path.join(dir, "cam1")
      const nv12 = yield* Effect.promise(() => imageToNv12("examples/scenes/notice-board.png"))
      publishExportDir(frameDir, nv12, 42n)
      const reply = yield* Effect.promise(() =>
        call(socket, request(frameDir, { model_id: "text-detection", frame_metadata: { width: 1280, height: 720, frame_id: 42 } }))
      )
      expect(reply).toMatchObject({ error: null, frame_id: 42 })
      expect((reply.detections as Array<unknown>).length).toBe(4)
      expect(output()).toContain("effective configuration")
      for (const line of ["streams=2 (flag)", "maxBatch=2 (flag)", `perCamera="latest" (flag)`]) expect(output()).toContain(line)
      expect(output()).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(#\d+\): model-runtime \S+: serving model 'text-detection' on /m)
      child.kill("SIGTERM")
      expect(yield* Effect.promise(() => exitOf(child))).toEqual({ code: 0, signal: null })
      expect(fs.existsSync(socket)).toBe(false)
    }))

  it.live("refuses to start, exit 1, when the model is unavailable, saying why", () =>
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

  it.live("an invalid setting from any source is one line on stderr naming it and its source; flags are usage (exit 2)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const serve = ["serve", "--models-dir", "examples/models", "--model-id", "text-detection", "--socket-dir", dir]
      for (
        const [env, flags, code, line] of [
          [{ RUTH_MAX_INFLIGHT: "abc" }, [], 1, `invalid RUTH_MAX_INFLIGHT (environment): must be a positive integer, got "abc"`],
          [{ RUTH_REQUEST_TIMEOUT_MS: "-5" }, [], 1, `invalid RUTH_REQUEST_TIMEOUT_MS (environment): must be a positive integer, got "-5"`],
          [{}, ["--max-inflight", "-3"], 2, "invalid --max-inflight (flag): must be a positive integer, got -3"],
          [{}, ["--request-timeout-ms", "0"], 2, "invalid --request-timeout-ms (flag): must be a positive integer, got 0"],
          [{}, ["--per-camera", "newest"], 2, `invalid --per-camera (flag): must be one of all, latest, got "newest"`],
          [{ RUTH_MAX_BATCH: "0" }, [], 1, `invalid RUTH_MAX_BATCH (environment): must be a positive integer, got "0"`],
          [{ RUTH_METRICS_ADDR: "9464" }, [], 1, `invalid RUTH_METRICS_ADDR (environment): must be host:port, e.g. 127.0.0.1:9464 (or empty for none), got "9464"`],
          [{}, ["--metrics-addr", "localhost"], 2, `invalid --metrics-addr (flag): must be host:port, e.g. 127.0.0.1:9464 (or empty for none), got "localhost"`],
          [{ RUTH_LOG_FORMAT: "xml" }, [], 1, `invalid RUTH_LOG_FORMAT (environment): must be one of json, pretty, auto, got "xml"`],
          [{}, ["--log-level", "loud"], 2, `invalid --log-level (flag): must be one of trace, debug, info, warning, error, none, got "loud"`]
        ] as const
      ) {
        const r = yield* ruthModel([...serve, ...flags], env)
        expect(r.code, r.stderr).toBe(code)
        expect(r.stderr).toBe(`ruth-model: ${line}\n`)
        expect(r.stdout).not.toContain(line)
      }
    }))

  it.live("without a model id it names the flag (and the variable), exit 2", () =>
    Effect.gen(function*() {
      const r = yield* ruthModel(["serve", "--models-dir", "examples/models"])
      expect(r.code).toBe(2)
      expect(r.stderr).toBe("ruth-model: give --model-id ID (or set RUTH_MODEL_ID)\n")
    }))

  it.live("an invalid limit in model.yaml names the key and the file, exit 1", () =>
    Effect.gen(function*() {
      const { dir, model } = yield* modelDir("limits:\n  max_inflight: -3\n")
      const r = yield* serveModelDir(dir)
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(
        `invalid limits.max_inflight (model.yaml ${path.join(model, "model.yaml")}): must be a positive integer, got -3`
      )
    }))

  it.live("a typo'd model.yaml section is not ignored: serve refuses to start, exit 1, suggesting the key", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const model = path.join(dir, "models", "detector")
      fs.mkdirSync(model, { recursive: true })
      fs.writeFileSync(path.join(model, "model.onnx"), "weights")
      fs.writeFileSync(
        path.join(model, "model.yaml"),
        "model_id: detector\nmodel_name: d\nmodel_version: '1'\nmodel_weights: model.onnx\npost_process:\n  kind: yolo\n"
      )
      const r = yield* ruthModel(["serve", "--models-dir", path.join(dir, "models"), "--model-id", "detector", "--socket-dir", dir])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(
        `invalid post_process (model.yaml ${path.join(model, "model.yaml")}): unknown key, did you mean postprocess?`
      )
      expect(fs.existsSync(path.join(dir, "vas_model_detector.sock"))).toBe(false)
    }))
})
