import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import { describeSettings, resolveSettings } from "../../src/config/RuntimeConfig.js"
import { InferenceHandler } from "../../src/inference/InferenceHandler.js"
import { resolveLaunch, runWith, serveModel } from "../../src/container/ModelContainer.js"
import { tempDir } from "../support/harness.js"

/** The environment as a map: Effect 4's `fromEnv` over a record (Effect 3 used `ConfigProvider.fromMap`). */
const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

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
        modelYaml: {
          file: "/models/m/model.yaml",
          values: { modelId: "m", maxInflight: 7, requestTimeoutMs: 900, modelVersion: "1.0" },
          names: {}
        }
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

  it.effect("scheduling: RUTH_MAX_FRAME_AGE_MS and RUTH_PER_CAMERA win over model.yaml's scheduling section", () =>
    Effect.gen(function*() {
      const modelYaml = {
        file: "/models/m/model.yaml",
        values: { modelId: "m", maxFrameAgeMs: 500, perCamera: "all" as const },
        names: { maxFrameAgeMs: "scheduling.max_frame_age_ms", perCamera: "scheduling.per_camera" }
      }
      const fromYaml = yield* resolveSettings({ modelYaml }).pipe(withEnv({}))
      expect(fromYaml.settings).toMatchObject({ maxFrameAgeMs: 500, perCamera: "all" })
      const r = yield* resolveSettings({ modelYaml }).pipe(withEnv({ RUTH_MAX_FRAME_AGE_MS: "200", RUTH_PER_CAMERA: "latest" }))
      expect(r.settings).toMatchObject({ maxFrameAgeMs: 200, perCamera: "latest" })
      expect(r.sources).toMatchObject({ maxFrameAgeMs: "env", perCamera: "env" })
      const none = yield* resolveSettings().pipe(withEnv({ RUTH_MODEL_ID: "m" }))
      expect(none.settings).toMatchObject({ maxFrameAgeMs: 0, perCamera: "all" })
    }))

  it.effect("a bad value stops start-up with one message naming the variable and the environment", () =>
    Effect.gen(function*() {
      for (
        const [key, value, reason] of [
          ["RUTH_MAX_INFLIGHT", "abc", `must be a positive integer, got "abc"`],
          ["RUTH_MAX_INFLIGHT", "0", `must be a positive integer, got "0"`],
          ["RUTH_REQUEST_TIMEOUT_MS", "-5", `must be a positive integer, got "-5"`],
          ["RUTH_SOCKET_MODE", "rw-rw----", `must be an octal file mode like 0600 or 0660, got "rw-rw----"`],
          ["RUTH_DRAIN_TIMEOUT_MS", "1.5", `must be a non-negative integer, got "1.5"`],
          ["VAS_HEARTBEAT_INTERVAL_SECONDS", "often", `must be a number of seconds >= 0 (0 disables the heartbeat), got "often"`],
          ["RUTH_FRAME_ROOTS", "frames", `must be absolute directories (separated by ',' or ':'), got "frames"`],
          ["RUTH_MODEL_ID", "../etc", `must be letters, digits, '.', '_' or '-' (it becomes part of file names), got "../etc"`],
          ["RUTH_MAX_FRAME_AGE_MS", "200ms", `must be a non-negative integer, got "200ms"`],
          ["RUTH_PER_CAMERA", "newest", `must be one of all, latest, got "newest"`]
        ] as const
      ) {
        const error = yield* Effect.flip(resolveSettings().pipe(withEnv({ RUTH_MODEL_ID: "m", [key]: value })))
        expect(error.message).toBe(`invalid ${key} (environment): ${reason}`)
      }
      const missing = yield* Effect.flip(resolveSettings().pipe(withEnv({})))
      expect(missing.message).toBe("RUTH_MODEL_ID is required: the id of the model this container serves")
    }))

  it.effect("every invalid value is reported at once, each named as its source spells it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        resolveSettings({
          flags: { maxInflight: -3 },
          flagNames: { maxInflight: "--max-inflight" },
          modelYaml: { file: "/models/m/model.yaml", values: { modelId: "m", requestTimeoutMs: 0 }, names: { requestTimeoutMs: "limits.request_timeout_ms" } }
        }).pipe(withEnv({ RUTH_IDLE_TIMEOUT_MS: "soon" }))
      )
      expect(error.message).toBe(
        "invalid --max-inflight (flag): must be a positive integer, got -3; " +
          `invalid RUTH_IDLE_TIMEOUT_MS (environment): must be a positive integer, got "soon"; ` +
          "invalid limits.request_timeout_ms (model.yaml /models/m/model.yaml): must be a positive integer, got 0"
      )
    }))

  it.effect("without a model id, the flag the caller gave is named", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(resolveSettings({ flagNames: { modelId: "--model-id" } }).pipe(withEnv({})))
      expect(error.message).toBe("give --model-id ID (or set RUTH_MODEL_ID)")
    }))

  it.live("launching with bad settings names each one and its source: options, environment, model.yaml", () =>
    Effect.gen(function*() {
      const noHandler = Layer.succeed(InferenceHandler, InferenceHandler.of({ infer: () => Effect.succeed([]) }))
      const option = yield* Effect.flip(runWith({ modelId: "m", maxInflight: -3 }).pipe(Effect.provide(noHandler), withEnv({})))
      expect(option.message).toBe("invalid maxInflight (option): must be a positive integer, got -3")
      const env = yield* Effect.flip(
        runWith({ modelId: "m" }).pipe(Effect.provide(noHandler), withEnv({ RUTH_REQUEST_TIMEOUT_MS: "-5" }))
      )
      expect(env.message).toBe(`invalid RUTH_REQUEST_TIMEOUT_MS (environment): must be a positive integer, got "-5"`)
      const dir = yield* tempDir()
      writeModel(dir, "detector", modelYaml("detector", "limits:\n  max_inflight: -3\n"))
      const yaml = yield* Effect.flip(serveModel({ modelsDir: dir, modelId: "detector" }).pipe(withEnv({})))
      expect(yaml.message).toBe(
        `model 'detector' is unavailable (invalid_model_yaml): invalid limits.max_inflight (model.yaml ${
          path.join(dir, "detector", "model.yaml")
        }): must be a positive integer, got -3`
      )
    }))

  it.live("launch with a models dir takes id, version and limits from model.yaml, below env and flags", () =>
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
