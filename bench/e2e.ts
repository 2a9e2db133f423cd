/**
 * End-to-end benchmark with the real model: the text-detection container
 * (`ruth-model serve`, a child process) fed 1920x1080 NV12 frames from
 * /dev/shm by 1, 2 and 4 concurrent cameras, each a persistent connection
 * sending its next frame when the previous answer arrives.
 *
 *   npx tsx bench/e2e.ts [--duration S] [--cameras 1,2,4] [--client plain|model-client]
 *                        [--pool-thread-nice N] [--no-floor] [--json]
 *
 * The cameras are plain callback clients (framing and JSON, as the core's
 * callers are, and as bench/ipc's load generator is), so the numbers are the
 * container's; `--client model-client` drives them through this package's
 * Effect `ModelClient` instead, which adds its own cost to socket+codec.
 *
 * Per stage (medians): socket + codec (the round trip minus the server's
 * `server_time_ms`: both ends' framing, JSON and the socket), frame read,
 * preprocessing, hand-off (to the inference thread and back), session wait
 * (queued behind other cameras' runs), session.run (ORT's own run, timed on
 * its thread), post-processing, and runtime (the rest of `server_time_ms`:
 * request and response validation, scheduling, the handler's glue). The
 * stages of one request add up to its round trip. The non-model share is the
 * median of (round trip - session.run - session wait) over the median round
 * trip: waiting while the model runs another camera's frame is model time.
 *
 * The floors: right after the container's one-camera row, the same camera, frames and model
 * against bench/servers/bareModel.ts — one thread reading, preprocessing (the same kernels),
 * running ORT in line and answering, with no runtime at all (no checks, no Effect) — and then
 * against the same server with ORT in a bare worker thread (`bare-worker`: one message there
 * with the tensor, one back with the output), the least a server pays that keeps the model off
 * its event loop, as the container must. What they leave outside the model is what any Node
 * server pays on this machine; the container's excess over `bare-worker` is the runtime's own
 * cost. `--no-floor` skips them. A `server` field tells the rows apart.
 *
 * `--pool-thread-nice N` serves the model with `backend.pool_thread_nice: N` instead of the
 * example's setting (0: onnxruntime's pool threads keep the runtime's priority), for comparison.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as YAML from "yaml"
import { isMainModule, jsonOutput, option } from "./cli.js"
import { Effect } from "effect"
import { encodeMessage, FrameDecoder, parseJson } from "../src/contract/codec.js"
import type { InferenceRequestInput } from "../src/contract/schema.js"
import { imageToNv12 } from "../src/frames/image.js"
import { publishRaw, sharedMemoryDir } from "../src/frames/publish.js"
import { quantile } from "../src/ipc/loadgen.js"
import { stageTimes, type StageTimes, summariseStages } from "../src/ipc/stages.js"
import { makeClient } from "../src/ipc/ModelClient.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "..")

export type E2eClient = "plain" | "model-client"

/**
 * `container`: `ruth-model serve`; `bare`: bench/servers/bareModel.ts, the floor with no runtime;
 * `bare-worker`: the same with session.run in a bare worker thread (`--worker`), the floor for a
 * server that keeps the model off its event loop.
 */
export type E2eServer = "container" | "bare" | "bare-worker"

export interface E2eRow {
  readonly server: E2eServer
  readonly client: E2eClient
  readonly cameras: number
  readonly frames: number
  readonly fps: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Median milliseconds per stage. */
  readonly stages: {
    readonly socketAndCodec: number
    readonly frameRead: number
    readonly preprocess: number
    readonly handoff: number
    readonly sessionWait: number
    readonly sessionRun: number
    readonly postprocess: number
    readonly runtime: number
  }
  /** Median time outside the model (session.run and the wait for it) over the median end-to-end latency. */
  readonly nonModelShare: number
  /** Median milliseconds outside the model (round trip - session.run - session wait). */
  readonly outsideMs: number
  readonly errors: number
}

