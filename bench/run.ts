/**
 * `npm run bench`: every benchmark, one after another (they share two cores,
 * so never in parallel). `--json` prints one JSON object per row.
 */
import { jsonOutput } from "./cli.js"
import { E2E_HEADER, runE2eBench } from "./e2e.js"
import { formatFrameReadTable, runFrameReadBench } from "./frameRead.js"
import { HEADER, runIpcBench } from "./ipc.js"
import { formatPreprocessTable, runPreprocessBench } from "./preprocess.js"
import { formatWakeupRow, runWakeupBench } from "./wakeup.js"

const json = jsonOutput()
const print = (line: string) => console.log(line)
const emit = (bench: string, rows: ReadonlyArray<object>) => {
  if (json) for (const row of rows) print(JSON.stringify({ bench, ...row }))
}

if (!json) print(`# IPC (${new Date().toISOString()})\n${HEADER}`)
emit("ipc", await runIpcBench({ log: json ? () => {} : print }))

if (!json) print("\n# Preprocessing")
const pre = await runPreprocessBench()
if (json) emit("preprocess", pre)
else print(formatPreprocessTable(pre))

if (!json) print("\n# Frame reads (the synchronous path; data_checksum verified or not)")
const reads = runFrameReadBench()
if (json) emit("frame-read", reads)
else print(formatFrameReadTable(reads))

if (!json) print(`\n# End to end, real model (plain clients)\n${E2E_HEADER}`)
emit("e2e", await runE2eBench({ log: json ? () => {} : print }))

if (!json) print("\n# The machine's floor (bare process and thread round trips, a frame read, after idle)")
const wakeups = await runWakeupBench()
if (json) emit("wakeup", wakeups)
else for (const row of wakeups) print(formatWakeupRow(row))
