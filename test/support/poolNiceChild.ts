/**
 * Child process for OnnxSession.test.ts: lowers its own main thread to nice 15 (so every thread
 * started afterwards inherits 15), opens a session with `poolThreadNice: 7` and prints, as one JSON
 * line, what the session reports and the nice values of the threads it started.
 *
 *   tsx test/support/poolNiceChild.ts <model.onnx>
 */
import { setPriority } from "node:os"
import { Effect } from "effect"
import { makeOnnxSession } from "../../src/inference/OnnxSession.js"
import { startedSince, threadNices } from "./threads.js"

const [modelPath = ""] = process.argv.slice(2)
setPriority(15)
const before = threadNices()
const out = await Effect.runPromise(
  Effect.scoped(
    Effect.map(
      makeOnnxSession({
        modelPath,
        executionProviders: ["cpu"],
        intraOpThreads: 3,
        poolThreadNice: 7
      }),
      (session) => ({ priority: session.poolPriority, started: [...startedSince(before).values()] })
    )
  )
)
console.log(JSON.stringify(out))
