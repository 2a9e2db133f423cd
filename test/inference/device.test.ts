import * as fs from "node:fs"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Result } from "effect"
import { type LoadedModelConfig, loadModelConfig } from "../../src/config/ModelLoader.js"
import type { ModelYaml } from "../../src/config/ModelYaml.js"
import { detectGpu, resolveDevice } from "../../src/inference/device.js"
import { makeTempRoot, removeTempRoot, writeModelDir } from "../config/fixtures.js"

const root = makeTempRoot("ruth-model-device-")
afterAll(() => removeTempRoot(root))

/** Loads a model built from the base YAML plus `patch`; the test fails if it does not load. */
const load = (patch: Record<string, unknown>) => loadModelConfig(writeModelDir(root, patch))

describe("GPU resolution", () => {
  const configWith = (
    gpu_required: boolean,
    cpu_fallback_allowed: boolean,
    providers: readonly ["cpu" | "cuda", ...Array<"cpu" | "cuda">]
  ): Pick<ModelYaml, "model_id" | "resource_requirements" | "backend"> => ({
    model_id: "yolo",
    resource_requirements: { gpu_required, cpu_fallback_allowed },
    backend: { execution_providers: providers, intra_op_threads: 0, inter_op_threads: 0, pool_thread_nice: 10, warmup_runs: 1 }
  })

  const table = [
    // gpu_required, fallback, providers, gpu present → device or refusal
    { required: false, fallback: true, providers: ["cpu"], gpu: false, device: "cpu" },
    { required: false, fallback: true, providers: ["cpu"], gpu: true, device: "cpu" },
    { required: false, fallback: true, providers: ["cuda", "cpu"], gpu: true, device: "cuda" },
    { required: false, fallback: true, providers: ["cuda", "cpu"], gpu: false, device: "cpu", warns: true },
    { required: false, fallback: false, providers: ["cuda"], gpu: true, device: "cuda" },
    {
      required: false,
      fallback: false,
      providers: ["cuda"],
      gpu: false,
      refused:
        "model yolo asks for cuda (backend.execution_providers) and forbids CPU fallback (resource_requirements.cpu_fallback_allowed: false) but no GPU is available"
    },
    { required: true, fallback: false, providers: ["cpu"], gpu: true, device: "cuda" },
    {
      required: true,
      fallback: false,
      providers: ["cuda"],
      gpu: false,
      refused: "model yolo requires a GPU (resource_requirements.gpu_required: true) but none is available"
    }
  ] as const

  for (const row of table) {
    it(`gpu_required=${row.required} cpu_fallback_allowed=${row.fallback} providers=${row.providers.join(",")} gpu=${row.gpu}`, () => {
      const result = resolveDevice(configWith(row.required, row.fallback, row.providers), row.gpu)
      if ("refused" in row) {
        expect(Result.isFailure(result)).toBe(true)
        if (Result.isFailure(result)) {
          expect(result.failure._tag).toBe("GpuUnavailable")
          expect(result.failure.modelId).toBe("yolo")
          expect(result.failure.message).toBe(row.refused)
        }
        return
      }
      expect(Result.isSuccess(result)).toBe(true)
      if (Result.isSuccess(result)) {
        expect(result.success.device).toBe(row.device)
        if ("warns" in row) {
          expect(result.success.warning).toBe(
            "model yolo asks for cuda (backend.execution_providers) but no GPU is available; running on CPU (resource_requirements.cpu_fallback_allowed: true)"
          )
        } else {
          expect(result.success.warning).toBeUndefined()
        }
      }
    })
  }

  it.effect("a loaded gpu_required model refuses to start without a GPU", () =>
    Effect.gen(function*() {
      const loaded: LoadedModelConfig = yield* load({ resource_requirements: { gpu_required: true } })
      const result = resolveDevice(loaded.config, false)
      expect(Result.isFailure(result) && result.failure.message).toBe(
        "model demo requires a GPU (resource_requirements.gpu_required: true) but none is available"
      )
    }))

  it.effect("detectGpu honours RUTH_GPU_AVAILABLE", () =>
    Effect.gen(function*() {
      const withEnv = (value: string) =>
        detectGpu.pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: { RUTH_GPU_AVAILABLE: value } })))
      expect(yield* withEnv("1")).toBe(true)
      expect(yield* withEnv("0")).toBe(false)
      // An unparsable override is ignored (and logged) rather than guessed at.
      const present = fs.existsSync("/dev/nvidiactl") || fs.existsSync("/dev/nvidia0")
      expect(yield* withEnv("maybe")).toBe(present)
    }))

  it.effect("detectGpu without the override looks for NVIDIA device nodes", () =>
    Effect.gen(function*() {
      const present = fs.existsSync("/dev/nvidiactl") || fs.existsSync("/dev/nvidia0")
      const detected = yield* detectGpu.pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: {} })))
      expect(detected).toBe(present)
    }))
})
