/**
 * Where the ONNX backend runs a model: CPU or CUDA, from what its model.yaml asks for and
 * whether this machine has a GPU.
 */
import * as fs from "node:fs/promises"
import { Config, Data, Effect, Option, Result } from "effect"
import { tryFs } from "../config/ModelLoader.js"
import type { ModelYaml } from "../config/ModelYaml.js"

/** The model cannot run on this machine because it needs a GPU that is not there. */
export class GpuUnavailable extends Data.TaggedError("GpuUnavailable")<{
  readonly modelId: string
  readonly reason: string
}> {
  override get message() {
    return this.reason
  }
}

export interface DeviceChoice {
  readonly device: "cpu" | "cuda"
  /** Set when the model asked for CUDA and was moved to CPU. */
  readonly warning?: string
}

/**
 * Picks the device from what the model asks for and whether a GPU is present:
 * - `gpu_required: true`: cuda, or refuse without a GPU;
 * - `execution_providers` with cuda: cuda, or without a GPU cpu (with a warning)
 *   if `cpu_fallback_allowed`, else refuse;
 * - otherwise cpu.
 */
export const resolveDevice = (
  config: Pick<ModelYaml, "model_id" | "resource_requirements" | "backend">,
  gpuAvailable: boolean
): Result.Result<DeviceChoice, GpuUnavailable> => {
  const { gpu_required, cpu_fallback_allowed } = config.resource_requirements
  const wantsCuda = gpu_required || config.backend.execution_providers.includes("cuda")
  if (!wantsCuda) return Result.succeed({ device: "cpu" })
  if (gpuAvailable) return Result.succeed({ device: "cuda" })
  const id = config.model_id
  if (gpu_required) {
    return Result.fail(
      new GpuUnavailable({
        modelId: id,
        reason: `model ${id} requires a GPU (resource_requirements.gpu_required: true) but none is available`
      })
    )
  }
  if (cpu_fallback_allowed) {
    return Result.succeed({
      device: "cpu",
      warning:
        `model ${id} asks for cuda (backend.execution_providers) but no GPU is available; running on CPU (resource_requirements.cpu_fallback_allowed: true)`
    })
  }
  return Result.fail(
    new GpuUnavailable({
      modelId: id,
      reason:
        `model ${id} asks for cuda (backend.execution_providers) and forbids CPU fallback (resource_requirements.cpu_fallback_allowed: false) but no GPU is available`
    })
  )
}

const GPU_DEVICES = ["/dev/nvidiactl", "/dev/nvidia0"] as const

/**
 * Whether an NVIDIA GPU is visible to this process. `RUTH_GPU_AVAILABLE=0|1`
 * overrides the check (tests, or hosts where the device nodes lie); an invalid
 * value is logged and ignored.
 */
export const detectGpu: Effect.Effect<boolean> = Effect.gen(function*() {
  const override = yield* Config.option(Config.Boolean("RUTH_GPU_AVAILABLE")).pipe(
    Effect.map(Option.getOrUndefined),
    Effect.catch((e) => Effect.as(Effect.logWarning(`ignoring RUTH_GPU_AVAILABLE: ${e}`), undefined))
  )
  if (override !== undefined) return override
  const found = yield* Effect.forEach(GPU_DEVICES, (device) => Effect.result(tryFs(() => fs.access(device))))
  return found.some(Result.isSuccess)
}).pipe(Effect.withSpan("detectGpu"))
