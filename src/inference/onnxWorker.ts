/**
 * The ONNX Runtime side of an `OnnxSession`: session options, feed and output conversion, and —
 * when started as a worker thread by OnnxSession.ts — the loop that owns one `InferenceSession`.
 *
 * The worker runs one inference at a time, in arrival order; a run cancelled before it starts is
 * skipped. Input buffers are moved to the worker (ORT reads them in place) and come back with the
 * reply so they can be refilled. Each reply says how long ORT ran and how long the run waited for
 * earlier ones, timed here, so a caller can tell the model's time from the hand-off's.
 *
 * Terminating a worker while ORT is inside native code aborts the whole process ("terminate called
 * after throwing an instance of 'Napi::Error'"), so native calls are bracketed by a busy flag in a
 * shared control block: at process exit the main thread stops new calls and waits for the current one.
 *
 * Imports only onnxruntime-node, Node built-ins and the plain protocol module (onnxProtocol.ts), so
 * the worker starts without Effect and loads the same way from the compiled .js and, through tsx,
 * from this .ts source. The main thread never imports this module: only the worker loads ORT.
 */
import { readdirSync } from "node:fs"
import { getPriority, setPriority } from "node:os"
import { isMainThread, parentPort, workerData } from "node:worker_threads"
import type { MessagePort, TransferListItem } from "node:worker_threads"
import { InferenceSession, Tensor } from "onnxruntime-node"
import {
  CONTROL_BUSY,
  CONTROL_STOP,
  type FromWorker,
  type InputTensor,
  isWorkerInit,
  type PoolPriority,
  reasonOf,
  type RunTiming,
  type SessionSpec,
  type ToWorker,
  type ValueInfo,
  type WorkerInit
} from "./onnxProtocol.js"
import type { OutputTensor } from "./postprocess/types.js"

// ---------------------------------------------------------------------------------------------
// ONNX Runtime helpers (also used by bench/servers/bareModel.ts)

export const ortSessionOptions = (spec: SessionSpec): InferenceSession.SessionOptions => ({
  executionProviders: [...spec.executionProviders],
  graphOptimizationLevel: "all",
  ...(spec.intraOpThreads !== undefined ? { intraOpNumThreads: spec.intraOpThreads } : {}),
  ...(spec.interOpThreads !== undefined ? { interOpNumThreads: spec.interOpThreads } : {})
})

export const toValueInfo = (m: InferenceSession.ValueMetadata): ValueInfo =>
  m.isTensor ? { name: m.name, elementType: m.type, dims: [...m.shape] } : { name: m.name, elementType: null, dims: [] }

/** A fresh Tensor per call: ORT tensors are never shared between concurrent runs. */
export const toOrtTensor = (input: InputTensor): Tensor =>
  input.type === "float32"
    ? new Tensor("float32", input.data instanceof Float32Array ? input.data : Float32Array.from(input.data), [...input.dims])
    : new Tensor("uint8", input.data instanceof Uint8Array ? input.data : Uint8Array.from(input.data), [...input.dims])

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

/** This process's thread ids (Linux), or `undefined` where /proc/self/task is not available. */
const threadIds = (): ReadonlySet<string> | undefined => {
  try {
    return new Set(readdirSync("/proc/self/task"))
  } catch {
    return undefined
  }
}

const errorCode = (cause: unknown): unknown =>
  typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined

/**
 * Runs `load` and gives the threads it starts — ORT's intra- and inter-op pools — the nice value
 * `nice` (on Linux a thread's priority is its own). The thread that calls ORT and the event loop
 * that reads frames and answers keep theirs: when every core is busy with a run, the scheduler
 * runs them at once instead of queueing them for a time slice behind a pool thread (bench/e2e:
 * session.run no slower, the runtime's stalls gone). Threads that other code starts
 * during the load would be lowered too; the libuv pool, the only one Node starts lazily (and
 * process-wide), exists by then because `makeOnnxSession` stats the model file with fs/promises
 * before the worker loads it. Elsewhere than Linux nothing changes, and a
 * thread already below `nice` (a process started with a higher nice value) is left as it is.
 */
export const loadWithPoolPriority = async <A>(
  nice: number | undefined,
  load: () => Promise<A>
): Promise<{ readonly loaded: A; readonly priority?: PoolPriority }> => {
  if (nice === undefined || nice === 0 || process.platform !== "linux") return { loaded: await load() }
  const before = threadIds()
  const loaded = await load()
  const after = threadIds()
  if (before === undefined || after === undefined) {
    return { loaded, priority: { nice, lowered: 0, problem: "/proc/self/task cannot be read" } }
  }
  let lowered = 0
  let problem: string | undefined
  for (const tid of after) {
    if (before.has(tid)) continue
    try {
      if (getPriority(Number(tid)) < nice) setPriority(Number(tid), nice)
      lowered++
    } catch (cause) {
      // ESRCH: the thread ended after the listing, so there is nothing to lower.
      if (errorCode(cause) !== "ESRCH") problem ??= `thread ${tid}: ${reasonOf(cause)}`
    }
  }
  return { loaded, priority: { nice, lowered, ...(problem !== undefined ? { problem } : {}) } }
}

