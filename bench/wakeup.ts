/**
 * The machine's wake-up floor: what one request pays for crossing a process and a thread boundary
 * after an idle gap, with no runtime at all. A bare Node `net` echo server in a child process and a
 * bare worker thread that echoes a message; the client waits `gap` ms (what one camera's model
 * run leaves idle), then times one round trip to each.
 *
 *   npx tsx bench/wakeup.ts [--json] [--rounds N]
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import { median } from "../src/ipc/loadgen.js"
import { isMainModule, jsonOutput, option } from "./cli.js"

export interface WakeupRow {
  readonly idleGapMs: number
  /** Median round trip of 300 bytes over a Unix socket to another process. */
  readonly socketRoundTripMs: number
  /** Median round trip of a message to a worker thread and back. */
  readonly threadRoundTripMs: number
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
  const server = spawn(process.execPath, ["-e", ECHO_SERVER, socketPath], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
  const listening = new Promise((resolve) => server.once("message", resolve))
  const worker = new Worker(ECHO_THREAD, { eval: true })
  const online = new Promise((resolve) => worker.once("online", resolve))
  try {
    await Promise.all([listening, online])
    const socket = net.connect(socketPath)
    await new Promise((resolve) => socket.once("connect", resolve))
    const payload = "x".repeat(300)
    const rows: Array<WakeupRow> = []
    for (const gap of options.gaps ?? [0, 33]) {
      const viaSocket: Array<number> = []
      const viaThread: Array<number> = []
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
      }
      rows.push({ idleGapMs: gap, socketRoundTripMs: median(viaSocket), threadRoundTripMs: median(viaThread) })
    }
    socket.destroy()
    return rows
  } finally {
    server.kill()
    await worker.terminate()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

export const formatWakeupRow = (r: WakeupRow): string =>
  `idle gap ${String(r.idleGapMs).padStart(3)} ms: socket round trip ${r.socketRoundTripMs.toFixed(3)} ms, thread round trip ${r.threadRoundTripMs.toFixed(3)} ms`

if (isMainModule(import.meta.url)) {
  const json = jsonOutput()
  const rounds = Number(option("rounds") ?? 60)
  for (const row of await runWakeupBench({ rounds })) console.log(json ? JSON.stringify({ bench: "wakeup", ...row }) : formatWakeupRow(row))
}
