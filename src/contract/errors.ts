/**
 * Every way a request can fail, as data. Each error carries its wire `code`
 * and a one-line `message` for a person; `toWireError` is the one place both
 * are read to build an error response.
 */
import { Data } from "effect"
import type { ErrorCode } from "./schema.js"

/** The request is not valid JSON or breaks the request schema. */
export class InvalidRequest extends Data.TaggedError("InvalidRequest")<{ readonly reason: string }> {
  readonly code: ErrorCode = "INVALID_REQUEST"
  override get message() {
    return `invalid request: ${this.reason}`
  }
}

/** The request names another model than the one this container serves. */
export class ModelMismatch extends Data.TaggedError("ModelMismatch")<{
  readonly expected: string
  readonly received: string
}> {
  readonly code: ErrorCode = "MODEL_MISMATCH"
  override get message() {
    return `model_id mismatch: this container serves '${this.expected}', request asked for '${this.received}'`
  }
}

/** Nothing at the frame reference (or it vanished before it could be read). */
export class FrameNotFound extends Data.TaggedError("FrameNotFound")<{ readonly path: string }> {
  readonly code: ErrorCode = "FRAME_NOT_FOUND"
  override get message() {
    return `frame not found: ${this.path}`
  }
}

/** The frame reference points outside the allowed roots, or cannot be opened for reading. */
export class FrameAccessDenied extends Data.TaggedError("FrameAccessDenied")<{
  readonly path: string
  readonly reason: string
}> {
  readonly code: ErrorCode = "FRAME_ACCESS_DENIED"
  override get message() {
    return `frame access denied: ${this.path}: ${this.reason}`
  }
}

/** The frame exists but cannot be what the request says (size, format, file type). */
export class FrameInvalid extends Data.TaggedError("FrameInvalid")<{
  readonly path: string
  readonly reason: string
}> {
  readonly code: ErrorCode = "FRAME_INVALID"
  override get message() {
    return `invalid frame: ${this.path}: ${this.reason}`
  }
}

/** The writer replaced the frame while it was being read, every time we tried. */
export class FrameTorn extends Data.TaggedError("FrameTorn")<{
  readonly path: string
  readonly attempts: number
}> {
  readonly code: ErrorCode = "FRAME_TORN"
  override get message() {
    return `torn frame: ${this.path} changed while being read (${this.attempts} attempts)`
  }
}

/** The frame in shared memory is not the one the request names. */
export class FrameStale extends Data.TaggedError("FrameStale")<{
  readonly path: string
  readonly requested: string
  readonly found: string
}> {
  readonly code: ErrorCode = "FRAME_STALE"
  override get message() {
    return `stale frame: ${this.path} holds frame_id ${this.found}, request names ${this.requested}`
  }
}

/** The model handler failed, or returned output that breaks the contract. */
export class InferenceFailed extends Data.TaggedError("InferenceFailed")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  readonly code: ErrorCode = "INFERENCE_FAILED"
  override get message() {
    return `inference failed: ${this.reason}`
  }
}

/** The request did not finish within the per-request timeout; its handler was interrupted. */
export class RequestTimeout extends Data.TaggedError("RequestTimeout")<{ readonly timeoutMs: number }> {
  readonly code: ErrorCode = "TIMEOUT"
  override get message() {
    return `request timed out after ${this.timeoutMs} ms`
  }
}

/** Every in-flight slot is taken; the caller should retry later (we never queue without bound). */
export class Overloaded extends Data.TaggedError("Overloaded")<{ readonly maxInflight: number }> {
  readonly code: ErrorCode = "OVERLOADED"
  override get message() {
    return `overloaded: ${this.maxInflight} requests already in flight`
  }
}

/**
 * The request was not started: its deadline had passed, or would pass before a run ends (the
 * scheduler's estimate of one run). Answered at once instead of spending the model on it.
 */
export class DeadlineUnmet extends Data.TaggedError("DeadlineUnmet")<{
  readonly timeoutMs: number
  /** Milliseconds left before the deadline when the model could have started (<= 0: passed). */
  readonly leftMs: number
  readonly estimatedRunMs: number
}> {
  readonly code: ErrorCode = "TIMEOUT"
  override get message() {
    return this.leftMs <= 0
      ? `request timed out after ${this.timeoutMs} ms waiting for the model; not run`
      : `request not run: ${Math.round(this.leftMs)} ms were left of its ${this.timeoutMs} ms timeout, a run takes about ${Math.round(this.estimatedRunMs)} ms`
  }
}

