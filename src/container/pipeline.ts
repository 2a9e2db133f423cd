/**
 * One request, start to finish: bytes → JSON → schema → model check →
 * in-flight slot → frame (scoped) → handler (with timeout) → validated
 * response → bytes. It cannot fail: every failure becomes exactly one error
 * response with its code.
 */
import { Cause, Duration, Effect, Either } from "effect"
import { type DecodedEvent, encodeMessage, parseJson } from "../contract/codec.js"
import {
  InferenceFailed,
  InvalidRequest,
  MessageTooLarge,
  ModelMismatch,
  Overloaded,
  type RequestError,
  RequestTimeout,
  ShuttingDown,
  toWireError
} from "../contract/errors.js"
import { decodeDetections, decodeRequest, type Detection, type InferenceRequest } from "../contract/schema.js"
import { FrameReader } from "../frames/FrameReader.js"
import type { Reply } from "../ipc/IpcServer.js"
import { VERSION } from "../version.js"
import { InferenceHandler, type InferenceOutput } from "./InferenceHandler.js"
import type { ContainerState } from "./Metrics.js"
import type { RuntimeSettings } from "../config/RuntimeConfig.js"

/** Fields echoed in a response, taken from whatever the caller sent. */
interface Echo {
  readonly model_id: string
  readonly camera_id: string
  readonly frame_id: unknown
  readonly request_id?: string | number
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Best-effort echo from a raw (possibly invalid) request, so even errors correlate. */
const echoOf = (raw: unknown, modelId: string): Echo => {
  const o = isRecord(raw) ? raw : {}
  const meta = isRecord(o.frame_metadata) ? o.frame_metadata : {}
  const requestId = o.request_id
  return {
    model_id: typeof o.model_id === "string" ? o.model_id : modelId,
    camera_id: typeof o.camera_id === "string" ? o.camera_id : "",
    frame_id: meta.frame_id ?? 0,
    ...(typeof requestId === "string" || typeof requestId === "number" ? { request_id: requestId } : {})
  }
}

const errorBody = (echo: Echo, error: RequestError) => ({
  model_id: echo.model_id,
  camera_id: echo.camera_id,
  frame_id: echo.frame_id,
  detections: [],
  metadata: null,
  ...toWireError(error),
  ...(echo.request_id !== undefined ? { request_id: echo.request_id } : {})
})

const round3 = (ms: number) => Math.round(ms * 1000) / 1000

const normaliseOutput = (out: InferenceOutput | ReadonlyArray<unknown>): { detections: unknown; metadata: unknown } =>
  Array.isArray(out) ? { detections: out, metadata: undefined } : { detections: (out as InferenceOutput).detections, metadata: (out as InferenceOutput).metadata }

interface InferenceResult {
  readonly detections: ReadonlyArray<Detection>
  readonly metadata: Record<string, unknown>
}

export interface PipelineDeps {
  readonly settings: RuntimeSettings
  readonly state: ContainerState
}

/** Builds the message handler the IPC server runs for every decoded event. */
export const makePipeline = ({ settings, state }: PipelineDeps) =>
  Effect.gen(function*() {
    const reader = yield* FrameReader
    const handler = yield* InferenceHandler
    const timeout = Duration.millis(settings.requestTimeoutMs)

    const reply = (body: unknown, close = false): Reply => {
      try {
        return { bytes: encodeMessage(body), close }
      } catch (e) {
        // Handler metadata that JSON cannot carry (cycles, BigInt) must not cost the caller their answer.
        const echo = isRecord(body) ? echoOf(body, settings.modelId) : echoOf(undefined, settings.modelId)
        return {
          bytes: encodeMessage(errorBody(echo, new InferenceFailed({ reason: `response is not serialisable: ${String(e)}` }))),
          close
        }
      }
    }

    const health = () => ({
      op: "health",
      status: state.status === "ready" ? "ready" : state.status,
      model_id: settings.modelId,
      model_version: settings.modelVersion,
      version: VERSION,
      max_inflight: settings.maxInflight,
      ...state.snapshot()
    })

    /** Runs an admitted request: frame → handler → validated detections. */
    const infer = (request: InferenceRequest): Effect.Effect<InferenceResult, RequestError> =>
      Effect.gen(function*() {
        const t0 = performance.now()
        const frame = yield* reader.read(request)
        const t1 = performance.now()
        const output = yield* handler.infer(request, frame).pipe(
          Effect.catchAllDefect((defect) =>
            Effect.fail(new InferenceFailed({ reason: `handler crashed: ${Cause.pretty(Cause.die(defect))}`, cause: defect }))
          )
        )
        const t2 = performance.now()
        const { detections, metadata } = normaliseOutput(output)
        const valid = decodeDetections(detections)
        if (Either.isLeft(valid)) {
          return yield* new InferenceFailed({ reason: `handler returned invalid detections: ${valid.left}` })
        }
        if (metadata !== undefined && !isRecord(metadata)) {
          return yield* new InferenceFailed({ reason: "handler returned metadata that is not an object" })
        }
        return {
          detections: valid.right,
          metadata: {
            ...metadata,
            frame_read_ms: round3(t1 - t0),
            inference_time_ms: round3(t2 - t1),
            frame_width: frame.width,
            frame_height: frame.height
          }
        }
      }).pipe(Effect.scoped)

    /** Takes an in-flight slot for the request, or answers OVERLOADED at once (no queue). */
    const admitted = (request: InferenceRequest) =>
      Effect.suspend((): Effect.Effect<InferenceResult, RequestError> => {
        if (state.inflight >= settings.maxInflight) return Effect.fail(new Overloaded({ maxInflight: settings.maxInflight }))
        state.inflight++
        return infer(request).pipe(
          Effect.timeoutFail({ duration: timeout, onTimeout: () => new RequestTimeout({ timeoutMs: settings.requestTimeoutMs }) }),
          Effect.ensuring(Effect.sync(() => state.inflight--))
        )
      })

    const handleRequest = (raw: unknown, started: number): Effect.Effect<Reply> => {
      const echo = echoOf(raw, settings.modelId)
      const fail = (error: RequestError) => {
        state.record(performance.now() - started, error.code)
        return Effect.succeed(reply(errorBody(echo, error)))
      }
      if (state.status !== "ready") return fail(new ShuttingDown())
      const decoded = decodeRequest(raw)
      if (Either.isLeft(decoded)) return fail(new InvalidRequest({ reason: decoded.left }))
      const request = decoded.right
      if (request.model_id !== settings.modelId) {
        return fail(new ModelMismatch({ expected: settings.modelId, received: request.model_id }))
      }
      return admitted(request).pipe(
        Effect.matchEffect({
          onFailure: (error) => {
            if (error._tag === "InferenceFailed") {
              return Effect.logWarning(error.message).pipe(Effect.zipRight(fail(error)))
            }
            return fail(error)
          },
          onSuccess: ({ detections, metadata }) => {
            state.record(performance.now() - started, undefined)
            return Effect.succeed(
              reply({
                model_id: request.model_id,
                camera_id: request.camera_id,
                frame_id: request.frame_metadata.frame_id ?? 0,
                detections,
                metadata,
                error: null,
                ...(request.request_id !== undefined ? { request_id: request.request_id } : {})
              })
            )
          }
        })
      )
    }

    return (event: DecodedEvent): Effect.Effect<Reply> => {
      const started = performance.now()
      if (event._tag === "TooLarge") {
        const error = new MessageTooLarge({ length: event.length, limit: event.limit })
        state.record(0, error.code)
        return Effect.succeed(reply(errorBody(echoOf(undefined, settings.modelId), error), true))
      }
      const parsed = parseJson(event.payload)
      if (!parsed.ok) {
        const error = new InvalidRequest({ reason: `body is not valid UTF-8 JSON: ${parsed.reason}` })
        state.record(performance.now() - started, error.code)
        return Effect.succeed(reply(errorBody(echoOf(undefined, settings.modelId), error)))
      }
      if (isRecord(parsed.value) && parsed.value.op === "health") return Effect.succeed(reply(health()))
      return handleRequest(parsed.value, started)
    }
  })
