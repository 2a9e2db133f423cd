import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { type DiscoveredModel, discoverModels, findModel } from "../../src/config/ModelDiscovery.js"
import { makeTempRoot, removeTempRoot, writeModelDir } from "./fixtures.js"

const root = makeTempRoot("ruth-model-discovery-")
const modelsDir = path.join(root, "models")
const elsewhere = path.join(root, "elsewhere")
const unreadableDir = path.join(modelsDir, "g-unreadable")
/** chmod 000 does not stop root; decided once the tree exists. */
let permissionsEnforced = false

beforeAll(() => {
  fs.mkdirSync(modelsDir)
  fs.mkdirSync(elsewhere)
  writeModelDir(modelsDir, { model_id: "alpha" }, { name: "a-good" })
  writeModelDir(modelsDir, {}, { name: "b-invalid-yaml", text: "model_id: [unclosed\n" })
  writeModelDir(modelsDir, { model_id: "charlie", model_weights: "weights/best.onnx" }, { name: "c-missing-weights" })
  writeModelDir(modelsDir, { model_id: "delta", confidence_threshold: 2 }, { name: "d-invalid-schema" })
  fs.mkdirSync(path.join(modelsDir, "e-no-yaml"))
  fs.writeFileSync(path.join(modelsDir, "e-no-yaml", "README.md"), "weights only")
  writeModelDir(modelsDir, { model_id: "alpha" }, { name: "f-duplicate" })
  writeModelDir(modelsDir, { model_id: "golf" }, { name: "g-unreadable" })
  fs.chmodSync(unreadableDir, 0o000)
  permissionsEnforced = (() => {
    try {
      fs.readdirSync(unreadableDir)
      return false
    } catch {
      return true
    }
  })()
  fs.symlinkSync(path.join(root, "gone"), path.join(modelsDir, "h-broken-link"))
  fs.symlinkSync(writeModelDir(elsewhere, { model_id: "india" }, { name: "india" }), path.join(modelsDir, "i-linked"))
  fs.writeFileSync(path.join(modelsDir, "README.md"), "not a model")
  fs.symlinkSync(path.join(modelsDir, "README.md"), path.join(modelsDir, "j-link-to-file"))
  fs.writeFileSync(path.join(modelsDir, "0-top-level.onnx"), "stray file")
})

afterAll(() => {
  fs.chmodSync(unreadableDir, 0o755)
  removeTempRoot(root)
})

const summary = (models: ReadonlyArray<DiscoveredModel>) =>
  models.map((m) => (m.status === "available" ? [m.name, "available", m.config.config.model_id] : [m.name, m.code]))

