/**
 * The minimal example is the template people copy: with no latency asked for,
 * its handler answers at once (an `Exit`, which the runtime serves on the spot,
 * without a fiber or a timer); with a latency, it waits.
 */
import { Effect, Exit } from "effect"
import { afterEach, describe, expect, it, vi } from "vitest"
import type { InferenceHandlerShape } from "../../src/inference/InferenceHandler.js"
import type { InferenceRequest } from "../../src/contract/schema.js"
import { memoryFrame, request } from "../support/harness.js"

/** The handler each import of the example launched with. */
const launched = vi.hoisted(() => [] as Array<InferenceHandlerShape>)

vi.mock("@effect/platform-node", async () => {
  const { Effect } = await import("effect")
  return { NodeRuntime: { runMain: (program: Effect.Effect<unknown, unknown>) => Effect.runFork(program) } }
})
vi.mock("@ruth-ai/model-runtime", async (importOriginal) => {
  const actual = await importOriginal<typeof import("@ruth-ai/model-runtime")>()
  const { Effect } = await import("effect")
  // Instead of serving: keep the handler the example provides.
  const launchWith = () => Effect.flatMap(actual.InferenceHandler, (handler) => Effect.sync(() => launched.push(handler)))
  return { ...actual, ModelContainer: { ...actual.ModelContainer, launchWith } }
})

const exampleWithLatency = async (latencyMs: string): Promise<InferenceHandlerShape> => {
  vi.resetModules()
  vi.stubEnv("MINIMAL_LATENCY_MS", latencyMs)
  const before = launched.length
  await import("../../examples/minimal/main.js")
  await vi.waitFor(() => expect(launched.length).toBe(before + 1))
  return launched.at(-1)!
}

const frame = { ...memoryFrame(), reference: "/dev/shm/cam1" }
const req = request("/dev/shm/cam1") as unknown as InferenceRequest

describe("examples/minimal", () => {
  afterEach(() => {
    vi.unstubAllEnvs()
  })

  it("answers at once when no latency is asked for: its effect is already an Exit (the runtime's fast path)", async () => {
    const handler = await exampleWithLatency("0")
    const answer = handler.infer(req, frame)
    expect(Exit.isExit(answer)).toBe(true)
    expect(await Effect.runPromise(answer)).toEqual({ detections: [], metadata: { bytes_read: frame.data.length } })
  })

  it("waits when a latency is asked for", async () => {
    const handler = await exampleWithLatency("5")
    const answer = handler.infer(req, frame)
    expect(Exit.isExit(answer)).toBe(false)
    expect(await Effect.runPromise(answer)).toEqual({ detections: [], metadata: { bytes_read: frame.data.length } })
  })
})
