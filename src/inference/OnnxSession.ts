/**
 * The `OnnxSessions` service: opens scoped ONNX Runtime sessions — loaded when acquired, released
 * when their scope closes — whose runs take and return plain typed arrays.
 *
 * The live layer (`layer`, `makeOnnxSession`) runs each session in a worker thread of its own
 * (onnxWorker.ts): onnxruntime-node executes `run` synchronously on the calling JS thread, so a run
 * there never blocks this thread's event loop, and this thread never loads onnxruntime-node.
 * Runs of one session execute one at a time, in call order (ORT's intra-op threads still use all
 * cores); inputs lent by the session (`borrowInput`) are moved to the worker and back, other
 * inputs are copied when the run starts, and outputs are moved back without a copy.
 * The test layer (`makeFake`) is a scripted model: outputs from a function of the run, a record
 * of every open and run, providers it refuses, runs that fail or wait for a `Deferred`.
 */
import { Context, Data, Effect, Layer, Option } from "effect"
import type { Scope } from "effect"
import { withRequestSpan } from "../internal/tracing.js"
import { existsSync } from "node:fs"
import { stat } from "node:fs/promises"
import { basename } from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import {
  CONTROL_BUSY,
  CONTROL_STOP,
  type ExecutionProvider,
  type FromWorker,
  type InputElementType,
  type InputTensor,
  makeControl,
  type PoolPriority,
  reasonOf,
  type ReadyMessage,
  type RunReply,
  type SessionSpec,
  type ToWorker,
  type ValueInfo,
  type WireInput,
  workerInit
} from "./onnxProtocol.js"
import type { OutputTensor } from "./postprocess/types.js"

export type { ExecutionProvider, InputElementType, InputTensor, PoolPriority, ValueInfo } from "./onnxProtocol.js"

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

/** A run was rejected (bad feeds, released session, stopped worker) or failed inside ONNX Runtime. */
export class OnnxRunFailed extends Data.TaggedError("OnnxRunFailed")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `ONNX inference failed for ${this.path}: ${this.reason}`
  }
}

export type OnnxError = OnnxModelLoadFailed | ExecutionProviderUnavailable | OnnxRunFailed

export interface OnnxSessionOptions {
  readonly modelPath: string
  /** In order of preference; ONNX Runtime falls back along this list per node. */
  readonly executionProviders: ReadonlyArray<ExecutionProvider>
  readonly intraOpThreads?: number
  readonly interOpThreads?: number
  /**
   * The nice value (1–19) for the threads ORT starts for this session, its thread pools (Linux only):
   * the thread that calls ORT and this thread's event loop then come first when cores are short.
   * Absent or 0: their priority is left alone.
   */
  readonly poolThreadNice?: number
}

export interface OnnxSession {
  readonly modelPath: string
  readonly inputNames: ReadonlyArray<string>
  readonly outputNames: ReadonlyArray<string>
  readonly inputs: ReadonlyArray<ValueInfo>
  readonly outputs: ReadonlyArray<ValueInfo>
  /** What `poolThreadNice` did to ORT's threads; absent when it was not asked for. */
  readonly poolPriority?: PoolPriority
  /** Runs the model; every output is returned as a float32 tensor owned by this call. */
  readonly run: (feeds: Readonly<Record<string, InputTensor>>) => Effect.Effect<Record<string, OutputTensor>, OnnxError>
  /** `run`, with how long ORT itself ran and how long the run waited for earlier ones. */
  readonly runTimed: (feeds: Readonly<Record<string, InputTensor>>) => Effect.Effect<RunResult, OnnxError>
  /**
   * An input array to fill and hand to one `run`, which takes it over: the live session moves it to
   * its worker thread rather than copying it (so the caller's array is detached from then on) and
   * takes it back when the run ends, to hand out again. Its contents are whatever was last written
   * to it. Arrays of the caller's own also work for `run`, and stay the caller's (they are copied).
   */
  readonly borrowInput: (type: InputElementType, length: number) => Float32Array | Uint8Array
}

