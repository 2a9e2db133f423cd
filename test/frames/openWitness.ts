/** Witnesses of what a frame read opens: every fs.openSync call, and a writer waiting on a FIFO. */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import fsDefault from "node:fs"
import { syncBuiltinESMExports } from "node:module"
import { Effect } from "effect"

export interface OpenSpy {
  /** The flags of every call. */
  readonly flags: Array<unknown>
  /** Where each successful call's descriptor really led (from /proc/self/fd), in order. */
  readonly opened: Array<string>
  /** Runs once, just before the next call opens `path` (to swap a file between check and open). */
  beforeNextOpen: ((path: string) => void) | undefined
  readonly restore: () => void
}

/** Records every fs.openSync call until restored (the builtin's ESM exports follow its default export). */
export const spyOnOpen = (): OpenSpy => {
  const original = fs.openSync
  const target = fsDefault
  const spy: OpenSpy = {
    flags: [],
    opened: [],
    beforeNextOpen: undefined,
    restore: () => {
      target.openSync = original
      syncBuiltinESMExports()
    }
  }
  target.openSync = ((p: fs.PathLike, f?: fs.OpenMode, m?: fs.Mode | null) => {
    spy.flags.push(f)
    const hook = spy.beforeNextOpen
    spy.beforeNextOpen = undefined
    hook?.(p.toString())
    const fd = original(p, f ?? "r", m)
    spy.opened.push(fs.readlinkSync(`/proc/self/fd/${fd}`))
    return fd
  }) as typeof fs.openSync
  syncBuiltinESMExports()
  return spy
}

/** The spy for the scope's lifetime. */
export const openSpy = Effect.acquireRelease(Effect.sync(spyOnOpen), (spy) => Effect.sync(() => spy.restore()))

const wchan = (child: ChildProcess): string => {
  try {
    return fs.readFileSync(`/proc/${child.pid}/wchan`, "utf8")
  } catch {
    return "" // exited
  }
}

/**
 * A process opening `fifo` for writing: the kernel holds it in
 * `wait_for_partner` until someone opens the FIFO for reading, so while it
 * waits, nobody has. `released` opens the read side itself and yields how
 * the writer ended (0: it wrote to a reader that was there).
 */
export const fifoWriter = (fifo: string) =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn("sh", ["-c", "exec 3>\"$1\"; printf x >&3", "sh", fifo], { stdio: "ignore" })),
      (c) => Effect.sync(() => c.exitCode === null && c.signalCode === null && c.kill("SIGKILL"))
    )
    const exited = new Promise<string>((resolve) =>
      child.once("exit", (code, signal) => resolve(signal ?? String(code)))
    )
    // Until it waits for a reader (a condition, polled; generous deadline for a loaded machine).
    const deadline = Date.now() + 20_000
    while (wchan(child) !== "wait_for_partner" && Date.now() < deadline) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
    return {
      waiting: () => wchan(child) === "wait_for_partner",
      released: Effect.acquireUseRelease(
        Effect.sync(() => fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)),
        () => Effect.promise(() => exited),
        (fd) => Effect.sync(() => fs.closeSync(fd))
      )
    }
  })
