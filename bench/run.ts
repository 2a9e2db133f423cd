/**
 * `npm run bench`: every benchmark, one after another (they share two cores,
 * so never in parallel). `--json` prints one JSON object per row.
 */
import { formatPreprocessTable, runPreprocessBench } from "./preprocess.js"
import { HEADER, runIpcBench } from "./ipc.js"

const json = process.argv.includes("--json")
const print = (line: string) => console.log(line)

if (!json) print(`# IPC (${new Date().toISOString()})\n${HEADER}`)
const ipc = await runIpcBench({ log: json ? () => {} : print })
if (json) for (const row of ipc) print(JSON.stringify({ bench: "ipc", ...row }))

if (!json) print("\n# Preprocessing")
const pre = await runPreprocessBench()
if (json) for (const row of pre) print(JSON.stringify({ bench: "preprocess", ...row }))
else print(formatPreprocessTable(pre))
