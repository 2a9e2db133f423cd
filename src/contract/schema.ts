/**
 * Wire schemas of the model-container contract (CONTRACT.md §3–4).
 *
 * Decoding ignores unknown keys (forward compatibility); every rule of the
 * contract is a check here, so a decode failure names the field and why.
 */
import { Effect, Option, Result, Schema, SchemaIssue } from "effect"
import { flattenIssue, inputOf } from "../internal/schemaIssues.js"

/**
 * A check whose message also shows the offending value: the text goes in the check's `message`
 * annotation (Effect 4 messages are strings) and `formatIssue` appends `, got <value>`.
 * Each check aborts the ones after it, as Effect 3's chained refinements did (one reason per field).
 */
const says = (text: string) => ({ message: text })
const showActual = (actual: unknown): string => {
  const shown = JSON.stringify(actual)
  return shown === undefined ? String(actual) : shown.length > 60 ? `${shown.slice(0, 57)}...` : shown
}

const NonEmpty = Schema.String.check(Schema.isMinLength(1, says("must be a non-empty string")).abort())
const PositiveInt = Schema.Number.check(
  Schema.isInt(says("must be an integer")).abort(),
  Schema.isGreaterThan(0, says("must be > 0")).abort()
)
const Unit = Schema.Number.check(
  Schema.isFinite(says("must be a finite number")).abort(),
  Schema.isBetween({ minimum: 0, maximum: 1 }, says("must be between 0.0 and 1.0")).abort()
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
}).annotate({ identifier: "an object with width and height" })
export type FrameMetadata = typeof FrameMetadata.Type

/** The frame's pixel format as sent, NV12 when absent. */
export const frameFormat = (meta: FrameMetadata): string => meta.format ?? "NV12"

/** Per-request overrides (`confidence_threshold`, `nms_iou_threshold`, …); models ignore keys they do not know. */
export const RequestConfig = Schema.Record(Schema.String, Schema.Unknown).annotate({ identifier: "an object" })
export type RequestConfig = typeof RequestConfig.Type

/** `request_id` is our extension: echoed in the response when the caller sends one. */
export const RequestId = Schema.Union([Schema.String, Schema.Number])

/**
 * `traceparent` is our extension: a W3C trace context (`00-{trace id}-{parent span id}-{flags}`) the
 * request's span continues. Anything that is not a string is dropped, never an INVALID_REQUEST (a
 * string that is no valid traceparent is kept, and ignored by tracing).
 */
export const Traceparent = Schema.String.pipe(Schema.catchDecoding(() => Effect.succeed(Option.none())))

/** An inference request (caller → container). */
export const InferenceRequest = Schema.Struct({
  frame_reference: NonEmpty,
  frame_metadata: FrameMetadata,
  camera_id: NonEmpty,
  model_id: NonEmpty,
  timestamp: Schema.Number.check(
    Schema.isFinite(says("must be a finite number")).abort(),
    Schema.isGreaterThan(0, says("must be > 0 (Unix seconds)")).abort()
  ),
  config: Schema.optional(Schema.NullOr(RequestConfig)),
  request_id: Schema.optional(RequestId),
  traceparent: Schema.optional(Traceparent)
}).annotate({ identifier: "a request object" })
export type InferenceRequest = typeof InferenceRequest.Type
/** What a caller builds: `format` may be left out. */
export type InferenceRequestInput = typeof InferenceRequest.Encoded

/** A bounding box `[x_min, y_min, x_max, y_max]`, normalised to 0–1, top-left origin. */
export const BBox = Schema.Tuple([Unit, Unit, Unit, Unit]).check(
  Schema.makeFilter((b) => (b[0] <= b[2] && b[1] <= b[3]) || "must satisfy x_min <= x_max and y_min <= y_max")
)

/** One detection. On the wire `track_id` is always present (null when untracked), as the reference sent it. */
export const Detection = Schema.Struct({
  class_id: Schema.Number.check(
    Schema.isInt(says("must be an integer")).abort(),
    Schema.isGreaterThanOrEqualTo(0, says("must be >= 0")).abort()
  ),
  class_name: NonEmpty,
  confidence: Unit,
  bbox: BBox,
  track_id: Schema.optional(Schema.NullOr(Schema.Number.check(Schema.isInt(says("must be an integer or null")))))
}).annotate({ identifier: "a detection object" })
export type Detection = typeof Detection.Type
/** What a handler returns: `track_id` may be left out. */
export type DetectionInput = typeof Detection.Encoded

export const ResponseMetadata = Schema.Record(Schema.String, Schema.Unknown)
export type ResponseMetadata = typeof ResponseMetadata.Type

/** Machine-readable error codes, sent as the `error_code` extension key. */
export const ErrorCode = Schema.Literals([
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
  "FRAME_EXPIRED",
  "SUPERSEDED",
  "SHUTTING_DOWN",
  "MESSAGE_TOO_LARGE",
  "INTERNAL"
])
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
}).check(
  Schema.makeFilter((r) => r.error === null || r.detections.length === 0 || "detections must be empty when error is set")
)
export type InferenceResponse = typeof InferenceResponse.Type

