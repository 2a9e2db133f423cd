/** Importing the package loads no native module a handler-only container does not use. */
import { execFile } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const exec = promisify(execFile)
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

/** The native packages loaded (CommonJS modules in the require cache) after running `code` in a fresh Node. */
const nativeLoadedAfter = async (code: string): Promise<ReadonlyArray<string>> => {
  const probe = `${code}
const { createRequire } = await import("node:module")
const cache = Object.keys(createRequire(import.meta.url).cache)
console.log(JSON.stringify(["sharp", "onnxruntime-node"].filter((name) => cache.some((file) => file.includes(\`/node_modules/\${name}/\`)))))`
  const { stdout } = await exec(process.execPath, ["--import", "tsx", "--input-type=module", "-e", probe], { cwd: root })
  return JSON.parse(stdout.trim().split("\n").at(-1)!)
}

describe("load-time weight", () => {
  it("importing the package (a handler-only container) loads neither sharp nor onnxruntime-node", async () => {
    expect(await nativeLoadedAfter(`await import(${JSON.stringify(path.join(root, "src/index.ts"))})`)).toEqual([])
  }, 60_000)

  it("sharp loads when an image is first converted (the probe sees a load)", async () => {
    const image = path.join(root, "examples/scenes/blank.png")
    const loaded = await nativeLoadedAfter(
      `const m = await import(${JSON.stringify(path.join(root, "src/index.ts"))}); await m.imageToNv12(${JSON.stringify(image)})`
    )
    expect(loaded).toEqual(["sharp"])
  }, 60_000)
})
