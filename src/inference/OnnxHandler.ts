/**
 * The built-in ONNX backend: a model directory's `model.yaml` becomes an `InferenceHandler`.
 *
 * At start-up (`make` / `layer`) the model is checked against its model.yaml — model type, device,
 * input/output names, element type, layout, fixed sizes, output shape — and anything that cannot
 * work fails with a `BackendStartError` that says why, before a single request is accepted.
 * The session lives as long as the layer's scope and is warmed up `backend.warmup_runs` times.
 *
 * Per request: the model's turn from the `Scheduler` (the container's, when it provides one) →
 * frame → tensor (`preprocess`) → `session.run`, then, the turn given back, the post-processor
 * `postprocess.kind` names (postprocess/registry.ts) → detections in normalised frame
 * coordinates, with per-stage timings.
 * The handler is scheduled (`inTurn`): a container with a scheduler reads the frame only when the
 * request's turn comes; `infer` (the frame already read) takes the turn itself.
 *
 * ```ts
 * const loaded = yield* loadModelConfig("/opt/ruth-ai/models/text-detection")
 * ModelContainer.launch.pipe(Effect.provide(OnnxHandler.layer(loaded)))
 * ```
 *
 * Sessions come from the `OnnxSessions` service: `layer` uses ONNX Runtime in a worker thread per
 * session (see OnnxSession.ts; the event loop stays free for other connections, health and
 * timeouts while the model runs; runs are serialised per session), `layerOn` takes whichever
 * `OnnxSessions` is provided (a test's `makeFake`).
 */
import { Data, Effect, Result, Layer, Option } from "effect"
import { availableParallelism } from "node:os"
import type { Scope } from "effect"
import { roundMs } from "../internal/time.js"
import { withRequestSpan } from "../internal/tracing.js"
import { type LoadedModelConfig, unsupportedModelTypeReason } from "../config/ModelLoader.js"
import type { ModelYaml } from "../config/ModelYaml.js"
import { defaults, settingsFromModel } from "../config/RuntimeConfig.js"
import { detectGpu, resolveDevice } from "./device.js"
import { toPreprocessSettings } from "./preprocessSettings.js"
import { InferenceFailed } from "../contract/errors.js"
import type { InferenceRequest } from "../contract/schema.js"
import { InferenceHandler, type InferenceHandlerShape, type InferenceOutput, type Turn } from "./InferenceHandler.js"
import type { Frame } from "../frames/Frame.js"
import { makePreprocessOptions, preprocess, type PreprocessOptions, tensorDims, tensorLength } from "../frames/preprocess.js"
import { stretchTransform, type FrameTransform } from "../frames/transform.js"
import { decoderFor, postProcessors, type Thresholds } from "./postprocess/registry.js"
import type { OutputTensor } from "./postprocess/types.js"
import { make as makeScheduler, optionsOf, type Refused, Scheduler, type Slot, ticketOf } from "./Scheduler.js"
import {
  describeDims,
  type ExecutionProvider,
  type InputElementType,
  layer as onnxSessionsLive,
  type OnnxError,
  type OnnxSession,
  OnnxSessions,
  type ValueInfo,
  warmUp
} from "./OnnxSession.js"

// ---------------------------------------------------------------------------------------------
// Errors

/** The model cannot be served by this backend; `reason` says why in terms of model.yaml and the model file. */
export class BackendStartError extends Data.TaggedError("BackendStartError")<{
  readonly modelId: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `model '${this.modelId}' cannot start: ${this.reason}`
  }
}

// ---------------------------------------------------------------------------------------------
// Options and defaults

export interface OnnxHandlerOptions {
  /** Whether a GPU is present; detected (`detectGpu`, honouring RUTH_GPU_AVAILABLE) when absent. */
  readonly gpuAvailable?: boolean
}

/** The IoU threshold when neither model.yaml nor the request gives one (the common YOLO default). */
export const DEFAULT_NMS_IOU_THRESHOLD = 0.45

// ---------------------------------------------------------------------------------------------
// Start-up checks (pure)

/** Which model input and output the backend uses, once they are known to fit model.yaml. */
export interface ModelIo {
  readonly input: ValueInfo
  readonly inputType: InputElementType
  /** The output handed to the post-processor. */
  readonly output: ValueInfo
}

