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
import type { InferenceRequest } from "../contract/schema.js"
import type { Frame } from "../frames/Frame.js"
import type { Refused, Slot } from "./Scheduler.js"

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

/** What a handler answers with: detections and metadata, or the detections alone. */
export type InferenceResult = InferenceOutput | ReadonlyArray<DetectionOutput>

/**
 * What the container tells a scheduled handler about the turn it runs in: the scheduler's `Slot`
 * (which stream, and the batch it shares with other requests, to `join`) and the wait.
 */
export interface Turn extends Slot {
  /** From the request's admission until its turn came (before its frame was read), ms. */
  readonly waitedMs: number
}

export interface InferenceHandlerShape {
  readonly infer: (
    request: InferenceRequest,
    frame: Frame
  ) => Effect.Effect<InferenceResult, InferenceFailed | FrameError | Refused>
  /**
   * Optional: opts the handler in to being scheduled by the container. When the container has a
   * `Scheduler`, it then calls this instead of `infer`, only when the request's turn comes, with
   * the frame read at that moment: a request waiting for the model holds no frame, and one the
   * scheduler drops (SUPERSEDED, FRAME_EXPIRED, TIMEOUT) is never read. It runs under the turn
   * (keep it to what needs the model, e.g. preprocess + run, and never call `scheduler.run` in
   * it); the effect it succeeds with is the rest (e.g. post-processing), run after the turn is
   * given back and the frame released — so it must not touch the frame's bytes.
   * Without a container `Scheduler` the container calls `infer`, as for any handler.
   */
  readonly inTurn?: (
    request: InferenceRequest,
    frame: Frame,
    turn: Turn
  ) => Effect.Effect<Effect.Effect<InferenceResult, InferenceFailed>, InferenceFailed | FrameError>
  /**
   * Optional: where the model runs (`cpu`, `cuda`, ...), as metrics label it
   * (`ruth_model_info{execution_provider}`); `unknown` when not given.
   */
  readonly executionProvider?: string
}

export class InferenceHandler extends Context.Service<InferenceHandler, InferenceHandlerShape>()(
  "@ruth-ai/model-runtime/InferenceHandler"
) {}
