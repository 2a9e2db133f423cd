/**
 * What starting a request's fiber costs, cold and warm: the time from `Effect.runFork` to the
 * fiber's first operation, for the shape the pipeline forks (`matchCauseEffect(suspend(…))` with
 * `ensuring`). Cold = after touching 16 MB (the caches emptied, as a model run leaves them) and
 * 33 ms idle (the cores' wake-up included, as between two frames); warm = back to back. A plain
 * function call under the same conditions is the floor.
 *
 *   npx tsx bench/fiberFork.ts [--trials N] [--json]
 *
 * Written for the Effect 4 move: the same script, ported, gives the after figure.
 */
import { Effect } from "effect"
import * as os from "node:os"
import { isMainModule, jsonOutput, option } from "./cli.js"
import { median } from "../src/ipc/loadgen.js"

const EVICT_BYTES = 16 * 1024 * 1024
const IDLE_MS = 33

const scratch = new Uint8Array(EVICT_BYTES)
/** Touches every cache line of 16 MB. */
const evict = () => {
  for (let i = 0; i < scratch.length; i += 64) scratch[i] = (scratch[i]! + 1) & 0xff
}
const idle = () => new Promise((resolve) => setTimeout(resolve, IDLE_MS))

/** Time from `runFork` to the forked effect's first operation, ms. */
const forkOnce = (): Promise<number> =>
  new Promise((resolve) => {
    const t0 = performance.now()
    Effect.runFork(
      Effect.matchCauseEffect(
        Effect.suspend(() => {
          resolve(performance.now() - t0)
          return Effect.void
        }),
        { onFailure: () => Effect.void, onSuccess: () => Effect.void }
      ).pipe(Effect.ensuring(Effect.void))
    )
  })

let sink = 0
const callOnce = (): number => {
  const t0 = performance.now()
  sink += (((t0 * 7) | 0) & 1)
  return performance.now() - t0
}

export interface FiberForkRow {
  readonly case: string
  readonly trials: number
  readonly p50Ms: number
  readonly p90Ms: number
}

const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
}

export const runFiberForkBench = async (trials = 200): Promise<Array<FiberForkRow>> => {
  const cold = { fork: [] as Array<number>, call: [] as Array<number> }
  const warm = { fork: [] as Array<number>, call: [] as Array<number> }
  for (let i = 0; i < 50; i++) await forkOnce() // JIT warm-up
  for (let i = 0; i < trials; i++) {
    evict()
    await idle()
    cold.fork.push(await forkOnce())
    evict()
    await idle()
    cold.call.push(callOnce())
    // Warm: the third of three back to back (the caches and the scheduler just used).
    await forkOnce()
    await forkOnce()
    warm.fork.push(await forkOnce())
    callOnce()
    callOnce()
    warm.call.push(callOnce())
  }
  const row = (name: string, xs: ReadonlyArray<number>): FiberForkRow => ({
    case: name,
    trials: xs.length,
    p50Ms: median(xs),
    p90Ms: quantile(xs, 0.9)
  })
  return [row("fork, cold", cold.fork), row("call, cold", cold.call), row("fork, warm", warm.fork), row("call, warm", warm.call)]
}

if (isMainModule(import.meta.url)) {
  const rows = await runFiberForkBench(Number(option("trials") ?? 200))
  if (jsonOutput()) for (const r of rows) console.log(JSON.stringify({ bench: "fiber-fork", ...r }))
  else {
    const { version } = await import("effect/package.json", { with: { type: "json" } }).then((m) => m.default as { version: string })
      .catch(() => ({ version: "?" }))
    console.log(`${os.cpus().length} vCPUs, ${os.cpus()[0]?.model ?? "?"}, Node ${process.version}, effect ${version}, sink ${sink & 1}`)
    console.log("case           trials   p50 ms   p90 ms")
    for (const r of rows) console.log(`${r.case.padEnd(14)} ${String(r.trials).padStart(6)} ${r.p50Ms.toFixed(4).padStart(8)} ${r.p90Ms.toFixed(4).padStart(8)}`)
  }
}
