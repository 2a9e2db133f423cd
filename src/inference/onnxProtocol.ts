/**
 * What the two ends of an ONNX session share: the plain-data shapes of a model's inputs and
 * outputs, and the messages between the main thread (OnnxSession.ts) and the worker that owns the
 * native session (onnxWorker.ts).
 *
 * Plain types and constants only, with no runtime imports: the worker thread loads it without
 * Effect, and the main thread without onnxruntime-node.
 */
import type { OutputTensor } from "./postprocess/types.js"

export type ExecutionProvider = "cpu" | "cuda"

/** A model input or output as the model declares it; a string dim is symbolic (dynamic). */
export interface ValueInfo {
  readonly name: string
  /** e.g. `"float32"`, `"uint8"`; `null` for non-tensor values (maps, sequences). */
  readonly elementType: string | null
  /** Empty when the model declares no shape. */
  readonly dims: ReadonlyArray<number | string>
}

export type InputElementType = "float32" | "uint8"

/** One input for a run; the data is read in place, never retained after the run (a borrowed input is taken over, see `borrowInput`). */
export interface InputTensor {
  readonly data: Float32Array | Uint8Array
  readonly dims: ReadonlyArray<number>
  readonly type: InputElementType
}

/** What a session is created from; plain data so it can travel as `workerData`. */
export interface SessionSpec {
  readonly modelPath: string
  readonly executionProviders: ReadonlyArray<ExecutionProvider>
  readonly intraOpThreads?: number
  readonly interOpThreads?: number
  /** The nice value for the threads ORT starts (see `loadWithPoolPriority`); absent or 0: unchanged. */
  readonly poolThreadNice?: number
}

/** What `loadWithPoolPriority` did to the threads a session started. */
export interface PoolPriority {
  /** The nice value asked for. */
  readonly nice: number
  /** Threads started while the session loaded (ORT's thread pools) that now run at `nice` (or were already lower). */
  readonly lowered: number
  /** Why none, or not all, of them could be lowered. */
  readonly problem?: string
}

export const reasonOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const WORKER_KIND = "@ruth-ai/model-runtime/onnx-session"

/** Slot of the control block that is 1 while the worker is in (or about to enter) a native ORT call. */
export const CONTROL_BUSY = 0
/** Slot of the control block the main thread sets to 1 when the process exits: start no native call. */
export const CONTROL_STOP = 1

/** A control block shared by the main thread and one worker. */
export const makeControl = (): Int32Array => new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT))

export interface WorkerInit {
  readonly kind: typeof WORKER_KIND
  readonly spec: SessionSpec
  readonly control: Int32Array
}

export const workerInit = (spec: SessionSpec, control: Int32Array): WorkerInit => ({ kind: WORKER_KIND, spec, control })

export const isWorkerInit = (value: unknown): value is WorkerInit =>
  typeof value === "object" && value !== null && "kind" in value && value.kind === WORKER_KIND

export interface WireInput extends InputTensor {
  readonly name: string
}

export type ToWorker =
  /** `sentAt`: when the main thread posted it, as `performance.timeOrigin + performance.now()` there. */
  | { readonly type: "run"; readonly id: number; readonly feeds: ReadonlyArray<WireInput>; readonly sentAt: number }
  | { readonly type: "cancel"; readonly id: number }
  | { readonly type: "release" }

export interface ReadyMessage {
  readonly type: "ready"
  readonly inputNames: ReadonlyArray<string>
  readonly outputNames: ReadonlyArray<string>
  readonly inputs: ReadonlyArray<ValueInfo>
  readonly outputs: ReadonlyArray<ValueInfo>
  readonly poolPriority?: PoolPriority
}

/** Milliseconds, timed on the worker: ORT's run, and the wait for earlier runs to finish before it. */
export interface RunTiming {
  readonly runMs: number
  readonly waitMs: number
}

export type RunReply =
  | {
    readonly type: "result"
    readonly id: number
    readonly outputs: Record<string, OutputTensor>
    readonly timing: RunTiming
    readonly spare: ReadonlyArray<ArrayBuffer>
  }
  | { readonly type: "runFailed"; readonly id: number; readonly reason: string; readonly spare: ReadonlyArray<ArrayBuffer> }

export type FromWorker =
  | ReadyMessage
  | { readonly type: "loadFailed"; readonly reason: string }
  | RunReply
  /** `error` is set when ORT failed to release the session (the worker is done either way). */
  | { readonly type: "released"; readonly error?: string }
