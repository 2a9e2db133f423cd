/** Command-line bits shared by the bench scripts run on their own. */
import { realpathSync } from "node:fs"
import { fileURLToPath } from "node:url"

/** True when the module at `moduleUrl` is the script node was started with (not imported), links resolved. */
export const isMainModule = (moduleUrl: string): boolean => {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(moduleUrl))
  } catch {
    return false
  }
}

/** The value after `--name`, if given. */
export const option = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? process.argv[at + 1] : undefined
}

/** `--json` was given. */
export const jsonOutput = (): boolean => process.argv.includes("--json")
