/**
 * The post-processors of the built-in ONNX backend, by model.yaml's `postprocess.kind`: for each,
 * the output shapes it can never read (refused at start-up) and the decoder it makes from its
 * options. Adding a kind is an entry here (and its options in the model.yaml schema, which the
 * entry's type follows: a kind the schema lists and this table lacks does not compile).
 */
import { Result } from "effect"
import type { LoadedModelConfig } from "../../config/ModelLoader.js"
import type { ModelYaml } from "../../config/ModelYaml.js"
import type { FrameTransform } from "../../frames/transform.js"
import { decodeDbText } from "./dbText.js"
import type { OutputTensor, RawDetection, UnsupportedOutputShape } from "./types.js"
import { decodeYolo } from "./yolo.js"

/** Thresholds for one request, after its overrides. */
export interface Thresholds {
  readonly confidence: number
  readonly iou: number
}

/** One run's output tensor (one frame's rows) → detections in normalised frame coordinates. */
export type Decoder = (
  output: OutputTensor,
  transform: FrameTransform,
  thresholds: Thresholds
) => Result.Result<ReadonlyArray<RawDetection>, UnsupportedOutputShape>

export type PostprocessKind = ModelYaml["postprocess"]["kind"]

/** model.yaml's `postprocess` section for `kind`. */
export type PostprocessOptions<K extends PostprocessKind> = Extract<ModelYaml["postprocess"], { readonly kind: K }>

export interface PostProcessor<K extends PostprocessKind> {
  /**
   * Why an output declared with these (non-empty) dims can never be read, for a person, completing
   * "model output 'name' [dims] …"; `undefined` when it may be.
   */
  readonly checkOutput: (dims: ReadonlyArray<number | string>) => string | undefined
  /** The decoder for a model with these options and class names. */
  readonly decoder: (options: PostprocessOptions<K>, loaded: LoadedModelConfig) => Decoder
}

export const postProcessors: { readonly [K in PostprocessKind]: PostProcessor<K> } = {
  yolo: {
    checkOutput: (dims) =>
      dims.length === 2 || dims.length === 3
        ? undefined
        : "cannot be a YOLO head (postprocess.kind yolo expects [1, 4+C, N] or [1, N, 5+C])",
    decoder: (post, loaded) => (output, transform, t) =>
      decodeYolo(output, transform, {
        layout: post.layout,
        confidenceThreshold: t.confidence,
        iouThreshold: t.iou,
        maxDetections: post.max_detections,
        classAgnostic: post.class_agnostic_nms,
        classNames: loaded.classNames
      })
  },
  db_text: {
    checkOutput: (dims) =>
      dims.length < 2 || dims.slice(0, -2).some((d) => typeof d === "number" && d !== 1)
        ? "is not a probability map (postprocess.kind db_text expects [1, 1, H, W])"
        : undefined,
    decoder: (post, loaded) => {
      // model.yaml may rename the single class (e.g. "text_line"); the decoder always says "text".
      const name = loaded.classNames[0]
      const options = {
        threshold: post.threshold,
        boxThreshold: post.box_threshold,
        unclipRatio: post.unclip_ratio,
        minArea: post.min_area,
        maxDetections: post.max_detections
      }
      return (output, transform, t) =>
        Result.map(decodeDbText(output, transform, options), (detections) =>
          detections
            // box_threshold selects regions; confidence_threshold then filters like any detector's.
            .filter((d) => d.confidence >= t.confidence)
            .map((d) => (name !== undefined && name.length > 0 ? { ...d, class_name: name } : d)))
    }
  },
  none: {
    checkOutput: () => undefined,
    decoder: () => () => Result.succeed([])
  }
}

const decoderOf = <K extends PostprocessKind>(kind: K, options: PostprocessOptions<K>, loaded: LoadedModelConfig): Decoder =>
  postProcessors[kind].decoder(options, loaded)

/** The decoder for a loaded model, as its `postprocess` section configures it. */
export const decoderFor = (loaded: LoadedModelConfig): Decoder => {
  const post = loaded.config.postprocess
  return decoderOf(post.kind, post, loaded)
}