export interface RunResult {
  readonly outputs: Record<string, OutputTensor>
  /**
   * Milliseconds ORT spent running the model, timed on the thread that runs it; the rest of a
   * `runTimed` call's wall time is the hand-off to and from that thread (and `waitMs`).
   */
  readonly runMs: number
  /** Milliseconds the run queued behind earlier runs of this session (they run one at a time). */
  readonly waitMs: number
}

const arrayOf = (type: InputElementType, buffer: ArrayBuffer, length: number): Float32Array | Uint8Array =>
  type === "float32" ? new Float32Array(buffer, 0, length) : new Uint8Array(buffer, 0, length)

const byteLengthOf = (type: InputElementType, length: number): number =>
  type === "float32" ? length * Float32Array.BYTES_PER_ELEMENT : length

/** Input buffers kept per session for refilling; more concurrent runs allocate their own. */
const SPARE_BUFFERS = 4

/** Input buffers a session lends out (`borrowInput`) and takes back when a run ends. */
interface Lender {
  /** A buffer of exactly `byteLength` bytes, a spare one when there is. */
  readonly buffer: (byteLength: number) => ArrayBuffer
  readonly borrow: (type: InputElementType, length: number) => Float32Array | Uint8Array
  /** A lent array, whole and typed as declared, that `run` may take over. */
  readonly isLent: (input: InputTensor) => boolean
  /** Keeps `buffer` (back from a run) for a later `buffer` or `borrow`. */
  readonly giveBack: (buffer: ArrayBuffer) => void
}

const makeLender = (): Lender => {
  const spare: Array<ArrayBuffer> = []
  const lent = new WeakSet<ArrayBuffer>()
  const buffer = (byteLength: number): ArrayBuffer => {
    const at = spare.findIndex((b) => b.byteLength === byteLength)
    return (at >= 0 ? spare.splice(at, 1)[0] : undefined) ?? new ArrayBuffer(byteLength)
  }
  return {
    buffer,
    borrow: (type, length) => {
      const taken = buffer(byteLengthOf(type, length))
      lent.add(taken)
      return arrayOf(type, taken, length)
    },
    isLent: (input) =>
      input.data.buffer instanceof ArrayBuffer &&
      lent.has(input.data.buffer) &&
      input.data.byteOffset === 0 &&
      input.data.byteLength === input.data.buffer.byteLength &&
      (input.type === "float32") === (input.data instanceof Float32Array),
    giveBack: (buffer) => {
      lent.delete(buffer)
      if (spare.length < SPARE_BUFFERS) spare.push(buffer)
    }
  }
}

const elementCount = (dims: ReadonlyArray<number>): number => dims.reduce((n, d) => n * d, 1)

/** Dims as messages show them: `[1, 3, 640, 640]`. */
export const describeDims = (dims: ReadonlyArray<number | string>): string => `[${dims.join(", ")}]`

// The ORT CPU build reports a missing CUDA provider as a failure to load its shared library.
const mentionsProvider = (reason: string): boolean => /cuda|execution ?provider|providers_shared/i.test(reason)

const loadError = (options: OnnxSessionOptions, reason: string): OnnxError =>
  options.executionProviders.includes("cuda") && mentionsProvider(reason)
    ? new ExecutionProviderUnavailable({ provider: "cuda", path: options.modelPath, reason })
    : new OnnxModelLoadFailed({ path: options.modelPath, reason })

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

const specOf = (options: OnnxSessionOptions): SessionSpec => ({
  modelPath: options.modelPath,
  executionProviders: [...options.executionProviders],
  ...(options.intraOpThreads !== undefined ? { intraOpThreads: options.intraOpThreads } : {}),
  ...(options.interOpThreads !== undefined ? { interOpThreads: options.interOpThreads } : {}),
  ...(options.poolThreadNice !== undefined ? { poolThreadNice: options.poolThreadNice } : {})
})

