import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { loadModelConfig } from "../../src/config/ModelLoader.js"
import { decodeModelConfig, type ModelYaml } from "../../src/config/ModelYaml.js"
import { toPreprocessSettings } from "../../src/inference/preprocessSettings.js"
import { expectProblem, makeTempRoot, removeTempRoot, writeModelDir } from "./fixtures.js"

const root = makeTempRoot("ruth-model-config-")
afterAll(() => removeTempRoot(root))

const yamlOf = (dir: string) => path.join(dir, "model.yaml")

/** Loads a model built from the base YAML plus `patch`; the test fails if it does not load. */
const load = (patch: Record<string, unknown>, options?: Parameters<typeof writeModelDir>[2]) =>
  loadModelConfig(writeModelDir(root, patch, options))

/** Loads a model that must be rejected; yields the error and the model.yaml path. */
const reject = (patch: Record<string, unknown>, options?: Parameters<typeof writeModelDir>[2]) => {
  const dir = writeModelDir(root, patch, options)
  return Effect.map(Effect.flip(loadModelConfig(dir)), (error) => ({ error, file: yamlOf(dir), dir }))
}

interface InvalidCase {
  readonly key: string
  readonly patch: Record<string, unknown>
  readonly path: string
  readonly reason: string
}

const ID_RULE =
  "must be a non-empty id of letters, digits, '.', '_' or '-' (it becomes part of socket and heartbeat file names)"

/** CONTRACT §6, one row per rule that a value can break. */
const contractCases: ReadonlyArray<InvalidCase> = [
  { key: "model_id", patch: { model_id: undefined }, path: "model_id", reason: "is required" },
  { key: "model_id", patch: { model_id: "" }, path: "model_id", reason: `${ID_RULE}, got ""` },
  { key: "model_id", patch: { model_id: "a/b" }, path: "model_id", reason: `${ID_RULE}, got "a/b"` },
  { key: "model_name", patch: { model_name: undefined }, path: "model_name", reason: "is required" },
  { key: "model_name", patch: { model_name: "  " }, path: "model_name", reason: `must be a non-empty string, got "  "` },
  { key: "model_version", patch: { model_version: undefined }, path: "model_version", reason: "is required" },
  {
    key: "model_version",
    patch: { model_version: null },
    path: "model_version",
    reason: "is required, but its value is empty"
  },
  { key: "model_version", patch: { model_version: "" }, path: "model_version", reason: `must be a non-empty string, got ""` },
  { key: "description", patch: { description: ["a"] }, path: "description", reason: `must be a string, got ["a"]` },
  { key: "author", patch: { author: { name: "x" } }, path: "author", reason: "must be a string, got a mapping" },
  { key: "license", patch: { license: true }, path: "license", reason: "must be a string, got true" },
  {
    key: "supported_tasks",
    patch: { supported_tasks: "detection" },
    path: "supported_tasks",
    reason: `must be a list of strings, got "detection"`
  },
  {
    key: "supported_tasks",
    patch: { supported_tasks: ["detection", 3] },
    path: "supported_tasks",
    reason: `must be a list of strings, got ["detection",3]`
  },
  {
    key: "input_format",
    patch: { input_format: "YUV420" },
    path: "input_format",
    reason: `must be one of NV12, RGB24, BGR24, got "YUV420"`
  },
  ...[[640], [0, 480], [640.5, 480], [640, 480, 3], "640x640"].map((value) => ({
    key: "expected_resolution",
    patch: { expected_resolution: value },
    path: "expected_resolution",
    reason: `must be [width, height] with positive integers, got ${JSON.stringify(value)}`
  })),
  {
    key: "resource_requirements",
    patch: { resource_requirements: "gpu" },
    path: "resource_requirements",
    reason: `must be a mapping of keys, got "gpu"`
  },
  {
    key: "resource_requirements.gpu_required",
    patch: { resource_requirements: { gpu_required: "yes" } },
    path: "resource_requirements.gpu_required",
    reason: `must be true or false, got "yes"`
  },
  ...[0, -512, 1.5].map((value) => ({
    key: "resource_requirements.gpu_memory_mb",
    patch: { resource_requirements: { gpu_memory_mb: value } },
    path: "resource_requirements.gpu_memory_mb",
    reason: `must be a positive integer, got ${value}`
  })),
  {
    key: "resource_requirements.cpu_fallback_allowed",
    patch: { resource_requirements: { cpu_fallback_allowed: "no" } },
    path: "resource_requirements.cpu_fallback_allowed",
    reason: `must be true or false, got "no"`
  },
  {
    key: "model_type",
    patch: { model_type: "tensorflow" },
    path: "model_type",
    reason: `must be one of onnx, pytorch, got "tensorflow"`
  },
  { key: "model_weights", patch: { model_weights: undefined }, path: "model_weights", reason: "is required" },
  { key: "model_weights", patch: { model_weights: "" }, path: "model_weights", reason: `must be a non-empty string, got ""` },
  { key: "model_weights", patch: { model_weights: 42 }, path: "model_weights", reason: "must be a non-empty string, got 42" },
  ...[1.5, -0.1, "high"].map((value) => ({
    key: "confidence_threshold",
    patch: { confidence_threshold: value },
    path: "confidence_threshold",
    reason: `must be between 0 and 1, got ${JSON.stringify(value)}`
  })),
  {
    key: "nms_iou_threshold",
    patch: { nms_iou_threshold: 2 },
    path: "nms_iou_threshold",
    reason: "must be between 0 and 1, got 2"
  },
  {
    key: "output_schema",
    patch: { output_schema: "boxes" },
    path: "output_schema",
    reason: `must be a mapping of keys, got "boxes"`
  },
  {
    key: "output_schema.type",
    patch: { output_schema: { type: 5 } },
    path: "output_schema.type",
    reason: "must be a string, got 5"
  },
  {
    key: "output_schema.format",
    patch: { output_schema: { format: ["xyxy"] } },
    path: "output_schema.format",
    reason: `must be a string, got ["xyxy"]`
  },
  ...[0, 2.5].map((value) => ({
    key: "output_schema.classes",
    patch: { output_schema: { classes: value } },
    path: "output_schema.classes",
    reason: `must be a positive integer, got ${value}`
  })),
  {
    key: "output_schema.class_names",
    patch: { output_schema: { class_names: "person" } },
    path: "output_schema.class_names",
    reason: `must be a list of strings, got "person"`
  },
  {
    key: "output_schema.class_names_file",
    patch: { output_schema: { class_names_file: "" } },
    path: "output_schema.class_names_file",
    reason: `must be a non-empty string, got ""`
  },
  {
    key: "output_schema.class_names + class_names_file",
    patch: { output_schema: { class_names: ["a"], class_names_file: "names.txt" } },
    path: "output_schema.class_names_file",
    reason: "give either class_names or class_names_file, not both"
  }
]

