/**
 * IPC benchmark: a no-op model behind our runtime against a bare Node `net`
 * server with the same framing and no validation, under the same load
 * generator, in one run. Servers run as child processes (one core each side).
 *
 *   npx tsx bench/ipc.ts [--duration S] [--rounds N] [--json]
 *
 * Rows: 1, 8 and 64 clients, persistent and connect-per-request; each the
 * median of N rounds (default 3) of S seconds (default 1). Servers:
 *   bare        the baseline
 *   ours        ModelContainer, no-op handler, frames served from memory (IPC + validation + orchestration)
 *   ours+shm    the same reading a 640x360 NV12 frame from /dev/shm per request (adds open/read/close and a 345 KB copy)
 *   minimal     examples/minimal/main.ts as it is (the template people copy; reads the frame from /dev/shm)
 *
 * `--servers bare,minimal` picks the servers (default: bare, ours, ours+shm); `--connections 8` the rows.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { isMainModule, jsonOutput, option } from "./cli.js"
import { encodeMessage } from "../src/contract/codec.js"
import { type LoadResult, median, runLoad } from "../src/ipc/loadgen.js"

type ServerKind = "bare" | "ours" | "ours+shm" | "minimal"

const SERVER_KINDS: ReadonlyArray<ServerKind> = ["bare", "ours", "ours+shm", "minimal"]

export interface IpcBenchRow {
  readonly server: ServerKind
  readonly connections: number
  readonly mode: "persistent" | "connect-per-request"
  readonly rps: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly errors: number
  /** Ours vs the bare server in the same configuration. */
  readonly rpsRatio?: number
  readonly p99Ratio?: number
  readonly target?: string
  readonly meetsTarget?: boolean
}

const here = path.dirname(fileURLToPath(import.meta.url))
const WIDTH = 640
const HEIGHT = 360

const startServer = async (kind: ServerKind, dir: string, frame: string): Promise<{ child: ChildProcess; socket: string }> => {
  // Each server gets its own directory, so all three can listen at once.
  const socket = kind === "bare" ? path.join(dir, "bare.sock") : path.join(dir, "vas_model_bench.sock")
  fs.rmSync(socket, { force: true })
  const script = kind === "bare" ? "servers/bare.ts" : kind === "minimal" ? "../examples/minimal/main.ts" : "servers/ours.ts"
  const args = kind === "bare" || kind === "minimal" ? (kind === "bare" ? [socket] : []) : [dir, "bench", kind === "ours" ? "memory" : "shm", frame]
  // The example takes its settings from the environment, as in its container.
  const env = kind === "minimal"
    ? { ...process.env, RUTH_MODEL_ID: "bench", RUTH_SOCKET_DIR: dir, RUTH_HEARTBEAT_DIR: dir, RUTH_MAX_INFLIGHT: "1024" }
    : process.env
  return { child: await spawnServer(path.join(here, script), args, socket, env), socket }
}

