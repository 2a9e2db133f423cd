/**
 * Model discovery (CONTRACT §6): one scan of `{models_dir}/{model}/model.yaml` at start-up.
 * Every sub-directory becomes an available model or an unavailable one with a code and a
 * reason; nothing in a model directory can make the scan fail. Only a models_dir that is
 * missing or unreadable fails it (`ModelsDirError`), since then there is nothing to report on.
 */
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Data, Effect, Result } from "effect"
import { type LoadedModelConfig, loadModelConfig, tryFs } from "./ModelLoader.js"
import type { ModelConfigErrorKind, ModelConfigProblem } from "./ModelYaml.js"
import { formatSettingProblem } from "./RuntimeSettings.js"

export type UnavailableCode =
  | "missing_model_yaml"
  | "invalid_model_yaml"
  | "missing_weights"
  | "unreadable"
  | "broken_symlink"
  | "duplicate_model_id"

export interface AvailableModel {
  /** The directory name. */
  readonly name: string
  /** Absolute path of the model directory. */
  readonly directory: string
  readonly status: "available"
  readonly config: LoadedModelConfig
}

export interface UnavailableModel {
  readonly name: string
  readonly directory: string
  readonly status: "unavailable"
  readonly code: UnavailableCode
  /** `<code>: <details>`, e.g. `missing_weights: /opt/models/x/model.onnx`. */
  readonly reason: string
  /** The model_id from model.yaml when it could be read, so `findModel` can explain. */
  readonly modelId?: string
  /** For `invalid_model_yaml`: the file and each of its problems, so a start-up can name the key. */
  readonly invalid?: { readonly file: string; readonly problems: ReadonlyArray<ModelConfigProblem> }
}

export type DiscoveredModel = AvailableModel | UnavailableModel

/** The models directory itself cannot be scanned. */
export class ModelsDirError extends Data.TaggedError("ModelsDirError")<{
  readonly directory: string
  readonly reason: string
}> {
  override get message() {
    return `models directory ${this.directory}: ${this.reason}`
  }
}

const unavailable = (
  name: string,
  directory: string,
  code: UnavailableCode,
  details: string,
  modelId?: string,
  invalid?: UnavailableModel["invalid"]
): UnavailableModel => ({
  name,
  directory,
  status: "unavailable",
  code,
  reason: `${code}: ${details}`,
  ...(modelId === undefined ? {} : { modelId }),
  ...(invalid === undefined ? {} : { invalid })
})

const codeOf: Record<ModelConfigErrorKind, UnavailableCode> = {
  missing_file: "missing_model_yaml",
  unreadable: "unreadable",
  missing_weights: "missing_weights",
  invalid: "invalid_model_yaml",
  not_model_yaml: "invalid_model_yaml"
}

/** A model directory (already known to be a directory) → its discovery entry. */
const inspect = (name: string, directory: string): Effect.Effect<DiscoveredModel> =>
  Effect.gen(function*() {
    // Listing first tells "cannot enter the directory" apart from "no model.yaml in it".
    const listing = yield* Effect.result(tryFs(() => fs.readdir(directory)))
    if (Result.isFailure(listing)) {
      return unavailable(name, directory, "unreadable", `${directory}: ${listing.failure.code}`)
    }
    const loaded = yield* Effect.result(loadModelConfig(directory))
    if (Result.isSuccess(loaded)) return { name, directory, status: "available", config: loaded.success } as const
    const error = loaded.failure
    const code = codeOf[error.kind]
    const details = code === "missing_weights"
      ? error.problems.map((p) => p.reason.replace(/^file not found: /, "")).join("; ")
      : code === "missing_model_yaml"
      ? error.file
      : code === "unreadable"
      ? error.message
      : error.details
    const invalid = code === "invalid_model_yaml" ? { file: error.file, problems: error.problems } : undefined
    return unavailable(name, directory, code, details, error.modelId, invalid)
  })

/** A top-level entry → a model directory to inspect, a broken link to report, or nothing (files). */
const classify = (
  modelsDir: string,
  entry: { readonly name: string; readonly isDirectory: boolean; readonly isSymbolicLink: boolean }
): Effect.Effect<DiscoveredModel | undefined> =>
  Effect.gen(function*() {
    const directory = nodePath.join(modelsDir, entry.name)
    if (entry.isDirectory) return yield* inspect(entry.name, directory)
    if (!entry.isSymbolicLink) return undefined
    const target = yield* Effect.result(tryFs(() => fs.stat(directory)))
    if (Result.isSuccess(target)) return target.success.isDirectory() ? yield* inspect(entry.name, directory) : undefined
    const link = yield* Effect.result(tryFs(() => fs.readlink(directory)))
    const pointsTo = Result.isSuccess(link) ? ` -> ${link.success}` : ""
    return unavailable(entry.name, directory, "broken_symlink", `${directory}${pointsTo} (${target.failure.code})`)
  })

