/**
 * The import graph of `src/` and the one direction it must follow:
 *
 *   internal, version → contract → config → frames, ipc → inference → container → cli → index
 *
 * A module may import from its own folder or from folders to its left; two folders of the same rank
 * (frames, ipc) do not import each other. Type-only and dynamic imports count: a cycle through a type
 * import is still a cycle for a reader of the code.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import ts from "typescript"

/** Rank of each top-level part of src/: an import must go to a lower rank (or stay in its folder). */
export const RANKS: Readonly<Record<string, number>> = {
  internal: 0,
  "version.ts": 0,
  contract: 1,
  config: 2,
  frames: 3,
  ipc: 3,
  inference: 4,
  container: 5,
  cli: 6,
  "index.ts": 7
}

/** Source file (relative to src/, with `/`) → the source files it imports. */
export type ImportGraph = ReadonlyMap<string, ReadonlyArray<string>>

const sourceFiles = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(full)
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [full] : []
  })

/** Reads every `.ts` under `srcDir` and its relative imports (static, type-only, re-exports, dynamic). */
export const readImportGraph = (srcDir: string): ImportGraph => {
  const graph = new Map<string, Array<string>>()
  for (const file of sourceFiles(srcDir)) {
    const info = ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true)
    const targets = info.importedFiles
      .map((ref) => ref.fileName)
      .filter((spec) => spec.startsWith("."))
      .map((spec) => {
        const resolved = path.resolve(path.dirname(file), spec).replace(/\.js$/, ".ts")
        return path.relative(srcDir, resolved.endsWith(".ts") ? resolved : `${resolved}.ts`).split(path.sep).join("/")
      })
    graph.set(path.relative(srcDir, file).split(path.sep).join("/"), [...new Set(targets)])
  }
  return graph
}

const partOf = (file: string): string => file.split("/")[0]!

/** Imports that go against the direction: `from → to (fromPart → toPart)`. */
export const directionViolations = (graph: ImportGraph): Array<string> => {
  const out: Array<string> = []
  for (const [from, targets] of graph) {
    const source = partOf(from)
    for (const to of targets) {
      const target = partOf(to)
      if (source === target) continue
      const [a, b] = [RANKS[source], RANKS[target]]
      if (a === undefined || b === undefined) out.push(`${from} → ${to} (${a === undefined ? source : target} has no rank)`)
      else if (b >= a) out.push(`${from} → ${to} (${source} may not import ${target})`)
    }
  }
  return out.sort()
}

/** Every file cycle (strongly connected component of more than one file, or a file importing itself), sorted. */
export const fileCycles = (graph: ImportGraph): Array<Array<string>> => {
  // Tarjan's algorithm.
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: Array<string> = []
  const onStack = new Set<string>()
  const cycles: Array<Array<string>> = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next)
    next++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const component: Array<string> = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort())
    }
  }
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v)
  return cycles
}
