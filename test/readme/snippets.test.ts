/** The README's code blocks that a test runs are printed from that test, word for word. */
import * as fs from "node:fs"
import { describe, expect, it } from "vitest"

const readme = fs.readFileSync("README.md", "utf8")
/** `<!-- FILE: REGION -->` then a fenced block: the block must be FILE's `// README: REGION` region. */
const quoted = [...readme.matchAll(/<!-- (\S+): (\S+) -->\n```ts\n([\s\S]*?)```\n/g)]

describe("README snippets", () => {
  it("quotes at least the two tested snippets", () => {
    expect(quoted.map((m) => m[2]).sort()).toEqual(expect.arrayContaining(["calling-a-container", "testing-your-handler"]))
  })

  it.each(quoted.map((m) => [m[1]!, m[2]!, m[3]!] as const))("%s: %s is printed as the test runs it", (file, region, block) => {
    const source = fs.readFileSync(file, "utf8")
    const match = new RegExp(`// README: ${region} \\(begin\\)\\n([\\s\\S]*?)// README: ${region} \\(end\\)\\n`).exec(source)
    expect(match, `${file} has no region ${region}`).not.toBeNull()
    expect(block).toBe(match![1])
  })
})
