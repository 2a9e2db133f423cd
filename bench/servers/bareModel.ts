/**
 * The floor for bench/e2e: the same model, frames and framing with no runtime at all. One thread
 * does, per request and in line: JSON.parse, open/read/close of the raw frame into one reused
 * buffer, `preprocess` into one reused tensor (the runtime's own kernels, its fastest), ORT's
 * session.run on this thread (same session options and pool-thread nice value as the container),
 * db_text decoding and JSON.stringify of the answer. No confinement or geometry checks, no
 * validation, no worker thread, no Effect, nothing held for other requests: it answers what
 * the container answers for a well-formed request, with nothing a container needs besides.
 *
 * `--worker`: the floor for a server that keeps the model off its event loop, as the container
 * must (its deadline answers TIMEOUT while a run goes on). The same, except that session.run
 * happens in a bare worker thread: the tensor moves there in one message and comes back with
 * the output in another, nothing else.
 *
 * Only meaningful for one camera at a time (no queue, no second tensor: a second camera's
 * request would wait unseen). Answers carry the stage fields the container's do (frame_read_ms,
 * preprocess_ms, handoff_ms with --worker, inference_ms, postprocess_ms, server_time_ms).
 *
 * Usage: tsx bench/servers/bareModel.ts SOCKET_PATH MODEL_DIR [--worker]
 */
import * as fs from "node:fs"
import * as net from "node:net"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import { Effect, Result } from "effect"
import { InferenceSession, Tensor } from "onnxruntime-node"
import { loadModelConfig } from "../../src/config/ModelConfig.js"
import { toPreprocessSettings } from "../../src/inference/preprocessSettings.js"
import { encodeMessage, FrameDecoder } from "../../src/contract/codec.js"
import { preprocess, tensorDims, tensorLength } from "../../src/frames/preprocess.js"
import type { SessionSpec } from "../../src/inference/onnxProtocol.js"
import { loadWithPoolPriority, ortSessionOptions } from "../../src/inference/onnxWorker.js"
import { decodeDbText } from "../../src/inference/postprocess/dbText.js"
import type { OutputTensor } from "../../src/inference/postprocess/types.js"

const [socketPath, modelDir] = process.argv.slice(2) as [string, string]
const inWorker = process.argv.includes("--worker")
const loaded = await Effect.runPromise(loadModelConfig(modelDir))
const { config } = loaded
const post = config.postprocess
if (post.kind !== "db_text") throw new Error(`bareModel serves db_text models, ${modelDir} has ${post.kind}`)
const dbText = {
  threshold: post.threshold,
  boxThreshold: post.box_threshold,
  unclipRatio: post.unclip_ratio,
  minArea: post.min_area,
  maxDetections: post.max_detections
}
const sessionSpec: SessionSpec = {
  modelPath: loaded.weightsPath,
  executionProviders: ["cpu"],
  ...(config.backend.intra_op_threads > 0 ? { intraOpThreads: config.backend.intra_op_threads } : {}),
  ...(config.backend.inter_op_threads > 0 ? { interOpThreads: config.backend.inter_op_threads } : {})
}
const pre = toPreprocessSettings(loaded.config)
let tensor = new Float32Array(tensorLength(pre))
const dims = [...tensorDims(pre)]

/** Runs the model on `tensor` (its output and ORT's own run time), and ends the session. */
interface Model {
  readonly run: () => Promise<{ readonly output: OutputTensor; readonly runMs: number }>
  readonly release: () => Promise<unknown>
}