/** Why `feeds` cannot be a run of a model with `inputNames`, or `undefined` when they can (the fake checks the same). */
const checkFeeds = (inputNames: ReadonlyArray<string>, feeds: Readonly<Record<string, InputTensor>>): string | undefined => {
  const missing = inputNames.filter((name) => !(name in feeds))
  if (missing.length > 0) return `missing input(s): ${missing.join(", ")}`
  for (const [name, input] of Object.entries(feeds)) {
    if (!inputNames.includes(name)) return `unknown input '${name}'; the model takes ${inputNames.join(", ")}`
    const expected = elementCount(input.dims)
    if (input.data.length !== expected) {
      return `input '${name}' has ${input.data.length} values, dims ${describeDims(input.dims)} need ${expected}`
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// The live sessions: a worker thread each

/** A worker script: a module file, or (`eval`) source that loads one. */
interface WorkerEntry {
  readonly script: URL | string
  readonly eval: boolean
}

/** The compiled worker next to this module (dist/), else its TypeScript source (src/ under tsx or vitest). */
const locateWorker = (): WorkerEntry => {
  const compiled = new URL("./onnxWorker.js", import.meta.url)
  if (existsSync(compiled)) return { script: compiled, eval: false }
  // Loaders registered on this thread do not reach a worker, and on Node 20 `--import tsx` in a worker's execArgv
  // does not make it load .ts either: the worker registers tsx's require hook itself, then loads the source.
  // Dynamic import keeps the bootstrap valid whether the inherited execArgv makes eval code CommonJS or ESM.
  const source = fileURLToPath(new URL("./onnxWorker.ts", import.meta.url))
  const script = `import("node:module").then(({ createRequire }) => {
  const require = createRequire(${JSON.stringify(source)})
  require("tsx/cjs/api").register()
  require(${JSON.stringify(source)})
})`
  return { script, eval: true }
}

let workerEntry: WorkerEntry | undefined

/** The longest the process waits at exit for a worker's native ORT call to return. */
const EXIT_WAIT_MS = 10_000

/** Control blocks of the workers still alive, for the exit hook. */
const liveControls = new Set<Int32Array>()

// Node terminates workers right after the 'exit' listeners; inside ORT that would abort the process.
const letNativeCallsFinish = () => {
  for (const control of liveControls) Atomics.store(control, CONTROL_STOP, 1)
  const deadline = Date.now() + EXIT_WAIT_MS
  for (const control of liveControls) Atomics.wait(control, CONTROL_BUSY, 1, Math.max(0, deadline - Date.now()))
}

const trackControl = (control: Int32Array): void => {
  if (liveControls.size === 0) process.on("exit", letNativeCallsFinish)
  liveControls.add(control)
}

const untrackControl = (control: Int32Array): void => {
  if (liveControls.delete(control) && liveControls.size === 0) process.off("exit", letNativeCallsFinish)
}

type RunOutcome = RunReply | { readonly type: "gone"; readonly reason: string }

/** The main thread's end of one session worker. */
interface WorkerLink {
  readonly ready: ReadyMessage
  /** Why runs can no longer be served (released, worker stopped), or `undefined` while they can. */
  readonly unavailable: () => string | undefined
  /** Moves `feeds`' buffers to the worker; `settle` is called once, unless the returned cancel comes first. */
  readonly post: (feeds: ReadonlyArray<WireInput>, settle: (outcome: RunOutcome) => void) => () => void
  /** Lets posted runs finish, releases the session, ends the thread; resolves to ORT's release error, if any. */
  readonly release: () => Promise<string | undefined>
}

const openWorker = (options: OnnxSessionOptions, lender: Lender): Effect.Effect<WorkerLink, OnnxError> =>
  Effect.callback<WorkerLink, OnnxError>((resume) => {
    const path = options.modelPath
    const control = makeControl()
    let worker: Worker
    try {
      const entry = (workerEntry ??= locateWorker())
      worker = new Worker(entry.script, { eval: entry.eval, workerData: workerInit(specOf(options), control), name: `onnx ${basename(path)}` })
      trackControl(control)
    } catch (cause) {
      resume(Effect.fail(new OnnxModelLoadFailed({ path, reason: `cannot start the inference worker: ${reasonOf(cause)}` })))
      return
    }

    const pending = new Map<number, (outcome: RunOutcome) => void>()
    // Runs posted and not yet answered, interrupted ones included: the worker is busy until they are.
    const outstanding = new Set<number>()
    let nextId = 0
    let phase: "loading" | "ready" | "releasing" | "stopped" = "loading"
    let unavailable: string | undefined
    let lastError: string | undefined
    let onReleased: ((error: string | undefined) => void) | undefined

    // An idle session must not keep the process alive, just as an in-process one does not.
    const syncRef = () => (phase === "ready" && outstanding.size === 0 ? worker.unref() : worker.ref())

    const failPending = (reason: string) => {
      const settles = [...pending.values()]
      pending.clear()
      for (const settle of settles) settle({ type: "gone", reason })
    }

    const send = (message: ToWorker, transfer: ReadonlyArray<ArrayBuffer> = []) => worker.postMessage(message, [...transfer])

    const link = (ready: ReadyMessage): WorkerLink => ({
      ready,
      unavailable: () => unavailable,
      post: (feeds, settle) => {
        if (unavailable !== undefined) {
          settle({ type: "gone", reason: unavailable })
          return () => {}
        }
        const id = nextId++
        pending.set(id, settle)
        outstanding.add(id)
        syncRef()
        const buffers = feeds.flatMap((f) => (f.data.buffer instanceof ArrayBuffer ? [f.data.buffer] : []))
        send({ type: "run", id, feeds, sentAt: performance.timeOrigin + performance.now() }, [...new Set(buffers)])
        return () => {
          if (!pending.delete(id)) return
          // A run still queued in the worker is skipped; one already running finishes and its result is dropped.
          if (phase === "ready" || phase === "releasing") send({ type: "cancel", id })
        }
      },
      release: () =>
        new Promise<string | undefined>((resolve) => {
          unavailable ??= "the session has been released"
          if (phase !== "ready") return resolve(undefined)
          phase = "releasing"
          syncRef()
          onReleased = resolve
          send({ type: "release" })
        }).then(async (error) => {
          phase = "stopped"
          await worker.terminate()
          return error
        })
    })

    worker.on("message", (message: FromWorker) => {
      switch (message.type) {
        case "ready":
          phase = "ready"
          syncRef()
          resume(Effect.succeed(link(message)))
          return
        case "loadFailed":
          phase = "stopped"
          void worker.terminate().finally(() => resume(Effect.fail(loadError(options, message.reason))))
          return
        case "result":
        case "runFailed": {
          for (const b of message.spare) lender.giveBack(b)
          outstanding.delete(message.id)
          syncRef()
          const settle = pending.get(message.id)
          // No taker means the run was interrupted: its result is dropped.
          if (settle !== undefined) {
            pending.delete(message.id)
            settle(message)
          }
          return
        }
        case "released":
          onReleased?.(message.error)
          return
      }
    })
    worker.on("error", (error) => {
      lastError = reasonOf(error)
    })
    worker.on("messageerror", (error) => {
      // A reply that cannot be decoded cannot be matched to its run: fail them all rather than leave one hanging.
      const reason = `undecodable message from the inference worker: ${reasonOf(error)}`
      unavailable ??= reason
      failPending(reason)
    })
    worker.on("exit", (code) => {
      untrackControl(control)
      const was = phase
      phase = "stopped"
      outstanding.clear()
      const reason = `the inference worker exited unexpectedly (exit code ${code})${lastError !== undefined ? `: ${lastError}` : ""}`
      if (was === "loading") {
        resume(Effect.fail(new OnnxModelLoadFailed({ path, reason })))
        return
      }
      unavailable ??= reason
      failPending(reason)
      onReleased?.(undefined)
    })
  })

/**
 * What goes to the worker for `input`: a lent array itself (moved, not copied), else a copy in a
 * buffer the worker may take over, so the caller's array stays intact and reusable.
 */
const wireInput = (name: string, input: InputTensor, lender: Lender): WireInput => {
  if (lender.isLent(input)) return { name, data: input.data, dims: [...input.dims], type: input.type }
  const length = input.data.length
  const data = arrayOf(input.type, lender.buffer(byteLengthOf(input.type, length)), length)
  // Converts element-wise when the array's type differs from the declared one, like Float32Array.from.
  data.set(input.data)
  return { name, data, dims: [...input.dims], type: input.type }
}

/**
 * Loads `modelPath` into an ONNX Runtime session in a worker thread that lives as long as the
 * enclosing scope. On scope close, new runs are refused, runs already handed to ORT are awaited,
 * then the native session is released and the worker thread ended.
 */
export const makeOnnxSession = (options: OnnxSessionOptions): Effect.Effect<OnnxSession, OnnxError, Scope.Scope> =>
  Effect.gen(function* () {
    const path = options.modelPath
    yield* checkModelFile(path)
    const lender = makeLender()
    const link = yield* Effect.acquireRelease(openWorker(options, lender), (l) =>
      Effect.promise(l.release).pipe(
        Effect.flatMap((error) =>
          error === undefined ? Effect.void : Effect.logWarning(`releasing ONNX session ${path} failed: ${error}`)
        )
      ))

    const { inputNames, outputNames, inputs, outputs, poolPriority } = link.ready
    const runFailed = (reason: string) => new OnnxRunFailed({ path, reason })

    const runTimed = (feeds: Readonly<Record<string, InputTensor>>) =>
      Effect.suspend(() => {
        const unavailable = link.unavailable()
        if (unavailable !== undefined) return Effect.fail(runFailed(unavailable))
        const problem = checkFeeds(inputNames, feeds)
        if (problem !== undefined) return Effect.fail(runFailed(problem))
        return Effect.callback<RunResult, OnnxRunFailed>((resume) => {
          const wire = Object.entries(feeds).map(([name, input]) => wireInput(name, input, lender))
          const cancel = link.post(wire, (outcome) =>
            resume(
              outcome.type === "result"
                ? Effect.succeed({ outputs: outcome.outputs, ...outcome.timing })
                : Effect.fail(runFailed(outcome.reason))
            ))
          return Effect.sync(cancel)
        })
      }).pipe(withRequestSpan("OnnxSession.run", { attributes: { model: path } }))

    const onnxSession: OnnxSession = {
      modelPath: path,
      inputNames,
      outputNames,
      inputs,
      outputs,
      ...(poolPriority !== undefined ? { poolPriority } : {}),
      run: (feeds) => Effect.map(runTimed(feeds), (r) => r.outputs),
      runTimed,
      borrowInput: lender.borrow
    }
    return onnxSession
  })

/**
 * Runs an all-zeros input through the model `runs` times, so the first real request does not
 * pay for lazy allocation and kernel selection. Succeeds with the last run's outputs (`None` for
 * no runs), for a caller that checks it can read them.
 */
export const warmUp = (
  session: OnnxSession,
  inputName: string,
  dims: ReadonlyArray<number>,
  type: InputElementType,
  runs: number
): Effect.Effect<Option.Option<Record<string, OutputTensor>>, OnnxError> =>
  Effect.suspend(() => {
    const times = Math.floor(runs)
    if (times < 1) return Effect.succeedNone
    const size = elementCount(dims)
    const data = type === "float32" ? new Float32Array(size) : new Uint8Array(size)
    const feeds = { [inputName]: { data, dims, type } }
    return session.run(feeds).pipe(Effect.repeat({ times: times - 1 }), Effect.map(Option.some))
  }).pipe(Effect.withSpan("OnnxSession.warmUp", { attributes: { model: session.modelPath, runs } }))

// ---------------------------------------------------------------------------------------------
// The service

export interface OnnxSessionsShape {
  /** Opens a session for the enclosing scope (released when it closes). */
  readonly open: (options: OnnxSessionOptions) => Effect.Effect<OnnxSession, OnnxError, Scope.Scope>
}

/** Where ONNX sessions come from: worker-thread ORT sessions (`layer`), or a scripted model in tests (`makeFake`). */
export class OnnxSessions extends Context.Service<OnnxSessions, OnnxSessionsShape>()("@ruth-ai/model-runtime/OnnxSessions") {}

/** The live sessions: ONNX Runtime in a worker thread per session. */
export const layer: Layer.Layer<OnnxSessions> = Layer.succeed(OnnxSessions, OnnxSessions.of({ open: makeOnnxSession }))

// ---------------------------------------------------------------------------------------------
// The test layer: a scripted model

/** One run of a fake session, as the script sees it and the fake records it. */
export interface FakeRun {
  /** Which session ran it: its place among the sessions opened, from 0. */
  readonly session: number
  /** The run's place among all runs of all sessions, from 0. */
  readonly index: number
  /** The options the session was opened with. */
  readonly options: OnnxSessionOptions
  /** Copies of the feeds as the run received them (the caller's arrays may be reused afterwards). */
  readonly feeds: Readonly<Record<string, InputTensor>>
}

export interface FakeModel {
  /** What the model declares; a session's `inputs`/`outputs` (their names are `inputNames`/`outputNames`). */
  readonly inputs: ReadonlyArray<ValueInfo>
  readonly outputs: ReadonlyArray<ValueInfo>
  /**
   * A run's outputs: a value, or an effect — to fail (e.g. `OnnxRunFailed`), or to wait (e.g. on a
   * `Deferred` the test completes). Feeds that do not fit `inputs` fail before it is called, as in ORT.
   */
  readonly run: (run: FakeRun) => Record<string, OutputTensor> | Effect.Effect<Record<string, OutputTensor>, OnnxError>
  /** The providers this machine has; opening a session that asks for another fails with `ExecutionProviderUnavailable`. Default `["cpu"]`. */
  readonly providers?: ReadonlyArray<ExecutionProvider>
  /** The timings every run reports (ORT's run and the wait behind earlier runs). Default 0. */
  readonly runMs?: number
  readonly waitMs?: number
}

/** A scripted `OnnxSessions` and what it was asked to do. */
export interface FakeOnnxSessions {
  readonly layer: Layer.Layer<OnnxSessions>
  /** Every `open`, in order, refused ones included. */
  readonly opened: ReadonlyArray<OnnxSessionOptions>
  /** Every run that reached the script, in order. */
  readonly runs: ReadonlyArray<FakeRun>
}

const copyInput = (input: InputTensor): InputTensor => ({ data: input.data.slice(), dims: [...input.dims], type: input.type })

/** Sessions of a scripted model: no onnxruntime, no thread; runs answer as `model.run` says. */
export const makeFake = (model: FakeModel): FakeOnnxSessions => {
  const opened: Array<OnnxSessionOptions> = []
  const runs: Array<FakeRun> = []
  let sessions = 0
  const providers = model.providers ?? ["cpu"]
  const inputNames = model.inputs.map((i) => i.name)
  const outputNames = model.outputs.map((o) => o.name)
  const open = (options: OnnxSessionOptions): Effect.Effect<OnnxSession, OnnxError, Scope.Scope> =>
    Effect.gen(function*() {
      opened.push(options)
      const path = options.modelPath
      const missing = options.executionProviders.find((p) => !providers.includes(p))
      if (missing !== undefined) {
        return yield* new ExecutionProviderUnavailable({ provider: missing, path, reason: `the fake machine has ${providers.join(", ")}` })
      }
      const session = sessions++
      const state = { released: false }
      yield* Effect.addFinalizer(() => Effect.sync(() => (state.released = true)))
      const runFailed = (reason: string) => new OnnxRunFailed({ path, reason })
      const runTimed = (feeds: Readonly<Record<string, InputTensor>>): Effect.Effect<RunResult, OnnxError> =>
        Effect.suspend(() => {
          if (state.released) return Effect.fail(runFailed("the session has been released"))
          const problem = checkFeeds(inputNames, feeds)
          if (problem !== undefined) return Effect.fail(runFailed(problem))
          const copies: Record<string, InputTensor> = {}
          for (const [name, input] of Object.entries(feeds)) copies[name] = copyInput(input)
          const run: FakeRun = { session, index: runs.length, options, feeds: copies }
          runs.push(run)
          const outputs = model.run(run)
          return Effect.map(Effect.isEffect(outputs) ? outputs : Effect.succeed(outputs), (o): RunResult => ({
            outputs: o,
            runMs: model.runMs ?? 0,
            waitMs: model.waitMs ?? 0
          }))
        })
      return {
        modelPath: path,
        inputNames,
        outputNames,
        inputs: model.inputs,
        outputs: model.outputs,
        run: (feeds) => Effect.map(runTimed(feeds), (r) => r.outputs),
        runTimed,
        borrowInput: (type, length) => (type === "float32" ? new Float32Array(length) : new Uint8Array(length))
      }
    })
  return { layer: Layer.succeed(OnnxSessions, OnnxSessions.of({ open })), opened, runs }
}
