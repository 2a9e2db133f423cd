/** `npm ci` in this repository: onnxruntime-node's CUDA download skipped, and no npm warnings but the engines of Node 22+ packages on an older machine node. */
import { execFile, execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"
import { shellEnv } from "../support/machine.js"

const exec = promisify(execFile)
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
/** `allowScripts` and `npm install-scripts` arrived in npm 11.19; an older npm runs every install script. */
const [major = 0, minor = 0] = execFileSync("npm", ["--version"], { encoding: "utf8" }).trim().split(".").map(Number)
const npmHasAllowScripts = major > 11 || (major === 11 && minor >= 19)

describe("the project's npm settings", () => {
  it("give npm nothing to warn about (no unknown .npmrc keys)", async () => {
    const { stderr } = await exec("npm", ["config", "get", "registry"])
    expect(stderr).not.toMatch(/warn/i)
  })

  it("give npm nothing to warn about installing but the engines of packages that run on the project's Node 24", async () => {
    // npm as `npm ci` runs it, on the machine's node (20 in CI): the dependency tree is checked as for
    // an install, and nothing is written. Effect 4's Node packages and vitest 5 declare Node 22+; on
    // such a machine npm says so (EBADENGINE), and says nothing else.
    const onMachine = await exec("npm", ["install", "--dry-run", "--no-audit", "--no-fund"], { env: shellEnv() })
    const warnings = `${onMachine.stdout}${onMachine.stderr}`.split("\n").filter((line) => /warn/i.test(line))
    for (const line of warnings) expect(line).toMatch(/^npm warn EBADENGINE /)
    // The same npm on the project's Node 24: every package's engines are met, nothing to warn about.
    const npmCli = fs.realpathSync(execFileSync("sh", ["-c", "command -v npm"], { env: shellEnv(), encoding: "utf8" }).trim())
    const onProjectNode = await exec(path.join(root, "node_modules", ".bin", "node"), [npmCli, "install", "--dry-run", "--no-audit", "--no-fund"], {
      env: shellEnv(),
      cwd: root
    })
    expect(`${onProjectNode.stdout}${onProjectNode.stderr}`).not.toMatch(/warn/i)
  })

  it.runIf(npmHasAllowScripts)("review every dependency's install script: onnxruntime-node's denied, none left unreviewed", async () => {
    const { stdout } = await exec("npm", ["install-scripts", "ls"])
    expect(stdout).toContain("No packages with unreviewed install scripts")
  })
})
