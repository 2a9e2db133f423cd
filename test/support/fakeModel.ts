/** A scripted image model for the ONNX backend on `makeFake` sessions: no onnxruntime, no weights read. */
import * as fs from "node:fs"
import * as path from "node:path"
import { expect } from "@effect/vitest"
import { Effect } from "effect"
import * as YAML from "yaml"
import { loadModelConfig } from "../../src/config/ModelConfig.js"
import type { Frame } from "../../src/frames/Frame.js"
import type { FakeModel, FakeRun, ValueInfo } from "../../src/inference/OnnxSession.js"
import type { OutputTensor } from "../../src/inference/postprocess/types.js"
import { tempDir } from "./harness.js"
import { greyNv12 } from "./nv12.js"

export type Box = readonly [number, number, number, number]

/** The side of the fake model's square input. */
export const SIZE = 32

export const nv12Frame = (width: number, height: number, bright?: Box): Frame => ({ ...greyNv12(width, height, bright), reference: "/dev/shm/x" })

/** A model directory (the weights are never read: the fake is the model) loaded as the handler sees it. */
export const loaded = (fields: Readonly<Record<string, unknown>>) =>
  Effect.gen(function*() {
    const dir = yield* tempDir("ruth-onnx-fake-")
    const yaml = { model_id: "test-model", model_name: "Test", model_version: "1", model_weights: "model.onnx", ...fields }
    fs.writeFileSync(path.join(dir, "model.yaml"), YAML.stringify(yaml))
    fs.writeFileSync(path.join(dir, "model.onnx"), "not read")
    return yield* loadModelConfig(dir).pipe(Effect.orDie)
  })

export const tensor = (name: string, dims: ReadonlyArray<number | string>, elementType: string | null = "float32"): ValueInfo => ({
  name,
  elementType,
  dims
})

/** A 1-channel map per frame: each row of the output is the first channel of that frame's input rows. */
export const firstChannelMap = (run: FakeRun): Record<string, OutputTensor> => {
  const input = run.feeds["image"]!
  const [k = 1, , h = SIZE, w = SIZE] = input.dims
  const out = new Float32Array(k * h * w)
  for (let i = 0; i < k; i++) out.set(input.data.subarray(i * 3 * h * w, i * 3 * h * w + h * w), i * h * w)
  return { map: { data: out, dims: [k, 1, h, w] } }
}

/** A fake image model: `image` [batch, 3, 32, 32] → `map` [batch, 1, 32, 32]. */
export const mapModel = (run: FakeModel["run"] = firstChannelMap, batch: number | string = 1, extra: Partial<FakeModel> = {}): FakeModel => ({
  inputs: [tensor("image", [batch, 3, SIZE, SIZE])],
  outputs: [tensor("map", [batch, 1, SIZE, SIZE])],
  run,
  ...extra
})

/** model.yaml for `mapModel` read as text detection: the bright region of the map is one `blob`. */
export const dbTextYaml = (extra: Readonly<Record<string, unknown>> = {}) => ({
  preprocessing: { input_size: [SIZE, SIZE], resize: "stretch" },
  postprocess: { kind: "db_text", threshold: 0.5, box_threshold: 0.6, unclip_ratio: 0.0001, min_area: 4 },
  output_schema: { class_names: ["blob"] },
  ...extra
})

export const expectBox = (actual: ReadonlyArray<number>, expected: Box, digits = 4) =>
  actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, digits))