/**
 * The worker: plain CommonJS, so it runs no more than it must. It loads the runtime's helpers
 * (the container's session options and pool-thread nice value) through tsx, as OnnxSession's
 * worker does from source, creates the session and answers each tensor with ORT's output.
 */
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads")
const { createRequire } = require("node:module")
const local = createRequire(workerData.helpers)
local("tsx/cjs/api").register()
const { loadWithPoolPriority, ortSessionOptions } = local(workerData.helpers)
const { InferenceSession, Tensor } = local("onnxruntime-node")
const create = () => InferenceSession.create(workerData.spec.modelPath, ortSessionOptions(workerData.spec))
loadWithPoolPriority(workerData.nice, create).then(({ loaded: session }) => {
  const inputName = workerData.input ?? session.inputNames[0]
  const outputName = session.outputNames[0]
  parentPort.on("message", async ({ data, dims }) => {
    const start = performance.now()
    const results = await session.run({ [inputName]: new Tensor("float32", data, dims) })
    const runMs = performance.now() - start
    const out = results[outputName]
    parentPort.postMessage({ runMs, input: data, dims: out.dims, data: out.data }, [data.buffer, out.data.buffer])
  })
  parentPort.postMessage("ready")
})`

const inlineModel = async (): Promise<Model> => {
  const { loaded: session } = await loadWithPoolPriority(config.backend.pool_thread_nice, () =>
    InferenceSession.create(loaded.weightsPath, ortSessionOptions(sessionSpec)))
  const inputName = config.backend.input_name ?? session.inputNames[0]!
  const outputName = session.outputNames[0]!
  return {
    run: async () => {
      const start = performance.now()
      const results = await session.run({ [inputName]: new Tensor("float32", tensor, dims) })
      const runMs = performance.now() - start
      const output = results[outputName]!
      return { output: { dims: [...output.dims], data: output.data as Float32Array }, runMs }
    },
    release: () => session.release()
  }
}

const workerModel = async (): Promise<Model> => {
  const helpers = fileURLToPath(new URL("../../src/inference/onnxWorker.ts", import.meta.url))
  const input = config.backend.input_name
  const worker = new Worker(WORKER, { eval: true, workerData: { helpers, spec: sessionSpec, nice: config.backend.pool_thread_nice, input } })
  await new Promise((resolve, reject) => {
    worker.once("message", resolve)
    worker.once("error", reject)
  })
  // A run that cannot answer must not leave the bench's camera waiting: end the server, which ends its connection.
  worker.on("error", (error) => {
    process.stderr.write(`bare model worker: ${error}\n`)
    process.exit(1)
  })
  return {
    run: () =>
      new Promise((resolve) => {
        worker.once("message", (m: { runMs: number; input: Float32Array<ArrayBuffer>; dims: ReadonlyArray<number>; data: Float32Array }) => {
          tensor = m.input
          resolve({ output: { dims: m.dims, data: m.data }, runMs: m.runMs })
        })
        worker.postMessage({ data: tensor, dims }, [tensor.buffer])
      }),
    release: () => worker.terminate()
  }
}

const model = await (inWorker ? workerModel() : inlineModel())
let frame = Buffer.alloc(0)

interface Request {
  readonly model_id: string
  readonly camera_id: string
  readonly frame_reference: string
  readonly frame_metadata: { readonly width: number; readonly height: number; readonly frame_id?: unknown }
}

const infer = async (payload: Uint8Array) => {
  const t0 = performance.now()
  const request = JSON.parse(Buffer.from(payload).toString("utf8")) as Request
  const { width, height } = request.frame_metadata
  const bytes = width * height * 3 / 2
  if (frame.length !== bytes) frame = Buffer.allocUnsafeSlow(bytes)
  const fd = fs.openSync(request.frame_reference, "r")
  try {
    fs.readSync(fd, frame, 0, bytes, 0)
  } finally {
    fs.closeSync(fd)
  }
  const t1 = performance.now()
  const prepared = Result.getOrThrow(preprocess({ format: "NV12", width, height, stride: width, data: frame }, pre, tensor))
  const t2 = performance.now()
  const { output, runMs } = await model.run()
  const t3 = performance.now()
  const decoded = decodeDbText(output, prepared.transform, dbText)
  if (decoded._tag === "Failure") throw decoded.failure
  const t4 = performance.now()
  return {
    model_id: request.model_id,
    camera_id: request.camera_id,
    frame_id: request.frame_metadata.frame_id ?? 0,
    detections: decoded.success,
    metadata: {
      frame_read_ms: t1 - t0,
      preprocess_ms: t2 - t1,
      ...(inWorker ? { handoff_ms: t3 - t2 - runMs } : {}),
      inference_ms: runMs,
      postprocess_ms: t4 - t3,
      server_time_ms: performance.now() - t0
    },
    error: null
  }
}

fs.rmSync(socketPath, { force: true })
const server = net.createServer((socket) => {
  const decoder = new FrameDecoder()
  let chain = Promise.resolve()
  socket.on("data", (chunk) => {
    for (const event of decoder.push(chunk)) {
      if (event._tag !== "Message") return socket.destroy()
      const payload = event.payload
      // One connection's answers in request order.
      chain = chain.then(() => infer(payload)).then((answer) => void socket.write(encodeMessage(answer)))
    }
  })
  socket.on("error", () => {})
})
server.listen({ path: socketPath, backlog: 511 }, () => process.stdout.write("ready\n"))
process.on("SIGTERM", () => server.close(() => void model.release().finally(() => process.exit(0))))
