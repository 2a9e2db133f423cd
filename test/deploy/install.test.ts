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

/**
 * The one warning the project's own settings cause: `.npmrc`'s `onnxruntime-node-install=skip`,
 * which npm 11 calls unknown but still hands to the install script — the skip that works with any
 * npm (npm before 11.19 ignores `allowScripts`), so a clean install never tries the CUDA download.
 */
// npm names it a project config, or an env config when npm runs inside an npm script (npm_config_* inherited).
const SKIP_KEY_WARNING = /^npm warn Unknown (project|env) config "onnxruntime-node-install"/
const warningsOf = (output: string) => output.split("\n").filter((line) => /warn/i.test(line))

describe("the project's npm settings", () => {
  it("give npm nothing to warn about but the onnxruntime-node skip key (no other unknown .npmrc keys)", async () => {
    const { stderr } = await exec("npm", ["config", "get", "registry"])
    for (const line of warningsOf(stderr)) expect(line).toMatch(SKIP_KEY_WARNING)
    expect(fs.readFileSync(path.join(root, ".npmrc"), "utf8")).toMatch(/^onnxruntime-node-install=skip$/m)
  })

  it("hand the skip to install scripts as onnxruntime-node's script reads it (npm_config_onnxruntime_node_install=skip)", async () => {
    const { stdout } = await exec("npm", ["exec", "-c", "echo $npm_config_onnxruntime_node_install"], { cwd: root, env: shellEnv() })
    expect(stdout.trim()).toBe("skip")
  })

  it("give npm nothing to warn about installing but the engines of packages that run on the project's Node 24", async () => {
    // npm as `npm ci` runs it, on the machine's node (20 in CI): the dependency tree is checked as for
    // an install, and nothing is written. Effect 4's Node packages and vitest 5 declare Node 22+; on
    // such a machine npm says so (EBADENGINE), and says nothing else.
    const onMachine = await exec("npm", ["install", "--dry-run", "--no-audit", "--no-fund"], { env: shellEnv() })
    for (const line of warningsOf(`${onMachine.stdout}${onMachine.stderr}`)) expect(line).toMatch(new RegExp(`^npm warn EBADENGINE |${SKIP_KEY_WARNING.source}`))
    // The same npm on the project's Node 24: every package's engines are met, nothing to warn about.
    const npmCli = fs.realpathSync(execFileSync("sh", ["-c", "command -v npm"], { env: shellEnv(), encoding: "utf8" }).trim())
    const onProjectNode = await exec(path.join(root, "node_modules", ".bin", "node"), [npmCli, "install", "--dry-run", "--no-audit", "--no-fund"], {
      env: shellEnv(),
      cwd: root
    })
    for (const line of warningsOf(`${onProjectNode.stdout}${onProjectNode.stderr}`)) expect(line).toMatch(SKIP_KEY_WARNING)
  })

  it.runIf(npmHasAllowScripts)("review every dependency's install script: onnxruntime-node's denied, none left unreviewed", async () => {
    const { stdout } = await exec("npm", ["install-scripts", "ls"])
    expect(stdout).toContain("No packages with unreviewed install scripts")
  })
})