const section = (name: string, key: string, value: unknown, reason: string): InvalidCase => ({
  key: `${name}.${key}`,
  patch: { [name]: { [key]: value } },
  path: `${name}.${key}`,
  reason: `${reason}, got ${JSON.stringify(value)}`
})

/** The runtime's extension sections, one row per rule. */
const extensionCases: ReadonlyArray<InvalidCase> = [
  {
    key: "preprocessing",
    patch: { preprocessing: [640, 640] },
    path: "preprocessing",
    reason: "must be a mapping of keys, got [640,640]"
  },
  section("preprocessing", "input_size", [640], "must be [width, height] with positive integers"),
  section("preprocessing", "input_size", 640, "must be [width, height] with positive integers"),
  section("preprocessing", "resize", "crop", "must be one of letterbox, stretch"),
  ...[256, -1, 1.5].map((v) => section("preprocessing", "pad_value", v, "must be an integer from 0 to 255")),
  section("preprocessing", "color_matrix", "bt2020", "must be one of bt601, bt709"),
  section("preprocessing", "color_range", "tv", "must be one of full, limited"),
  section("preprocessing", "channel_order", "gbr", "must be one of rgb, bgr"),
  ...[0, -1, "1/255"].map((v) => section("preprocessing", "scale", v, "must be a number > 0")),
  section("preprocessing", "mean", [0, 0], "must be a list of 3 numbers"),
  section("preprocessing", "mean", [0, 0, "a"], "must be a list of 3 numbers"),
  section("preprocessing", "std", [1, 1, 0], "must be a list of 3 numbers > 0"),
  section("preprocessing", "std", [1, 1], "must be a list of 3 numbers > 0"),
  section("preprocessing", "layout", "chw", "must be one of nchw, nhwc"),
  section("preprocessing", "dtype", "float16", "must be one of float32, uint8"),
  { key: "backend", patch: { backend: "cuda" }, path: "backend", reason: `must be a mapping of keys, got "cuda"` },
  ...[["tensorrt"], [], "cpu"].map((v) =>
    section("backend", "execution_providers", v, "must be a non-empty list of: cpu, cuda")
  ),
  ...[-1, 1.5].map((v) => section("backend", "intra_op_threads", v, "must be a non-negative integer")),
  ...[-1, 20, 2.5, "low"].map((v) => section("backend", "pool_thread_nice", v, "must be an integer from 0 to 19")),
  ...[-1, 1.5].map((v) => section("backend", "inter_op_threads", v, "must be a non-negative integer")),
  section("backend", "warmup_runs", -1, "must be a non-negative integer"),
  section("backend", "input_name", "", "must be a non-empty string"),
  section("backend", "output_names", [""], "must be a list of non-empty strings"),
  section("backend", "output_names", "output0", "must be a list of non-empty strings"),
  { key: "postprocess", patch: { postprocess: "yolo" }, path: "postprocess", reason: `must be a mapping of keys, got "yolo"` },
  section("postprocess", "kind", "ssd", "must be one of yolo, db_text, none"),
  ...[
    ["layout", "v9", "must be one of auto, v8, v5"],
    ["max_detections", 0, "must be a positive integer"],
    ["class_agnostic_nms", "yes", "must be true or false"]
  ].map(([key, value, reason]) => ({
    key: `postprocess(yolo).${String(key)}`,
    patch: { postprocess: { kind: "yolo", [String(key)]: value } },
    path: `postprocess.${String(key)}`,
    reason: `${String(reason)}, got ${JSON.stringify(value)}`
  })),
  ...[
    ["threshold", 1.2, "must be between 0 and 1"],
    ["box_threshold", -0.1, "must be between 0 and 1"],
    ["unclip_ratio", 0, "must be a number > 0"],
    ["min_area", -1, "must be a number >= 0"],
    ["max_detections", 2.5, "must be a positive integer"]
  ].map(([key, value, reason]) => ({
    key: `postprocess(db_text).${String(key)}`,
    patch: { postprocess: { kind: "db_text", [String(key)]: value } },
    path: `postprocess.${String(key)}`,
    reason: `${String(reason)}, got ${JSON.stringify(value)}`
  })),
  { key: "limits", patch: { limits: 8 }, path: "limits", reason: "must be a mapping of keys, got 8" },
  ...[0, 2.5].map((v) => section("limits", "max_inflight", v, "must be a positive integer")),
  section("limits", "request_timeout_ms", -5, "must be a positive integer"),
  { key: "scheduling", patch: { scheduling: "latest" }, path: "scheduling", reason: "must be a mapping of keys, got \"latest\"" },
  ...[-1, 2.5].map((v) => section("scheduling", "max_frame_age_ms", v, "must be a non-negative integer")),
  section("scheduling", "per_camera", "newest", "must be one of all, latest")
]

