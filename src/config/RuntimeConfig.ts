/**
 * The runtime settings of a container as a service. `fromSources` resolves them once, inside the
 * layer graph, by precedence: flags > environment (read through Effect's `Config`, so a test gives
 * a `ConfigProvider` instead of touching `process.env`) > the model's model.yaml (from the
 * `ModelConfig` service, when one is present) > defaults; `layer` takes them as given (tests,
 * embedding). The rules that check every value are in RuntimeSettings.ts.
 */
import { Context, Effect, Layer, Option, Result } from "effect"
import { ModelConfig } from "./ModelConfig.js"
import type { LoadedModelConfig } from "./ModelLoader.js"
import type { ModelYaml } from "./ModelYaml.js"
import {
  type FlagNames,
  makeSettings,
  type ModelYamlSettings,
  resolveSettings,
  type RuntimeSettings,
  type RuntimeSettingsInput,
  type SettingsError,
  settingsRecord
} from "./RuntimeSettings.js"

export * from "./RuntimeSettings.js"

/** Each runtime setting a model.yaml may give: its key there and where the decoded file holds it. */
const MODEL_YAML_SETTINGS: ReadonlyArray<readonly [keyof RuntimeSettingsInput, string, (c: ModelYaml) => unknown]> = [
  ["modelId", "model_id", (c) => c.model_id],
  ["modelVersion", "model_version", (c) => c.model_version],
  ["maxInflight", "limits.max_inflight", (c) => c.limits.max_inflight],
  ["requestTimeoutMs", "limits.request_timeout_ms", (c) => c.limits.request_timeout_ms],
  ["maxFrameAgeMs", "scheduling.max_frame_age_ms", (c) => c.scheduling.max_frame_age_ms],
  ["perCamera", "scheduling.per_camera", (c) => c.scheduling.per_camera],
  ["streams", "scheduling.streams", (c) => c.scheduling.streams],
  ["maxBatch", "scheduling.max_batch", (c) => c.scheduling.max_batch],
  ["maxQueueDelayMs", "scheduling.max_queue_delay_ms", (c) => c.scheduling.max_queue_delay_ms]
]

/** The model.yaml key that sets a runtime setting, if any. */
export const modelYamlKeyOf = (key: keyof RuntimeSettingsInput): string | undefined =>
  MODEL_YAML_SETTINGS.find(([k]) => k === key)?.[1]

/** The runtime settings a model.yaml contributes (below the environment and flags), named by their keys there. */
export const settingsFromModel = (model: LoadedModelConfig): ModelYamlSettings => {
  const values: Record<string, unknown> = {}
  const names: Record<string, string> = {}
  for (const [key, name, get] of MODEL_YAML_SETTINGS) {
    const value = get(model.config)
    if (value === undefined) continue
    values[key] = value
    names[key] = name
  }
  return { file: model.file, values: values as Partial<RuntimeSettingsInput>, names }
}

/** What `RuntimeConfig.fromSources` takes besides the flags. */
export interface SourcesOptions {
  /** How the caller spells the flags (the CLI: `--max-inflight`); absent for options in code. */
  readonly flagNames?: FlagNames
}

export class RuntimeConfig extends Context.Service<RuntimeConfig, RuntimeSettings>()("@ruth-ai/model-runtime/RuntimeConfig") {
  /**
   * Settings resolved once by precedence — `flags` > environment > model.yaml (the `ModelConfig`
   * service, when provided) > defaults — every value checked, every problem named as its source
   * spells it (`SettingsError`); logs the effective configuration, each value with its source.
   */
  static readonly fromSources = (
    flags: Partial<RuntimeSettingsInput> = {},
    options: SourcesOptions = {}
  ): Layer.Layer<RuntimeConfig, SettingsError> =>
    Layer.effect(
      RuntimeConfig,
      Effect.gen(function*() {
        const model = yield* Effect.serviceOption(ModelConfig)
        const resolved = yield* resolveSettings({
          flags,
          ...(options.flagNames === undefined ? {} : { flagNames: options.flagNames }),
          ...(Option.isSome(model) ? { modelYaml: settingsFromModel(model.value) } : {})
        })
        yield* Effect.logInfo(settingsRecord(resolved))
        return resolved.settings
      })
    )

  /** `fromSources` with options in code (no flag names). */
  static readonly fromEnv = (flags: Partial<RuntimeSettingsInput> = {}): Layer.Layer<RuntimeConfig, SettingsError> =>
    RuntimeConfig.fromSources(flags)

  /** Settings given directly (tests, embedding); defaults fill the rest, no environment read. */
  static readonly layer = (input: RuntimeSettingsInput): Layer.Layer<RuntimeConfig, SettingsError> =>
    Layer.effect(
      RuntimeConfig,
      Result.match(makeSettings(input), { onFailure: Effect.fail, onSuccess: Effect.succeed })
    )
}
