import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ruthModel } from "../support/cli.js"
import { tempDir } from "../support/harness.js"

const minimal = "model_id: demo\nmodel_name: Demo\nmodel_version: '1'\nmodel_weights: model.onnx\n"

/** A model directory with weights and this model.yaml; returns the model.yaml path. */
const writeModel = (dir: string, name: string, yaml: string): string => {
  fs.mkdirSync(path.join(dir, name), { recursive: true })
  fs.writeFileSync(path.join(dir, name, "model.onnx"), "weights")
  fs.writeFileSync(path.join(dir, name, "model.yaml"), yaml)
  return path.join(dir, name, "model.yaml")
}

describe("ruth-model validate", () => {
  it.live("a file that is not a model.yaml is one line saying so, exit 1", () =>
    Effect.gen(function*() {
      const readme = yield* ruthModel(["validate", "README.md"])
      expect(readme.code).toBe(1)
      expect(readme.stdout).toMatch(/^README\.md: not a model\.yaml \(not YAML: [^\n]*\)\n$/)
      const dir = yield* tempDir()
      const list = path.join(dir, "list.yaml")
      fs.writeFileSync(list, "- alpha\n- beta\n")
      const r = yield* ruthModel(["validate", list])
      expect(r.code).toBe(1)
      expect(r.stdout).toBe(`${list}: not a model.yaml (it is a YAML list, not a mapping of keys)\n`)
    }))

  it.live("a typo'd key or section is invalid (exit 1) with a suggestion; an unknown metadata key is a warning (exit 0)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const typo = yield* ruthModel(["validate", writeModel(dir, "typo", `${minimal}confidance_threshold: 0.4\n`)])
      expect(typo.code).toBe(1)
      expect(typo.stdout).toContain("  - confidance_threshold: unknown key, did you mean confidence_threshold?")
      const section = yield* ruthModel(["validate", writeModel(dir, "section", `${minimal}post_process:\n  kind: yolo\n`)])
      expect(section.code).toBe(1)
      expect(section.stdout).toContain("  - post_process: unknown key, did you mean postprocess?")
      const inside = yield* ruthModel(["validate", writeModel(dir, "inside", `${minimal}postprocess:\n  kind: yolo\n  confidance: 1\n`)])
      expect(inside.code).toBe(1)
      expect(inside.stdout).toContain("  - postprocess.confidance: unknown key (kind yolo takes: kind, layout, max_detections, class_agnostic_nms)")
      const metadata = yield* ruthModel(["validate", writeModel(dir, "metadata", `${minimal}my_team: x\n`)])
      expect(metadata.code).toBe(0)
      expect(metadata.stdout).toContain("valid: ")
      expect(metadata.stdout).toContain("  warning: unknown key 'my_team' is ignored")
    }))

  it.live("exit codes: 0 valid, 2 without a PATH (usage)", () =>
    Effect.gen(function*() {
      expect((yield* ruthModel(["validate", "examples/models/text-detection"])).code).toBe(0)
      expect((yield* ruthModel(["validate"])).code).toBe(2)
    }))
})

describe("ruth-model discover", () => {
  it.live("exit 0 when the directory was scanned, even with unavailable models; 1 when it is missing or not a directory", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      writeModel(dir, "typo", `${minimal}confidance_threshold: 0.4\n`)
      fs.mkdirSync(path.join(dir, "notes"))
      fs.writeFileSync(path.join(dir, "notes", "model.yaml"), "- a list\n")
      const scanned = yield* ruthModel(["discover", "--models-dir", dir])
      expect(scanned.code).toBe(0)
      expect(scanned.stdout).toMatch(/typo\s+unavailable\s+invalid_model_yaml: confidance_threshold: unknown key, did you mean confidence_threshold\?/)
      expect(scanned.stdout).toMatch(/notes\s+unavailable\s+invalid_model_yaml: not a model\.yaml \(it is a YAML list/)
      const missing = yield* ruthModel(["discover", "--models-dir", path.join(dir, "nowhere")])
      expect(missing.code).toBe(1)
      expect(missing.stderr).toBe(`ruth-model: models directory ${path.join(dir, "nowhere")}: does not exist\n`)
      const file = path.join(dir, "typo", "model.yaml")
      const notDir = yield* ruthModel(["discover", "--models-dir", file])
      expect(notDir.code).toBe(1)
      const fromEnv = yield* ruthModel(["discover"], { RUTH_MODELS_DIR: path.join(dir, "nowhere") })
      expect(fromEnv.code).toBe(1)
      expect((yield* ruthModel(["discover", "--bogus"])).code).toBe(2)
    }))
})