describe("model.yaml: invalid values name the file, the key and the reason", () => {
  for (const c of [...contractCases, ...extensionCases]) {
    it.effect(`${c.key}: ${JSON.stringify(c.patch)}`, () =>
      Effect.gen(function*() {
        const { error, file } = yield* reject(c.patch)
        expectProblem(error, file, c.path, c.reason)
        expect(error.kind).toBe("invalid")
      }))
  }
})

describe("model.yaml: CONTRACT §6 valid values and defaults", () => {
  it.effect("a minimal file gets every default", () =>
    Effect.gen(function*() {
      const loaded = yield* load({})
      const expected: ModelYaml = {
        model_id: "demo",
        model_name: "Demo detector",
        model_version: "1.0.0",
        supported_tasks: [],
        input_format: "NV12",
        expected_resolution: [640, 640],
        resource_requirements: { gpu_required: false, cpu_fallback_allowed: true },
        model_type: "onnx",
        model_weights: "model.onnx",
        confidence_threshold: 0.5,
        output_schema: {},
        preprocessing: {
          resize: "letterbox",
          pad_value: 114,
          color_matrix: "bt601",
          color_range: "full",
          channel_order: "rgb",
          scale: 1 / 255,
          mean: [0, 0, 0],
          std: [1, 1, 1],
          layout: "nchw",
          dtype: "float32"
        },
        backend: { execution_providers: ["cpu"], intra_op_threads: 0, inter_op_threads: 0, pool_thread_nice: 10, warmup_runs: 1 },
        postprocess: { kind: "none" },
        limits: {},
        scheduling: {}
      }
      expect(loaded.config).toEqual(expected)
      expect(loaded.config.nms_iou_threshold).toBeUndefined()
      expect(loaded.classNames).toEqual([])
      expect(loaded.warnings).toEqual([])
      expect(loaded.directory).toBe(path.dirname(loaded.file))
      expect(loaded.weightsPath).toBe(path.join(loaded.directory, "model.onnx"))
    }))

  it.effect("optional identity strings and supported_tasks are kept", () =>
    Effect.gen(function*() {
      const { config } = yield* load({
        description: "People",
        author: "Ruth",
        license: "MIT",
        supported_tasks: ["detection", "tracking-input"]
      })
      expect([config.description, config.author, config.license]).toEqual(["People", "Ruth", "MIT"])
      expect(config.supported_tasks).toEqual(["detection", "tracking-input"])
    }))

  it.effect("an unquoted numeric model_version is read as its text, with a warning", () =>
    Effect.gen(function*() {
      const dir = writeModelDir(root, {}, {
        text: "model_id: demo\nmodel_name: Demo\nmodel_version: 1.0\nmodel_weights: model.onnx\n"
      })
      const loaded = yield* loadModelConfig(dir)
      expect(loaded.config.model_version).toBe("1.0")
      expect(loaded.warnings).toEqual([
        `model_version: 1.0 is a YAML number, read as the text "1.0" (quote it to be explicit)`
      ])
    }))

  it.effect("an empty optional value counts as absent", () =>
    Effect.gen(function*() {
      const { config } = yield* load({ description: null, confidence_threshold: null, preprocessing: { resize: null } })
      expect(config.description).toBeUndefined()
      expect(config.confidence_threshold).toBe(0.5)
      expect(config.preprocessing.resize).toBe("letterbox")
    }))

  for (const format of ["NV12", "RGB24", "BGR24"] as const) {
    it.effect(`input_format ${format} is accepted`, () =>
      Effect.gen(function*() {
        expect((yield* load({ input_format: format })).config.input_format).toBe(format)
      }))
  }

  it.effect("expected_resolution [width, height] is kept and sizes the model input", () =>
    Effect.gen(function*() {
      const loaded = yield* load({ expected_resolution: [1280, 736] })
      expect(loaded.config.expected_resolution).toEqual([1280, 736])
      expect([toPreprocessSettings(loaded.config).width, toPreprocessSettings(loaded.config).height]).toEqual([1280, 736])
    }))

  it.effect("confidence_threshold accepts both ends of 0–1; nms_iou_threshold is kept", () =>
    Effect.gen(function*() {
      expect((yield* load({ confidence_threshold: 0 })).config.confidence_threshold).toBe(0)
      const { config } = yield* load({ confidence_threshold: 1, nms_iou_threshold: 0.45 })
      expect([config.confidence_threshold, config.nms_iou_threshold]).toEqual([1, 0.45])
    }))

  it.effect("resource_requirements: explicit values are kept", () =>
    Effect.gen(function*() {
      const { config } = yield* load({
        resource_requirements: { gpu_required: false, gpu_memory_mb: 2048, cpu_fallback_allowed: false }
      })
      expect(config.resource_requirements).toEqual({
        gpu_required: false,
        gpu_memory_mb: 2048,
        cpu_fallback_allowed: false
      })
    }))

  it.effect("resource_requirements: gpu_required alone means no CPU fallback (true would contradict it)", () =>
    Effect.gen(function*() {
      const { config } = yield* load({ resource_requirements: { gpu_required: true } })
      expect(config.resource_requirements).toEqual({ gpu_required: true, cpu_fallback_allowed: false })
    }))

  it.effect("resource_requirements: gpu_required with cpu_fallback_allowed true is a contradiction", () =>
    Effect.gen(function*() {
      const { error, file } = yield* reject({
        resource_requirements: { gpu_required: true, cpu_fallback_allowed: true }
      })
      expect(error.file).toBe(file)
      expect(error.problems).toHaveLength(1)
      const [problem] = error.problems
      expect(problem?.path).toBe("resource_requirements.cpu_fallback_allowed")
      expect(problem?.reason).toContain("contradicts gpu_required: true")
      expect(problem?.reason).toContain("cannot also allow falling back to CPU")
      expect(error.message).toContain(`${file}: resource_requirements.cpu_fallback_allowed: contradicts`)
    }))

  it.effect("model_type onnx is accepted", () =>
    Effect.gen(function*() {
      expect((yield* load({ model_type: "onnx" })).config.model_type).toBe("onnx")
    }))

  it.effect("model_type pytorch is a valid value but reported as unsupported by this runtime", () =>
    Effect.gen(function*() {
      const { error, file } = yield* reject({ model_type: "pytorch", model_weights: "model.pt" }, {
        files: { "model.pt": "torch" }
      })
      expectProblem(
        error,
        file,
        "model_type",
        "model_type 'pytorch' is not supported by this runtime; export the model to ONNX and set model_type: onnx"
      )
      expect(error.problems).toHaveLength(1)
      expect(error.kind).toBe("invalid")
      expect(error.modelId).toBe("demo")
      // The pure schema accepts it: only the loader knows what this runtime can execute.
      expect(Result.isSuccess(decodeModelConfig({ model_id: "a", model_name: "a", model_version: "1", model_type: "pytorch", model_weights: "m.pt" })))
        .toBe(true)
    }))

  it.effect("model_weights: a missing file is reported with its absolute path", () =>
    Effect.gen(function*() {
      const { error, file, dir } = yield* reject({ model_weights: "weights/best.onnx" })
      expectProblem(error, file, "model_weights", `file not found: ${path.join(dir, "weights/best.onnx")}`)
      expect(error.kind).toBe("missing_weights")
    }))

  it.effect("model_weights: relative to the model directory, or absolute", () =>
    Effect.gen(function*() {
      const relative = yield* load({ model_weights: "weights/best.onnx" }, { files: { "weights/best.onnx": "x" } })
      expect(relative.weightsPath).toBe(path.join(relative.directory, "weights/best.onnx"))
      const elsewhere = path.join(root, "shared-weights.onnx")
      fs.writeFileSync(elsewhere, "x")
      const absolute = yield* load({ model_weights: elsewhere })
      expect(absolute.weightsPath).toBe(elsewhere)
    }))

  it.effect("model_weights: a directory is not a weights file", () =>
    Effect.gen(function*() {
      const { error, file, dir } = yield* reject({ model_weights: "weights" }, { files: { "weights/x": "" } })
      expectProblem(error, file, "model_weights", `not a file: ${path.join(dir, "weights")}`)
      expect(error.kind).toBe("invalid")
    }))

  it.effect("output_schema: type, format, classes and class_names are kept", () =>
    Effect.gen(function*() {
      const loaded = yield* load({
        output_schema: { type: "detection", format: "xyxy", classes: 2, class_names: ["person", "car"] }
      })
      expect(loaded.config.output_schema).toEqual({
        type: "detection",
        format: "xyxy",
        classes: 2,
        class_names: ["person", "car"]
      })
      expect(loaded.classNames).toEqual(["person", "car"])
      expect(loaded.warnings).toEqual([])
    }))

  it.effect("output_schema: a classes count that disagrees with the names is a warning", () =>
    Effect.gen(function*() {
      const loaded = yield* load({ output_schema: { classes: 80, class_names: ["person"] } })
      expect(loaded.warnings).toEqual(["output_schema: classes is 80 but 1 class names are given"])
    }))
})

