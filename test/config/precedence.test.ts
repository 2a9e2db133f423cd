import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import { describeSettings, resolveSettings } from "../../src/config/RuntimeConfig.js"
import { resolveLaunch } from "../../src/container/ModelContainer.js"
import { tempDir } from "../support/harness.js"

const withEnv = (env: Record<string, string>) =>
  Effect.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

const writeModel = (dir: string, name: string, yaml: string) => {
  fs.mkdirSync(path.join(dir, name), { recursive: true })
  fs.writeFileSync(path.join(dir, name, "model.onnx"), "weights")
  fs.writeFileSync(path.join(dir, name, "model.yaml"), yaml)
}

const modelYaml = (id: string, extra = "") =>
  `model_id: ${id}\nmodel_name: ${id}\nmodel_version: "2.1.0"\nmodel_weights: model.onnx\n${extra}`

describe("configuration precedence: flags > environment > model.yaml > defaults", () => {
  it.effect("each layer wins over the ones below it, and the sources say so", () =>
    Effect.gen(function*() {
      const r = yield* resolveSettings({
        flags: { maxInflight: 3 },
        modelYaml: { modelId: "m", maxInflight: 7, requestTimeoutMs: 900, modelVersion: "1.0" }
      }).pipe(withEnv({ RUTH_MAX_INFLIGHT: "5", RUTH_REQUEST_TIMEOUT_MS: "1200" }))
      expect(r.settings).toMatchObject({ modelId: "m", maxInflight: 3, requestTimeoutMs: 1200, modelVersion: "1.0", idleTimeoutMs: 60_000 })
      expect(r.sources).toMatchObject({ maxInflight: "flag", requestTimeoutMs: "env", modelVersion: "model.yaml", idleTimeoutMs: "default" })
      expect(describeSettings(r)).toContain("maxInflight=3 (flag)")
    }))

  it.effect("reads every RUTH_* key, and VAS_HEARTBEAT_INTERVAL_SECONDS as the reference did", () =>
    Effect.gen(function*() {
      const r = yield* resolveSettings().pipe(
        withEnv({
          RUTH_MODEL_ID: "cam-model",
          RUTH_SOCKET_DIR: "/run/ruth",
          RUTH_SOCKET_MODE: "0660",
          RUTH_FRAME_ROOTS: "/dev/shm,/srv/frames",
          RUTH_IDLE_TIMEOUT_MS: "1000",
          RUTH_DRAIN_TIMEOUT_MS: "0",
          RUTH_MAX_MESSAGE_BYTES: "2048",
          VAS_HEARTBEAT_INTERVAL_SECONDS: "2.5",
          RUTH_HEARTBEAT_DIR: "/run/hb"
        })
      )
      expect(r.settings).toMatchObject({
        modelId: "cam-model",
        socketPath: "/run/ruth/vas_model_cam-model.sock",
        socketMode: 0o660,
        frameRoots: ["/dev/shm", "/srv/frames"],
        idleTimeoutMs: 1000,
        drainTimeoutMs: 0,
        maxMessageBytes: 2048,
        heartbeatIntervalMs: 2500,
        heartbeatDir: "/run/hb"
      })
    }))

  it.effect("a bad value stops start-up with a message naming the key", () =>
    Effect.gen(function*() {
      for (const [key, value, text] of [
        ["RUTH_MAX_INFLIGHT", "0", "RUTH_MAX_INFLIGHT"],
        ["RUTH_SOCKET_MODE", "rw-rw----", "octal file mode"],
        ["RUTH_REQUEST_TIMEOUT_MS", "soon", "RUTH_REQUEST_TIMEOUT_MS"],
        ["RUTH_MODEL_ID", "../etc", "must match"]
      ] as const) {
        const exit = yield* Effect.exit(resolveSettings().pipe(withEnv({ RUTH_MODEL_ID: "m", [key]: value })))
        expect(Exit.isFailure(exit) && String(exit.cause), key).toContain(text)
      }
      const missing = yield* Effect.exit(resolveSettings().pipe(withEnv({})))
      expect(Exit.isFailure(missing) && String(missing.cause)).toContain("RUTH_MODEL_ID is required")
    }))

  it.scopedLive("launch with a models dir takes id, version and limits from model.yaml, below env and flags", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      writeModel(dir, "detector", modelYaml("detector", "limits:\n  max_inflight: 7\n  request_timeout_ms: 900\n"))
      writeModel(dir, "broken", "model_id: broken\n")
      const { model, settings } = yield* resolveLaunch({ modelsDir: dir, modelId: "detector", maxInflight: 2 }).pipe(
        withEnv({ RUTH_REQUEST_TIMEOUT_MS: "1500" })
      )
      expect(model?.config.model_id).toBe("detector")
      expect(settings).toMatchObject({ modelId: "detector", modelVersion: "2.1.0", maxInflight: 2, requestTimeoutMs: 1500 })
      const fromYaml = yield* resolveLaunch({ modelsDir: dir, modelId: "detector" }).pipe(withEnv({}))
      expect(fromYaml.settings).toMatchObject({ maxInflight: 7, requestTimeoutMs: 900 })
      const broken = yield* Effect.exit(resolveLaunch({ modelsDir: dir, modelId: "broken" }).pipe(withEnv({})))
      expect(Exit.isFailure(broken) && String(broken.cause)).toContain("invalid_model_yaml")
      const absent = yield* Effect.exit(resolveLaunch({ modelsDir: dir, modelId: "nope" }).pipe(withEnv({})))
      expect(Exit.isFailure(absent) && String(absent.cause)).toContain("available: detector")
    }))

  it.effect("without a models dir, the handler-only mode needs no model.yaml", () =>
    Effect.gen(function*() {
      const { model, settings } = yield* resolveLaunch({ modelId: "plain" }).pipe(withEnv({}))
      expect(model).toBeUndefined()
      expect(settings.modelId).toBe("plain")
    }))
})
