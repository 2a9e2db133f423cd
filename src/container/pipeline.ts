/**
 * One request, start to finish: bytes → JSON → schema → model check →
 * in-flight slot → frame (borrowed for the handler) → handler → validated
 * response → bytes; for a scheduled handler (`inTurn`), in-flight slot → the
 * scheduler's turn → frame → handler, so a request that waits holds no frame.
 * It cannot fail: every failure becomes exactly one error response with its
 * code; the server's deadline interrupts a slow request and `onTimeout`
 * answers it.
 */
import { Cause, Effect, Result, Exit, Option } from "effect"
import { type DecodedEvent, encodeMessage, MAX_JSON_DEPTH, parseJson, parsedExceedsJsonDepth } from "../contract/codec.js"
import {
  describeFailure,
  InferenceFailed,
  InvalidRequest,
  MessageTooLarge,
  ModelMismatch,
  Overloaded,
  type RequestError,
  RequestTimeout,
  ShuttingDown,
  toRequestError,
  toWireError
} from "../contract/errors.js"
import { decodeDetections, decodeRequest, type InferenceRequest } from "../contract/schema.js"
import type { Frame } from "../frames/Frame.js"
import { FrameReader } from "../frames/FrameReader.js"
import type { MessageHandler, Reply } from "../ipc/IpcServer.js"
import { VERSION } from "../version.js"
import { type DroppedByReason, Scheduler, type SchedulerShape, type Slot, ticketOf } from "../inference/Scheduler.js"
import { InferenceHandler, type InferenceHandlerShape, type InferenceOutput } from "../inference/InferenceHandler.js"
import { roundMs } from "../internal/time.js"
import { answeredLogger } from "./Logging.js"
import type { ContainerState } from "./Metrics.js"
import type { ReadTimes, RequestFacts, RequestTracing } from "./Tracing.js"
import { METRICS_CONTENT_TYPE } from "./Prometheus.js"
import type { RuntimeSettings } from "../config/RuntimeConfig.js"