describe("discoverModels", () => {
  it.effect("reports every model directory in name order, available or with a reason, skipping files", () =>
    Effect.gen(function*() {
      const models = yield* discoverModels(modelsDir)
      expect(summary(models)).toEqual([
        ["a-good", "available", "alpha"],
        ["b-invalid-yaml", "invalid_model_yaml"],
        ["c-missing-weights", "missing_weights"],
        ["d-invalid-schema", "invalid_model_yaml"],
        ["e-no-yaml", "missing_model_yaml"],
        ["f-duplicate", "duplicate_model_id"],
        // Running as root, chmod 000 does not block reads, so the model is simply available.
        permissionsEnforced ? ["g-unreadable", "unreadable"] : ["g-unreadable", "available", "golf"],
        ["h-broken-link", "broken_symlink"],
        ["i-linked", "available", "india"]
      ])
      const byName = new Map(models.map((m) => [m.name, m]))
      const reason = (name: string) => {
        const m = byName.get(name)
        return m?.status === "unavailable" ? m.reason : undefined
      }
      expect(reason("b-invalid-yaml")).toMatch(/^invalid_model_yaml: YAML syntax error: .* at line \d+, column \d+$/)
      expect(reason("c-missing-weights")).toBe(
        `missing_weights: ${path.join(modelsDir, "c-missing-weights", "weights/best.onnx")}`
      )
      expect(reason("d-invalid-schema")).toBe("invalid_model_yaml: confidence_threshold: must be between 0 and 1, got 2")
      expect(reason("e-no-yaml")).toBe(`missing_model_yaml: ${path.join(modelsDir, "e-no-yaml", "model.yaml")}`)
      expect(reason("f-duplicate")).toBe("duplicate_model_id: 'alpha' is already declared by a-good")
      expect(reason("h-broken-link")).toBe(
        `broken_symlink: ${path.join(modelsDir, "h-broken-link")} -> ${path.join(root, "gone")} (ENOENT)`
      )
      if (permissionsEnforced) {
        expect(reason("g-unreadable")).toBe(`unreadable: ${unreadableDir}: EACCES`)
      }
      const good = byName.get("a-good")
      expect(good?.directory).toBe(path.join(modelsDir, "a-good"))
      expect(good?.status === "available" && good.config.weightsPath).toBe(
        path.join(modelsDir, "a-good", "model.onnx")
      )
    }))

  it.effect("an empty models directory has no models", () =>
    Effect.gen(function*() {
      const empty = path.join(root, "empty-models")
      fs.mkdirSync(empty)
      expect(yield* discoverModels(empty)).toEqual([])
    }))

  it.effect("a missing models directory, or a file in its place, is a ModelsDirError", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(discoverModels(path.join(root, "no-such-dir")))
      expect(missing._tag).toBe("ModelsDirError")
      expect(missing.message).toBe(`models directory ${path.join(root, "no-such-dir")}: does not exist`)
      const file = yield* Effect.flip(discoverModels(path.join(modelsDir, "README.md")))
      expect(file.message).toBe(`models directory ${path.join(modelsDir, "README.md")}: is not a directory`)
    }))
})

describe("findModel", () => {
  it.effect("returns the available model with that model_id (the first, when duplicated)", () =>
    Effect.gen(function*() {
      const models = yield* discoverModels(modelsDir)
      // Effect 3's Either was an Effect; Effect 4's Result is lifted with Effect.fromResult.
      const alpha = yield* Effect.fromResult(findModel(models, "alpha"))
      expect(alpha.name).toBe("a-good")
      expect((yield* Effect.fromResult(findModel(models, "india"))).name).toBe("i-linked")
    }))

  it.effect("says why a model is unavailable, by model_id when it could be read, else by directory name", () =>
    Effect.gen(function*() {
      const models = yield* discoverModels(modelsDir)
      const charlie = findModel(models, "charlie")
      expect(Result.isFailure(charlie) && charlie.failure._tag).toBe("ModelUnavailable")
      expect(Result.isFailure(charlie) && charlie.failure.message).toBe(
        `model 'charlie' (${path.join(modelsDir, "c-missing-weights")}) is unavailable: missing_weights: ${
          path.join(modelsDir, "c-missing-weights", "weights/best.onnx")
        }`
      )
      const delta = findModel(models, "delta")
      expect(Result.isFailure(delta) && delta.failure._tag === "ModelUnavailable" && delta.failure.code).toBe(
        "invalid_model_yaml"
      )
      const byDir = findModel(models, "b-invalid-yaml")
      expect(Result.isFailure(byDir) && byDir.failure._tag).toBe("ModelUnavailable")
    }))

  it.effect("says when no model has that model_id, listing the available ones", () =>
    Effect.gen(function*() {
      const models = yield* discoverModels(modelsDir)
      const result = findModel(models, "zulu")
      expect(Result.isFailure(result) && result.failure._tag).toBe("ModelNotFound")
      const available = permissionsEnforced ? "alpha, india" : "alpha, golf, india"
      expect(Result.isFailure(result) && result.failure.message).toBe(`model 'zulu' not found (available: ${available})`)
    }))
})