/** Later directories (by name) that repeat an earlier model_id become unavailable. */
const markDuplicates = (models: ReadonlyArray<DiscoveredModel>): ReadonlyArray<DiscoveredModel> => {
  const firstById = new Map<string, string>()
  return models.map((model) => {
    if (model.status !== "available") return model
    const id = model.config.config.model_id
    const first = firstById.get(id)
    if (first === undefined) {
      firstById.set(id, model.name)
      return model
    }
    return unavailable(model.name, model.directory, "duplicate_model_id", `'${id}' is already declared by ${first}`, id)
  })
}

/**
 * Scans `modelsDir` once: each sub-directory (or symlink to one), sorted by name, becomes
 * an available or unavailable model; files at the top level are skipped.
 * Fails only when `modelsDir` itself is missing, not a directory, or unreadable.
 */
export const discoverModels: (modelsDir: string) => Effect.Effect<ReadonlyArray<DiscoveredModel>, ModelsDirError> =
  Effect.fn("discoverModels")(function*(modelsDir: string) {
    const root = nodePath.resolve(modelsDir)
    const entries = yield* tryFs(() => fs.readdir(root, { withFileTypes: true })).pipe(
      Effect.mapError((e) =>
        new ModelsDirError({
          directory: root,
          reason: e.code === "ENOENT"
            ? "does not exist"
            : e.code === "ENOTDIR"
            ? "is not a directory"
            : `cannot be read (${e.code})`
        })
      )
    )
    // Code-unit order, not locale order, so every machine lists the same sequence.
    const sorted = entries
      .map((e) => ({ name: e.name, isDirectory: e.isDirectory(), isSymbolicLink: e.isSymbolicLink() }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const found = yield* Effect.forEach(sorted, (entry) => classify(root, entry), { concurrency: 8 })
    return markDuplicates(found.filter((m): m is DiscoveredModel => m !== undefined))
  })

/** No discovered model declares this model_id. */
export class ModelNotFound extends Data.TaggedError("ModelNotFound")<{
  readonly modelId: string
  /** model_ids of the available models, to suggest the right one. */
  readonly available: ReadonlyArray<string>
}> {
  override get message() {
    const known = this.available.length === 0 ? "no models are available" : `available: ${this.available.join(", ")}`
    return `model '${this.modelId}' not found (${known})`
  }
}

/** The model exists on disk but discovery marked it unavailable. */
export class ModelUnavailable extends Data.TaggedError("ModelUnavailable")<{
  readonly modelId: string
  readonly directory: string
  readonly code: UnavailableCode
  readonly reason: string
  readonly invalid?: UnavailableModel["invalid"]
}> {
  /** An invalid model.yaml names each key and the file, as every invalid setting does. */
  override get message() {
    if (this.invalid === undefined) return `model '${this.modelId}' (${this.directory}) is unavailable: ${this.reason}`
    const { file, problems } = this.invalid
    const named = problems.map((p) =>
      p.path === "" ? `${file}: ${p.reason}` : formatSettingProblem({ name: p.path, where: `model.yaml ${file}`, reason: p.reason })
    )
    return `model '${this.modelId}' is unavailable (${this.code}): ${named.join("; ")}`
  }
}

/**
 * The available model with this model_id. An unavailable one matches by its model_id
 * when model.yaml could be read, else by directory name.
 */
export const findModel = (
  models: ReadonlyArray<DiscoveredModel>,
  modelId: string
): Result.Result<AvailableModel, ModelNotFound | ModelUnavailable> => {
  const available = models.filter((m): m is AvailableModel => m.status === "available")
  const hit = available.find((m) => m.config.config.model_id === modelId)
  if (hit !== undefined) return Result.succeed(hit)
  const broken = models.find((m): m is UnavailableModel =>
    m.status === "unavailable" && (m.modelId === modelId || (m.modelId === undefined && m.name === modelId))
  )
  if (broken !== undefined) {
    return Result.fail(
      new ModelUnavailable({
        modelId,
        directory: broken.directory,
        code: broken.code,
        reason: broken.reason,
        ...(broken.invalid === undefined ? {} : { invalid: broken.invalid })
      })
    )
  }
  return Result.fail(new ModelNotFound({ modelId, available: available.map((m) => m.config.config.model_id) }))
}

export type ModelSelectionError = ModelsDirError | ModelNotFound | ModelUnavailable

/** Scans the models dir once and picks the model to serve, logging what was found. */
export const selectModel = (
  modelsDir: string,
  modelId: string
): Effect.Effect<LoadedModelConfig, ModelSelectionError> =>
  Effect.gen(function*() {
    const models = yield* discoverModels(modelsDir)
    for (const m of models) {
      yield* m.status === "available"
        ? Effect.logInfo(`model ${m.name}: available (${m.config.config.model_id} ${m.config.config.model_version})`)
        : Effect.logWarning(`model ${m.name}: unavailable: ${m.reason}`)
    }
    const model = yield* Effect.fromResult(findModel(models, modelId))
    for (const warning of model.config.warnings) yield* Effect.logWarning(`${model.config.file}: ${warning}`)
    return model.config
  })