/** Fields echoed in a response, taken from whatever the caller sent; and, never echoed, what the request's span reads. */
interface Echo extends RequestFacts {
  readonly model_id: string
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Best-effort echo from a raw (possibly invalid) request, so even errors
 * correlate. `scalarsOnly`: a frame_id that is an object or array is not
 * echoed (for a request too deeply nested to serialise back).
 */
const echoOf = (raw: unknown, modelId: string, scalarsOnly = false): Echo => {
  const o = isRecord(raw) ? raw : {}
  const meta = isRecord(o.frame_metadata) ? o.frame_metadata : {}
  const requestId = o.request_id
  const frameId = meta.frame_id ?? 0
  return {
    model_id: typeof o.model_id === "string" ? o.model_id : modelId,
    camera_id: typeof o.camera_id === "string" ? o.camera_id : "",
    frame_id: scalarsOnly && typeof frameId === "object" && frameId !== null ? 0 : frameId,
    ...(typeof requestId === "string" || typeof requestId === "number" ? { request_id: requestId } : {}),
    traceparent: o.traceparent,
    timestamp: o.timestamp
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

/** The detections and metadata of what a handler returned, or undefined when it returned neither an array nor an object. */
const normaliseOutput = (out: unknown): { detections: unknown; metadata: unknown } | undefined =>
  Array.isArray(out)
    ? { detections: out, metadata: undefined }
    : isRecord(out)
    ? { detections: out.detections, metadata: out.metadata }
    : undefined

/** The size of the frame an answer is about (its bytes may be gone by then). */
type FrameSize = Pick<Frame, "width" | "height">

/** What an answer reports besides the handler's output (`readAt`: when the frame read began, for the request's span). */
interface Measured extends ReadTimes {
  readonly frame: FrameSize
  readonly inferMs: number
}

/** A scheduled handler's part under the turn, and the scheduler whose turns it runs in. */
interface Turns {
  readonly inTurn: NonNullable<InferenceHandlerShape["inTurn"]>
  readonly scheduler: SchedulerShape
}

export interface PipelineDeps {
  readonly settings: RuntimeSettings
  readonly state: ContainerState
  /** The container's request tracing, when traces are on. */
  readonly tracing?: RequestTracing | undefined
}

/** Builds the message handler the IPC server runs for every decoded event. */
export const makePipeline = ({ settings, state, tracing }: PipelineDeps) =>
  Effect.gen(function*() {
    const reader = yield* FrameReader
    /** The reader's synchronous path, when it has one. */
    const now = reader.now
    const handler = yield* InferenceHandler
    // The container's scheduler (absent when a test builds the container without one): its drops go in health.
    const scheduler = yield* Effect.serviceOption(Scheduler)
    /** A handler that opted in to being scheduled (`inTurn`), and the container's scheduler to run it under. */
    const turns: Turns | undefined = handler.inTurn !== undefined && Option.isSome(scheduler)
      ? { inTurn: handler.inTurn, scheduler: scheduler.value }
      : undefined
    const noDrops: DroppedByReason = { expired: 0, superseded: 0, deadline: 0, displaced: 0 }
    /** The per-request debug line, when debug lines are on (decided once). */
    const logAnswered = yield* answeredLogger

    /** Error bodies and health always serialise: their values come from parsed JSON of bounded depth, or are ours. */
    const reply = (body: unknown, close = false): Reply => ({ bytes: encodeMessage(body), close })

    const health = () => ({
      op: "health",
      status: state.status === "ready" ? "ready" : state.status,
      model_id: settings.modelId,
      model_version: settings.modelVersion,
      version: VERSION,
      max_inflight: settings.maxInflight,
      ...state.snapshot(),
      dropped_by_reason: Option.isSome(scheduler) ? scheduler.value.dropped() : noDrops
    })

    /** The Prometheus text, as `{"op":"metrics"}` answers it. */
    const metrics = () => ({
      op: "metrics",
      content_type: METRICS_CONTENT_TYPE,
      text: state.metrics?.text() ?? ""
    })

    /**
     * A request answered with an error, `elapsedMs` after it `started`: counted (health, metrics),
     * traced when traces are on, and logged when debug lines are on.
     */
    const recordError = (echo: Echo, started: number, elapsedMs: number, error: RequestError): void => {
      state.record(elapsedMs, error.code, echo.camera_id)
      tracing?.failed(echo, started, error)
      if (logAnswered !== undefined) logAnswered(echo, elapsedMs, error.code)
    }

    /**
     * A request answered with detections, `elapsedMs` after it `started`: counted (health), its
     * stages, detections and frame age in the metrics, traced when kept, logged when debug lines are on.
     */
    const recordAnswer = (
      request: InferenceRequest,
      started: number,
      elapsedMs: number,
      measured: Measured,
      metadata: Readonly<Record<string, unknown>> | undefined,
      detections: ReadonlyArray<{ readonly class_name: string }>
    ): void => {
      state.record(elapsedMs, undefined, request.camera_id)
      state.metrics?.answered(measured.readMs, metadata, request, detections)
      tracing?.answered(request, started, started + elapsedMs, measured, metadata)
      if (logAnswered !== undefined) {
        logAnswered({ camera_id: request.camera_id, frame_id: request.frame_metadata.frame_id ?? 0, request_id: request.request_id }, elapsedMs, undefined)
      }
    }

    /** Answers for a request that ended with an error. */
    const failed = (echo: Echo, started: number, error: RequestError): Reply => {
      recordError(echo, started, performance.now() - started, error)
      return reply(errorBody(echo, error))
    }

    /** Answers INFERENCE_FAILED for handler output that breaks the contract, and says so in the log. */
    const rejected = (raw: unknown, started: number, reason: string): Effect.Effect<Reply> => {
      const error = new InferenceFailed({ reason })
      return Effect.as(Effect.logWarning(error.message), failed(echoOf(raw, settings.modelId), started, error))
    }

    /**
     * Checks what the handler returned and answers: the runtime never sends a
     * response that breaks the contract. A reply at once, or an effect when
     * there is a warning to log.
     */
    const answer = (
      request: InferenceRequest,
      raw: unknown,
      started: number,
      output: InferenceOutput | ReadonlyArray<unknown>,
      measured: Measured
    ): Reply | Effect.Effect<Reply> => {
      const { frame, readMs, inferMs } = measured
      const normalised = normaliseOutput(output)
      if (normalised === undefined) {
        return rejected(raw, started, `handler returned ${output === null ? "null" : typeof output}, not { detections } or an array of detections`)
      }
      const { detections, metadata } = normalised
      const valid = decodeDetections(detections)
      if (Result.isFailure(valid)) return rejected(raw, started, `handler returned invalid detections: ${valid.failure}`)
      if (metadata !== undefined && !isRecord(metadata)) {
        return rejected(raw, started, "handler returned metadata that is not an object")
      }
      const elapsed = performance.now() - started
      let bytes: Uint8Array
      try {
        bytes = encodeMessage({
          model_id: request.model_id,
          camera_id: request.camera_id,
          frame_id: request.frame_metadata.frame_id ?? 0,
          detections: valid.success,
          metadata: {
            ...(metadata as Record<string, unknown> | undefined),
            frame_read_ms: roundMs(readMs),
            inference_time_ms: roundMs(inferMs),
            frame_width: frame.width,
            frame_height: frame.height,
            // From the request's bytes to its answer: everything but the socket.
            server_time_ms: roundMs(elapsed)
          },
          error: null,
          ...(request.request_id !== undefined ? { request_id: request.request_id } : {})
        })
      } catch (e) {
        // Metadata JSON cannot carry (a cycle, a BigInt, a throwing toJSON) must not cost the caller their answer.
        return rejected(raw, started, `handler returned metadata JSON cannot carry: ${describeFailure(e)}`)
      }
      recordAnswer(request, started, elapsed, measured, metadata as Record<string, unknown> | undefined, valid.success)
      return { bytes, close: false }
    }

    /**
     * A failed request's answer: the runtime's own errors keep their code;
     * whatever else a handler failed or died with becomes INFERENCE_FAILED
     * with its message. The stack goes to the log (with the cause), never on the wire.
     */
    const answerFailure = (raw: unknown, started: number, cause: Cause.Cause<unknown>): Reply | Effect.Effect<Reply> => {
      const failure = Cause.findErrorOption(cause)
      const error = failure._tag === "Some"
        ? toRequestError(failure.value, "handler failed")
        : toRequestError(Cause.squash(cause), "handler crashed")
      const answered = failed(echoOf(raw, settings.modelId), started, error)
      if (error._tag !== "InferenceFailed") return answered
      // A typed InferenceFailed is the model's own word; anything else gets its cause (and trace) logged.
      const typed = failure._tag === "Some" && failure.value === error
      return Effect.as(typed ? Effect.logWarning(error.message) : Effect.logWarning(error.message, cause), answered)
    }

    const asEffect = (r: Reply | Effect.Effect<Reply>): Effect.Effect<Reply> => (Effect.isEffect(r) ? r : Effect.succeed(r))

    /**
     * In a fiber: answers when `infer` ends, or ends interrupted (the server's deadline answers
     * then); `measured` gives the frame's size and the timings once it has succeeded.
     */
    const answerLater = (
      infer: Effect.Effect<InferenceOutput | ReadonlyArray<unknown>, RequestError>,
      request: InferenceRequest,
      raw: unknown,
      started: number,
      measured: () => Measured
    ): Effect.Effect<Reply> =>
      Effect.matchCauseEffect(infer, {
        onFailure: (cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.failCause(cause as Cause.Cause<never>)
            : asEffect(answerFailure(raw, started, cause)),
        onSuccess: (output) => asEffect(answer(request, raw, started, output, measured()))
      })

    /** What a handler answered after `t1`, its frame read in `t1 - t0`. */
    const measuredSince = (frame: FrameSize, t0: number, t1: number) => (): Measured => ({
      frame,
      readAt: t0,
      readMs: t1 - t0,
      inferMs: performance.now() - t1
    })

    /**
     * A scheduled handler's request (admitted): it waits for its turn holding no frame, its frame
     * is read when the turn comes, the handler's part runs under the turn and the rest after it,
     * the frame released. One the scheduler drops is answered with its code, its frame never read;
     * a frame error is answered with its code and gives the turn back at once.
     */
    const scheduled = (
      { inTurn, scheduler }: Turns,
      request: InferenceRequest,
      raw: unknown,
      started: number
    ): Effect.Effect<Reply> => {
      const admitted = performance.now()
      let frame: FrameSize = { width: 0, height: 0 }
      let readAt = 0
      let readMs = 0
      const turn = (slot: Slot) => {
        const t0 = performance.now()
        return reader.use(request, (read) => {
          const t1 = performance.now()
          frame = { width: read.width, height: read.height }
          readAt = t0
          readMs = t1 - t0
          // Suspended: a handler that throws while building its effect is answered like any defect.
          return Effect.suspend(() => inTurn(request, read, { waitedMs: t0 - admitted, stream: slot.stream, batch: slot.batch }))
        })
      }
      // The handler's time is the request's but for its frame read: the wait for the turn is the handler's queue.
      return answerLater(Effect.flatten(scheduler.run(ticketOf(request), turn)), request, raw, started, () => ({
        frame,
        readAt,
        readMs,
        inferMs: performance.now() - admitted - readMs
      }))
    }

    /** Gives back an admitted request's in-flight slot. */
    const freeSlot = () => {
      state.inflight--
    }

    /**
     * Everything decided without running the model is answered synchronously
     * (bad input, health, overload, draining). An admitted request holds an
     * in-flight slot until it ends. When the frame reader can read at once
     * and the handler answers at once (its effect is already an `Exit`, as
     * `Effect.succeed` / `Effect.fail` are), the request is answered right
     * here; otherwise the handler runs in a fiber. This is the hot path.
     */
    const handleRequest = (raw: unknown, started: number): Reply | Effect.Effect<Reply> => {
      if (state.status !== "ready") return failed(echoOf(raw, settings.modelId), started, new ShuttingDown())
      const decoded = decodeRequest(raw)
      if (Result.isFailure(decoded)) {
        return failed(echoOf(raw, settings.modelId), started, new InvalidRequest({ reason: decoded.failure }))
      }
      const request = decoded.success
      if (request.model_id !== settings.modelId) {
        return failed(
          echoOf(raw, settings.modelId),
          started,
          new ModelMismatch({ expected: settings.modelId, received: request.model_id })
        )
      }
      if (state.inflight >= settings.maxInflight) {
        const overloaded = new Overloaded({ maxInflight: settings.maxInflight })
        // Fair admission: a camera holding fewer waiting requests takes the place of the oldest waiting one of the
        // camera holding the most (answered OVERLOADED; its slot is given back as its fiber ends, a moment later).
        if (Option.isNone(scheduler) || !scheduler.value.displace(request.camera_id, overloaded)) {
          return failed(echoOf(raw, settings.modelId), started, overloaded)
        }
      }
      if (turns !== undefined) {
        state.inflight++
        return scheduled(turns, request, raw, started).pipe(Effect.ensuring(Effect.sync(freeSlot)))
      }
      const t0 = performance.now()
      const read = now?.read(request)
      if (read === undefined) {
        state.inflight++
        return reader.use(request, (frame) => {
          const t1 = performance.now()
          // Suspended: a handler that throws while building its effect is answered like any defect.
          return answerLater(Effect.suspend(() => handler.infer(request, frame)), request, raw, started, measuredSince(frame, t0, t1))
        }).pipe(
          Effect.catch((error) => asEffect(answerFailure(raw, started, Cause.fail(error)))),
          Effect.ensuring(Effect.sync(freeSlot))
        )
      }
      if (Exit.isFailure(read)) return answerFailure(raw, started, read.cause)
      const frame = read.value
      const t1 = performance.now()
      let infer: Effect.Effect<InferenceOutput | ReadonlyArray<unknown>, RequestError>
      try {
        infer = handler.infer(request, frame)
      } catch (defect) {
        now!.release(frame)
        return answerFailure(raw, started, Cause.die(defect))
      }
      if (Exit.isExit(infer)) {
        now!.release(frame)
        const exit = infer as Exit.Exit<InferenceOutput | ReadonlyArray<unknown>, RequestError>
        return Exit.isSuccess(exit)
          ? answer(request, raw, started, exit.value, { frame, readAt: t0, readMs: t1 - t0, inferMs: performance.now() - t1 })
          : answerFailure(raw, started, exit.cause)
      }
      state.inflight++
      return answerLater(infer, request, raw, started, measuredSince(frame, t0, t1)).pipe(
        Effect.ensuring(Effect.sync(() => {
          now!.release(frame)
          freeSlot()
        }))
      )
    }

    const handle = (event: DecodedEvent): Reply | Effect.Effect<Reply> => {
      const started = performance.now()
      if (event._tag === "TooLarge") {
        const error = new MessageTooLarge({ length: event.length, limit: event.limit })
        const echo = echoOf(undefined, settings.modelId)
        recordError(echo, started, 0, error)
        return reply(errorBody(echo, error), true)
      }
      const parsed = parseJson(event.payload)
      if (!parsed.ok) {
        return failed(echoOf(undefined, settings.modelId), started, new InvalidRequest({ reason: `body is not valid UTF-8 JSON: ${parsed.reason}` }))
      }
      if (parsedExceedsJsonDepth(event.payload, parsed.value)) {
        return failed(
          echoOf(parsed.value, settings.modelId, true),
          started,
          new InvalidRequest({ reason: `body nests arrays/objects deeper than ${MAX_JSON_DEPTH} levels` })
        )
      }
      if (isRecord(parsed.value) && parsed.value.op === "health") return reply(health())
      if (isRecord(parsed.value) && parsed.value.op === "metrics") return reply(metrics())
      return handleRequest(parsed.value, started)
    }

    /** The echo of an event answered outside `handle` (its request was valid enough to reach a fiber, or was never handled). */
    const echoOfEvent = (event: DecodedEvent): Echo => {
      const parsed = event._tag === "Message" ? parseJson(event.payload) : undefined
      const bounded = parsed?.ok === true && event._tag === "Message" && !parsedExceedsJsonDepth(event.payload, parsed.value)
      return echoOf(bounded ? parsed.value : undefined, settings.modelId)
    }

    /** The answer when the server's deadline interrupted a request (its fiber has been interrupted). */
    const onTimeout = (event: DecodedEvent): Reply => {
      const error = new RequestTimeout({ timeoutMs: settings.requestTimeoutMs })
      const echo = echoOfEvent(event)
      recordError(echo, performance.now() - settings.requestTimeoutMs, settings.requestTimeoutMs, error)
      return reply(errorBody(echo, error))
    }

    /** The answer when a request's fiber died (a runtime bug: the pipeline itself answers every failure; the server logs the cause). */
    const onDefect = (event: DecodedEvent, cause: Cause.Cause<unknown>): Reply =>
      failed(echoOfEvent(event), performance.now(), toRequestError(Cause.squash(cause), "internal error"))

    /**
     * The answer for a request the server stops serving because it is draining or closing (received,
     * interrupted or never handled); a health check still gets its status (`draining`).
     */
    const onShutdown = (event: DecodedEvent): Reply => {
      const parsed = event._tag === "Message" ? parseJson(event.payload) : undefined
      if (parsed?.ok === true && isRecord(parsed.value) && parsed.value.op === "health") return reply(health())
      if (parsed?.ok === true && isRecord(parsed.value) && parsed.value.op === "metrics") return reply(metrics())
      return failed(echoOfEvent(event), performance.now(), new ShuttingDown())
    }

    return { handle, timeoutMs: settings.requestTimeoutMs, onTimeout, onDefect, onShutdown } satisfies MessageHandler<never>
  })
