/**
 * Is the model ever idle while eligible work waits? Serves the text-detection example
 * (`ruth-model serve`, a child process) and sends it open-loop cameras (one connection per
 * request, 1920×1080 NV12 frames), then sums the stage timings of the ok answers over the time
 * they came in: the model's turn (frame read + preprocess + hand-off + session.run) per second of
 * wall time is how busy it was; session.run's median against an unloaded run says how much
 * slower each run got from sharing the cores.
 *
 *   npx tsx bench/modelBusy.ts [--fps 30,30,30,30] [--duration S] [--env KEY=V,KEY=V]
 *
 * Default env: RUTH_PER_CAMERA=latest, RUTH_MAX_FRAME_AGE_MS=200 (the live-video policy).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { isMainModule, option } from "./cli.js"
import { startServer, stopChild } from "./e2e.js"
import { imageToNv12 } from "../src/frames/image.js"
import { publishRaw, sharedMemoryDir } from "../src/frames/publish.js"
import { median } from "../src/ipc/loadgen.js"
import { call } from "../test/support/harness.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** The stages of the model's turn, then the rest, as the ONNX backend reports them. */
export const TURN_STAGES = ["frame_read_ms", "preprocess_ms", "handoff_ms", "inference_ms"] as const
const OTHER_STAGES = ["postprocess_ms", "session_wait_ms"] as const

export interface ModelBusyResult {
  readonly ok: number
  readonly notOk: number
  readonly okPerSecond: number
  /** Medians of each stage over the ok answers, ms. */
  readonly medians: Readonly<Record<string, number>>
  /** Sum of the turn's stages per second of wall time (1 = the model's turn never ended). */
  readonly busy: number
}

export const runModelBusy = async (options: {
  readonly fps: ReadonlyArray<number>
  readonly durationMs: number
  readonly env: Readonly<Record<string, string>>
}): Promise<ModelBusyResult> => {
  const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), "ruth-bench-busy-"))
  const socketPath = path.join(socketDir, "vas_model_text-detection.sock")
  const nv12 = await imageToNv12(path.join(root, "examples/scenes/street-sign.png"), { width: 1920, height: 1080 })
  const frame = path.join(sharedMemoryDir(), `ruth-bench-busy-${process.pid}.nv12`)
  publishRaw(frame, nv12)
  const server = await startServer(socketDir, path.join(root, "examples/models"), options.env)
  const metas: Array<Record<string, number>> = []
  let notOk = 0
  let firstOk = 0
  let lastOk = 0
  try {
    const pending: Array<Promise<void>> = []
    const started = performance.now()
    await Promise.all(options.fps.map((fps, k) =>
      new Promise<void>((resolve) => {
        let frameId = 0
        const send = () => {
          if (performance.now() - started >= options.durationMs) return resolve()
          frameId++
          const request = {
            frame_reference: frame,
            frame_metadata: { width: nv12.width, height: nv12.height, format: "NV12", frame_id: frameId },
            camera_id: `cam-${k + 1}`,
            model_id: "text-detection",
            timestamp: Date.now() / 1000
          }
          pending.push(call(socketPath, request).then((reply) => {
            if (reply.error !== null) return void notOk++
            lastOk = performance.now()
            if (firstOk === 0) firstOk = lastOk
            metas.push(reply.metadata as Record<string, number>)
          }, () => void notOk++))
          setTimeout(send, 1000 / fps)
        }
        // Cameras spread over one frame interval, as independent cameras would be.
        setTimeout(send, ((1000 / fps) * k) / options.fps.length)
      })
    ))
    await Promise.all(pending)
  } finally {
    await stopChild(server)
    fs.rmSync(frame, { force: true })
    fs.rmSync(socketDir, { recursive: true, force: true })
  }
  const seconds = (lastOk - firstOk) / 1000
  const medians: Record<string, number> = {}
  for (const stage of [...TURN_STAGES, ...OTHER_STAGES]) medians[stage] = median(metas.map((m) => m[stage] ?? 0))
  const turnMs = metas.reduce((sum, m) => sum + TURN_STAGES.reduce((s, stage) => s + (m[stage] ?? 0), 0), 0)
  return {
    ok: metas.length,
    notOk,
    okPerSecond: seconds > 0 ? metas.length / seconds : 0,
    medians,
    busy: seconds > 0 ? turnMs / 1000 / seconds : 0
  }
}

if (isMainModule(import.meta.url)) {
  const fps = (option("fps") ?? "30,30,30,30").split(",").map(Number)
  const env = Object.fromEntries(
    (option("env") ?? "RUTH_PER_CAMERA=latest,RUTH_MAX_FRAME_AGE_MS=200").split(",").map((kv) => kv.split("=") as [string, string])
  )
  const r = await runModelBusy({ fps, durationMs: Number(option("duration") ?? 10) * 1000, env })
  console.log(`${os.cpus().length} vCPUs, ${os.cpus()[0]?.model ?? "?"}, Node ${process.version}; fps ${fps.join(",")}; ${JSON.stringify(env)}`)
  console.log(`ok ${r.ok}, not ok ${r.notOk}, ok/s ${r.okPerSecond.toFixed(1)}, model's turn busy ${(r.busy * 100).toFixed(1)}% of the time`)
  console.log(Object.entries(r.medians).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", "))
}
