/** `npm ci` in this repository: onnxruntime-node's CUDA download skipped, and no npm warnings on every command. */
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const exec = promisify(execFile)

describe("the project's npm settings", () => {
  it("give npm nothing to warn about (no unknown .npmrc keys)", async () => {
    const { stderr } = await exec("npm", ["config", "get", "registry"])
    expect(stderr).not.toMatch(/warn/i)
  })

  it("review every dependency's install script: onnxruntime-node's denied, none left unreviewed", async () => {
    const { stdout } = await exec("npm", ["install-scripts", "ls"])
    expect(stdout).toContain("No packages with unreviewed install scripts")
  })
})
