import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { startContainer, writeFrameFile } from "../support/harness.js"

const run = promisify(execFile)

describe("a caller written only from the contract (Python standard library)", () => {
  it.live("gets valid responses: detections for a good request, an error for a malformed one", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({
        handler: {
          infer: () =>
            Effect.succeed([{ class_id: 3, class_name: "car", confidence: 0.6, bbox: [0, 0.25, 0.5, 1], track_id: 7 }])
        }
      })
      const frame = writeFrameFile(c.dir, "frame", 64, 48)
      const { stdout } = yield* Effect.promise(() =>
        run("python3", ["test/fixtures/contract_client.py", c.socketPath, frame, "64", "48", "test-model"])
      )
      const [valid, malformed] = stdout.trim().split("\n").map((l) => JSON.parse(l))
      expect(valid).toMatchObject({ problems: [], response: { frame_id: 1234, error: null, detections: [{ class_name: "car", track_id: 7 }] } })
      expect(malformed).toMatchObject({ problems: [], response: { error_code: "INVALID_REQUEST", detections: [] } })
    }))
})
