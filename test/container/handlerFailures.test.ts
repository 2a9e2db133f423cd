/**
 * Whatever a handler fails or dies with, the caller gets one answer that keeps
 * the contract: `error` (a message, never a stack), `error_code`, no
 * detections, the request's ids.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Logger } from "effect"
import { encodePayload } from "../../src/contract/codec.js"
import { FrameInvalid, InferenceFailed } from "../../src/contract/errors.js"
import type { InferenceHandlerShape } from "../../src/inference/InferenceHandler.js"
import { call, converse, memoryFrame, request, startContainer } from "../support/harness.js"

const frames = new Map([["/dev/shm/cam1", memoryFrame()]])
const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** An Error thrown from a named function, so that its stack names this file. */
function boom(message: string): Error {
  return new Error(message)
}

/** What each case fails with, and a piece of the message the caller must read. */
const failures: ReadonlyArray<readonly [name: string, value: () => unknown, says: string]> = [
  ["a string", () => "x marks the spot", "x marks the spot"],
  ["an Error", () => boom("weights missing"), "weights missing"],
  ["a plain object with a code", () => ({ code: "X" }), "\"code\":\"X\""],
  ["a number", () => 42, "42"],
  ["null", () => null, "null"],
  ["undefined", () => undefined, "undefined"]
]