const names = (values: ReadonlyArray<ValueInfo>): string => values.map((v) => `'${v.name}'`).join(", ")

/** The run feeds only the image tensor, so every other input must be absent. */
const pickInput = (config: ModelYaml, inputs: ReadonlyArray<ValueInfo>): Result.Result<ValueInfo, string> => {
  const wanted = config.backend.input_name
  if (wanted !== undefined) {
    const found = inputs.find((i) => i.name === wanted)
    if (found === undefined) {
      return Result.fail(`backend.input_name '${wanted}' is not an input of the model; it has ${names(inputs)}`)
    }
    const others = inputs.filter((i) => i.name !== wanted)
    return others.length === 0
      ? Result.succeed(found)
      : Result.fail(
        `the model has further inputs (${names(others)}) besides '${wanted}'; this backend feeds only the image tensor`
      )
  }
  const [only, ...rest] = inputs
  if (only === undefined) return Result.fail("the model declares no inputs")
  return rest.length === 0
    ? Result.succeed(only)
    : Result.fail(`the model has ${inputs.length} inputs (${names(inputs)}); this backend feeds one image tensor`)
}

const pickOutput = (config: ModelYaml, outputs: ReadonlyArray<ValueInfo>): Result.Result<ValueInfo, string> => {
  const wanted = config.backend.output_names
  if (wanted !== undefined) {
    const missing = wanted.filter((name) => !outputs.some((o) => o.name === name))
    if (missing.length > 0) {
      return Result.fail(
        `backend.output_names ${missing.map((m) => `'${m}'`).join(", ")} ${missing.length === 1 ? "is not an output" : "are not outputs"} of the model; it has ${names(outputs)}`
      )
    }
  }
  const name = wanted?.[0] ?? outputs[0]?.name
  const found = outputs.find((o) => o.name === name)
  return found === undefined ? Result.fail("the model declares no outputs") : Result.succeed(found)
}

const checkInputType = (input: ValueInfo, dtype: InputElementType): Result.Result<InputElementType, string> => {
  const type = input.elementType
  if (type === "float32" || type === "uint8") {
    return type === dtype
      ? Result.succeed(type)
      : Result.fail(`model input '${input.name}' is ${type} but preprocessing.dtype is ${dtype}; set dtype: ${type}`)
  }
  return Result.fail(
    `model input '${input.name}' is ${type ?? "not a tensor"}; this backend feeds float32 or uint8 (preprocessing.dtype)`
  )
}

/** Checks a declared 4-d image input against the tensor preprocessing will produce. */
const checkInputShape = (input: ValueInfo, pre: PreprocessOptions): Result.Result<void, string> => {
  const dims = input.dims
  // Undeclared shape: nothing to check until the first run.
  if (dims.length === 0) return Result.succeed(undefined)
  const where = `model input '${input.name}' ${describeDims(dims)}`
  if (dims.length !== 4) return Result.fail(`${where} is not a 4-d image tensor (expected [N, 3, H, W] or [N, H, W, 3])`)
  const [n, a, b, c] = dims as readonly [number | string, number | string, number | string, number | string]
  if (typeof n === "number" && n !== 1) return Result.fail(`${where} has a fixed batch of ${n}; this backend sends one frame per run`)
  const nchw = pre.layout === "nchw"
  const channels = nchw ? a : c
  const [h, w] = nchw ? [b, c] : [a, b]
  if (typeof channels === "number" && channels !== 3) {
    const other = nchw ? c : a
    return Result.fail(
      other === 3
        ? `${where} is ${nchw ? "NHWC" : "NCHW"} but preprocessing.layout is ${pre.layout}; set layout: ${nchw ? "nhwc" : "nchw"}`
        : `${where} has ${channels} channels (preprocessing.layout ${pre.layout}); this backend produces 3-channel images`
    )
  }
  const wrongH = typeof h === "number" && h !== pre.height
  const wrongW = typeof w === "number" && w !== pre.width
  if (wrongH || wrongW) {
    const modelSize = `${typeof w === "number" ? w : "any"}x${typeof h === "number" ? h : "any"}`
    return Result.fail(
      `${where} expects a ${modelSize} (width x height) image but preprocessing.input_size is ${pre.width}x${pre.height}; make them agree`
    )
  }
  return Result.succeed(undefined)
}