/** A models directory holding the text-detection example with `backend` settings patched in. */
const patchedModels = (dir: string, backend: Readonly<Record<string, unknown>>): string => {
  const example = path.join(root, "examples/models/text-detection")
  const yaml = YAML.parse(fs.readFileSync(path.join(example, "model.yaml"), "utf8")) as Record<string, unknown>
  yaml.model_weights = path.resolve(example, String(yaml.model_weights))
  yaml.backend = { ...(yaml.backend as Record<string, unknown> | undefined), ...backend }
  fs.mkdirSync(path.join(dir, "text-detection"), { recursive: true })
  fs.writeFileSync(path.join(dir, "text-detection", "model.yaml"), YAML.stringify(yaml))
  return dir
}

/** Starts `args` under this Node and resolves once it listens on `socket` (within a minute). */
const startListening = async (args: ReadonlyArray<string>, socket: string, name: string, env = process.env): Promise<ChildProcess> => {
  const child = spawn(process.execPath, [...args], { stdio: ["ignore", "ignore", "inherit"], env })
  const deadline = Date.now() + 60_000
  while (!fs.existsSync(socket)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill("SIGTERM")
      throw new Error(`${name} did not start`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return child
}

/** `ruth-model serve` of the text-detection example on `{socketDir}/vas_model_text-detection.sock`, with `env` added. */
export const startServer = (socketDir: string, modelsDir: string, env: Readonly<Record<string, string>> = {}): Promise<ChildProcess> =>
  startListening(
    [path.join(root, "bin/ruth-model.js"), "serve", "--models-dir", modelsDir, "--model-id", "text-detection", "--socket-dir", socketDir],
    path.join(socketDir, "vas_model_text-detection.sock"),
    "text-detection container",
    { ...process.env, RUTH_HEARTBEAT_DIR: socketDir, ...env }
  )

/** The floor: the same model and frames served with no runtime (bench/servers/bareModel.ts). */
const startBareServer = (socket: string, modelDir: string, worker: boolean): Promise<ChildProcess> =>
  startListening(
    ["--import", "tsx", path.join(here, "servers/bareModel.ts"), socket, modelDir, ...(worker ? ["--worker"] : [])],
    socket,
    "bare model server"
  )

/** A reply and its round trip, as a camera saw it. */
type OnReply = (reply: { readonly error?: unknown; readonly metadata?: unknown }, totalMs: number) => void

/**
 * One camera as a plain client: a persistent connection, the next request written when the
 * previous reply has been read and parsed, until `deadline` (at least one request).
 */
const plainCamera = (socketPath: string, request: (frameId: number) => InferenceRequestInput, deadline: number, onReply: OnReply) =>
  new Promise<void>((resolve, reject) => {
    const socket = net.connect(socketPath)
    const decoder = new FrameDecoder(64 * 1024 * 1024)
    let frameId = 0
    let sentAt = 0
    const sendNext = () => {
      if (frameId > 0 && performance.now() >= deadline) {
        socket.end()
        return resolve()
      }
      sentAt = performance.now()
      socket.write(encodeMessage(request(frameId++)))
    }
    socket.once("connect", sendNext)
    socket.on("data", (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        const totalMs = performance.now() - sentAt
        const parsed = event._tag === "Message" ? parseJson(event.payload) : undefined
        if (parsed?.ok !== true || typeof parsed.value !== "object" || parsed.value === null) {
          socket.destroy()
          return reject(new Error("e2e: undecodable reply"))
        }
        onReply(parsed.value, totalMs)
        sendNext()
      }
    })
    socket.on("error", reject)
  })

/** All cameras through `ModelClient` (Effect): the same loop, with the package's client. */
const modelClientCameras = (
  socketPath: string,
  cameras: number,
  request: (cam: number, frameId: number) => InferenceRequestInput,
  deadline: number,
  onReply: OnReply
) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function*() {
        const client = yield* makeClient({ socketPath, timeoutMs: 30_000, poolSize: cameras })
        const all = Array.from({ length: cameras }, (_, c) => c)
        yield* Effect.forEach(all, (cam) =>
          Effect.gen(function*() {
            let frameId = 1
            while (performance.now() < deadline) {
              const t0 = performance.now()
              const reply = yield* client.infer(request(cam, frameId++))
              onReply(reply, performance.now() - t0)
            }
          }), { concurrency: "unbounded" })
      })
    )
  )