/** No stack frame, no source path: the text a stack trace would put on the wire. */
const expectNoTrace = (reply: Record<string, unknown>) => {
  const text = JSON.stringify(reply)
  expect(text).not.toMatch(/\n\s*at |\.ts:\d+|\.js:\d+|handlerFailures|node_modules|file:\/\//)
}

const expectInferenceFailed = (reply: Record<string, unknown>, id: string, says: string) => {
  expect(reply).toMatchObject({
    request_id: id,
    camera_id: "camera_1",
    frame_id: `frame-${id}`,
    detections: [],
    error_code: "INFERENCE_FAILED"
  })
  expect(typeof reply.error).toBe("string")
  expect(reply.error).toContain(says)
  expectNoTrace(reply)
}

const requestFor = (id: string) =>
  request("/dev/shm/cam1", { request_id: id, frame_metadata: { width: 64, height: 48, frame_id: `frame-${id}` } })

describe("handler failures on the wire", () => {
  // Requests name their case in `request_id`: `<path>:<index>`, path "now" (the handler's effect is
  // already an Exit: answered on the spot) or "later" (it sleeps first: answered from a fiber).
  const handler: InferenceHandlerShape = {
    infer: (req) => {
      const [path, what] = String(req.request_id).split(":") as [string, string]
      // Failures the types forbid, as JavaScript (or a cast) makes them.
      const fail = (u: unknown) => Effect.fail(u as InferenceFailed)
      const now = (e: Effect.Effect<never, InferenceFailed | FrameInvalid>) =>
        path === "now" ? e : Effect.andThen(Effect.sleep("5 millis"), e)
      switch (what) {
        case "throw":
          throw boom("thrown while building the effect")
        case "die":
          return now(Effect.die(boom("kaboom")))
        case "typed":
          return now(Effect.fail(new FrameInvalid({ path: req.frame_reference, reason: "odd stride" })))
        default:
          return now(fail(failures[Number(what)]![1]()))
      }
    }
  }

  for (const path of ["now", "later"] as const) {
    it.live(`${path === "now" ? "answered at once" : "answered from a fiber"}: each failure becomes INFERENCE_FAILED with a message and the request's ids`, () =>
      Effect.gen(function*() {
        const c = yield* startContainer({ handler, frames }).pipe(Effect.provide(Logger.layer([])))
        for (const [i, [, , says]] of failures.entries()) {
          const id = `${path}:${i}`
          expectInferenceFailed(yield* promise(() => call(c.socketPath, requestFor(id))), id, says)
        }
        expectInferenceFailed(yield* promise(() => call(c.socketPath, requestFor(`${path}:die`))), `${path}:die`, "kaboom")
        if (path === "now") {
          // `infer` itself throws (no effect at all).
          expectInferenceFailed(
            yield* promise(() => call(c.socketPath, requestFor("now:throw"))),
            "now:throw",
            "thrown while building the effect"
          )
        }
        // The runtime's own errors keep their code.
        const typed = yield* promise(() => call(c.socketPath, requestFor(`${path}:typed`)))
        expect(typed).toMatchObject({ request_id: `${path}:typed`, error_code: "FRAME_INVALID", detections: [] })
        expect(typed.error).toContain("odd stride")
      }))
  }

  it.live("the stack of a defect goes to the log, not on the wire", () =>
    Effect.gen(function*() {
      const logged: Array<string> = []
      const capture = Logger.make(({ cause, message }) => {
        logged.push(`${String(message)} ${Cause.pretty(cause)}`)
      })
      const c = yield* startContainer({ handler, frames }).pipe(Effect.provide(Logger.layer([capture])))
      expectInferenceFailed(yield* promise(() => call(c.socketPath, requestFor("now:die"))), "now:die", "kaboom")
      expect(logged.some((line) => line.includes("kaboom") && line.includes("handlerFailures.test.ts"))).toBe(true)
    }))
})

describe("every answer echoes the request's ids", () => {
  const deep = (levels: number) => "[".repeat(levels) + "]".repeat(levels)

  it.live("metadata JSON cannot carry (BigInt, cycle, throwing toJSON): INFERENCE_FAILED with the request's frame_id", () =>
    Effect.gen(function*() {
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      const metadata: Record<string, Record<string, unknown>> = {
        bigint: { big: 10n },
        cycle: cyclic,
        toJSON: { odd: { toJSON: () => { throw boom("no JSON for you") } } }
      }
      const handler: InferenceHandlerShape = {
        infer: (req) => Effect.succeed({ detections: [], metadata: metadata[String(req.request_id).split(":")[1]!]! })
      }
      const c = yield* startContainer({ handler, frames }).pipe(Effect.provide(Logger.layer([])))
      for (const kind of Object.keys(metadata)) {
        const id = `now:${kind}`
        expectInferenceFailed(yield* promise(() => call(c.socketPath, requestFor(id))), id, "metadata")
      }
    }))

  it.live("a request nested 10^4+ levels deep: INVALID_REQUEST naming the problem, ids echoed", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ frames })
      const body = (field: string, value: string, frameId = "9") =>
        `{"frame_reference":"/dev/shm/cam1","camera_id":"camera_1","model_id":"test-model","timestamp":1,"request_id":"deep",` +
        `"frame_metadata":{"width":64,"height":48,"frame_id":${frameId}},"${field}":${value}}`
      const cases = [
        body("frame_metadata", `{"width":${deep(20_000)},"height":48,"frame_id":9}`),
        body("config", `{"x":${deep(20_000)}}`),
        body("extra", deep(100_000))
      ]
      for (const text of cases) {
        const { replies } = yield* promise(() => converse(c.socketPath, [encodePayload(Buffer.from(text))]))
        expect(replies[0]).toMatchObject({ error_code: "INVALID_REQUEST", request_id: "deep", camera_id: "camera_1", detections: [] })
        expect(replies[0]!.error).toContain("deeper than")
      }
      // Where the frame_id itself is the deep part, the ids that can be echoed are.
      const { replies } = yield* promise(() => converse(c.socketPath, [encodePayload(Buffer.from(body("x", "1", deep(20_000))))]))
      expect(replies[0]).toMatchObject({ error_code: "INVALID_REQUEST", request_id: "deep", camera_id: "camera_1", frame_id: 0 })
      // A request of ordinary depth in its fields is still served.
      const fine = yield* promise(() => call(c.socketPath, request("/dev/shm/cam1", { config: { a: { b: { c: [[1]] } } } })))
      expect(fine.error).toBeNull()
    }))
})
