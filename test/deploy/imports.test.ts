/** One import direction in src/ (test/support/importGraph.ts names it), checked on every `npm test`. */
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { directionViolations, fileCycles, readImportGraph, RANKS } from "../support/importGraph.js"

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src")

describe("import direction", () => {
  const graph = readImportGraph(src)

  it("reads the real graph (every part of src/ has a rank, and the graph has the container's imports)", () => {
    const parts = new Set([...graph.keys()].map((file) => file.split("/")[0]!))
    expect([...parts].filter((part) => RANKS[part] === undefined)).toEqual([])
    expect(graph.get("container/ModelContainer.ts")).toContain("ipc/IpcServer.ts")
  })

  it("every import goes from a folder to one to its left (contract → config → frames, ipc → inference → container → cli)", () => {
    expect(directionViolations(graph)).toEqual([])
  })

  it("no file imports itself through a cycle", () => {
    expect(fileCycles(graph)).toEqual([])
  })

  it("the check names a backward import and a cycle when there is one", () => {
    const bad = new Map([
      ["inference/a.ts", ["container/b.ts"]],
      ["container/b.ts", ["inference/a.ts"]],
      ["frames/c.ts", ["ipc/d.ts", "frames/e.ts"]],
      ["frames/e.ts", ["frames/c.ts"]],
      ["ipc/d.ts", []]
    ])
    expect(directionViolations(bad)).toEqual([
      "frames/c.ts → ipc/d.ts (frames may not import ipc)",
      "inference/a.ts → container/b.ts (inference may not import container)"
    ])
    expect(fileCycles(bad)).toEqual([["container/b.ts", "inference/a.ts"], ["frames/c.ts", "frames/e.ts"]])
  })
})
