/**
 * The shapes post-processors read and write: a model output tensor in, detections
 * in normalised frame coordinates out (the contract's Detection, before validation).
 */
import { Data } from "effect"

/** A detection as a post-processor produces it; `bbox` is `[x_min, y_min, x_max, y_max]` normalised to the frame. */
export interface RawDetection {
  class_id: number
  class_name: string
  confidence: number
  bbox: [number, number, number, number]
  track_id?: number | null
}

/** A dense float32 tensor, row-major, as returned by a model run. */
export interface OutputTensor {
  readonly data: Float32Array
  readonly dims: ReadonlyArray<number>
}

/** A model output whose shape (or size) the post-processor cannot interpret. */
export class UnsupportedOutputShape extends Data.TaggedError("UnsupportedOutputShape")<{
  readonly decoder: string
  readonly dims: ReadonlyArray<number>
  readonly reason: string
}> {
  override get message() {
    return `${this.decoder}: cannot interpret output of shape [${this.dims.join(", ")}]: ${this.reason}`
  }
}
