import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger } from "effect"
import { ModelConfig } from "../../src/config/ModelConfig.js"
import { RuntimeConfig } from "../../src/config/RuntimeConfig.js"
import { resolveLaunch } from "../../src/container/ModelContainer.js"
import { tempDir } from "../support/harness.js"
import { loadedModel, writeModelDir } from "./fixtures.js"

/** The environment the layer reads, as a test gives it: no `process.env`. */
const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env, preserveEmptyStrings: true }))

/** The settings `layer` resolves. */
const settingsOf = <E>(layer: Layer.Layer<RuntimeConfig, E>) => Effect.provide(Effect.service(RuntimeConfig), layer)

/** Every message logged while `self` runs. */
const logsOf = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const capture = Logger.make(({ message }) => {
      lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    })
    yield* self.pipe(Effect.provide(Logger.layer([capture])))
    return lines
  })

const detector = loadedModel({
  model_id: "detector",
  model_version: "2.1.0",
  limits: { max_inflight: 7, request_timeout_ms: 900 },
  scheduling: { streams: 2, per_camera: "latest" }
})

describe("RuntimeConfig.fromSources: flags > environment > model.yaml (ModelConfig) > defaults, inside the layer", () => {
  it.effect("each source wins over the ones below it; model.yaml comes from the ModelConfig service, no files read", () =>
    Effect.gen(function*() {
      const settings = yield* settingsOf(
        RuntimeConfig.fromSources({ maxInflight: 3 }).pipe(Layer.provide(ModelConfig.layerTest(detector)))
      ).pipe(withEnv({ RUTH_MAX_INFLIGHT: "5", RUTH_REQUEST_TIMEOUT_MS: "1200", RUTH_PER_CAMERA: "all" }))
      expect(settings).toMatchObject({
        modelId: "detector",
        modelVersion: "2.1.0",
        maxInflight: 3, // flag over env (5) and model.yaml (7)
        requestTimeoutMs: 1200, // env over model.yaml (900)
        perCamera: "all", // env over model.yaml (latest)
        streams: 2, // model.yaml over the default (1)
        idleTimeoutMs: 60_000, // default
        socketPath: "/tmp/vas_model_detector.sock"
      })
    }))

  it.effect("without a ModelConfig, model.yaml plays no part and the model id must come from a flag or the environment", () =>
    Effect.gen(function*() {
      const fromEnv = yield* settingsOf(RuntimeConfig.fromSources()).pipe(withEnv({ RUTH_MODEL_ID: "plain" }))
      expect(fromEnv).toMatchObject({ modelId: "plain", modelVersion: "unknown", maxInflight: 64, streams: 1 })
      const missing = yield* Effect.flip(
        settingsOf(RuntimeConfig.fromSources({}, { flagNames: { modelId: "--model-id" } })).pipe(withEnv({}))
      )
      expect(missing._tag).toBe("MissingModelId")
      expect(missing.message).toBe("give --model-id ID (or set RUTH_MODEL_ID)")
    }))

  it.effect("fails with the typed errors, each problem named as its source spells it", () =>
    Effect.gen(function*() {
      const env = yield* Effect.flip(
        settingsOf(RuntimeConfig.fromSources({ modelId: "m" })).pipe(withEnv({ RUTH_MAX_INFLIGHT: "" }))
      )
      expect(env._tag).toBe("InvalidSettings")
      // An empty variable is a value, judged by the setting's rule.
      expect(env.message).toBe(`invalid RUTH_MAX_INFLIGHT (environment): must be a positive integer, got ""`)
      const flag = yield* Effect.flip(
        settingsOf(
          RuntimeConfig.fromSources({ streams: 0 }, { flagNames: { streams: "--streams" } }).pipe(
            Layer.provide(ModelConfig.layerTest(detector))
          )
        ).pipe(withEnv({}))
      )
      expect(flag.message).toBe("invalid --streams (flag): must be a positive integer, got 0")
    }))

  it.effect("logs the effective configuration once, each value with its source", () =>
    Effect.gen(function*() {
      const lines = yield* logsOf(
        settingsOf(RuntimeConfig.fromSources({ maxInflight: 3 }).pipe(Layer.provide(ModelConfig.layerTest(detector)))).pipe(
          withEnv({ RUTH_REQUEST_TIMEOUT_MS: "1200" })
        )
      )
      const effective = lines.filter((l) => l.startsWith("effective configuration"))
      expect(effective).toHaveLength(1)
      expect(effective[0]).toContain("maxInflight=3 (flag)")
      expect(effective[0]).toContain("requestTimeoutMs=1200 (env)")
      expect(effective[0]).toContain("streams=2 (model.yaml)")
      expect(effective[0]).toContain("idleTimeoutMs=60000 (default)")
    }))

  it.live("a launch logs it once too, after what discovery found", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      writeModelDir(dir, { model_id: "detector" }, { name: "detector" })
      const lines = yield* logsOf(resolveLaunch({ modelsDir: dir, modelId: "detector" }).pipe(withEnv({})))
      expect(lines.filter((l) => l.startsWith("effective configuration"))).toHaveLength(1)
      const found = lines.findIndex((l) => l.startsWith("model detector: available"))
      expect(found).toBeGreaterThanOrEqual(0)
      expect(found).toBeLessThan(lines.findIndex((l) => l.startsWith("effective configuration")))
    }))
})