/** Runs a server script (TypeScript, through tsx, from its own checkout's sources) until its socket appears. */
export const spawnServer = async (
  script: string,
  args: ReadonlyArray<string>,
  socket: string,
  env: NodeJS.ProcessEnv = process.env
): Promise<ChildProcess> => {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", script, ...args], {
    stdio: ["ignore", "ignore", "inherit"],
    env,
    cwd: path.dirname(script)
  })
  const deadline = Date.now() + 20_000
  while (!fs.existsSync(socket)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${script} did not start`)
    await new Promise((r) => setTimeout(r, 25))
  }
  return child
}

export const stopServer = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

const TARGETS: Record<string, { rps: number; label: string }> = {
  "connect-per-request": { rps: 0.7, label: ">=70% rps" },
  "persistent-1": { rps: 0.7, label: ">=70% rps" },
  "persistent-8": { rps: 0.5, label: ">=50% rps" },
  "persistent-64": { rps: 0.5, label: ">=50% rps" }
}

/** A grey 640×360 NV12 frame in shared memory (else in `dir`), and the request the benches send for it. */
export const benchFrame = (dir: string, name: string): { readonly frame: string; readonly message: Uint8Array } => {
  const frame = path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : dir, `ruth-bench-${name}-${process.pid}.nv12`)
  fs.writeFileSync(frame, Buffer.alloc((WIDTH * HEIGHT * 3) / 2, 128))
  const message = encodeMessage({
    frame_reference: frame,
    frame_metadata: { width: WIDTH, height: HEIGHT, format: "NV12", frame_id: 0 },
    camera_id: "bench",
    model_id: "bench",
    timestamp: Date.now() / 1000
  })
  return { frame, message }
}

/**
 * All three servers run side by side (an idle server costs nothing); each
 * configuration is measured on bare, ours and ours+shm back to back, for
 * `rounds` rounds, and each row reports the medians over the rounds — so
 * the machine's drift over a minute does not land on one server only.
 */
export const runIpcBench = async (
  options: {
    durationMs?: number
    rounds?: number
    connections?: ReadonlyArray<number>
    servers?: ReadonlyArray<ServerKind>
    log?: (line: string) => void
  } = {}
): Promise<Array<IpcBenchRow>> => {
  const durationMs = options.durationMs ?? 1000
  const rounds = options.rounds ?? 3
  const connections = options.connections ?? [1, 8, 64]
  const log = options.log ?? (() => {})
  const kinds = options.servers ?? (["bare", "ours", "ours+shm"] as const)
  if (kinds[0] !== "bare") throw new Error("the first server must be bare: the others are compared with it")
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ruth-bench-ipc-"))
  const { frame, message } = benchFrame(dir, "ipc")
  const servers = new Map<ServerKind, { child: ChildProcess; socket: string }>()
  const rows: Array<IpcBenchRow> = []
  try {
    for (const kind of kinds) {
      const serverDir = fs.mkdtempSync(path.join(dir, `${kind.replace("+", "-")}-`))
      const server = await startServer(kind, serverDir, frame)
      servers.set(kind, server)
      // Warm-up: JIT, pools, first connections.
      await runLoad({ socketPath: server.socket, concurrency: 8, durationMs: 1000, connectPerRequest: false, message })
    }
    for (const n of connections) {
      for (const connectPerRequest of [false, true]) {
        const mode = connectPerRequest ? "connect-per-request" : "persistent"
        const samples = new Map<ServerKind, Array<LoadResult>>(kinds.map((k) => [k, []]))
        for (let round = 0; round < rounds; round++) {
          for (const kind of kinds) {
            const socketPath = servers.get(kind)!.socket
            samples.get(kind)!.push(await runLoad({ socketPath, concurrency: n, durationMs, connectPerRequest, message }))
          }
        }
        const summary = (kind: ServerKind) => {
          const rs = samples.get(kind)!
          return {
            rps: median(rs.map((r) => r.rps)),
            p50Ms: median(rs.map((r) => r.latencyMs.p50)),
            p90Ms: median(rs.map((r) => r.latencyMs.p90)),
            p99Ms: median(rs.map((r) => r.latencyMs.p99)),
            errors: rs.reduce((sum, r) => sum + r.errorResponses + r.failures, 0)
          }
        }
        const base = summary("bare")
        const target = TARGETS[connectPerRequest ? mode : `${mode}-${n}`]
        for (const kind of kinds) {
          const s = summary(kind)
          const row: IpcBenchRow = {
            server: kind,
            connections: n,
            mode,
            ...s,
            ...(kind !== "bare"
              ? {
                rpsRatio: s.rps / base.rps,
                p99Ratio: s.p99Ms / base.p99Ms,
                ...(target !== undefined && kind === "ours"
                  ? {
                    target: `${target.label}, p99 <=2x`,
                    meetsTarget: s.rps / base.rps >= target.rps && s.p99Ms / base.p99Ms <= 2
                  }
                  : {})
              }
              : {})
          }
          rows.push(row)
          log(formatRow(row))
        }
      }
    }
  } finally {
    for (const { child } of servers.values()) await stopServer(child)
    fs.rmSync(frame, { force: true })
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

const pct = (x: number | undefined) => (x === undefined ? "" : `${(x * 100).toFixed(0)}%`)

export const formatRow = (r: IpcBenchRow): string =>
  [
    r.server.padEnd(9),
    String(r.connections).padStart(3),
    r.mode.padEnd(20),
    r.rps.toFixed(0).padStart(8),
    r.p50Ms.toFixed(3).padStart(8),
    r.p99Ms.toFixed(3).padStart(8),
    String(r.errors).padStart(6),
    pct(r.rpsRatio).padStart(7),
    (r.p99Ratio === undefined ? "" : `${r.p99Ratio.toFixed(2)}x`).padStart(7),
    r.meetsTarget === undefined ? "" : r.meetsTarget ? "  ok" : "  MISSED"
  ].join(" ")

export const HEADER = "server    conns mode                    req/s  p50 ms   p99 ms errors vs bare p99 vs  target"

if (isMainModule(import.meta.url)) {
  const json = jsonOutput()
  const durationMs = Number(option("duration") ?? 1) * 1000
  const rounds = Number(option("rounds") ?? 3)
  if (!json) console.log(HEADER)
  const servers = option("servers")?.split(",").map((name) => {
    if (!SERVER_KINDS.includes(name as ServerKind)) throw new Error(`unknown server '${name}' (${SERVER_KINDS.join(", ")})`)
    return name as ServerKind
  })
  const connections = option("connections")?.split(",").map(Number)
  const rows = await runIpcBench({
    durationMs,
    rounds,
    ...(servers !== undefined ? { servers } : {}),
    ...(connections !== undefined ? { connections } : {}),
    log: json ? () => {} : (line) => console.log(line)
  })
  if (json) for (const row of rows) console.log(JSON.stringify({ bench: "ipc", ...row }))
}
