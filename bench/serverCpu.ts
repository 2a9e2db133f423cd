/**
 * The server's own CPU per request, for two checkouts of this repository side by side: the runtime
 * with a no-op handler (`bench/servers/ours.ts`, frames in memory) of checkout A and of checkout B,
 * alternated round by round under the same load. CPU time per answer (user + system, read from
 * /proc) is steadier than req/s on a shared machine: it does not depend on who else got the cores.
 *
 *   npx tsx bench/serverCpu.ts --a DIR --b DIR [--rounds 5] [--seconds 3] [--connections 8] [--persistent] [--frames memory|shm]
 *
 * `--env-a K=V[,K=V]` adds environment to A's server only: the same checkout twice with a feature
 * on in A (e.g. `--env-a OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318` for traces).
 * `--frames shm` reads a 640x360 NV12 frame from /dev/shm per request (bench/ipc's `ours+shm`)
 * instead of serving it from memory.
 *
 * A and B default to this checkout; give B an older checkout (e.g. a `git worktree` of main) to
 * see what a change costs per request.
 */
import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { runLoad } from "../src/ipc/loadgen.js"
import { option } from "./cli.js"
import { benchFrame, spawnServer, stopServer } from "./ipc.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const arg = (name: string, fallback: string) => option(name) ?? fallback
const checkouts = { A: path.resolve(arg("a", path.join(here, ".."))), B: path.resolve(arg("b", path.join(here, ".."))) }
const rounds = Number(arg("rounds", "5"))
const seconds = Number(arg("seconds", "3"))
const connections = Number(arg("connections", "8"))
const connectPerRequest = !process.argv.includes("--persistent")
const envA: Record<string, string> = Object.fromEntries(
  (option("env-a") ?? "").split(",").filter((kv) => kv !== "").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])
)
const frames = arg("frames", "memory")
if (frames !== "memory" && frames !== "shm") throw new Error(`--frames must be memory or shm, got ${frames}`)

const ticks = 100 // USER_HZ

/** user + system CPU seconds of a process so far. */
const cpuOf = (pid: number): number => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) / ticks
}

const start = async (which: "A" | "B", dir: string, frame: string): Promise<{ child: ChildProcess; socket: string }> => {
  const socket = path.join(dir, "vas_model_bench.sock")
  fs.rmSync(socket, { force: true })
  const env = which === "A" ? { ...process.env, ...envA } : process.env
  return { child: await spawnServer(path.join(checkouts[which], "bench/servers/ours.ts"), [dir, "bench", frames, frame], socket, env), socket }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const main = async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ruth-bench-cpu-"))
  const { frame, message } = benchFrame(dir, "cpu")
  const results: Record<"A" | "B", { us: Array<number>; rps: Array<number> }> = { A: { us: [], rps: [] }, B: { us: [], rps: [] } }
  try {
    for (let round = 0; round < rounds; round++) {
      for (const which of round % 2 === 0 ? (["A", "B"] as const) : (["B", "A"] as const)) {
        const serverDir = path.join(dir, which)
        fs.mkdirSync(serverDir, { recursive: true })
        const server = await start(which, serverDir, frame)
        try {
          await runLoad({ socketPath: server.socket, concurrency: connections, durationMs: 500, connectPerRequest, message })
          const before = cpuOf(server.child.pid!)
          const r = await runLoad({ socketPath: server.socket, concurrency: connections, durationMs: seconds * 1000, connectPerRequest, message })
          const cpu = cpuOf(server.child.pid!) - before
          if (r.failures > 0) throw new Error(`${which}: ${r.failures} failures (${r.firstFailure})`)
          results[which].us.push((cpu / r.requests) * 1e6)
          results[which].rps.push(r.requests / seconds)
          console.log(`round ${round + 1} ${which}: ${Math.round(r.requests / seconds)} req/s, server CPU ${((cpu / r.requests) * 1e6).toFixed(1)} µs/request`)
        } finally {
          await stopServer(server.child)
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
    fs.rmSync(frame, { force: true })
  }
  const mode = connectPerRequest ? "connect-per-request" : "persistent"
  console.log(`\n${os.availableParallelism()} vCPUs, Node ${process.version}; ${connections} clients, ${mode}, frames from ${frames}, ${rounds} rounds of ${seconds} s`)
  console.log(`A = ${checkouts.A}${Object.keys(envA).length > 0 ? ` with ${JSON.stringify(envA)}` : ""}\nB = ${checkouts.B}`)
  for (const which of ["A", "B"] as const) {
    console.log(`${which}: server CPU median ${median(results[which].us).toFixed(1)} µs/request (${results[which].us.map((u) => u.toFixed(1)).join(", ")}), req/s median ${Math.round(median(results[which].rps))}`)
  }
  console.log(`A / B CPU per request: ${(median(results.A.us) / median(results.B.us)).toFixed(3)}`)
}

void main()
