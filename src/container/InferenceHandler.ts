/**
 * The model author's contract: given a decoded request and its frame, return
 * detections (and optional metadata) or a typed failure. Everything else —
 * sockets, validation, frames, limits, shutdown — is the runtime's job.
 *
 * ```ts
 * const Handler = Layer.succeed(InferenceHandler, InferenceHandler.of({
 *   infer: (request, frame) => Effect.succeed({ detections: [] })
 * }))
 * ```
 */
import { Context, type Effect } from "effect"
import type { FrameError, InferenceFailed, SchedulingDrop } from "../contract/errors.js"
import type { InferenceRequest } from "../contract/schema.js"
import type { Frame } from "../frames/Frame.js"

/**
 * A detection as a handler returns it: the contract's shape, typed loosely
 * (`bbox` any number array) because the runtime validates every field anyway.
 */
export interface DetectionOutput {
  readonly class_id: number
  readonly class_name: string
  readonly confidence: number
  /** `[x_min, y_min, x_max, y_max]`, normalised 0–1. */
  readonly bbox: ReadonlyArray<number>
  readonly track_id?: number | null | undefined
}

export interface InferenceOutput {
  readonly detections: ReadonlyArray<DetectionOutput>
  /** Merged into the response's `metadata` (keep it JSON-serialisable). */
  readonly metadata?: Readonly<Record<string, unknown>>
}

export interface InferenceHandlerShape {
  readonly infer: (
    request: InferenceRequest,
    frame: Frame
  ) => Effect.Effect<InferenceOutput | ReadonlyArray<DetectionOutput>, InferenceFailed | FrameError | SchedulingDrop>
}

export class InferenceHandler extends Context.Tag("@ruth-ai/model-runtime/InferenceHandler")<
  InferenceHandler,
  InferenceHandlerShape
>() {}