describe("model.yaml: class_names_file", () => {
  it.effect("is read relative to the model directory, one name per line (CRLF and a final newline are fine)", () =>
    Effect.gen(function*() {
      const loaded = yield* load({ output_schema: { class_names_file: "labels/coco.names" } }, {
        files: { "labels/coco.names": "person\r\nbicycle\r\ntraffic light\r\n\n" }
      })
      expect(loaded.classNames).toEqual(["person", "bicycle", "traffic light"])
    }))

  it.effect("a missing file is an error naming its absolute path", () =>
    Effect.gen(function*() {
      const { error, file, dir } = yield* reject({ output_schema: { class_names_file: "names.txt" } })
      expectProblem(error, file, "output_schema.class_names_file", `file not found: ${path.join(dir, "names.txt")}`)
      expect(error.kind).toBe("invalid")
    }))

  it.effect("an empty file is an error", () =>
    Effect.gen(function*() {
      const { error, file, dir } = yield* reject({ output_schema: { class_names_file: "names.txt" } }, {
        files: { "names.txt": "\n\n" }
      })
      expectProblem(error, file, "output_schema.class_names_file", `file is empty: ${path.join(dir, "names.txt")}`)
    }))

  it.effect("a blank line in the middle is an error (it would shift every later class id)", () =>
    Effect.gen(function*() {
      const { error, file, dir } = yield* reject({ output_schema: { class_names_file: "names.txt" } }, {
        files: { "names.txt": "a\n\nb\n" }
      })
      expectProblem(
        error,
        file,
        "output_schema.class_names_file",
        `line 2 of ${path.join(dir, "names.txt")} is blank (one class name per line; the line number is the class id)`
      )
    }))
})

