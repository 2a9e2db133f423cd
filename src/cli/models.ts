/** `ruth-model validate` and `ruth-model discover`: check model.yaml files before deploying them. */
import { Argument, Command, Flag } from "effect/cli"
import { Console, Effect, Option } from "effect"
import * as path from "node:path"
import { discoverModels } from "../config/ModelDiscovery.js"
import { loadModelConfig } from "../config/ModelLoader.js"
import type { ModelConfigErrorKind } from "../config/ModelYaml.js"
import { toPreprocessSettings } from "../inference/preprocessSettings.js"
import { type CliEnvironment, CliFailure, defaultIs, jsonOption } from "./common.js"

export { DEFAULT_MODELS_DIR } from "./common.js"

/** Failures about the file as a whole, said in one line; the rest list every problem with its key. */
const oneLine: ReadonlySet<ModelConfigErrorKind> = new Set(["missing_file", "unreadable", "not_model_yaml"])

/** The file as the user named it (`README.md`), or inside the directory they named. */
const shownAs = (target: string, file: string): string =>
  path.resolve(target) === file ? target : path.join(target, path.basename(file))

export const validateCommand = Command.make(
  "validate",
  { target: Argument.String("PATH").pipe(Argument.withDescription("a model directory or its model.yaml")), json: jsonOption },
  ({ json, target }) =>
    loadModelConfig(target).pipe(
      Effect.matchEffect({
        onFailure: (error) =>
          Effect.andThen(
            json
              ? Console.log(JSON.stringify({ valid: false, file: error.file, kind: error.kind, problems: error.problems }))
              : Console.log(
                oneLine.has(error.kind)
                  ? `${shownAs(target, error.file)}: ${error.details}`
                  : [`invalid: ${error.file}`, ...error.problems.map((p) => `  - ${p.path === "" ? "" : `${p.path}: `}${p.reason}`)].join("\n")
              ),
            Effect.fail(new CliFailure({ message: "", exitCode: 1 }))
          ),
        onSuccess: (loaded) => {
          const preprocess = toPreprocessSettings(loaded.config)
          return json
            ? Console.log(
              JSON.stringify({
                valid: true,
                file: loaded.file,
                model_id: loaded.config.model_id,
                model_version: loaded.config.model_version,
                weights: loaded.weightsPath,
                class_names: loaded.classNames,
                preprocess,
                postprocess: loaded.config.postprocess,
                warnings: loaded.warnings
              })
            )
            : Console.log(
              [
                `valid: ${loaded.file}`,
                `  model     ${loaded.config.model_id} ${loaded.config.model_version} (${loaded.config.model_type})`,
                `  weights   ${loaded.weightsPath}`,
                `  input     ${preprocess.width}x${preprocess.height} ${preprocess.resize}, ${preprocess.layout} ${preprocess.dtype}`,
                `  classes   ${loaded.classNames.length === 0 ? "(none)" : loaded.classNames.join(", ")}`,
                ...loaded.warnings.map((w) => `  warning: ${w}`)
              ].join("\n")
            )
        }
      })
    )
).pipe(Command.withDescription("Check a model directory or model.yaml; exit 0 when valid, 1 when not (or not a model.yaml)."))

// Text, not Flag.Directory: a models dir that is missing or not a directory is the command's answer (exit 1), not usage.
export const modelsDirOption = (env: CliEnvironment) =>
  Flag.String("models-dir").pipe(
    Flag.withDescription(`where models live${defaultIs(env.modelsDir, { name: "RUTH_MODELS_DIR", set: env.modelsDirFromEnv })}`),
    Flag.optional
  )

export const resolveModelsDir = (flag: Option.Option<string>, env: CliEnvironment): string =>
  Option.getOrElse(flag, () => env.modelsDir)

export const discoverCommand = (env: CliEnvironment) => Command.make("discover", { modelsDir: modelsDirOption(env), json: jsonOption }, (o) =>
  Effect.gen(function*() {
    const dir = resolveModelsDir(o.modelsDir, env)
    const models = yield* discoverModels(dir).pipe(
      Effect.mapError((e) => new CliFailure({ message: e.message, exitCode: 1 }))
    )
    if (o.json) {
      const rows = models.map((m) =>
        m.status === "available"
          ? { name: m.name, directory: m.directory, status: m.status, model_id: m.config.config.model_id, model_version: m.config.config.model_version }
          : { name: m.name, directory: m.directory, status: m.status, code: m.code, reason: m.reason }
      )
      return yield* Console.log(JSON.stringify({ models_dir: dir, models: rows }))
    }
    if (models.length === 0) return yield* Console.log(`no models in ${dir}`)
    const width = Math.max(4, ...models.map((m) => m.name.length))
    yield* Console.log(`${"NAME".padEnd(width)}  STATUS       MODEL / REASON`)
    for (const m of models) {
      yield* Console.log(
        `${m.name.padEnd(width)}  ${m.status.padEnd(11)}  ${
          m.status === "available" ? `${m.config.config.model_id} ${m.config.config.model_version}` : m.reason
        }`
      )
    }
  })
).pipe(Command.withDescription("List the models in a models directory: available, or unavailable and why."))
