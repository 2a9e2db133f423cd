/**
 * A scoped ONNX Runtime session: loaded when acquired, released when its scope closes,
 * with runs that take and return plain typed arrays.
 *
 * Note: onnxruntime-node executes `run` synchronously on the JS thread (inside a `setImmediate`),
 * so a run blocks the event loop for its whole duration and concurrent runs are serialised.
 */
import { Data, Effect } from "effect"
import type { Scope } from "effect"
import { stat } from "node:fs/promises"
import { InferenceSession, Tensor } from "onnxruntime-node"
import type { OutputTensor } from "./postprocess/types.js"

/** The model file is missing, unreadable or not a valid ONNX model. */
export class OnnxModelLoadFailed extends Data.TaggedError("OnnxModelLoadFailed")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `failed to load ONNX model ${this.path}: ${this.reason}`
  }
}

/** A requested execution provider (e.g. CUDA) is not available in this build or on this machine. */
export class ExecutionProviderUnavailable extends Data.TaggedError("ExecutionProviderUnavailable")<{
  readonly provider: string
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `execution provider '${this.provider}' is unavailable for ONNX model ${this.path}: ${this.reason}`
  }
}

/** A run was rejected (bad feeds, released session) or failed inside ONNX Runtime. */
export class OnnxRunFailed extends Data.TaggedError("OnnxRunFailed")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `ONNX inference failed for ${this.path}: ${this.reason}`
  }
}

export type OnnxError = OnnxModelLoadFailed | ExecutionProviderUnavailable | OnnxRunFailed

export type ExecutionProvider = "cpu" | "cuda"

export interface OnnxSessionOptions {
  readonly modelPath: string
  /** In order of preference; ONNX Runtime falls back along this list per node. */
  readonly executionProviders: ReadonlyArray<ExecutionProvider>
  readonly intraOpThreads?: number
  readonly interOpThreads?: number
}

/** A model input or output as the model declares it; a string dim is symbolic (dynamic). */
export interface ValueInfo {
  readonly name: string
  /** e.g. `"float32"`, `"uint8"`; `null` for non-tensor values (maps, sequences). */
  readonly elementType: string | null
  /** Empty when the model declares no shape. */
  readonly dims: ReadonlyArray<number | string>
}

export type InputElementType = "float32" | "uint8"

/** One input for a run; the data is read in place, never retained after the run. */
export interface InputTensor {
  readonly data: Float32Array | Uint8Array
  readonly dims: ReadonlyArray<number>
  readonly type: InputElementType
}

export interface OnnxSession {
  readonly modelPath: string
  readonly inputNames: ReadonlyArray<string>
  readonly outputNames: ReadonlyArray<string>
  readonly inputs: ReadonlyArray<ValueInfo>
  readonly outputs: ReadonlyArray<ValueInfo>
  /** Runs the model; every output is returned as a float32 tensor owned by this call. */
  readonly run: (feeds: Readonly<Record<string, InputTensor>>) => Effect.Effect<Record<string, OutputTensor>, OnnxError>
}

const reasonOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const toValueInfo = (m: InferenceSession.ValueMetadata): ValueInfo =>
  m.isTensor ? { name: m.name, elementType: m.type, dims: [...m.shape] } : { name: m.name, elementType: null, dims: [] }

const elementCount = (dims: ReadonlyArray<number>): number => dims.reduce((n, d) => n * d, 1)

const describeDims = (dims: ReadonlyArray<number | string>): string => `[${dims.join(", ")}]`

// The ORT CPU build reports a missing CUDA provider as a failure to load its shared library.
const mentionsProvider = (reason: string): boolean => /cuda|execution ?provider|providers_shared/i.test(reason)

const checkModelFile = (path: string): Effect.Effect<void, OnnxModelLoadFailed> =>
  Effect.tryPromise({
    try: () => stat(path),
    catch: (cause) =>
      new OnnxModelLoadFailed({
        path,
        reason:
          typeof cause === "object" && cause !== null && "code" in cause && cause.code === "ENOENT"
            ? "file does not exist"
            : reasonOf(cause)
      })
  }).pipe(
    Effect.flatMap((s) =>
      s.isFile() ? Effect.void : Effect.fail(new OnnxModelLoadFailed({ path, reason: "not a regular file" }))
    )
  )

const createSession = (options: OnnxSessionOptions): Effect.Effect<InferenceSession, OnnxError> => {
  const path = options.modelPath
  const sessionOptions: InferenceSession.SessionOptions = {
    executionProviders: [...options.executionProviders],
    graphOptimizationLevel: "all",
    ...(options.intraOpThreads !== undefined ? { intraOpNumThreads: options.intraOpThreads } : {}),
    ...(options.interOpThreads !== undefined ? { interOpNumThreads: options.interOpThreads } : {})
  }
  return checkModelFile(path).pipe(
    Effect.zipRight(
      Effect.tryPromise({
        try: () => InferenceSession.create(path, sessionOptions),
        catch: (cause): OnnxError => {
          const reason = reasonOf(cause)
          return options.executionProviders.includes("cuda") && mentionsProvider(reason)
            ? new ExecutionProviderUnavailable({ provider: "cuda", path, reason })
            : new OnnxModelLoadFailed({ path, reason })
        }
      })
    )
  )
}