describe("model.yaml: runtime extension sections", () => {
  it.effect("preprocessing: every key maps onto PreprocessSettings", () =>
    Effect.gen(function*() {
      const loaded = yield* load({
        expected_resolution: [1920, 1080],
        preprocessing: {
          input_size: [960, 544],
          resize: "stretch",
          pad_value: 0,
          color_matrix: "bt709",
          color_range: "limited",
          channel_order: "bgr",
          scale: 1,
          mean: [123.675, 116.28, 103.53],
          std: [58.395, 57.12, 57.375],
          layout: "nhwc",
          dtype: "uint8"
        }
      })
      expect(toPreprocessSettings(loaded.config)).toEqual({
        width: 960,
        height: 544,
        resize: "stretch",
        padValue: 0,
        colorMatrix: "bt709",
        range: "limited",
        channelOrder: "bgr",
        scale: 1,
        mean: [123.675, 116.28, 103.53],
        std: [58.395, 57.12, 57.375],
        layout: "nhwc",
        dtype: "uint8"
      })
    }))

  it.effect("preprocessing: defaults, with the input size taken from expected_resolution", () =>
    Effect.gen(function*() {
      const loaded = yield* load({ expected_resolution: [320, 256] })
      expect(toPreprocessSettings(loaded.config)).toEqual({
        width: 320,
        height: 256,
        resize: "letterbox",
        padValue: 114,
        colorMatrix: "bt601",
        range: "full",
        channelOrder: "rgb",
        scale: 1 / 255,
        mean: [0, 0, 0],
        std: [1, 1, 1],
        layout: "nchw",
        dtype: "float32"
      })
    }))

  it.effect("backend: every key is kept", () =>
    Effect.gen(function*() {
      const { config } = yield* load({
        backend: {
          execution_providers: ["cuda", "cpu"],
          intra_op_threads: 4,
          inter_op_threads: 1,
          pool_thread_nice: 0,
          warmup_runs: 0,
          input_name: "images",
          output_names: ["output0"]
        }
      })
      expect(config.backend).toEqual({
        execution_providers: ["cuda", "cpu"],
        intra_op_threads: 4,
        inter_op_threads: 1,
        pool_thread_nice: 0,
        warmup_runs: 0,
        input_name: "images",
        output_names: ["output0"]
      })
    }))

  it.effect("postprocess yolo: defaults and explicit options", () =>
    Effect.gen(function*() {
      expect((yield* load({ postprocess: { kind: "yolo" } })).config.postprocess).toEqual({
        kind: "yolo",
        layout: "auto",
        max_detections: 100,
        class_agnostic_nms: false
      })
      const explicit = { kind: "yolo", layout: "v5", max_detections: 20, class_agnostic_nms: true }
      expect((yield* load({ postprocess: explicit })).config.postprocess).toEqual(explicit)
    }))

  it.effect("postprocess db_text: defaults and explicit options", () =>
    Effect.gen(function*() {
      expect((yield* load({ postprocess: { kind: "db_text" } })).config.postprocess).toEqual({
        kind: "db_text",
        threshold: 0.3,
        box_threshold: 0.6,
        unclip_ratio: 1.5,
        min_area: 16,
        max_detections: 1000
      })
      const explicit = {
        kind: "db_text",
        threshold: 0.2,
        box_threshold: 0.5,
        unclip_ratio: 2,
        min_area: 0,
        max_detections: 50
      }
      expect((yield* load({ postprocess: explicit })).config.postprocess).toEqual(explicit)
    }))

  it.effect("postprocess: kind none, or no kind at all, means no post-processing", () =>
    Effect.gen(function*() {
      expect((yield* load({ postprocess: { kind: "none" } })).config.postprocess).toEqual({ kind: "none" })
      expect((yield* load({ postprocess: {} })).config.postprocess).toEqual({ kind: "none" })
    }))

  it.effect("limits: both keys are kept", () =>
    Effect.gen(function*() {
      const { config } = yield* load({ limits: { max_inflight: 8, request_timeout_ms: 5000 } })
      expect(config.limits).toEqual({ max_inflight: 8, request_timeout_ms: 5000 })
    }))

  it.effect("scheduling: both keys are kept", () =>
    Effect.gen(function*() {
      const { config } = yield* load({ scheduling: { max_frame_age_ms: 200, per_camera: "latest" } })
      expect(config.scheduling).toEqual({ max_frame_age_ms: 200, per_camera: "latest" })
    }))

})

