/**
 * Regenerates the bundled demo scenes (PNG + ground truth) from the scene
 * specs the tests render: `npx tsx examples/scenes/generate.ts`.
 * Bundled as files so the demo needs no fonts on the machine it runs on.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { sampleScenes } from "../../test/support/scenes.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const scenes = await sampleScenes()
for (const scene of scenes) fs.writeFileSync(path.join(here, `${scene.name}.png`), scene.png)
fs.writeFileSync(
  path.join(here, "scenes.json"),
  JSON.stringify(scenes.map((s) => ({ name: s.name, file: `${s.name}.png`, lines: s.lines.map((l) => ({ text: l.text, box: l.box })) })), null, 2) + "\n"
)
console.log(`wrote ${scenes.length} scenes to ${here}`)