const toOutputTensor = (name: string, value: unknown): OutputTensor | string => {
  // Structural check: `instanceof Tensor` breaks if two copies of onnxruntime-common get loaded.
  if (typeof value !== "object" || value === null || !("data" in value) || !("dims" in value)) {
    return `output '${name}' is not a tensor`
  }
  const rawDims: unknown = value.dims
  if (!Array.isArray(rawDims) || !rawDims.every((d): d is number => typeof d === "number")) {
    return `output '${name}' has no numeric dims`
  }
  const dims: ReadonlyArray<number> = [...rawDims]
  const data: unknown = value.data
  // ORT allocates fresh output buffers per run, so a float32 output is already owned by this call.
  if (data instanceof Float32Array) return { data, dims }
  if (
    data instanceof Float64Array ||
    data instanceof Int32Array ||
    data instanceof Uint8Array ||
    data instanceof Int8Array ||
    data instanceof Uint16Array ||
    data instanceof Int16Array ||
    data instanceof Uint32Array
  ) {
    return { data: Float32Array.from(data), dims }
  }
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const out = new Float32Array(data.length)
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]!)
    return { data: out, dims }
  }
  return `output '${name}' holds non-numeric data (e.g. strings)`
}

/**
 * Loads `modelPath` into an ONNX Runtime session that lives as long as the enclosing scope.
 * On scope close, new runs are refused, runs already handed to ORT are awaited, then the native
 * session is released.
 */
export const makeOnnxSession = (options: OnnxSessionOptions): Effect.Effect<OnnxSession, OnnxError, Scope.Scope> =>
  Effect.gen(function* () {
    const path = options.modelPath
    const state = { released: false, inFlight: new Set<Promise<unknown>>() }

    const session = yield* Effect.acquireRelease(createSession(options), (s) =>
      Effect.promise(async () => {
        state.released = true
        // Releasing under a scheduled run would hand ORT a disposed session mid-call.
        await Promise.allSettled([...state.inFlight])
        await s.release()
      }).pipe(Effect.catchAllDefect((defect) => Effect.logWarning(`releasing ONNX session ${path} failed`, defect)))
    )

    const inputNames = [...session.inputNames]
    const outputNames = [...session.outputNames]
    const inputs = session.inputMetadata.map(toValueInfo)
    const outputs = session.outputMetadata.map(toValueInfo)
    const runFailed = (reason: string) => new OnnxRunFailed({ path, reason })

    const buildFeeds = (
      feeds: Readonly<Record<string, InputTensor>>
    ): Record<string, Tensor> | OnnxRunFailed => {
      const missing = inputNames.filter((name) => !(name in feeds))
      if (missing.length > 0) return runFailed(`missing input(s): ${missing.join(", ")}`)
      const ortFeeds: Record<string, Tensor> = {}
      for (const [name, input] of Object.entries(feeds)) {
        if (!inputNames.includes(name)) {
          return runFailed(`unknown input '${name}'; the model takes ${inputNames.join(", ")}`)
        }
        const expected = elementCount(input.dims)
        if (input.data.length !== expected) {
          return runFailed(
            `input '${name}' has ${input.data.length} values, dims ${describeDims(input.dims)} need ${expected}`
          )
        }
        // A fresh Tensor per call: ORT tensors are never shared between concurrent runs.
        ortFeeds[name] =
          input.type === "float32"
            ? input.data instanceof Float32Array
              ? new Tensor("float32", input.data, [...input.dims])
              : new Tensor("float32", Float32Array.from(input.data), [...input.dims])
            : input.data instanceof Uint8Array
              ? new Tensor("uint8", input.data, [...input.dims])
              : new Tensor("uint8", Uint8Array.from(input.data), [...input.dims])
      }
      return ortFeeds
    }

    const run = (feeds: Readonly<Record<string, InputTensor>>) =>
      Effect.suspend(() => {
        if (state.released) return Effect.fail(runFailed("the session has been released"))
        const ortFeeds = buildFeeds(feeds)
        if (ortFeeds instanceof OnnxRunFailed) return Effect.fail(ortFeeds)
        return Effect.tryPromise({
          try: () => {
            const pending = session.run(ortFeeds)
            const settle = () => state.inFlight.delete(pending)
            state.inFlight.add(pending)
            pending.then(settle, settle)
            return pending
          },
          catch: (cause) => runFailed(reasonOf(cause))
        }).pipe(
          Effect.flatMap((results) => {
            const out: Record<string, OutputTensor> = {}
            for (const name of outputNames) {
              const converted = toOutputTensor(name, results[name])
              if (typeof converted === "string") return Effect.fail(runFailed(converted))
              out[name] = converted
            }
            return Effect.succeed(out)
          })
        )
      }).pipe(Effect.withSpan("OnnxSession.run", { attributes: { model: path } }))

    const onnxSession: OnnxSession = { modelPath: path, inputNames, outputNames, inputs, outputs, run }
    return onnxSession
  })

/**
 * Runs an all-zeros input through the model `runs` times, so the first real request does not
 * pay for lazy allocation and kernel selection.
 */
export const warmUp = (
  session: OnnxSession,
  inputName: string,
  dims: ReadonlyArray<number>,
  type: InputElementType,
  runs: number
): Effect.Effect<void, OnnxError> =>
  Effect.suspend(() => {
    const size = elementCount(dims)
    const data = type === "float32" ? new Float32Array(size) : new Uint8Array(size)
    const feeds = { [inputName]: { data, dims, type } }
    return Effect.repeatN(session.run(feeds), Math.max(0, Math.floor(runs) - 1)).pipe(
      Effect.when(() => runs >= 1),
      Effect.asVoid
    )
  }).pipe(Effect.withSpan("OnnxSession.warmUp", { attributes: { model: session.modelPath, runs } }))