describe("model.yaml: unknown keys", () => {
  it.effect("a typo'd section name is an error that suggests the section", () =>
    Effect.gen(function*() {
      const { error, file } = yield* reject({ post_process: { kind: "yolo" } })
      expectProblem(error, file, "post_process", "unknown key, did you mean postprocess?")
      expect(error.kind).toBe("invalid")
    }))

  it.effect("a typo'd top-level key is an error that suggests the key", () =>
    Effect.gen(function*() {
      const { error, file } = yield* reject({ confidance_threshold: 0.4 })
      expectProblem(error, file, "confidance_threshold", "unknown key, did you mean confidence_threshold?")
    }))

  it.effect("inside postprocess, a typo and another post-processor's option are errors", () =>
    Effect.gen(function*() {
      const { error, file } = yield* reject({ postprocess: { kind: "yolo", max_detection: 5, unclip_ratio: 2 } })
      expectProblem(error, file, "postprocess.max_detection", "unknown key, did you mean max_detections?")
      expectProblem(
        error,
        file,
        "postprocess.unclip_ratio",
        "unknown key (kind yolo takes: kind, layout, max_detections, class_agnostic_nms)"
      )
    }))

  it.effect("inside the runtime's other sections, any unknown key is an error", () =>
    Effect.gen(function*() {
      const { error, file } = yield* reject({ preprocessing: { pad_valu: 0 }, backend: { threads: 2 }, limits: { inflight: 4 } })
      expectProblem(error, file, "preprocessing.pad_valu", "unknown key, did you mean pad_value?")
      expectProblem(
        error,
        file,
        "backend.threads",
        "unknown key (backend takes: execution_providers, intra_op_threads, inter_op_threads, pool_thread_nice, warmup_runs, input_name, output_names)"
      )
      expectProblem(error, file, "limits.inflight", "unknown key (limits takes: max_inflight, request_timeout_ms)")
    }))

  it.effect("inside scheduling, an unknown key is an error", () =>
    Effect.gen(function*() {
      const { error, file } = yield* reject({ scheduling: { max_frame_age: 200 } })
      expectProblem(error, file, "scheduling.max_frame_age", "unknown key (scheduling takes: max_frame_age_ms, per_camera, streams, max_batch, max_queue_delay_ms)")
    }))

  it.effect("other unknown keys of the original's mappings stay warnings, and output_schema stays open", () =>
    Effect.gen(function*() {
      const loaded = yield* load({
        my_team: "x",
        resource_requirements: { min_ram_mb: 512 },
        output_schema: { anchors: [1, 2] }
      })
      expect(loaded.warnings).toEqual([
        "unknown key 'my_team' is ignored",
        "unknown key 'resource_requirements.min_ram_mb' is ignored"
      ])
      const { error, file } = yield* reject({ resource_requirements: { gpu_requried: true } })
      expectProblem(error, file, "resource_requirements.gpu_requried", "unknown key, did you mean gpu_required?")
    }))
})

