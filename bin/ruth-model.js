#!/usr/bin/env node
// In the repository (src/ present) run the TypeScript sources through tsx; installed, run the build.
import { spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const src = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url))
// The repository's Node (the `node` dev dependency, what npm scripts run on).
const projectNode = fileURLToPath(new URL("../node_modules/.bin/node", import.meta.url))
const NODE_MAJOR = 24

if (existsSync(src) && Number(process.versions.node.split(".")[0]) < NODE_MAJOR && existsSync(projectNode)) {
  // Started by an older node (`./bin/ruth-model.js` from a shell whose node is the system's): run on the
  // project's instead, as this process's stand-in (same stdio, signals passed on, same exit).
  const child = spawn(projectNode, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" })
  /** Is this process in its terminal's foreground group? Then Ctrl+C's SIGINT reached the child too. */
  const inForeground = () => {
    try {
      const fields = readFileSync("/proc/self/stat", "utf8").replace(/^.*\) /, "").split(" ")
      return fields[2] === fields[5] // pgrp === tpgid
    } catch {
      return false
    }
  }
  // Sent twice, a SIGINT would be the runtime's "second signal: exit now".
  process.on("SIGINT", () => inForeground() || child.kill("SIGINT"))
  for (const signal of ["SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal))
  child.on("error", (error) => {
    console.error(`ruth-model: cannot start ${projectNode}: ${error.message}`)
    process.exit(1)
  })
  child.on("exit", (code, signal) => {
    if (signal === null) process.exit(code ?? 1)
    process.removeAllListeners(signal)
    process.kill(process.pid, signal)
  })
} else if (existsSync(src)) {
  const { register } = await import("tsx/esm/api")
  register()
  await import(src)
} else {
  await import("../dist/cli/main.js")
}