/**
 * What one issue says, in the runtime's words: a check's message with the value it got
 * (`must be > 0, got -4`), `is required` for a missing key, `Expected string, actual 7` for a
 * value of the wrong type (Effect 3's wording, which callers have seen on the wire).
 */
const reasonOf = (issue: SchemaIssue.Issue): string | undefined => {
  if (issue._tag === "MissingKey") return "is required"
  if (issue._tag === "Filter" && typeof issue.filter.annotations?.message === "string") {
    return `${issue.filter.annotations.message}, got ${showActual(inputOf(issue))}`
  }
  // A wrong type, or a value no member of a union takes ("Expected string | number | undefined").
  if ((issue._tag === "InvalidType" || (issue._tag === "AnyOf" && issue.issues.length === 0)) && SchemaIssue.hasInput(issue)) {
    const text = defaultMessage(issue)
    const got = text.lastIndexOf(", got ")
    return got < 0 ? text : `${text.slice(0, got)}, actual ${text.slice(got + ", got ".length)}`
  }
  return undefined
}
const defaultFormatter = SchemaIssue.makeFormatterStandardSchemaV1()
const defaultMessage = (issue: SchemaIssue.Issue): string => defaultFormatter(issue).issues[0]?.message ?? "is invalid"

/**
 * Formats a schema issue as `path: reason` lines joined by "; ",
 * e.g. `frame_metadata.width: must be > 0, got -4`.
 */
export const formatIssue = (issue: SchemaIssue.Issue): string =>
  flattenIssue(issue, reasonOf)
    .map(({ message, path }) => {
      const shown = path.map(String).join(".")
      return shown === "" ? message : `${shown}: ${message}`
    })
    .join("; ")

/** Formats a decode error (`Schema.SchemaError`) the same way. */
export const formatSchemaError = (error: Schema.SchemaError): string => formatIssue(error.issue)

/** Every problem at once, with the offending values kept for the messages. */
const decodeOptions = { errors: "all", reportInput: true } as const

const decodeRequestResult = Schema.decodeUnknownResult(InferenceRequest)

/** An object literal (what JSON.parse makes): no class, no array, nothing inherited but Object's. */
const isPlainObject = (u: unknown): u is Record<string, unknown> => {
  if (typeof u !== "object" || u === null) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}
const isNonEmpty = (u: unknown): u is string => typeof u === "string" && u.length > 0
const isPositiveInt = (u: unknown): u is number => Number.isSafeInteger(u) && (u as number) > 0
/** An optional key: absent, or present with a value that passes. */
const optionalOk = (o: Record<string, unknown>, key: string, ok: (u: unknown) => boolean): boolean =>
  !(key in o) || ok(o[key])

/**
 * The schema's answer for a plainly valid request, without the schema's
 * machinery (5–10× faster: this runs for every request). Every check is the
 * schema's rule or stricter, and the result is built as the schema builds it
 * (declared keys only, in declaration order); whatever it does not accept
 * goes to the schema, which decides and names the problem. A property test
 * holds the two to the same result.
 */
export const decodePlainRequest = (u: unknown): InferenceRequest | undefined => {
  if (!isPlainObject(u)) return undefined
  const m = u.frame_metadata
  const { timestamp, config } = u
  if (
    !isNonEmpty(u.frame_reference) || !isNonEmpty(u.camera_id) || !isNonEmpty(u.model_id) ||
    typeof timestamp !== "number" || !Number.isFinite(timestamp) || !(timestamp > 0) ||
    !isPlainObject(m) || !isPositiveInt(m.width) || !isPositiveInt(m.height) ||
    !optionalOk(m, "format", isNonEmpty) || !optionalOk(m, "frame_id", (v) => v !== undefined) ||
    !optionalOk(m, "stride", isPositiveInt) || !optionalOk(m, "timestamp", (v) => typeof v === "number") ||
    !optionalOk(m, "pts", (v) => typeof v === "number") ||
    !optionalOk(u, "config", (v) => v === null || isPlainObject(v)) ||
    !optionalOk(u, "request_id", (v) => typeof v === "string" || typeof v === "number")
  ) return undefined
  const meta: Record<string, unknown> = { width: m.width, height: m.height }
  if ("format" in m) meta.format = m.format
  if ("frame_id" in m) meta.frame_id = m.frame_id
  if ("stride" in m) meta.stride = m.stride
  if ("timestamp" in m) meta.timestamp = m.timestamp
  if ("pts" in m) meta.pts = m.pts
  const request: Record<string, unknown> = {
    frame_reference: u.frame_reference,
    frame_metadata: meta,
    camera_id: u.camera_id,
    model_id: u.model_id,
    timestamp
  }
  if ("config" in u) request.config = config === null ? null : { ...(config as object) }
  if ("request_id" in u) request.request_id = u.request_id
  if (typeof u.traceparent === "string") request.traceparent = u.traceparent
  return request as unknown as InferenceRequest
}

