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

/** Every error that ends a request with an error response. */
export type RequestError =
  | InvalidRequest
  | ModelMismatch
  | FrameError
  | InferenceFailed
  | RequestTimeout
  | Overloaded
  | ShuttingDown
  | MessageTooLarge

/** The wire form of an error: the response's `error` string and `error_code`. */
export const toWireError = (error: RequestError): { readonly error: string; readonly error_code: ErrorCode } => ({
  error: error.message,
  error_code: error.code
})