/** A declared output shape the post-processor can never read. */
const checkOutputShape = (output: ValueInfo, kind: ModelYaml["postprocess"]["kind"]): Result.Result<void, string> => {
  if (output.elementType === null) return Result.fail(`model output '${output.name}' is not a tensor`)
  if (output.dims.length === 0) return Result.succeed(undefined)
  const problem = postProcessors[kind].checkOutput(output.dims)
  return problem === undefined ? Result.succeed(undefined) : Result.fail(`model output '${output.name}' ${describeDims(output.dims)} ${problem}`)
}

/**
 * Matches the model's declared inputs and outputs against model.yaml; the `Left` is a reason for
 * a person, naming both sides of the disagreement.
 */
export const checkModelIo = (
  config: ModelYaml,
  pre: PreprocessOptions,
  inputs: ReadonlyArray<ValueInfo>,
  outputs: ReadonlyArray<ValueInfo>
): Result.Result<ModelIo, string> =>
  Result.gen(function*() {
    const input = yield* pickInput(config, inputs)
    const inputType = yield* checkInputType(input, pre.dtype)
    yield* checkInputShape(input, pre)
    const output = yield* pickOutput(config, outputs)
    yield* checkOutputShape(output, config.postprocess.kind)
    return { input, inputType, output }
  })

// ---------------------------------------------------------------------------------------------
// Post-processing

const unitOverride = (request: InferenceRequest, key: string): number | undefined => {
  const value = request.config?.[key]
  return typeof value === "number" && value >= 0 && value <= 1 ? value : undefined
}

/** Request `config` wins when it holds a number in [0, 1]; anything else falls back to model.yaml. */
const thresholdsFor = (config: ModelYaml, request: InferenceRequest): Thresholds => ({
  confidence: unitOverride(request, "confidence_threshold") ?? config.confidence_threshold,
  iou: unitOverride(request, "nms_iou_threshold") ?? config.nms_iou_threshold ?? DEFAULT_NMS_IOU_THRESHOLD
})

// ---------------------------------------------------------------------------------------------
// The handler

/** Opens the session on `device`, or on CPU when CUDA turns out to be missing and fallback is allowed. */
const openSession = (
  sessions: OnnxSessions["Service"],
  loaded: LoadedModelConfig,
  device: "cpu" | "cuda",
  fail: (reason: string, cause?: unknown) => BackendStartError,
  intraOpThreads: number
): Effect.Effect<{ session: OnnxSession; device: "cpu" | "cuda" }, BackendStartError, Scope.Scope> => {
  const { config } = loaded
  const threads = (n: number) => (n > 0 ? n : undefined)
  const intra = threads(intraOpThreads)
  const inter = threads(config.backend.inter_op_threads)
  const open = (providers: ReadonlyArray<ExecutionProvider>) =>
    sessions.open({
      modelPath: loaded.weightsPath,
      executionProviders: providers,
      // A CUDA session's load also starts the GPU driver's threads: those keep their priority.
      ...(providers.includes("cuda") ? {} : { poolThreadNice: config.backend.pool_thread_nice }),
      ...(intra !== undefined ? { intraOpThreads: intra } : {}),
      ...(inter !== undefined ? { interOpThreads: inter } : {})
    })
  if (device === "cpu") {
    return open(["cpu"]).pipe(
      Effect.map((session) => ({ session, device })),
      Effect.mapError((e) => fail(e.message, e))
    )
  }
  const { gpu_required, cpu_fallback_allowed } = config.resource_requirements
  return open(["cuda", "cpu"]).pipe(
    Effect.map((session) => ({ session, device })),
    Effect.catchTag("ExecutionProviderUnavailable", (e) =>
      !gpu_required && cpu_fallback_allowed
        ? Effect.logWarning(
          `model ${config.model_id}: CUDA execution provider unavailable (${e.reason}); running on CPU (resource_requirements.cpu_fallback_allowed: true)`
        ).pipe(
          Effect.andThen(open(["cpu"])),
          Effect.map((session) => ({ session, device: "cpu" as const }))
        )
        : Effect.fail(e)),
    Effect.mapError((e) =>
      e._tag === "ExecutionProviderUnavailable"
        ? fail(
          `cuda was requested but its execution provider is unavailable (${e.reason}) and CPU fallback is not allowed (${gpu_required ? "resource_requirements.gpu_required: true" : "resource_requirements.cpu_fallback_allowed: false"})`,
          e
        )
        : fail(e.message, e)
    )
  )
}

