import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { encodeMessage } from "../src/contract/codec.js"
import { runLoad } from "../src/ipc/loadgen.js"
const which = process.argv[2]!
const w = Number(process.argv[3] ?? 64), h = Number(process.argv[4] ?? 48)
const dir = "/tmp/qc"; fs.rmSync(dir, { recursive: true, force: true }); fs.mkdirSync(dir, { recursive: true })
const sock = which === "bare" ? `${dir}/bare.sock` : `${dir}/vas_model_bench.sock`
const child = spawn(process.execPath, [...(process.env.PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/qp"] : []), "--import", "tsx", which === "bare" ? "bench/servers/bare.ts" : "bench/servers/ours.ts", ...(which === "bare" ? [sock] : [dir, "bench", process.env.FRAMES ?? "shm", "/dev/shm/qc.nv12"])], { stdio: "inherit" })
fs.writeFileSync("/dev/shm/qc.nv12", Buffer.alloc(w*h*3/2, 128))
while (!fs.existsSync(sock)) await new Promise(r => setTimeout(r, 50))
await new Promise(r => setTimeout(r, 300))
fs.writeFileSync("/dev/shm/qc.nv12", Buffer.alloc(w*h*3/2, 128))
const message = encodeMessage({ frame_reference: "/dev/shm/qc.nv12", frame_metadata: { width: w, height: h, frame_id: 0 }, camera_id: "b", model_id: "bench", timestamp: 1 })
const cpu = () => { const f = fs.readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]!.split(" "); return (Number(f[11]) + Number(f[12])) * 10 }
await runLoad({ socketPath: sock, concurrency: 1, durationMs: 1000, connectPerRequest: false, message })
for (const [c, cpr] of [[1,false],[8,false],[8,true]] as const) {
  const c0 = cpu(); const me0 = process.cpuUsage()
  const r = await runLoad({ socketPath: sock, concurrency: c, durationMs: 3000, connectPerRequest: cpr, message })
  const me = process.cpuUsage(me0)
  console.log(which, c, cpr ? "cpr" : "persist", Math.round(r.rps), "rps p50", r.latencyMs.p50.toFixed(3), "server cpu µs/req", ((cpu() - c0) * 1000 / r.requests).toFixed(1), "client cpu µs/req", ((me.user + me.system) / r.requests).toFixed(1), r.errorResponses)
}
child.kill("SIGTERM")
