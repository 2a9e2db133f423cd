/** Model directories in a temp dir for config and discovery tests. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { expect } from "@effect/vitest"
import * as YAML from "yaml"
import { Result } from "effect"
import type { LoadedModelConfig } from "../../src/config/ModelLoader.js"
import { decodeModelConfig, type ModelConfigError } from "../../src/config/ModelYaml.js"

/** The smallest valid model.yaml; tests patch it. */
export const baseYaml: Readonly<Record<string, unknown>> = {
  model_id: "demo",
  model_name: "Demo detector",
  model_version: "1.0.0",
  model_weights: "model.onnx"
}

export const makeTempRoot = (prefix: string): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

export const removeTempRoot = (root: string): void => fs.rmSync(root, { recursive: true, force: true })

let counter = 0

export interface ModelDirOptions {
  /** Written verbatim instead of the YAML built from `fields`. */
  readonly text?: string
  /** Extra files (relative path → content); `model.onnx` is always created unless `weights: false`. */
  readonly files?: Readonly<Record<string, string>>
  readonly weights?: boolean
  readonly name?: string
}

/**
 * Creates `<root>/<name>/model.yaml` from `baseYaml` patched with `patch` (an `undefined`
 * value removes the key) and returns the model directory.
 */
export const writeModelDir = (
  root: string,
  patch: Readonly<Record<string, unknown>> = {},
  options: ModelDirOptions = {}
): string => {
  const dir = path.join(root, options.name ?? `model-${++counter}`)
  fs.mkdirSync(dir, { recursive: true })
  const fields = Object.fromEntries(Object.entries({ ...baseYaml, ...patch }).filter(([, v]) => v !== undefined))
  fs.writeFileSync(path.join(dir, "model.yaml"), options.text ?? YAML.stringify(fields))
  if (options.weights !== false) fs.writeFileSync(path.join(dir, "model.onnx"), "not really onnx")
  for (const [file, content] of Object.entries(options.files ?? {})) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true })
    fs.writeFileSync(path.join(dir, file), content)
  }
  return dir
}

/** The error names the file, and lists `path: reason` both as data and in its message. */
export const expectProblem = (error: ModelConfigError, file: string, problemPath: string, reason: string): void => {
  expect(error._tag).toBe("ModelConfigError")
  expect(error.file).toBe(file)
  expect(error.problems).toContainEqual({ path: problemPath, reason })
  expect(error.message.startsWith(`${file}: `)).toBe(true)
  expect(error.message).toContain(problemPath === "" ? reason : `${problemPath}: ${reason}`)
}

/**
 * A loaded model as a value, no files: `baseYaml` patched with `patch`, decoded by the schema, as
 * if it were in `directory` (for `ModelConfig.layerTest`). Throws when the patch is invalid.
 */
export const loadedModel = (patch: Readonly<Record<string, unknown>> = {}, directory = "/models/demo"): LoadedModelConfig => {
  const decoded = decodeModelConfig({ ...baseYaml, ...patch })
  if (Result.isFailure(decoded)) throw new Error(`invalid test model: ${JSON.stringify(decoded.failure)}`)
  return {
    config: decoded.success,
    directory,
    file: path.join(directory, "model.yaml"),
    weightsPath: path.join(directory, decoded.success.model_weights),
    classNames: decoded.success.output_schema.class_names ?? [],
    warnings: []
  }
}
