/** The machine as a shell sees it, without what npm scripts add: the machine's own `node` and `npm`. */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

/** PATH without what npm scripts put in front (node_modules/.bin of every parent, npm's node-gyp-bin). */
export const shellPath = (process.env.PATH ?? "").split(path.delimiter).filter((dir) => !dir.includes("node_modules")).join(path.delimiter)

/** The environment of a command started from a shell: `npm` there runs on the machine's node. */
export const shellEnv = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: shellPath })

/** The machine's own `node` (the first on `shellPath`) and its major version, if there is one. */
export const machineNode = ((): { readonly path: string; readonly major: number } | undefined => {
  for (const dir of shellPath.split(path.delimiter)) {
    const candidate = path.join(dir, "node")
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
    } catch {
      continue
    }
    const version = execFileSync(candidate, ["--version"], { encoding: "utf8" }).trim()
    return { path: candidate, major: Number(version.slice(1).split(".")[0]) }
  }
  return undefined
})()