/**
 * Builds the ONNX handler for a loaded model: checks, opens (from `OnnxSessions`, one session per
 * stream) and warms up the sessions (released when `Scope` closes) and returns the `infer` the
 * container calls per request.
 */
export const make = (
  loaded: LoadedModelConfig,
  options: OnnxHandlerOptions = {}
): Effect.Effect<InferenceHandlerShape, BackendStartError, Scope.Scope | OnnxSessions> =>
  Effect.gen(function*() {
    const { config } = loaded
    const modelId = config.model_id
    const fail = (reason: string, cause?: unknown) =>
      new BackendStartError({ modelId, reason, ...(cause !== undefined ? { cause } : {}) })

    if (config.model_type !== "onnx") return yield* fail(unsupportedModelTypeReason(config.model_type))

    const gpuAvailable = options.gpuAvailable ?? (yield* detectGpu)
    const choice = resolveDevice(config, gpuAvailable)
    if (Result.isFailure(choice)) return yield* fail(choice.failure.reason, choice.failure)
    if (choice.success.warning !== undefined) yield* Effect.logWarning(choice.success.warning)

    // The container's scheduler when there is one (served by the container); else one with model.yaml's scheduling.
    const provided = yield* Effect.serviceOption(Scheduler)
    const scheduler = Option.isSome(provided) ? provided.value : yield* makeScheduler(optionsOf({ ...defaults, ...settingsFromModel(loaded).values }))
    const streams = scheduler.streams
    // Several streams share the cores: ORT's default (one thread per core) in each would oversubscribe them.
    const intraOpThreads = config.backend.intra_op_threads > 0 || streams === 1
      ? config.backend.intra_op_threads
      : Math.max(1, Math.floor(availableParallelism() / streams))
    const onnx = yield* OnnxSessions
    const opened = yield* Effect.forEach(
      Array.from({ length: streams }, (_, i) => i),
      () => openSession(onnx, loaded, choice.success.device, fail, intraOpThreads)
    )
    const sessions = opened.map((o) => o.session)
    const { session, device } = opened[0]!
    const priority = session.poolPriority
    if (priority?.problem !== undefined) {
      yield* Effect.logWarning(
        `model ${modelId}: onnxruntime's pool threads keep their priority (backend.pool_thread_nice ${priority.nice}): ${priority.problem}`
      )
    }

    const pre = makePreprocessOptions(toPreprocessSettings(loaded.config))
    const io = checkModelIo(config, pre, session.inputs, session.outputs)
    if (Result.isFailure(io)) return yield* fail(`${io.failure} (model ${loaded.weightsPath}, config ${loaded.file})`)
    const { input, inputType, output } = io.success
    const dims = tensorDims(pre)
    const batchDim = input.dims[0]
    if (scheduler.maxBatch > 1 && typeof batchDim === "number") {
      return yield* fail(
        `scheduling.max_batch is ${scheduler.maxBatch} but model input '${input.name}' ${describeDims(input.dims)} has a fixed batch of ${batchDim}; use a model with a dynamic batch dimension or max_batch: 1`
      )
    }
    const decode = decoderFor(loaded)

    // Warm-up also proves the output can be decoded, so a wrong postprocess.kind fails here, not per request.
    const warmupRuns = config.backend.warmup_runs
    if (warmupRuns > 0) {
      const started = performance.now()
      // Every stream's session, one after another (each uses its share of the cores).
      const [outputs] = yield* Effect.forEach(sessions, (each) => warmUp(each, input.name, dims, inputType, warmupRuns)).pipe(
        Effect.mapError((e) => fail(`warm-up run failed: ${e.message}`, e))
      )
      const tensor = Option.getOrUndefined(outputs ?? Option.none())?.[output.name]
      const identity = stretchTransform(pre.width, pre.height, pre.width, pre.height)
      const decoded = tensor === undefined
        ? Result.fail(`model output '${output.name}' is missing from the run's results`)
        : Result.mapError(decode(tensor, identity, { confidence: 1, iou: 0.5 }), (e) => e.message)
      if (Result.isFailure(decoded)) {
        return yield* fail(`postprocess.kind ${config.postprocess.kind} cannot read the model's output: ${decoded.failure}`)
      }
      yield* Effect.logDebug(`model ${modelId}: ${warmupRuns} warm-up run(s) in ${roundMs(performance.now() - started)} ms`)
    }

    yield* Effect.logInfo(`ONNX backend ready for model ${modelId}`).pipe(
      Effect.annotateLogs({
        model_id: modelId,
        weights: loaded.weightsPath,
        device,
        input: `${input.name} ${describeDims(dims)} ${inputType} ${pre.layout} (model declares ${describeDims(input.dims)})`,
        output: output.name,
        preprocess: `${pre.resize} ${pre.width}x${pre.height} ${pre.channelOrder} ${pre.colorMatrix}/${pre.range}`,
        streams,
        max_batch: scheduler.maxBatch,
        intra_op_threads: intraOpThreads === 0 ? "ort default" : intraOpThreads,
        inter_op_threads: config.backend.inter_op_threads === 0 ? "ort default" : config.backend.inter_op_threads,
        pool_thread_nice: priority === undefined ? "unchanged" : `${priority.nice} (${priority.lowered} thread${priority.lowered === 1 ? "" : "s"})`,
        warmup_runs: warmupRuns,
        postprocess: config.postprocess.kind
      })
    )

    const length = tensorLength(pre)
    const inputSize: readonly [number, number] = [pre.width, pre.height]
    const runFailed = (error: OnnxError) => new InferenceFailed({ reason: error.message, cause: error })

    /** One request's part of a run: its frame → tensor rows `into`, while its frame is valid. */
    type Fill = (into: Float32Array | Uint8Array) => Result.Result<Filled, InferenceFailed>
    interface Filled {
      readonly transform: FrameTransform
      readonly preprocessMs: number
    }
    /** One request's share of a run's results. */
    interface Ran {
      readonly filled: Result.Result<Filled, InferenceFailed>
      readonly tensor: OutputTensor
      readonly batchSize: number
      readonly runMs: number
      readonly waitMs: number
      readonly ranAt: number
    }

    const fillFrom = (frame: Frame): Fill => (into) => {
      const t0 = performance.now()
      // Reads the frame now, while its bytes are guaranteed valid.
      const prepared = preprocess(frame, pre, into)
      return Result.isSuccess(prepared)
        ? Result.succeed({ transform: prepared.success.transform, preprocessMs: performance.now() - t0 })
        : Result.fail(new InferenceFailed({ reason: `preprocessing failed: ${prepared.failure.message}`, cause: prepared.failure }))
    }

    /** The input's dims for a batch of `k` frames (a single frame's are `dims`). */
    const batchDims = (k: number): ReadonlyArray<number> => [k, ...dims.slice(1)]

    /**
     * One `session.run` over the frames of a batch: each fills its rows of one input tensor (the
     * session takes the buffer over for the run and recycles it, so runs never share one), and
     * each gets its rows of the output.
     */
    const runBatch = (session: OnnxSession) => (fills: ReadonlyArray<Fill>): Effect.Effect<ReadonlyArray<Ran>, InferenceFailed> =>
      Effect.suspend(() => {
        const k = fills.length
        const buffer = session.borrowInput(inputType, k * length)
        const filled = fills.map((fill, i) => fill(k === 1 ? buffer : buffer.subarray(i * length, (i + 1) * length)))
        const feeds = { [input.name]: { data: buffer, dims: k === 1 ? dims : batchDims(k), type: inputType } }
        return session.runTimed(feeds).pipe(
          Effect.mapError(runFailed),
          Effect.flatMap(({ outputs, runMs, waitMs }) => {
            const ranAt = performance.now()
            const tensor = outputs[output.name]
            if (tensor === undefined) {
              return Effect.fail(new InferenceFailed({ reason: `model output '${output.name}' is missing from the run's results` }))
            }
            if (k === 1) return Effect.succeed([{ filled: filled[0]!, tensor, batchSize: 1, runMs, waitMs, ranAt }])
            const [n, ...shape] = tensor.dims
            if (n !== k) {
              return Effect.fail(
                new InferenceFailed({ reason: `model output '${output.name}' ${describeDims(tensor.dims)} does not hold one row per frame of a batch of ${k}` })
              )
            }
            const per = tensor.data.length / k
            return Effect.succeed(filled.map((f, i) => ({
              filled: f,
              tensor: { data: tensor.data.subarray(i * per, (i + 1) * per), dims: [1, ...shape] },
              batchSize: k,
              runMs,
              waitMs,
              ranAt
            })))
          })
        )
      })
    const runners = sessions.map(runBatch)

    /** After the turn: this request's rows of the output → detections, with its timings. */
    const postprocess = (request: InferenceRequest, turn: Turn, turnAt: number, ran: Ran): Effect.Effect<InferenceOutput, InferenceFailed> =>
      Effect.suspend(() => {
        if (Result.isFailure(ran.filled)) return Effect.fail(ran.filled.failure)
        const { transform, preprocessMs } = ran.filled.success
        const decoded = decode(ran.tensor, transform, thresholdsFor(config, request))
        if (Result.isFailure(decoded)) {
          return Effect.fail(
            new InferenceFailed({ reason: `postprocess ${config.postprocess.kind}: ${decoded.failure.message}`, cause: decoded.failure })
          )
        }
        const done = performance.now()
        return Effect.succeed<InferenceOutput>({
          detections: decoded.success,
          metadata: {
            preprocess_ms: roundMs(preprocessMs),
            // ORT's own run; the queue for the model (other frames' runs) and the hand-off to and from its thread apart.
            inference_ms: roundMs(ran.runMs),
            // Queued behind other frames' runs: for the scheduler's turn, then (rarely) in the session itself.
            session_wait_ms: roundMs(turn.waitedMs + ran.waitMs),
            handoff_ms: roundMs(Math.max(0, ran.ranAt - turnAt - preprocessMs - ran.runMs - ran.waitMs)),
            postprocess_ms: roundMs(done - ran.ranAt),
            ...(ran.batchSize > 1 ? { batch_size: ran.batchSize } : {}),
            device,
            input_size: inputSize
          }
        })
      })

    /**
     * Under the model's turn: frame → tensor → session.run (with the other frames of its batch,
     * when batching); what it succeeds with is post-processing, run after the turn. Preprocessing
     * is under the turn too: a frame that is never run is never preprocessed, and a waiting
     * request holds no input tensor.
     */
    const inTurn = (request: InferenceRequest, frame: Frame, turn: Turn) =>
      Effect.suspend(() => {
        const turnAt = performance.now()
        const run = runners[turn.stream % runners.length]!
        return Effect.map(turn.batch.join(fillFrom(frame), run), (ran) => postprocess(request, turn, turnAt, ran))
      }).pipe(withRequestSpan("OnnxHandler.inTurn", { attributes: { model_id: modelId } }))

    // Called by a container without a scheduler (and by tests): the frame is the caller's, the turn ours.
    const infer = (request: InferenceRequest, frame: Frame): Effect.Effect<InferenceOutput, InferenceFailed | Refused> =>
      Effect.suspend(() => {
        const arrived = performance.now()
        const work = (slot: Slot) => Effect.suspend(() => inTurn(request, frame, { ...slot, waitedMs: performance.now() - arrived }))
        return Effect.flatten(scheduler.run(ticketOf(request), work))
      }).pipe(withRequestSpan("OnnxHandler.infer", { attributes: { model_id: modelId } }))

    return InferenceHandler.of({ infer, inTurn, executionProvider: device })
  })

/** `make` as the `InferenceHandler` layer, on the sessions `OnnxSessions` gives (a test's fake, say). */
export const layerOn = (
  loaded: LoadedModelConfig,
  options: OnnxHandlerOptions = {}
): Layer.Layer<InferenceHandler, BackendStartError, OnnxSessions> => Layer.effect(InferenceHandler, make(loaded, options))

/** `make` as the `InferenceHandler` layer on ONNX Runtime; the sessions are released when the layer's scope closes. */
export const layer = (
  loaded: LoadedModelConfig,
  options: OnnxHandlerOptions = {}
): Layer.Layer<InferenceHandler, BackendStartError> => layerOn(loaded, options).pipe(Layer.provide(onnxSessionsLive))
