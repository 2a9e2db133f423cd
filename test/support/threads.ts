/**
 * This process's threads and their nice values, read from /proc (Linux only), for tests of
 * `poolThreadNice` / `backend.pool_thread_nice`.
 */
import { readdirSync, readFileSync } from "node:fs"

export const onLinux = process.platform === "linux"

/** A thread's nice value: the 17th field after the command name in its stat; `undefined` once it has ended. */
export const niceOf = (tid: string): number | undefined => {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16])
  } catch {
    return undefined
  }
}

/** Every thread of this process with its nice value. */
export const threadNices = (): ReadonlyMap<string, number | undefined> =>
  new Map(readdirSync("/proc/self/task").map((tid) => [tid, niceOf(tid)]))

/** Threads alive now that were not in `before`, with their nice values. */
export const startedSince = (before: ReadonlyMap<string, unknown>): ReadonlyMap<string, number | undefined> =>
  new Map([...threadNices()].filter(([tid, nice]) => !before.has(tid) && nice !== undefined))
