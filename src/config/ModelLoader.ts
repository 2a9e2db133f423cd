/**
 * Loads a model directory: its model.yaml (ModelYaml.ts) and the files it names (weights,
 * class names), every problem reported together in one `ModelConfigError`.
 *
 * `loadModelConfig` uses `node:fs/promises` directly, so its requirement channel is empty.
 */
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Effect, Result } from "effect"
import {
  decodeModelConfig,
  isRecord,
  ModelConfigError,
  type ModelConfigErrorKind,
  type ModelConfigProblem,
  type ModelYaml,
  parseModelYaml,
  unknownKeys
} from "./ModelYaml.js"

// ---------------------------------------------------------------------------
// Loading (files)
// ---------------------------------------------------------------------------

/** @internal An fs failure reduced to what a reason needs. */
export interface FsFailure {
  readonly code: string
  readonly message: string
}

/** @internal Runs an fs promise, with its failure as data. */
export const tryFs = <A>(f: () => Promise<A>): Effect.Effect<A, FsFailure> =>
  Effect.tryPromise({
    try: f,
    catch: (e): FsFailure =>
      e instanceof Error
        ? { code: "code" in e && typeof e.code === "string" ? e.code : "EUNKNOWN", message: e.message }
        : { code: "EUNKNOWN", message: String(e) }
  })

const NOT_FOUND = new Set(["ENOENT", "ENOTDIR", "ELOOP"])

export interface LoadedModelConfig {
  /** The decoded model.yaml, snake_case keys as written, defaults filled in. */
  readonly config: ModelYaml
  /** Absolute model directory (the one holding model.yaml). */
  readonly directory: string
  /** Absolute path of model.yaml. */
  readonly file: string
  /** Absolute path of `model_weights`, checked to exist. */
  readonly weightsPath: string
  /** From `output_schema.class_names` or `class_names_file`; index = class id. */
  readonly classNames: ReadonlyArray<string>
  /** Things that do not stop the model but an operator should see (unknown keys, ...). */
  readonly warnings: ReadonlyArray<string>
}

const rawString = (value: unknown): string | undefined =>
  typeof value === "string" && value.trim().length > 0 ? value : undefined

const fail = (file: string, kind: ModelConfigErrorKind, reason: string, modelId?: string) =>
  new ModelConfigError({ file, kind, problems: [{ path: "", reason }], modelId })

/** Where model.yaml is for a directory or file argument. */
const locate = (target: string): Effect.Effect<{ directory: string; file: string }, ModelConfigError> =>
  Effect.gen(function*() {
    const absolute = nodePath.resolve(target)
    const stat = yield* Effect.result(tryFs(() => fs.stat(absolute)))
    if (Result.isFailure(stat)) {
      const kind = NOT_FOUND.has(stat.failure.code) ? "missing_file" : "unreadable"
      return yield* fail(absolute, kind, kind === "missing_file" ? "not found" : `cannot access: ${stat.failure.code}`)
    }
    return stat.success.isDirectory()
      ? { directory: absolute, file: nodePath.join(absolute, "model.yaml") }
      : { directory: nodePath.dirname(absolute), file: absolute }
  })

const readText = (file: string): Effect.Effect<string, ModelConfigError> =>
  tryFs(() => fs.readFile(file, "utf8")).pipe(
    Effect.mapError((e) =>
      NOT_FOUND.has(e.code)
        ? fail(file, "missing_file", `not found (every model directory needs a model.yaml)`)
        : e.code === "EISDIR"
        ? fail(file, "invalid", "is a directory, not a file")
        : fail(file, "unreadable", `cannot be read: ${e.code}`)
    )
  )

/** The weights must be an existing, readable file. */
const checkWeights = (weightsPath: string): Effect.Effect<ModelConfigProblem | undefined> =>
  Effect.gen(function*() {
    const stat = yield* Effect.result(tryFs(() => fs.stat(weightsPath)))
    if (Result.isFailure(stat)) {
      return NOT_FOUND.has(stat.failure.code)
        ? { path: "model_weights", reason: `file not found: ${weightsPath}` }
        : { path: "model_weights", reason: `cannot access ${weightsPath}: ${stat.failure.code}` }
    }
    if (!stat.success.isFile()) return { path: "model_weights", reason: `not a file: ${weightsPath}` }
    const readable = yield* Effect.result(tryFs(() => fs.access(weightsPath, fs.constants.R_OK)))
    return Result.isFailure(readable)
      ? { path: "model_weights", reason: `not readable: ${weightsPath} (${readable.failure.code})` }
      : undefined
  })

