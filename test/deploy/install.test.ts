/** `npm ci` in this repository: onnxruntime-node's CUDA download skipped, and no npm warnings on every command. */
import { execFile, execFileSync } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"
import { shellEnv } from "../support/machine.js"

const exec = promisify(execFile)
/** `allowScripts` and `npm install-scripts` arrived in npm 11.19; an older npm runs every install script. */
const [major = 0, minor = 0] = execFileSync("npm", ["--version"], { encoding: "utf8" }).trim().split(".").map(Number)
const npmHasAllowScripts = major > 11 || (major === 11 && minor >= 19)

describe("the project's npm settings", () => {
  it("give npm nothing to warn about (no unknown .npmrc keys)", async () => {
    const { stderr } = await exec("npm", ["config", "get", "registry"])
    expect(stderr).not.toMatch(/warn/i)
  })

  it("give npm on the machine's node nothing to warn about installing: no EBADENGINE for this project's Node 24", async () => {
    // npm as `npm ci` runs it, on the machine's node (older than the project's Node 24 in CI): the
    // dependency tree is checked as for an install, and nothing is written.
    const { stdout, stderr } = await exec("npm", ["install", "--dry-run", "--no-audit", "--no-fund"], { env: shellEnv() })
    expect(`${stdout}${stderr}`).not.toMatch(/warn/i)
  })

  it.runIf(npmHasAllowScripts)("review every dependency's install script: onnxruntime-node's denied, none left unreviewed", async () => {
    const { stdout } = await exec("npm", ["install-scripts", "ls"])
    expect(stdout).toContain("No packages with unreviewed install scripts")
  })
})
