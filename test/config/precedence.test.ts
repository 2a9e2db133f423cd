import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import { describeSettings, resolveSettings } from "../../src/config/RuntimeConfig.js"

/** The environment as a map: Effect 4's `fromEnv` over a record (Effect 3 used `ConfigProvider.fromMap`). */
const withEnv = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

describe("configuration precedence: flags > environment > model.yaml > defaults", () => {
  it.effect("each layer wins over the ones below it, and the sources say so", () =>
    Effect.gen(function*() {
      const r = yield* resolveSettings({
        flags: { maxInflight: 3 },
        modelYaml: {
          file: "/models/m/model.yaml",
          values: { modelId: "m", maxInflight: 7, requestTimeoutMs: 900, modelVersion: "1.0" },
          names: {}
        }
      }).pipe(withEnv({ RUTH_MAX_INFLIGHT: "5", RUTH_REQUEST_TIMEOUT_MS: "1200" }))
      expect(r.settings).toMatchObject({ modelId: "m", maxInflight: 3, requestTimeoutMs: 1200, modelVersion: "1.0", idleTimeoutMs: 60_000 })
      expect(r.sources).toMatchObject({ maxInflight: "flag", requestTimeoutMs: "env", modelVersion: "model.yaml", idleTimeoutMs: "default" })
      expect(describeSettings(r)).toContain("maxInflight=3 (flag)")
    }))

  it.effect("reads every RUTH_* key, and VAS_HEARTBEAT_INTERVAL_SECONDS as the reference did", () =>
    Effect.gen(function*() {
      const r = yield* resolveSettings().pipe(
        withEnv({
          RUTH_MODEL_ID: "cam-model",
          RUTH_SOCKET_DIR: "/run/ruth",
          RUTH_SOCKET_MODE: "0660",
          RUTH_FRAME_ROOTS: "/dev/shm,/srv/frames",
          RUTH_IDLE_TIMEOUT_MS: "1000",
          RUTH_DRAIN_TIMEOUT_MS: "0",
          RUTH_MAX_MESSAGE_BYTES: "2048",
          VAS_HEARTBEAT_INTERVAL_SECONDS: "2.5",
          RUTH_HEARTBEAT_DIR: "/run/hb"
        })
      )
      expect(r.settings).toMatchObject({
        modelId: "cam-model",
        socketPath: "/run/ruth/vas_model_cam-model.sock",
        socketMode: 0o660,
        frameRoots: ["/dev/shm", "/srv/frames"],
        idleTimeoutMs: 1000,
        drainTimeoutMs: 0,
        maxMessageBytes: 2048,
        heartbeatIntervalMs: 2500,
        heartbeatDir: "/run/hb"
      })
    }))

  it.effect("scheduling: RUTH_MAX_FRAME_AGE_MS and RUTH_PER_CAMERA win over model.yaml's scheduling section", () =>
    Effect.gen(function*() {
      const modelYaml = {
        file: "/models/m/model.yaml",
        values: { modelId: "m", maxFrameAgeMs: 500, perCamera: "all" as const },
        names: { maxFrameAgeMs: "scheduling.max_frame_age_ms", perCamera: "scheduling.per_camera" }
      }
      const fromYaml = yield* resolveSettings({ modelYaml }).pipe(withEnv({}))
      expect(fromYaml.settings).toMatchObject({ maxFrameAgeMs: 500, perCamera: "all" })
      const r = yield* resolveSettings({ modelYaml }).pipe(withEnv({ RUTH_MAX_FRAME_AGE_MS: "200", RUTH_PER_CAMERA: "latest" }))
      expect(r.settings).toMatchObject({ maxFrameAgeMs: 200, perCamera: "latest" })
      expect(r.sources).toMatchObject({ maxFrameAgeMs: "env", perCamera: "env" })
      const none = yield* resolveSettings().pipe(withEnv({ RUTH_MODEL_ID: "m" }))
      expect(none.settings).toMatchObject({ maxFrameAgeMs: 0, perCamera: "all" })
    }))

  it.effect("a bad value stops start-up with one message naming the variable and the environment", () =>
    Effect.gen(function*() {
      for (
        const [key, value, reason] of [
          ["RUTH_MAX_INFLIGHT", "abc", `must be a positive integer, got "abc"`],
          ["RUTH_MAX_INFLIGHT", "0", `must be a positive integer, got "0"`],
          ["RUTH_REQUEST_TIMEOUT_MS", "-5", `must be a positive integer, got "-5"`],
          ["RUTH_SOCKET_MODE", "rw-rw----", `must be an octal file mode like 0600 or 0660, got "rw-rw----"`],
          ["RUTH_DRAIN_TIMEOUT_MS", "1.5", `must be a non-negative integer, got "1.5"`],
          ["VAS_HEARTBEAT_INTERVAL_SECONDS", "often", `must be a number of seconds >= 0 (0 disables the heartbeat), got "often"`],
          ["RUTH_FRAME_ROOTS", "frames", `must be absolute directories (separated by ',' or ':'), got "frames"`],
          ["RUTH_MODEL_ID", "../etc", `must be letters, digits, '.', '_' or '-' (it becomes part of file names), got "../etc"`],
          ["RUTH_MAX_FRAME_AGE_MS", "200ms", `must be a non-negative integer, got "200ms"`],
          ["RUTH_PER_CAMERA", "newest", `must be one of all, latest, got "newest"`]
        ] as const
      ) {
        const error = yield* Effect.flip(resolveSettings().pipe(withEnv({ RUTH_MODEL_ID: "m", [key]: value })))
        expect(error.message).toBe(`invalid ${key} (environment): ${reason}`)
      }
      const missing = yield* Effect.flip(resolveSettings().pipe(withEnv({})))
      expect(missing.message).toBe("RUTH_MODEL_ID is required: the id of the model this container serves")
    }))

  it.effect("every invalid value is reported at once, each named as its source spells it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        resolveSettings({
          flags: { maxInflight: -3 },
          flagNames: { maxInflight: "--max-inflight" },
          modelYaml: { file: "/models/m/model.yaml", values: { modelId: "m", requestTimeoutMs: 0 }, names: { requestTimeoutMs: "limits.request_timeout_ms" } }
        }).pipe(withEnv({ RUTH_IDLE_TIMEOUT_MS: "soon" }))
      )
      expect(error.message).toBe(
        "invalid --max-inflight (flag): must be a positive integer, got -3; " +
          `invalid RUTH_IDLE_TIMEOUT_MS (environment): must be a positive integer, got "soon"; ` +
          "invalid limits.request_timeout_ms (model.yaml /models/m/model.yaml): must be a positive integer, got 0"
      )
    }))

  it.effect("without a model id, the flag the caller gave is named", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(resolveSettings({ flagNames: { modelId: "--model-id" } }).pipe(withEnv({})))
      expect(error.message).toBe("give --model-id ID (or set RUTH_MODEL_ID)")
    }))
})
