/**
 * The launch side of configuration precedence (flags > environment > model.yaml > defaults):
 * these tests start the container, so they moved here from test/config/precedence.test.ts on
 * the Effect 4 branch and run once src/container is migrated.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import { InferenceHandler } from "../../src/container/InferenceHandler.js"
import { resolveLaunch, runWith, serveModel } from "../../src/container/ModelContainer.js"
import { tempDir } from "../support/harness.js"

const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

const writeModel = (dir: string, name: string, yaml: string) => {
  fs.mkdirSync(path.join(dir, name), { recursive: true })
  fs.writeFileSync(path.join(dir, name, "model.onnx"), "weights")
  fs.writeFileSync(path.join(dir, name, "model.yaml"), yaml)
}

const modelYaml = (id: string, extra = "") =>
  `model_id: ${id}\nmodel_name: ${id}\nmodel_version: "2.1.0"\nmodel_weights: model.onnx\n${extra}`

describe("configuration precedence at launch: flags > environment > model.yaml > defaults", () => {
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