/** The frame was older than the freshness budget (`max_frame_age_ms`) when the model could start on it; never run. */
export class FrameExpired extends Data.TaggedError("FrameExpired")<{
  readonly ageMs: number
  readonly budgetMs: number
}> {
  readonly code: ErrorCode = "FRAME_EXPIRED"
  override get message() {
    return `frame expired: ${Math.round(this.ageMs)} ms old by its timestamp, the budget is ${this.budgetMs} ms; not run`
  }
}

/** A newer frame of the same camera arrived while this one waited (`per_camera: latest`); never run. */
export class Superseded extends Data.TaggedError("Superseded")<{ readonly cameraId: string }> {
  readonly code: ErrorCode = "SUPERSEDED"
  override get message() {
    return `superseded: a newer frame of camera '${this.cameraId}' arrived while this one waited; not run`
  }
}

/** The container is draining for shutdown and takes no new work. */
export class ShuttingDown extends Data.TaggedError("ShuttingDown")<{}> {
  readonly code: ErrorCode = "SHUTTING_DOWN"
  override get message() {
    return "container is shutting down"
  }
}

/** The announced message length exceeds the limit; the connection is closed after this answer. */
export class MessageTooLarge extends Data.TaggedError("MessageTooLarge")<{
  readonly length: number
  readonly limit: number
}> {
  readonly code: ErrorCode = "MESSAGE_TOO_LARGE"
  override get message() {
    return `message too large: ${this.length} bytes announced, limit is ${this.limit}`
  }
}

/** Errors of reading a frame from shared memory. */
export type FrameError = FrameNotFound | FrameAccessDenied | FrameInvalid | FrameTorn | FrameStale

/** Why the scheduler answered a request without running it. */
export type SchedulingDrop = DeadlineUnmet | FrameExpired | Superseded

/** Every error that ends a request with an error response. */
export type RequestError =
  | InvalidRequest
  | ModelMismatch
  | FrameError
  | InferenceFailed
  | RequestTimeout
  | DeadlineUnmet
  | FrameExpired
  | Superseded
  | Overloaded
  | ShuttingDown
  | MessageTooLarge

const requestErrorClasses = [
  InvalidRequest,
  ModelMismatch,
  FrameNotFound,
  FrameAccessDenied,
  FrameInvalid,
  FrameTorn,
  FrameStale,
  InferenceFailed,
  RequestTimeout,
  DeadlineUnmet,
  FrameExpired,
  Superseded,
  Overloaded,
  ShuttingDown,
  MessageTooLarge
] as const

/** True for the runtime's own error classes (they carry a wire code); false for anything else a handler fails with. */
export const isRequestError = (u: unknown): u is RequestError => requestErrorClasses.some((C) => u instanceof C)

const MAX_DESCRIPTION = 300

const clip = (text: string): string => (text.length > MAX_DESCRIPTION ? `${text.slice(0, MAX_DESCRIPTION - 3)}...` : text)

/**
 * One line for a person about whatever a handler failed or died with: an
 * error's message (never its stack), a string as it is, anything else as
 * JSON where it can be. Never throws.
 */
export const describeFailure = (u: unknown): string => {
  try {
    if (u instanceof Error) return clip(u.message !== "" ? u.message : u.name)
    if (typeof u === "string") return u === "" ? "an empty string" : clip(u)
    if (typeof u === "function") return `a function${u.name !== "" ? ` (${u.name})` : ""}`
    if (typeof u === "object" && u !== null) {
      const message: unknown = (u as { readonly message?: unknown }).message
      if (typeof message === "string" && message !== "") return clip(message)
      const json = JSON.stringify(u)
      return clip(json === undefined ? Object.prototype.toString.call(u) : json)
    }
    return String(u)
  } catch {
    return "a value that cannot be described"
  }
}

/**
 * What a request that failed with `u` answers: the runtime's own errors keep
 * their code; anything else (a string, an Error, a plain object, a defect)
 * becomes INFERENCE_FAILED with its description after `what`.
 */
export const toRequestError = (u: unknown, what: string): RequestError =>
  isRequestError(u) ? u : new InferenceFailed({ reason: `${what}: ${describeFailure(u)}`, cause: u })

/** The wire form of an error: the response's `error` string and `error_code`. */
export const toWireError = (error: RequestError): { readonly error: string; readonly error_code: ErrorCode } => ({
  error: error.message,
  error_code: error.code
})