/** Measures `cameras` cameras against the server at `socketPath` for `durationMs`. */
const measure = async (
  socketPath: string,
  server: E2eServer,
  cameras: number,
  frames: ReadonlyArray<{ readonly file: string; readonly width: number; readonly height: number }>,
  durationMs: number,
  clientKind: E2eClient
): Promise<E2eRow> => {
  const all = Array.from({ length: cameras }, (_, c) => c)
  const request = (cam: number, frameId: number): InferenceRequestInput => {
    const f = frames[cam]!
    return {
      frame_reference: f.file,
      frame_metadata: { width: f.width, height: f.height, format: "NV12", frame_id: frameId },
      camera_id: `cam${cam}`,
      model_id: "text-detection",
      timestamp: Date.now() / 1000
    }
  }
  const latencies: Array<number> = []
  const times: Array<StageTimes> = []
  let errors = 0
  const record: OnReply = (reply, total) => {
    if (reply.error !== null) {
      errors++
      return
    }
    latencies.push(total)
    const t = stageTimes(reply.metadata, total)
    if (t !== undefined) times.push(t)
  }
  // Warm-up, one request per camera: the first frames of this geometry build caches.
  await Promise.all(all.map((cam) => plainCamera(socketPath, (id) => request(cam, id), 0, () => {})))
  const start = performance.now()
  const deadline = start + durationMs
  if (clientKind === "plain") {
    await Promise.all(all.map((cam) => plainCamera(socketPath, (id) => request(cam, id + 1), deadline, record)))
  } else {
    await modelClientCameras(socketPath, cameras, request, deadline, record)
  }
  const elapsed = performance.now() - start
  const sorted = Float64Array.from(latencies).sort()
  const p50 = quantile(sorted, 0.5)
  const stages = summariseStages(times)
  if (stages === undefined) throw new Error(`e2e: no answer from the ${server} carried stage timings`)
  return {
    server,
    client: clientKind,
    cameras,
    frames: latencies.length,
    fps: (latencies.length * 1000) / elapsed,
    p50Ms: p50,
    p99Ms: quantile(sorted, 0.99),
    stages: {
      socketAndCodec: stages.socketAndCodec,
      frameRead: stages.frameRead,
      preprocess: stages.preprocess ?? 0,
      handoff: stages.handoff ?? 0,
      sessionWait: stages.sessionWait ?? 0,
      sessionRun: stages.model,
      postprocess: stages.postprocess ?? 0,
      runtime: stages.runtime
    },
    nonModelShare: stages.shareOutsideModelAndQueue,
    outsideMs: stages.outsideModelAndQueueMs,
    errors
  }
}

export const stopChild = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