describe("model.yaml: the file as a whole", () => {
  it.effect("every problem is reported at once, in one message naming the file", () =>
    Effect.gen(function*() {
      const { error, file, dir } = yield* reject({
        model_id: undefined,
        confidence_threshold: 1.5,
        model_type: "pytorch",
        model_weights: "missing.onnx",
        preprocessing: { layout: "chw" },
        postprocess: { kind: "yolo", max_detections: -1 }
      })
      expect(error.problems).toEqual([
        { path: "model_id", reason: "is required" },
        { path: "confidence_threshold", reason: "must be between 0 and 1, got 1.5" },
        { path: "preprocessing.layout", reason: `must be one of nchw, nhwc, got "chw"` },
        { path: "postprocess.max_detections", reason: "must be a positive integer, got -1" },
        {
          path: "model_type",
          reason: "model_type 'pytorch' is not supported by this runtime; export the model to ONNX and set model_type: onnx"
        },
        { path: "model_weights", reason: `file not found: ${path.join(dir, "missing.onnx")}` }
      ])
      expect(error.message).toBe(
        `${file}: model_id: is required; confidence_threshold: must be between 0 and 1, got 1.5; ` +
          `preprocessing.layout: must be one of nchw, nhwc, got "chw"; ` +
          `postprocess.max_detections: must be a positive integer, got -1; ` +
          `model_type: model_type 'pytorch' is not supported by this runtime; export the model to ONNX and set model_type: onnx; ` +
          `model_weights: file not found: ${path.join(dir, "missing.onnx")}`
      )
      expect(error.kind).toBe("invalid")
    }))

  it.effect("a YAML syntax error gives line and column", () =>
    Effect.gen(function*() {
      const { error, file } = yield* reject({}, {
        text: "model_id: demo\nmodel_name: Demo\nsupported_tasks: [a, b\nmodel_weights: model.onnx\n"
      })
      expect(error.file).toBe(file)
      expect(error.problems).toHaveLength(1)
      expect(error.problems[0]?.reason).toMatch(/^YAML syntax error: .* at line 4, column 1$/)
      expect(error.message).toMatch(/model\.yaml: YAML syntax error: .* at line 4, column 1$/)
    }))

  it.effect("a duplicated key is a syntax error", () =>
    Effect.gen(function*() {
      const { error } = yield* reject({}, { text: "model_id: a\nmodel_id: b\n" })
      expect(error.message).toContain("YAML syntax error: Map keys must be unique at line 2, column 1")
    }))

  for (
    const [what, text, reason] of [
      ["empty", "", "the file is empty"],
      ["a list", "- model_id: demo\n", "it is a YAML list, not a mapping of keys"],
      ["a scalar", "model.onnx\n", `it is "model.onnx", not a mapping of keys`],
      ["a mapping of other keys", "name: x\nlicense: MIT\n", "a mapping without any model.yaml key such as model_id, model_name or model_weights"]
    ] as const
  ) {
    it.effect(`a file that is ${what} is not a model.yaml`, () =>
      Effect.gen(function*() {
        const { error, file } = yield* reject({}, { text })
        expect(error.kind).toBe("not_model_yaml")
        expect(error.problems).toEqual([{ path: "", reason: `not a model.yaml (${reason})` }])
        expect(error.message).toBe(`${file}: not a model.yaml (${reason})`)
      }))
  }

  it.effect("a file not named .yaml that is not YAML is not a model.yaml, in one problem", () =>
    Effect.gen(function*() {
      const file = path.join(root, "NOTES.md")
      fs.writeFileSync(file, "# Notes\n\nkey: value\nmore text: here: and\n- a list\n")
      const error = yield* Effect.flip(loadModelConfig(file))
      expect(error.kind).toBe("not_model_yaml")
      expect(error.problems).toHaveLength(1)
      expect(error.message).toMatch(/NOTES\.md: not a model\.yaml \(not YAML: .* at line \d+, column \d+\)$/)
    }))

  it.effect("accepts the model.yaml path as well as its directory", () =>
    Effect.gen(function*() {
      const dir = writeModelDir(root, {}, {})
      const loaded = yield* loadModelConfig(yamlOf(dir))
      expect(loaded.directory).toBe(dir)
      expect(loaded.file).toBe(yamlOf(dir))
    }))

  it.effect("a directory without model.yaml, and a path that does not exist, are missing_file", () =>
    Effect.gen(function*() {
      const empty = path.join(root, "empty-model")
      fs.mkdirSync(empty)
      const noYaml = yield* Effect.flip(loadModelConfig(empty))
      expect(noYaml.kind).toBe("missing_file")
      expect(noYaml.message).toBe(`${yamlOf(empty)}: not found (every model directory needs a model.yaml)`)
      const nowhere = yield* Effect.flip(loadModelConfig(path.join(root, "nowhere")))
      expect(nowhere.kind).toBe("missing_file")
      expect(nowhere.message).toBe(`${path.join(root, "nowhere")}: not found`)
    }))
})