describe("launch: flags and environment are checked before the models dir is scanned", () => {
  it.live("a bad variable is reported as such, not as a models dir that cannot be scanned", () =>
    Effect.gen(function*() {
      const missingDir = path.join(yield* tempDir(), "no-models-here")
      const options = { modelsDir: missingDir, modelId: "detector" }
      const bad = yield* Effect.flip(resolveLaunch(options).pipe(withEnv({ RUTH_MAX_INFLIGHT: "abc" })))
      expect(bad._tag).toBe("InvalidSettings")
      expect(bad.message).toBe(`invalid RUTH_MAX_INFLIGHT (environment): must be a positive integer, got "abc"`)
      // With good values the same launch scans the directory (and fails there).
      const scanned = yield* Effect.flip(resolveLaunch(options).pipe(withEnv({})))
      expect(scanned._tag).toBe("ModelsDirError")
    }))
})

describe("ModelConfig: the loaded model as a service", () => {
  it.live("fromDirectory loads a model directory; a broken one fails with ModelConfigError", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const dir = writeModelDir(root, { model_id: "cam", limits: { max_inflight: 4 } })
      const loaded = yield* Effect.provide(Effect.service(ModelConfig), ModelConfig.fromDirectory(dir))
      expect(loaded.config.model_id).toBe("cam")
      expect(loaded.file).toBe(path.join(dir, "model.yaml"))
      // The runtime config takes its limits from it.
      const settings = yield* settingsOf(RuntimeConfig.fromSources().pipe(Layer.provide(ModelConfig.fromDirectory(dir)))).pipe(
        withEnv({})
      )
      expect(settings).toMatchObject({ modelId: "cam", maxInflight: 4 })
      const broken = writeModelDir(root, { model_weights: undefined })
      const error = yield* Effect.flip(Effect.provide(Effect.service(ModelConfig), ModelConfig.fromDirectory(broken)))
      expect(error._tag).toBe("ModelConfigError")
      expect(error.message).toBe(`${path.join(broken, "model.yaml")}: model_weights: is required`)
    }))

  it.live("fromDiscovery picks the model by id from one scan of the models dir", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      writeModelDir(root, { model_id: "a" }, { name: "first" })
      writeModelDir(root, { model_id: "b" }, { name: "second" })
      const loaded = yield* Effect.provide(Effect.service(ModelConfig), ModelConfig.fromDiscovery(root, "b"))
      expect(loaded.directory).toBe(path.join(root, "second"))
      const absent = yield* Effect.flip(Effect.provide(Effect.service(ModelConfig), ModelConfig.fromDiscovery(root, "c")))
      expect(absent._tag).toBe("ModelNotFound")
      expect(absent.message).toContain("available: a, b")
    }))
})