/** Decodes a parsed JSON value into a request, or a readable reason naming each bad field. */
export const decodeRequest = (input: unknown): Result.Result<InferenceRequest, string> => {
  const plain = decodePlainRequest(input)
  return plain !== undefined
    ? Result.succeed(plain)
    : Result.mapError(decodeRequestResult(input, decodeOptions), formatSchemaError)
}

const decodeDetectionsResult = Schema.decodeUnknownResult(Schema.Array(Detection))

const isUnit = (u: unknown): u is number => typeof u === "number" && u >= 0 && u <= 1

/** One plainly valid detection in wire form, built as the schema builds it, or undefined. */
const plainDetection = (d: unknown): Detection | undefined => {
  if (!isPlainObject(d)) return undefined
  const { class_id, class_name, confidence, bbox, track_id } = d
  if (
    !Number.isSafeInteger(class_id) || !((class_id as number) >= 0) || !isNonEmpty(class_name) || !isUnit(confidence) ||
    !Array.isArray(bbox) || bbox.length !== 4 || !bbox.every(isUnit) ||
    !(track_id === undefined || track_id === null || Number.isSafeInteger(track_id))
  ) return undefined
  const [x0, y0, x1, y1] = bbox as [number, number, number, number]
  if (!(x0 <= x1 && y0 <= y1)) return undefined
  return { class_id, class_name, confidence, bbox: [x0, y0, x1, y1], track_id: track_id ?? null } as Detection
}

/**
 * The schema's answer for plainly valid handler output, without the schema's
 * machinery (it runs for every answered request); undefined for anything
 * else, which goes to the schema. A property test holds the two to the same result.
 */
export const decodePlainDetections = (input: unknown): ReadonlyArray<Detection> | undefined => {
  if (!Array.isArray(input)) return undefined
  const out: Array<Detection> = new Array(input.length)
  for (let i = 0; i < input.length; i++) {
    const d = plainDetection(input[i])
    if (d === undefined) return undefined
    out[i] = d
  }
  return out
}

/**
 * Validates what a handler returned, in wire form (`track_id` filled with null):
 * the runtime never sends a detection that breaks the contract.
 */
export const decodeDetections = (input: unknown): Result.Result<ReadonlyArray<Detection>, string> => {
  const plain = decodePlainDetections(input)
  return plain !== undefined ? Result.succeed(plain) : Result.map(
    Result.mapError(decodeDetectionsResult(input, decodeOptions), formatSchemaError),
    (ds) => ds.map((d) => (d.track_id === undefined ? { ...d, track_id: null } : d))
  )
}

/** Requests the scheduler answered without running, by reason (health's `dropped_by_reason`). */
export interface DroppedByReason {
  /** FRAME_EXPIRED: older than the freshness budget when the model could start on it. */
  readonly expired: number
  /** SUPERSEDED: a newer frame of the same camera arrived while it waited (`per_camera: latest`). */
  readonly superseded: number
  /** TIMEOUT without running: its deadline had passed, or one more run could not meet it. */
  readonly deadline: number
  /** OVERLOADED while waiting: displaced by fair admission for a camera holding fewer places. */
  readonly displaced: number
}

/** `DroppedByReason` on the wire (typed against the interface, so the two cannot drift apart). */
const DroppedByReasonSchema: Schema.Codec<DroppedByReason> = Schema.Struct({
  expired: Schema.Number,
  superseded: Schema.Number,
  deadline: Schema.Number,
  displaced: Schema.Number
})

/**
 * A health answer (`{"op":"health"}`, this runtime's extension; the original containers do not
 * answer it): the fields callers read. Answers may carry more (e.g. `avg_latency_ms`).
 */
export const HealthResponse = Schema.Struct({
  op: Schema.Literal("health"),
  status: Schema.String,
  model_id: Schema.String,
  model_version: Schema.String,
  version: Schema.String,
  uptime_seconds: Schema.Number,
  total_requests: Schema.Number,
  total_errors: Schema.Number,
  inflight: Schema.Number,
  max_inflight: Schema.Number,
  /** Requests answered by their code (this runtime; absent from older answers). */
  errors_by_code: Schema.optional(Schema.Record(Schema.String, Schema.Number)),
  /** Requests the scheduler answered without running, by reason. */
  dropped_by_reason: Schema.optional(DroppedByReasonSchema)
}).annotate({ identifier: "a health object" })

/**
 * A metrics answer (`{"op":"metrics"}`, this runtime's extension; the original containers close
 * the connection): the Prometheus text format in `text`, as `GET /metrics` serves it.
 */
export const MetricsResponse = Schema.Struct({
  op: Schema.Literal("metrics"),
  content_type: Schema.String,
  text: Schema.String
}).annotate({ identifier: "a metrics object" })
