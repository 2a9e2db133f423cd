/**
 * The floor for bench/e2e: the same model, frames and framing with no runtime at all. One thread
 * does, per request and in line: JSON.parse, open/read/close of the raw frame into one reused
 * buffer, `preprocess` into one reused tensor (the runtime's own kernels, its fastest), ORT's
 * session.run on this thread (same session options and pool-thread nice value as the container),
 * db_text decoding and JSON.stringify of the answer. No confinement or geometry checks, no
 * validation, no worker thread, no Effect, nothing held for other requests: it answers what
 * the container answers for a well-formed request, with nothing a container needs besides.
 *
 * Only meaningful for one camera at a time (runs block this thread, so a second camera's
 * request would wait unseen). Answers carry the stage fields the container's do
 * (frame_read_ms, preprocess_ms, inference_ms, postprocess_ms, server_time_ms).
 *
 * Usage: tsx bench/servers/bareModel.ts SOCKET_PATH MODEL_DIR
 */
import * as fs from "node:fs"
import * as net from "node:net"
import { Effect } from "effect"
import { InferenceSession, Tensor } from "onnxruntime-node"
import { loadModelConfig } from "../../src/config/ModelConfig.js"
import { encodeMessage, FrameDecoder } from "../../src/contract/codec.js"
import { preprocess, tensorDims, tensorLength } from "../../src/frames/preprocess.js"
import { loadWithPoolPriority, ortSessionOptions } from "../../src/inference/onnxWorker.js"
import { decodeDbText } from "../../src/inference/postprocess/dbText.js"

const [socketPath, modelDir] = process.argv.slice(2) as [string, string]
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
const { loaded: session } = await loadWithPoolPriority(config.backend.pool_thread_nice, () =>
  InferenceSession.create(
    loaded.weightsPath,
    ortSessionOptions({
      modelPath: loaded.weightsPath,
      executionProviders: ["cpu"],
      ...(config.backend.intra_op_threads > 0 ? { intraOpThreads: config.backend.intra_op_threads } : {}),
      ...(config.backend.inter_op_threads > 0 ? { interOpThreads: config.backend.inter_op_threads } : {})
    })
  ))
const inputName = config.backend.input_name ?? session.inputNames[0]!
const outputName = session.outputNames[0]!
const pre = loaded.preprocess
const tensor = new Float32Array(tensorLength(pre))
const dims = [...tensorDims(pre)]
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
  const prepared = preprocess({ format: "NV12", width, height, stride: width, data: frame }, pre, tensor)
  const t2 = performance.now()
  const results = await session.run({ [inputName]: new Tensor("float32", tensor, dims) })
  const t3 = performance.now()
  const output = results[outputName]!
  const decoded = decodeDbText({ dims: [...output.dims], data: output.data as Float32Array }, prepared.transform, dbText)
  if (decoded._tag === "Left") throw decoded.left
  const t4 = performance.now()
  return {
    model_id: request.model_id,
    camera_id: request.camera_id,
    frame_id: request.frame_metadata.frame_id ?? 0,
    detections: decoded.right,
    metadata: {
      frame_read_ms: t1 - t0,
      preprocess_ms: t2 - t1,
      inference_ms: t3 - t2,
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
process.on("SIGTERM", () => server.close(() => session.release().finally(() => process.exit(0))))
