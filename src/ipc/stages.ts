/**
 * Where requests' time went, from their round trips and the metadata of their answers: the
 * pipeline's `frame_read_ms`, `inference_time_ms` and `server_time_ms`, and, when the built-in
 * ONNX backend answered, its `preprocess_ms`, `handoff_ms`, `session_wait_ms`, `inference_ms`
 * (ORT's own run) and `postprocess_ms`. A custom handler that does not report `inference_ms`
 * counts its whole time (`inference_time_ms`) as the model's.
 *
 * Used by `ruth-model bench` and bench/e2e.ts. The round trip is split three ways, each named so
 * that queueing is never read as model time: the model's run (`inference_ms`, session.run), the
 * queueing for it (`session_wait_ms`, behind other cameras' runs), and the rest: the runtime's
 * share outside both (`shareOutsideModelAndQueue`).
 */
import { median } from "./loadgen.js"

/** The ONNX backend's own stages, present when the answer reported them. */
const BACKEND_STAGES = {
  preprocess: "preprocess_ms",
  handoff: "handoff_ms",
  sessionWait: "session_wait_ms",
  postprocess: "postprocess_ms"
} as const

type BackendStage = keyof typeof BACKEND_STAGES

/** One answered request's stages, in milliseconds. */
export interface StageTimes extends Partial<Record<BackendStage, number>> {
  /** The round trip, as the caller timed it. */
  readonly total: number
  /** The round trip less `server_time_ms`: both ends' framing and JSON, and the socket. */
  readonly socketAndCodec: number
  readonly frameRead: number
  /** `inference_ms` when reported, else the handler's whole time. */
  readonly model: number
  /** The rest of `server_time_ms`: validation, scheduling, the handler's glue. */
  readonly runtime: number
  /** Which field `model` came from. */
  readonly modelField: "inference_ms" | "inference_time_ms"
}

const numberField = (m: Record<string, unknown>, key: string): number | undefined => {
  const v = m[key]
  return typeof v === "number" && Number.isFinite(v) ? v : undefined
}

/** The stages of one answer, or `undefined` when its metadata does not carry the pipeline's timings. */
export const stageTimes = (metadata: unknown, totalMs: number): StageTimes | undefined => {
  if (typeof metadata !== "object" || metadata === null) return undefined
  const m = metadata as Record<string, unknown>
  const server = numberField(m, "server_time_ms")
  const frameRead = numberField(m, "frame_read_ms")
  const run = numberField(m, "inference_ms")
  const handler = numberField(m, "inference_time_ms")
  if (server === undefined || frameRead === undefined || (run ?? handler) === undefined) return undefined
  const model = (run ?? handler)!
  const backend: Partial<Record<BackendStage, number>> = {}
  let accounted = frameRead + model
  if (run !== undefined) {
    for (const [stage, key] of Object.entries(BACKEND_STAGES) as Array<[BackendStage, string]>) {
      const v = numberField(m, key)
      if (v === undefined) continue
      backend[stage] = v
      accounted += v
    }
  }
  return {
    total: totalMs,
    socketAndCodec: totalMs - server,
    frameRead,
    ...backend,
    model,
    runtime: server - accounted,
    modelField: run !== undefined ? "inference_ms" : "inference_time_ms"
  }
}

/** Medians of many answers' stages. */
export interface StageSummary extends Partial<Record<BackendStage, number>> {
  readonly samples: number
  /** Median round trip. */
  readonly totalMs: number
  readonly socketAndCodec: number
  readonly frameRead: number
  readonly model: number
  readonly runtime: number
  /** `inference_ms` when every answer reported it, else `inference_time_ms` (a custom handler's whole time). */
  readonly modelField: "inference_ms" | "inference_time_ms"
  /** Median `model` over the median round trip. */
  readonly modelShare: number
  /** Median session wait (queueing for the model) over the median round trip, when the answers reported it. */
  readonly sessionWaitShare?: number
  /** Median of (round trip − model − session wait): everything but the model and the queue for it. */
  readonly outsideModelAndQueueMs: number
  /** `outsideModelAndQueueMs` over the median round trip: the runtime's (and the socket's) share. */
  readonly shareOutsideModelAndQueue: number
}

/** The medians of `times`; a backend stage only when every answer reported it. `undefined` for none. */
export const summariseStages = (times: ReadonlyArray<StageTimes>): StageSummary | undefined => {
  if (times.length === 0) return undefined
  const of = (f: (t: StageTimes) => number) => median(times.map(f))
  const backend: Partial<Record<BackendStage, number>> = {}
  for (const stage of Object.keys(BACKEND_STAGES) as Array<BackendStage>) {
    if (times.every((t) => t[stage] !== undefined)) backend[stage] = of((t) => t[stage]!)
  }
  const totalMs = of((t) => t.total)
  const model = of((t) => t.model)
  const outsideModelAndQueueMs = of((t) => t.total - t.model - (t.sessionWait ?? 0))
  const share = (ms: number) => (totalMs > 0 ? ms / totalMs : 0)
  return {
    samples: times.length,
    totalMs,
    socketAndCodec: of((t) => t.socketAndCodec),
    frameRead: of((t) => t.frameRead),
    ...backend,
    model,
    runtime: of((t) => t.runtime),
    modelField: times.every((t) => t.modelField === "inference_ms") ? "inference_ms" : "inference_time_ms",
    modelShare: share(model),
    ...(backend.sessionWait !== undefined ? { sessionWaitShare: share(backend.sessionWait) } : {}),
    outsideModelAndQueueMs,
    shareOutsideModelAndQueue: share(outsideModelAndQueueMs)
  }
}