/** The declared outputs of a run as float32 tensors, in `outputNames` order, or why one cannot be. */
export const collectOutputs = (
  results: InferenceSession.OnnxValueMapType,
  outputNames: ReadonlyArray<string>
): Record<string, OutputTensor> | string => {
  const out: Record<string, OutputTensor> = {}
  for (const name of outputNames) {
    const converted = toOutputTensor(name, results[name])
    if (typeof converted === "string") return converted
    out[name] = converted
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Worker loop

type RunRequest = Extract<ToWorker, { type: "run" }>

/** A run waiting its turn, with when it was posted (on this thread's clock: ORT blocks this thread, so arrival is seen late). */
interface Queued {
  readonly request: RunRequest
  readonly posted: number
}

const STOPPED = Symbol("stopped")

/** Runs `native` with the busy flag up, unless the process is exiting (then `STOPPED`, nothing started). */
const guarded = async <A>(control: Int32Array, native: () => Promise<A>): Promise<A | typeof STOPPED> => {
  // Flag first, then check: with the main thread's store-then-wait, one side always sees the other.
  Atomics.store(control, CONTROL_BUSY, 1)
  try {
    if (Atomics.load(control, CONTROL_STOP) === 1) return STOPPED
    return await native()
  } finally {
    Atomics.store(control, CONTROL_BUSY, 0)
    Atomics.notify(control, CONTROL_BUSY)
  }
}

const send = (port: MessagePort, message: FromWorker, transfer: ReadonlyArray<TransferListItem>): void => {
  try {
    port.postMessage(message, [...transfer])
  } catch {
    // A buffer ORT will not let go of (non-detachable) is copied instead of moved.
    port.postMessage(message)
  }
}

const inputBuffersOf = (request: RunRequest): Set<ArrayBuffer> => {
  const buffers = new Set<ArrayBuffer>()
  for (const feed of request.feeds) if (feed.data.buffer instanceof ArrayBuffer) buffers.add(feed.data.buffer)
  return buffers
}

/** Answers `request` without running it, handing its input buffers back. */
const reject = (port: MessagePort, request: RunRequest, reason: string): void => {
  const buffers = [...inputBuffersOf(request)]
  send(port, { type: "runFailed", id: request.id, reason, spare: buffers }, buffers)
}

/** Runs one request; `previousEnd` is when the run before it ended. Resolves to when this one ended. */
const runOne = async (
  session: InferenceSession,
  { request, posted }: Queued,
  previousEnd: number,
  port: MessagePort,
  control: Int32Array
): Promise<number> => {
  const inputBuffers = inputBuffersOf(request)
  // Waiting counts only while an earlier run still held the session, not the hand-off itself.
  const waitMs = Math.max(0, Math.min(performance.now(), previousEnd) - posted)
  let end = previousEnd
  try {
    const feeds: Record<string, Tensor> = {}
    for (const feed of request.feeds) feeds[feed.name] = toOrtTensor(feed)
    const start = performance.now()
    const results = await guarded(control, () => session.run(feeds))
    end = performance.now()
    // The process is exiting: nobody waits for the answer.
    if (results === STOPPED) return end
    const outputs = collectOutputs(results, session.outputNames)
    if (typeof outputs === "string") {
      reject(port, request, outputs)
      return end
    }
    const outputBuffers = new Set<ArrayBuffer>()
    for (const o of Object.values(outputs)) if (o.data.buffer instanceof ArrayBuffer) outputBuffers.add(o.data.buffer)
    // An input buffer that ORT handed back as an output belongs to the caller now, not to the refill pool.
    const spare = [...inputBuffers].filter((b) => !outputBuffers.has(b))
    const timing: RunTiming = { runMs: end - start, waitMs }
    send(port, { type: "result", id: request.id, outputs, timing, spare }, [...outputBuffers, ...spare])
  } catch (cause) {
    reject(port, request, reasonOf(cause))
  }
  return end
}

const serve = async (port: MessagePort, { spec, control }: WorkerInit): Promise<void> => {
  let session: InferenceSession
  let poolPriority: PoolPriority | undefined
  try {
    const { loaded, priority } = await loadWithPoolPriority(spec.poolThreadNice, () =>
      guarded(control, () => InferenceSession.create(spec.modelPath, ortSessionOptions(spec))))
    if (loaded === STOPPED) return
    session = loaded
    poolPriority = priority
  } catch (cause) {
    // Nothing listens on the port afterwards, so the worker ends on its own.
    return send(port, { type: "loadFailed", reason: reasonOf(cause) }, [])
  }

  const queue: Array<Queued> = []
  let lastEnd = 0
  let draining = false
  let releaseRequested = false

  const release = async () => {
    port.removeAllListeners("message")
    try {
      await guarded(control, () => session.release())
      send(port, { type: "released" }, [])
    } catch (cause) {
      send(port, { type: "released", error: reasonOf(cause) }, [])
    }
  }

  const drain = async () => {
    if (draining) return
    draining = true
    for (;;) {
      // One event-loop turn before picking the next run, so cancels that arrived meanwhile apply.
      await new Promise<void>((resolve) => setImmediate(resolve))
      const next = queue.shift()
      if (next === undefined) break
      lastEnd = await runOne(session, next, lastEnd, port, control)
    }
    draining = false
    if (releaseRequested) await release()
  }

  port.on("message", (message: ToWorker) => {
    switch (message.type) {
      case "run":
        queue.push({ request: message, posted: message.sentAt - performance.timeOrigin })
        void drain()
        return
      case "cancel": {
        const at = queue.findIndex((q) => q.request.id === message.id)
        const [cancelled] = at >= 0 ? queue.splice(at, 1) : []
        if (cancelled !== undefined) reject(port, cancelled.request, "cancelled before it started")
        return
      }
      case "release":
        releaseRequested = true
        void drain()
        return
    }
  })

  send(port, {
    type: "ready",
    inputNames: [...session.inputNames],
    outputNames: [...session.outputNames],
    inputs: session.inputMetadata.map(toValueInfo),
    outputs: session.outputMetadata.map(toValueInfo),
    ...(poolPriority !== undefined ? { poolPriority } : {})
  }, [])
}

// Importing this module for its helpers (main thread, or a test runner's own workers) starts nothing.
if (!isMainThread && parentPort !== null && isWorkerInit(workerData)) void serve(parentPort, workerData)
