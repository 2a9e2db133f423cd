/**
 * The machine's floor: what one request pays, with no runtime at all, for crossing a process and a
 * thread boundary and for reading its frame, after an idle gap. A bare Node `net` echo server in a
 * child process, a bare worker thread that echoes a message, and a 1920×1080 NV12 frame (3.1 MB)
 * in shared memory; the client waits `gap` ms (what one camera's model run leaves idle), then
 * times one round trip to each, or one open/read/close of the frame into a reused buffer.
 *
 *   npx tsx bench/wakeup.ts [--json] [--rounds N]
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import { sharedMemoryDir } from "../src/frames/publish.js"
import { median } from "../src/ipc/loadgen.js"
import { isMainModule, jsonOutput, option } from "./cli.js"

export interface WakeupRow {
  readonly idleGapMs: number
  /** Median round trip of 300 bytes over a Unix socket to another process. */
  readonly socketRoundTripMs: number
  /** Median round trip of a message to a worker thread and back. */
  readonly threadRoundTripMs: number
  /** Median open, read and close of a 1920×1080 NV12 frame (3.1 MB) from shared memory into a reused buffer. */
  readonly frameReadMs: number
}

const FRAME_BYTES = (1920 * 1080 * 3) / 2

const readFrame = (file: string, into: Buffer): void => {
  const fd = fs.openSync(file, "r")
  try {
    if (fs.readSync(fd, into, 0, into.length, 0) !== into.length) throw new Error(`${file}: short read`)
  } finally {
    fs.closeSync(fd)
  }
}

/** Plain JavaScript, so the other side runs no more code than it must. */
const ECHO_SERVER =
  `require("node:net").createServer((s) => s.on("data", (d) => s.write(d))).listen(process.argv[1], () => process.send("up"))`
const ECHO_THREAD = `const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => parentPort.postMessage(m))`

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const runWakeupBench = async (options: { gaps?: ReadonlyArray<number>; rounds?: number } = {}): Promise<Array<WakeupRow>> => {
  const rounds = options.rounds ?? 60
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ruth-bench-wakeup-"))
  const socketPath = path.join(dir, "echo.sock")
  const frameFile = path.join(sharedMemoryDir(), `ruth-bench-wakeup-${process.pid}.nv12`)
  const server = spawn(process.execPath, ["-e", ECHO_SERVER, socketPath], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
  const listening = new Promise((resolve) => server.once("message", resolve))
  const worker = new Worker(ECHO_THREAD, { eval: true })
  const online = new Promise((resolve) => worker.once("online", resolve))
  try {
    await Promise.all([listening, online])
    fs.writeFileSync(frameFile, Buffer.alloc(FRAME_BYTES, 0x80))
    const frame = Buffer.alloc(FRAME_BYTES)
    const socket = net.connect(socketPath)
    await new Promise((resolve) => socket.once("connect", resolve))
    const payload = "x".repeat(300)
    const rows: Array<WakeupRow> = []
    for (const gap of options.gaps ?? [0, 33]) {
      const viaSocket: Array<number> = []
      const viaThread: Array<number> = []
      const reads: Array<number> = []
      for (let i = 0; i < rounds + 5; i++) {
        if (gap > 0) await sleep(gap)
        let t0 = performance.now()
        socket.write(payload)
        await new Promise((resolve) => socket.once("data", resolve))
        if (i >= 5) viaSocket.push(performance.now() - t0)
        if (gap > 0) await sleep(gap)
        t0 = performance.now()
        worker.postMessage(i)
        await new Promise((resolve) => worker.once("message", resolve))
        if (i >= 5) viaThread.push(performance.now() - t0)
        if (gap > 0) await sleep(gap)
        t0 = performance.now()
        readFrame(frameFile, frame)
        if (i >= 5) reads.push(performance.now() - t0)
      }
      rows.push({
        idleGapMs: gap,
        socketRoundTripMs: median(viaSocket),
        threadRoundTripMs: median(viaThread),
        frameReadMs: median(reads)
      })
    }
    socket.destroy()
    return rows
  } finally {
    server.kill()
    await worker.terminate()
    fs.rmSync(dir, { recursive: true, force: true })
    fs.rmSync(frameFile, { force: true })
  }
}

export const formatWakeupRow = (r: WakeupRow): string =>
  `idle gap ${String(r.idleGapMs).padStart(3)} ms: socket round trip ${r.socketRoundTripMs.toFixed(3)} ms, ` +
  `thread round trip ${r.threadRoundTripMs.toFixed(3)} ms, frame read ${r.frameReadMs.toFixed(3)} ms`

if (isMainModule(import.meta.url)) {
  const json = jsonOutput()
  const rounds = Number(option("rounds") ?? 60)
  for (const row of await runWakeupBench({ rounds })) console.log(json ? JSON.stringify({ bench: "wakeup", ...row }) : formatWakeupRow(row))
}