const CLASS_NAMES_FILE = "output_schema.class_names_file"

/** One class name per line; trailing blank lines are fine, blank lines in between would shift class ids. */
const readClassNames = (file: string): Effect.Effect<Result.Result<ReadonlyArray<string>, ModelConfigProblem>> =>
  tryFs(() => fs.readFile(file, "utf8")).pipe(
    Effect.map((text) => {
      const lines = text.split("\n").map((line) => line.trim())
      while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop()
      if (lines.length === 0) return Result.fail({ path: CLASS_NAMES_FILE, reason: `file is empty: ${file}` })
      const blank = lines.indexOf("")
      return blank >= 0
        ? Result.fail({
          path: CLASS_NAMES_FILE,
          reason: `line ${blank + 1} of ${file} is blank (one class name per line; the line number is the class id)`
        })
        : Result.succeed(lines)
    }),
    Effect.catch((e) =>
      Effect.succeed(Result.fail({
        path: CLASS_NAMES_FILE,
        reason: NOT_FOUND.has(e.code) ? `file not found: ${file}` : `cannot read ${file}: ${e.code}`
      }))
    )
  )

/** The message for a model whose format this runtime cannot execute. */
export const unsupportedModelTypeReason = (modelType: string): string =>
  `model_type '${modelType}' is not supported by this runtime; export the model to ONNX and set model_type: onnx`

/**
 * Reads and validates a model: `target` is a model directory or its model.yaml.
 * Every problem (syntax, schema, unsupported model_type, missing weights,
 * missing class_names_file) is reported together in one `ModelConfigError`.
 */
export const loadModelConfig: (target: string) => Effect.Effect<LoadedModelConfig, ModelConfigError> = Effect.fn(
  "loadModelConfig"
)(function*(target: string) {
  const { directory, file } = yield* locate(target)
  const text = yield* readText(file)
  const parsed = parseModelYaml(text, nodePath.basename(file))
  if (Result.isFailure(parsed)) {
    return yield* new ModelConfigError({ file, kind: parsed.failure.kind, problems: parsed.failure.problems, modelId: undefined })
  }
  const { raw } = parsed.success
  const modelId = rawString(raw["model_id"])
  const decoded = decodeModelConfig(raw)
  const unknown = unknownKeys(raw)
  const problems: Array<ModelConfigProblem> = [...(Result.isFailure(decoded) ? decoded.failure : []), ...unknown.problems]

  // File checks use the raw values so they are reported even when other keys are invalid.
  if (raw["model_type"] === "pytorch") problems.push({ path: "model_type", reason: unsupportedModelTypeReason("pytorch") })
  const weights = rawString(raw["model_weights"])
  const weightsPath = weights === undefined ? undefined : nodePath.resolve(directory, weights)
  const weightsProblem = weightsPath === undefined ? undefined : yield* checkWeights(weightsPath)
  if (weightsProblem !== undefined) problems.push(weightsProblem)

  const output = raw["output_schema"]
  const namesFile = isRecord(output) ? rawString(output["class_names_file"]) : undefined
  const namesFromFile = namesFile === undefined
    ? undefined
    : yield* readClassNames(nodePath.resolve(directory, namesFile))
  if (namesFromFile !== undefined && Result.isFailure(namesFromFile)) problems.push(namesFromFile.failure)

  if (Result.isFailure(decoded) || problems.length > 0 || weightsPath === undefined) {
    const onlyWeightsMissing = problems.length === 1 && weightsProblem?.reason.startsWith("file not found") === true
    return yield* new ModelConfigError({
      file,
      kind: onlyWeightsMissing ? "missing_weights" : "invalid",
      problems,
      modelId
    })
  }

  const config = decoded.success
  const classNames = namesFromFile !== undefined && Result.isSuccess(namesFromFile)
    ? namesFromFile.success
    : config.output_schema.class_names ?? []
  const warnings = [...parsed.success.warnings, ...unknown.warnings]
  const classes = config.output_schema.classes
  if (classes !== undefined && classNames.length > 0 && classNames.length !== classes) {
    warnings.push(`output_schema: classes is ${classes} but ${classNames.length} class names are given`)
  }
  return { config, directory, file, weightsPath, classNames, warnings }
})
