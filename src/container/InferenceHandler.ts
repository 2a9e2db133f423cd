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
import type { FrameError, InferenceFailed } from "../contract/errors.js"
import type { DetectionInput, InferenceRequest } from "../contract/schema.js"
import type { Frame } from "../frames/Frame.js"

export interface InferenceOutput {
  readonly detections: ReadonlyArray<DetectionInput>
  /** Merged into the response's `metadata` (keep it JSON-serialisable). */
  readonly metadata?: Readonly<Record<string, unknown>>
}

export interface InferenceHandlerShape {
  readonly infer: (
    request: InferenceRequest,
    frame: Frame
  ) => Effect.Effect<InferenceOutput | ReadonlyArray<DetectionInput>, InferenceFailed | FrameError>
}

export class InferenceHandler extends Context.Tag("@ruth-ai/model-runtime/InferenceHandler")<
  InferenceHandler,
  InferenceHandlerShape
>() {}
