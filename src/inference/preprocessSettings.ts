/**
 * model.yaml's `preprocessing` section in the form the preprocess module takes (camelCase):
 * the one place the decoded YAML meets `PreprocessOptions`.
 */
import type { ModelYaml } from "../config/ModelYaml.js"
import type { PreprocessOptions } from "../frames/preprocess.js"

/** The model.yaml `preprocessing` section in the form the preprocess module takes. */
export type PreprocessSettings = PreprocessOptions

/** Model input size is `preprocessing.input_size`, else `expected_resolution`. */
export const toPreprocessSettings = (
  config: Pick<ModelYaml, "preprocessing" | "expected_resolution">
): PreprocessSettings => {
  const p = config.preprocessing
  const [width, height] = p.input_size ?? config.expected_resolution
  return {
    width,
    height,
    resize: p.resize,
    padValue: p.pad_value,
    colorMatrix: p.color_matrix,
    range: p.color_range,
    channelOrder: p.channel_order,
    scale: p.scale,
    mean: p.mean,
    std: p.std,
    layout: p.layout,
    dtype: p.dtype
  }
}
