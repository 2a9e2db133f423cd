/**
 * Wire schemas of the model-container contract (CONTRACT.md §3–4).
 *
 * Decoding ignores unknown keys (forward compatibility); every rule of the
 * contract is a refinement here, so a decode failure names the field and why.
 */
import { Either, ParseResult, Schema } from "effect"

/** A refinement message that also shows the offending value. */
const says = (text: string) => ({
  message: (issue: ParseResult.ParseIssue) => `${text}, got ${showActual(issue.actual)}`
})
const showActual = (actual: unknown): string => {
  const shown = JSON.stringify(actual)
  return shown === undefined ? String(actual) : shown.length > 60 ? `${shown.slice(0, 57)}...` : shown
}

const NonEmpty = Schema.String.pipe(Schema.minLength(1, says("must be a non-empty string")))
const PositiveInt = Schema.Number.pipe(
  Schema.int(says("must be an integer")),
  Schema.positive(says("must be > 0"))
)
const Unit = Schema.Number.pipe(
  Schema.finite(says("must be a finite number")),
  Schema.between(0, 1, says("must be between 0.0 and 1.0"))
)

/** `frame_metadata`: dimensions and identity of the frame in shared memory. */
export const FrameMetadata = Schema.Struct({
  width: PositiveInt,
  height: PositiveInt,
  /** Absent means NV12 (see `frameFormat`). */
  format: Schema.optional(NonEmpty),
  frame_id: Schema.optional(Schema.Unknown),
  stride: Schema.optional(PositiveInt),
  timestamp: Schema.optional(Schema.Number),
  pts: Schema.optional(Schema.Number)
}).annotations({ identifier: "an object with width and height" })
export type FrameMetadata = typeof FrameMetadata.Type

/** The frame's pixel format as sent, NV12 when absent. */
export const frameFormat = (meta: FrameMetadata): string => meta.format ?? "NV12"

/** Per-request overrides (`confidence_threshold`, `nms_iou_threshold`, …); models ignore keys they do not know. */
export const RequestConfig = Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
  identifier: "an object"
})
export type RequestConfig = typeof RequestConfig.Type

/** `request_id` is our extension: echoed in the response when the caller sends one. */
export const RequestId = Schema.Union(Schema.String, Schema.Number)

/** An inference request (caller → container). */
export const InferenceRequest = Schema.Struct({
  frame_reference: NonEmpty,
  frame_metadata: FrameMetadata,
  camera_id: NonEmpty,
  model_id: NonEmpty,
  timestamp: Schema.Number.pipe(
    Schema.finite(says("must be a finite number")),
    Schema.positive(says("must be > 0 (Unix seconds)"))
  ),
  config: Schema.optional(Schema.NullOr(RequestConfig)),
  request_id: Schema.optional(RequestId)
}).annotations({ identifier: "a request object" })
export type InferenceRequest = typeof InferenceRequest.Type
/** What a caller builds: `format` may be left out. */
export type InferenceRequestInput = typeof InferenceRequest.Encoded

/** A bounding box `[x_min, y_min, x_max, y_max]`, normalised to 0–1, top-left origin. */
export const BBox = Schema.Tuple(Unit, Unit, Unit, Unit).pipe(
  Schema.filter((b) => (b[0] <= b[2] && b[1] <= b[3]) || "must satisfy x_min <= x_max and y_min <= y_max")
)

/** One detection. On the wire `track_id` is always present (null when untracked), as the reference sent it. */
export const Detection = Schema.Struct({
  class_id: Schema.Number.pipe(
    Schema.int(says("must be an integer")),
    Schema.nonNegative(says("must be >= 0"))
  ),
  class_name: NonEmpty,
  confidence: Unit,
  bbox: BBox,
  track_id: Schema.optional(Schema.NullOr(Schema.Number.pipe(Schema.int(says("must be an integer or null")))))
}).annotations({ identifier: "a detection object" })
export type Detection = typeof Detection.Type
/** What a handler returns: `track_id` may be left out. */
export type DetectionInput = typeof Detection.Encoded

export const ResponseMetadata = Schema.Record({ key: Schema.String, value: Schema.Unknown })
export type ResponseMetadata = typeof ResponseMetadata.Type

/** Machine-readable error codes, sent as the `error_code` extension key. */
export const ErrorCode = Schema.Literal(
  "INVALID_REQUEST",
  "MODEL_MISMATCH",
  "FRAME_NOT_FOUND",
  "FRAME_ACCESS_DENIED",
  "FRAME_INVALID",
  "FRAME_TORN",
  "FRAME_STALE",
  "INFERENCE_FAILED",
  "TIMEOUT",
  "OVERLOADED",
  "SHUTTING_DOWN",
  "MESSAGE_TOO_LARGE",
  "INTERNAL"
)
export type ErrorCode = typeof ErrorCode.Type

/** An inference response (container → caller). `detections` is empty whenever `error` is set. */
export const InferenceResponse = Schema.Struct({
  model_id: Schema.String,
  camera_id: Schema.String,
  frame_id: Schema.Unknown,
  detections: Schema.Array(Detection),
  metadata: Schema.NullOr(ResponseMetadata),
  error: Schema.NullOr(Schema.String),
  error_code: Schema.optional(ErrorCode),
  request_id: Schema.optional(RequestId)
}).pipe(
  Schema.filter((r) => r.error === null || r.detections.length === 0 || "detections must be empty when error is set")
)
export type InferenceResponse = typeof InferenceResponse.Type

/**
 * Formats a parse error as `path: reason` lines joined by "; ",
 * e.g. `frame_metadata.width: must be > 0, got -4`.
 */
export const formatParseError = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => {
      const path = issue.path.map(String).join(".")
      const message = issue.message.startsWith("is missing") ? "is required" : issue.message
      return path === "" ? message : `${path}: ${message}`
    })
    .join("; ")

const decodeRequestEither = Schema.decodeUnknownEither(InferenceRequest, { errors: "all" })

/** Decodes a parsed JSON value into a request, or a readable reason naming each bad field. */
export const decodeRequest = (input: unknown): Either.Either<InferenceRequest, string> =>
  Either.mapLeft(decodeRequestEither(input), formatParseError)

const decodeDetectionsEither = Schema.decodeUnknownEither(Schema.Array(Detection), { errors: "all" })

/**
 * Validates what a handler returned, in wire form (`track_id` filled with null):
 * the runtime never sends a detection that breaks the contract.
 */
export const decodeDetections = (input: unknown): Either.Either<ReadonlyArray<Detection>, string> =>
  Array.isArray(input) && input.length === 0 ? Either.right([]) : Either.map(
    Either.mapLeft(decodeDetectionsEither(input), formatParseError),
    (ds) => ds.map((d) => (d.track_id === undefined ? { ...d, track_id: null } : d))
  )
