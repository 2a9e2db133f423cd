import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option } from "effect"
import { DEFAULT_MODELS_DIR, readCliEnvironment } from "../../src/cli/common.js"

/** The environment as `main.ts` gives it (empty variables kept), from a record instead of the process's. */
const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env, preserveEmptyStrings: true }))

describe("ruth-model reads its environment through Config", () => {
  it.effect("the variables it shows in help, trimmed; an empty or blank one is unset", () =>
    Effect.gen(function*() {
      const env = yield* readCliEnvironment.pipe(
        withEnv({ RUTH_MODEL_ID: "cam", RUTH_MODELS_DIR: " /srv/models ", RUTH_SOCKET_DIR: "", RUTH_MAX_INFLIGHT: "32", RUTH_STREAMS: "  " })
      )
      expect(env.modelId).toEqual(Option.some("cam"))
      expect(env).toMatchObject({ modelsDir: "/srv/models", modelsDirFromEnv: true, socketDir: "/tmp", socketDirFromEnv: false })
      expect(env.settings).toEqual({ RUTH_MAX_INFLIGHT: "32" })
    }))

  it.effect("with nothing set, the built-in defaults", () =>
    Effect.gen(function*() {
      const env = yield* readCliEnvironment.pipe(withEnv({}))
      expect(env).toMatchObject({ modelId: Option.none(), modelsDir: DEFAULT_MODELS_DIR, socketDir: "/tmp", settings: {} })
    }))
})