export const runE2eBench = async (
  options: {
    durationMs?: number
    cameras?: ReadonlyArray<number>
    client?: E2eClient
    /** `backend.pool_thread_nice` for this run; the example's own setting when absent. */
    poolThreadNice?: number
    /** Also measure the bare floors (bench/servers/bareModel.ts, inline and with a worker) at one camera, right after the container's one-camera row. Default true. */
    floor?: boolean
    log?: (line: string) => void
  } = {}
): Promise<Array<E2eRow>> => {
  const durationMs = options.durationMs ?? 10_000
  const clientKind = options.client ?? "plain"
  const log = options.log ?? (() => {})
  const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), "ruth-bench-e2e-"))
  const socketPath = path.join(socketDir, "vas_model_text-detection.sock")
  const scenes = ["street-sign", "notice-board", "blank", "street-sign"]
  const frames = await Promise.all(
    scenes.map(async (scene, i) => {
      const nv12 = await imageToNv12(path.join(root, "examples/scenes", `${scene}.png`), { width: 1920, height: 1080 })
      const file = path.join(sharedMemoryDir(), `ruth-bench-e2e-${process.pid}-cam${i}.nv12`)
      publishRaw(file, nv12)
      return { file, width: nv12.width, height: nv12.height }
    })
  )
  const modelsDir = options.poolThreadNice === undefined
    ? path.join(root, "examples/models")
    : patchedModels(path.join(socketDir, "models"), { pool_thread_nice: options.poolThreadNice })
  const children: Array<ChildProcess> = []
  const rows: Array<E2eRow> = []
  try {
    children.push(await startServer(socketDir, modelsDir))
    for (const cameras of options.cameras ?? [1, 2, 4]) {
      const row = await measure(socketPath, "container", cameras, frames, durationMs, clientKind)
      rows.push(row)
      log(formatE2eRow(row))
      if (cameras === 1 && options.floor !== false) {
        for (const server of ["bare", "bare-worker"] as const) {
          const bareSocket = path.join(socketDir, `${server}.sock`)
          const bare = await startBareServer(bareSocket, path.join(modelsDir, "text-detection"), server === "bare-worker")
          children.push(bare)
          const floor = await measure(bareSocket, server, 1, frames, durationMs, "plain")
          await stopChild(bare)
          rows.push(floor)
          log(formatE2eRow(floor))
        }
      }
    }
  } finally {
    for (const child of children) await stopChild(child)
    for (const f of frames) fs.rmSync(f.file, { force: true })
    fs.rmSync(socketDir, { recursive: true, force: true })
  }
  return rows
}

const f1 = (v: number) => v.toFixed(1).padStart(7)
const f2 = (v: number) => v.toFixed(2).padStart(7)

export const E2E_HEADER =
  "server       cameras   fps  p50 ms  p99 ms | socket+codec  frame read  preprocess  hand-off  session wait  session.run  postprocess  runtime | outside ms  non-model share  errors"

export const formatE2eRow = (r: E2eRow): string =>
  `${r.server.padEnd(11)} ${String(r.cameras).padStart(7)} ${r.fps.toFixed(1).padStart(5)} ${f1(r.p50Ms)} ${f1(r.p99Ms)} |` +
  `      ${f2(r.stages.socketAndCodec)}     ${f2(r.stages.frameRead)}     ${f2(r.stages.preprocess)}   ${f2(r.stages.handoff)}       ${f1(r.stages.sessionWait)}      ${f1(r.stages.sessionRun)}      ${f2(r.stages.postprocess)}  ${f2(r.stages.runtime)} |` +
  `    ${f2(r.outsideMs)}           ${(r.nonModelShare * 100).toFixed(1).padStart(5)}%  ${String(r.errors).padStart(6)}`

if (isMainModule(import.meta.url)) {
  const json = jsonOutput()
  const durationMs = Number(option("duration") ?? 10) * 1000
  const cameras = option("cameras")?.split(",").map(Number)
  const client = option("client") ?? "plain"
  if (client !== "plain" && client !== "model-client") throw new Error(`--client must be plain or model-client, got ${client}`)
  const nice = option("pool-thread-nice")
  const poolThreadNice = nice === undefined ? undefined : Number(nice)
  if (poolThreadNice !== undefined && !(Number.isInteger(poolThreadNice) && poolThreadNice >= 0 && poolThreadNice <= 19)) {
    throw new Error(`--pool-thread-nice must be an integer from 0 to 19, got ${nice}`)
  }
  if (!json) console.log(`client: ${client}${poolThreadNice === undefined ? "" : `, pool_thread_nice: ${poolThreadNice}`}\n${E2E_HEADER}`)
  const rows = await runE2eBench({
    durationMs,
    client,
    ...(poolThreadNice !== undefined ? { poolThreadNice } : {}),
    ...(cameras !== undefined ? { cameras } : {}),
    floor: !process.argv.includes("--no-floor"),
    log: json ? () => {} : (line) => console.log(line)
  })
  if (json) for (const row of rows) console.log(JSON.stringify({ bench: "e2e", ...row }))
}
