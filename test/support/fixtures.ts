/** Test fixtures that need no container: temp dirs, requests, frames. `harness.ts` re-exports them. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, type Scope } from "effect"
import type { Frame } from "../../src/frames/Frame.js"

/** A fresh directory under os.tmpdir(), removed with the scope. */
export const tempDir = (prefix = "ruth-test-"): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/** A valid request for `frame_reference`, with overrides. */
export const request = (frameReference: string, overrides: Record<string, unknown> = {}) => ({
  frame_reference: frameReference,
  frame_metadata: { width: 64, height: 48, format: "NV12", frame_id: 1 },
  camera_id: "camera_1",
  model_id: "test-model",
  timestamp: 1_700_000_000.5,
  ...overrides
})

/** An in-memory NV12 frame of the given size. */
export const memoryFrame = (width = 64, height = 48): Omit<Frame, "reference"> => ({
  format: "NV12",
  width,
  height,
  stride: width,
  data: new Uint8Array((width * height * 3) / 2)
})

/** Writes an NV12 frame file of zeros (or `fill`) and returns its path. */
export const writeFrameFile = (dir: string, name: string, width: number, height: number, fill = 0): string => {
  const p = path.join(dir, name)
  fs.writeFileSync(p, Buffer.alloc((width * height * 3) / 2, fill))
  return p
}
