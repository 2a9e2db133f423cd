/**
 * The project runs on Node 24 brought by npm itself: the `node` dev dependency puts Node 24 in
 * node_modules/.bin, which npm scripts (and `npm exec`) put first on PATH, whatever the machine's
 * own `node` is. The suite, `npm start`, the bins and `bin/ruth-model.js` all run on it.
 */
import { execFile, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { collectOutput, exitOf, waitForListening } from "../support/child.js"
import { tempDir } from "../support/harness.js"
import { machineNode, shellEnv } from "../support/machine.js"

const exec = promisify(execFile)
const root = path.resolve(import.meta.dirname, "..", "..")
const NODE_MAJOR = "24"
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
/** The Node that `npm ci` installed (the `node` dev dependency). */
const installedNode: string = JSON.parse(fs.readFileSync(path.join(root, "node_modules", "node", "package.json"), "utf8")).version
const projectNode = fs.realpathSync(path.join(root, "node_modules", ".bin", "node"))

/** The machine's own node, when it is older than the project's (then npm runs on it, the tests do not). */
const olderMachineNode = machineNode !== undefined && machineNode.major < Number(NODE_MAJOR) ? machineNode.path : undefined

describe("Node 24 from npm (the `node` dev dependency)", () => {
  it("runs this suite: vitest and its workers are on the Node that npm ci installed", () => {
    expect(
      process.versions.node,
      `the tests run on ${process.execPath}; run them with \`npm test\`, which puts node_modules/.bin/node (${installedNode}) first on PATH`
    ).toBe(installedNode)
    expect(process.versions.node.split(".")[0]).toBe(NODE_MAJOR)
  })

  it("is what npm scripts run: `npm exec -- node --version` from a shell's PATH", async () => {
    const { stdout } = await exec("npm", ["exec", "--", "node", "--version"], { cwd: root, env: shellEnv() })
    expect(stdout.trim()).toBe(`v${installedNode}`)
  })

  it("is the Node package.json asks for: the dev dependency's major, engines, and the base image's Node", () => {
    expect(pkg.devDependencies.node).toMatch(new RegExp(`^~${NODE_MAJOR}\\.`))
    expect(pkg.engines.node).toBe(`>=${NODE_MAJOR}`)
    // devEngines describes the node that runs npm itself (and so npm skips the engines check for this project)
    expect(pkg.devEngines.runtime.name).toBe("node")
    expect(fs.readFileSync(path.join(root, "docker", "Dockerfile"), "utf8")).toContain(`ARG NODE_IMAGE=node:${NODE_MAJOR}-`)
  })

  it.live.runIf(olderMachineNode !== undefined)(
    "bin/ruth-model.js started by the machine's older node serves on the project's Node 24, and passes SIGTERM on",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir()
        const child = yield* Effect.acquireRelease(
          Effect.sync(() =>
            spawn(olderMachineNode!, ["bin/ruth-model.js", "serve", "--models-dir", "examples/models", "--model-id", "text-detection", "--socket-dir", dir], {
              cwd: root,
              env: { ...shellEnv(), RUTH_HEARTBEAT_DIR: dir },
              stdio: ["ignore", "pipe", "pipe"]
            })
          ),
          (c) => Effect.sync(() => c.kill("SIGKILL"))
        )
        const output = collectOutput(child)
        const socket = path.join(dir, "vas_model_text-detection.sock")
        yield* Effect.promise(() => waitForListening(socket, 60_000))
        // The process serving is a child of the one started, running node_modules/.bin/node.
        const children = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(" ").filter(Boolean)
        expect(children.map((pid) => fs.realpathSync(`/proc/${pid}/exe`))).toEqual([projectNode])
        expect(execFileSync(projectNode, ["--version"], { encoding: "utf8" }).trim()).toBe(`v${installedNode}`)
        child.kill("SIGTERM")
        expect(yield* Effect.promise(() => exitOf(child)), output()).toEqual({ code: 0, signal: null })
        expect(output()).toContain("model 'text-detection' stopped")
        expect(fs.existsSync(socket)).toBe(false)
      }),
    90_000
  )
})
