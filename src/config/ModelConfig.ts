/**
 * The loaded model's configuration as a service: its model.yaml decoded (`ModelYaml.ts`), the
 * files it names checked (`ModelLoader.ts`). A container serving a model.yaml gets it from a
 * directory or from discovery; a test gives it as a value. `RuntimeConfig.fromSources` takes the
 * model's runtime settings (limits, scheduling) from it when one is present.
 *
 * The model.yaml schema, which used to be exported under this name, is `ModelYaml`.
 */
import { Context, Layer } from "effect"
import { type ModelSelectionError, selectModel } from "./ModelDiscovery.js"
import { type LoadedModelConfig, loadModelConfig } from "./ModelLoader.js"
import type { ModelConfigError } from "./ModelYaml.js"

export class ModelConfig extends Context.Service<ModelConfig, LoadedModelConfig>()("@ruth-ai/model-runtime/ModelConfig") {
  /** The model in `target`, a model directory or its model.yaml (`loadModelConfig`). */
  static readonly fromDirectory = (target: string): Layer.Layer<ModelConfig, ModelConfigError> =>
    Layer.effect(ModelConfig, loadModelConfig(target))

  /** The model `modelId` found by one scan of `modelsDir`, logging every model found (`selectModel`). */
  static readonly fromDiscovery = (modelsDir: string, modelId: string): Layer.Layer<ModelConfig, ModelSelectionError> =>
    Layer.effect(ModelConfig, selectModel(modelsDir, modelId))

  /** A model given as a value, no files read (tests, embedding). */
  static readonly layerTest = (model: LoadedModelConfig): Layer.Layer<ModelConfig> => Layer.succeed(ModelConfig, model)
}

// What this module exported before the split, under the same names.
export {
  type FsFailure,
  type LoadedModelConfig,
  loadModelConfig,
  tryFs,
  unsupportedModelTypeReason
} from "./ModelLoader.js"
export {
  Backend,
  decodeModelConfig,
  Limits,
  ModelConfigError,
  type ModelConfigErrorKind,
  type ModelConfigProblem,
  ModelConfigSchema,
  ModelYaml,
  OutputSchema,
  type ParsedYaml,
  parseModelYaml,
  Postprocess,
  Preprocessing,
  ResourceRequirements,
  Scheduling,
  type UnreadableYaml
} from "./ModelYaml.js"
