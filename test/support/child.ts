/** Runs a TypeScript entry point of this repo as a child process, as a container would run. */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"

export const spawnTs = (entry: string, args: ReadonlyArray<string>, env: Record<string, string>): ChildProcess =>
  spawn(process.execPath, ["--conditions=source", "--import", "tsx", entry, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })

/** Resolves when `file` exists (polling), rejects after `timeoutMs`. */
export const waitForFile = async (file: string, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`${file} did not appear within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/**
 * Resolves once something accepts connections at the socket `file`: the file appears at bind(),
 * a moment before listen(), and a connect in between is refused.
 */
export const waitForListening = async (file: string, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    await waitForFile(file, Math.max(0, deadline - Date.now()))
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = net.connect(file, () => (socket.destroy(), resolve(true)))
      socket.once("error", () => resolve(false))
    })
    if (accepted) return
    if (Date.now() > deadline) throw new Error(`nothing accepted connections at ${file} within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** The exit code (or 128 + signal number) of a child. */
export const exitOf = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve({ code: child.exitCode, signal: child.signalCode })
    : new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))

/** Everything the child wrote to stdout and stderr so far. */
export const collectOutput = (child: ChildProcess): (() => string) => {
  let out = ""
  child.stdout?.on("data", (d) => (out += d))
  child.stderr?.on("data", (d) => (out += d))
  return () => out
}
