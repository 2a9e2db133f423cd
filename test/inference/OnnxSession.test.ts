import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Scope, Tracer } from "effect"
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { makeOnnxSession, warmUp } from "../../src/inference/OnnxSession.js"
import { collectOutput, exitOf, spawnTs } from "../support/child.js"
import { tempDir } from "../support/harness.js"
import { niceOf, onLinux, startedSince, threadNices } from "../support/threads.js"
import { castToFloatModel, constantOutputModel, identityModel, writeTempFile } from "../support/onnxBuilder.js"

const identityFloat = identityModel({
  inputName: "input",
  outputName: "output",
  elemType: "float32",
  dims: ["batch", 4, "height", "width"]
})

const open = makeOnnxSession

// The CUDA provider ships as a separate shared library next to the ORT binding; absent on CPU-only installs.
const cudaProviderInstalled = (() => {
  const ortDir = dirname(createRequire(import.meta.url).resolve("onnxruntime-node"))
  return existsSync(join(ortDir, "..", "bin", "napi-v6", process.platform, process.arch, "libonnxruntime_providers_cuda.so"))
})()

describe("makeOnnxSession (ORT in a worker thread)", () => {
  const openIdentity = Effect.gen(function* () {
    const path = yield* writeTempFile("identity.onnx", identityFloat)
    return yield* open({ modelPath: path, executionProviders: ["cpu"], intraOpThreads: 1 })
  })

  it.effect("a missing model file fails with OnnxModelLoadFailed naming the path", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const path = join(dir, "nope.onnx")
      const error = yield* Effect.flip(open({ modelPath: path, executionProviders: ["cpu"] }))
      expect(error._tag).toBe("OnnxModelLoadFailed")
      expect(error.message).toBe(`failed to load ONNX model ${path}: file does not exist`)
    })
  )

  it.effect("a corrupt model file fails with OnnxModelLoadFailed and ORT's reason", () =>
    Effect.gen(function* () {
      const path = yield* writeTempFile("corrupt.onnx", new TextEncoder().encode("this is not a protobuf"))
      const error = yield* Effect.flip(open({ modelPath: path, executionProviders: ["cpu"] }))
      expect(error._tag).toBe("OnnxModelLoadFailed")
      expect(error.message).toContain(`failed to load ONNX model ${path}: `)
      expect(error.message.length).toBeGreaterThan(`failed to load ONNX model ${path}: `.length)
    })
  )

  it.effect("a directory is not a model", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir()
      const error = yield* Effect.flip(open({ modelPath: dir, executionProviders: ["cpu"] }))
      expect(error.message).toBe(`failed to load ONNX model ${dir}: not a regular file`)
    })
  )

  it.effect.skipIf(cudaProviderInstalled)("requesting CUDA on a CPU-only build fails with ExecutionProviderUnavailable", () =>
    Effect.gen(function* () {
      const path = yield* writeTempFile("identity.onnx", identityFloat)
      const error = yield* Effect.flip(open({ modelPath: path, executionProviders: ["cuda", "cpu"] }))
      expect(error._tag).toBe("ExecutionProviderUnavailable")
      if (error._tag === "ExecutionProviderUnavailable") {
        expect(error.provider).toBe("cuda")
        expect(error.path).toBe(path)
      }
    })
  )

  it.effect("exposes input and output names and metadata, including symbolic dims", () =>
    Effect.gen(function* () {
      const session = yield* openIdentity
      expect(session.inputNames).toEqual(["input"])
      expect(session.outputNames).toEqual(["output"])
      expect(session.inputs).toEqual([{ name: "input", elementType: "float32", dims: ["batch", 4, "height", "width"] }])
      expect(session.outputs).toEqual([{ name: "output", elementType: "float32", dims: ["batch", 4, "height", "width"] }])
    })
  )

  it.effect("runs float32 feeds and returns the outputs", () =>
    Effect.gen(function* () {
      const session = yield* openIdentity
      const data = Float32Array.from({ length: 2 * 4 * 3 * 5 }, (_, i) => i * 0.5)
      const out = yield* session.run({ input: { data, dims: [2, 4, 3, 5], type: "float32" } })
      expect(out["output"]?.dims).toEqual([2, 4, 3, 5])
      expect(Array.from(out["output"]?.data ?? [])).toEqual(Array.from(data))
    })
  )

  it.effect("runs uint8 feeds", () =>
    Effect.gen(function* () {
      const path = yield* writeTempFile("cast.onnx", castToFloatModel({ inputName: "pixels", outputName: "values", dims: [1, 4] }))
      const session = yield* open({ modelPath: path, executionProviders: ["cpu"] })
      expect(session.inputs[0]?.elementType).toBe("uint8")
      const out = yield* session.run({ pixels: { data: Uint8Array.of(0, 1, 128, 255), dims: [1, 4], type: "uint8" } })
      expect(Array.from(out["values"]?.data ?? [])).toEqual([0, 1, 128, 255])
    })
  )

  it.effect("concurrent runs each get their own outputs", () =>
    Effect.gen(function* () {
      const session = yield* openIdentity
      const inputs = Array.from({ length: 8 }, (_, k) => Float32Array.from({ length: 4 * 16 * 16 }, (_, i) => k * 1000 + i))
      const outputs = yield* Effect.all(
        inputs.map((data) => session.run({ input: { data, dims: [1, 4, 16, 16], type: "float32" } })),
        { concurrency: "unbounded" }
      )
      const datas = outputs.map((o) => o["output"]?.data)
      datas.forEach((d, k) => expect(Array.from(d ?? [])).toEqual(Array.from(inputs[k] ?? [])))
      expect(new Set(datas.map((d) => d?.buffer)).size).toBe(inputs.length)
    })
  )

  it.effect("a borrowed input is taken over by its run and lent again afterwards, holding what was written to it", () =>
    Effect.gen(function* () {
      const session = yield* openIdentity
      const length = 4 * 16 * 16
      for (let round = 0; round < 3; round++) {
        const inputs = [0, 1, 2].map(() => session.borrowInput("float32", length))
        // From the second round on, the session lends back the buffers of the last round's runs.
        if (round > 0) expect(inputs.map((data) => data[7]!).sort((a, b) => a - b)).toEqual([0, 1, 2].map((k) => (round - 1) * 10_000 + k * 1000 + 7))
        inputs.forEach((data, k) => data.set(Array.from({ length }, (_, i) => round * 10_000 + k * 1000 + i)))
        const results = yield* Effect.all(
          inputs.map((data) => session.runTimed({ input: { data, dims: [1, 4, 16, 16], type: "float32" } })),
          { concurrency: "unbounded" }
        )
        results.forEach(({ outputs, runMs, waitMs }, k) => {
          expect(outputs["output"]?.data[5]).toBe(round * 10_000 + k * 1000 + 5)
          expect(runMs).toBeGreaterThan(0)
          expect(waitMs).toBeGreaterThanOrEqual(0)
        })
        // Moved to the worker, not copied: the caller's view is detached.
        expect(inputs.map((data) => data.length)).toEqual([0, 0, 0])
      }
      // The caller's own arrays are read, never taken: they stay intact and usable.
      const own = Float32Array.from({ length }, (_, i) => i)
      const out = yield* session.run({ input: { data: own, dims: [1, 4, 16, 16], type: "float32" } })
      expect([own.length, own[9], out["output"]?.data[9]]).toEqual([length, 9, 9])
      expect(out["output"]?.data.buffer).not.toBe(own.buffer)
      const path = yield* writeTempFile("cast.onnx", castToFloatModel({ inputName: "pixels", outputName: "values", dims: [1, 4] }))
      const cast = yield* open({ modelPath: path, executionProviders: ["cpu"] })
      const pixels = cast.borrowInput("uint8", 4)
      pixels.set([3, 2, 1, 0])
      const cast1 = yield* cast.run({ pixels: { data: pixels, dims: [1, 4], type: "uint8" } })
      expect(Array.from(cast1["values"]?.data ?? [])).toEqual([3, 2, 1, 0])
    })
  )

  it.effect("under a tracer of the application's own, every run is a span named OnnxSession.run", () =>
    Effect.gen(function* () {
      const session = yield* openIdentity
      const builtIn = yield* Effect.tracer
      const spans: Array<{ name: string; attributes: ReadonlyMap<string, unknown> }> = []
      const recording = Tracer.make({
        span: (options) => {
          const span = builtIn.span(options)
          spans.push({ name: options.name, attributes: span.attributes })
          return span
        },
        context: builtIn.context
      })
      const feeds = { input: { data: new Float32Array(16).fill(1), dims: [1, 4, 2, 2], type: "float32" as const } }
      yield* session.run(feeds).pipe(Effect.withTracer(recording), Effect.repeat({ times: 1 }))
      expect(spans.map((s) => s.name)).toEqual(["OnnxSession.run", "OnnxSession.run"])
      expect(spans[0]!.attributes.get("model")).toBe(session.modelPath)
    })
  )

  it.effect("rejects feeds that do not fit the model, naming the input", () =>
    Effect.gen(function* () {
      const session = yield* openIdentity
      const short = yield* Effect.flip(
        session.run({ input: { data: new Float32Array(10), dims: [1, 4, 2, 2], type: "float32" } })
      )
      expect(short._tag).toBe("OnnxRunFailed")
      expect(short.message).toContain("input 'input' has 10 values, dims [1, 4, 2, 2] need 16")
      const missing = yield* Effect.flip(session.run({}))
      expect(missing.message).toContain("missing input(s): input")
      const unknown = yield* Effect.flip(
        session.run({
          input: { data: new Float32Array(16), dims: [1, 4, 2, 2], type: "float32" },
          other: { data: new Float32Array(1), dims: [1], type: "float32" }
        })
      )
      expect(unknown.message).toContain("unknown input 'other'")
      const wrongRank = yield* Effect.flip(session.run({ input: { data: new Float32Array(4), dims: [4], type: "float32" } }))
      expect(wrongRank._tag).toBe("OnnxRunFailed")
    })
  )

  it.effect.runIf(onLinux)("poolThreadNice: ORT's pool threads run at that nice value, every other thread keeps its own", () =>
    Effect.gen(function* () {
      const path = yield* writeTempFile("identity.onnx", identityFloat)
      const before = threadNices()
      // Three intra-op threads: the calling thread and two pool threads.
      const session = yield* open({ modelPath: path, executionProviders: ["cpu"], intraOpThreads: 3, poolThreadNice: 7 })
      const lowered = [...startedSince(before)].filter(([, nice]) => nice === 7)
      expect(session.poolPriority).toEqual({ nice: 7, lowered: lowered.length })
      expect(lowered.length).toBeGreaterThanOrEqual(2)
      for (const [tid, nice] of before) if (niceOf(tid) !== undefined) expect(niceOf(tid)).toBe(nice)
      const data = Float32Array.from({ length: 4 * 8 * 8 }, (_, i) => i)
      const out = yield* session.run({ input: { data, dims: [1, 4, 8, 8], type: "float32" } })
      expect(Array.from(out["output"]?.data ?? [])).toEqual(Array.from(data))
    })
  )

  it.effect.runIf(onLinux)("poolThreadNice never raises a priority: in a process at nice 15, ORT's threads stay at 15", () =>
    Effect.gen(function* () {
      const model = yield* writeTempFile("identity.onnx", identityFloat)
      const script = fileURLToPath(new URL("../support/poolNiceChild.ts", import.meta.url))
      const child = spawnTs(script, [model], {})
      const output = collectOutput(child)
      const exit = yield* Effect.promise(() => exitOf(child))
      expect(exit.code, output()).toBe(0)
      const { priority, started } = JSON.parse(output().trim().split("\n").at(-1)!) as { priority: { nice: number; lowered: number; problem?: string }; started: Array<number> }
      expect(priority.problem).toBeUndefined()
      expect(priority.nice).toBe(7)
      expect(priority.lowered).toBeGreaterThanOrEqual(2)
      expect(started.length).toBeGreaterThanOrEqual(2)
      for (const nice of started) expect(nice).toBe(15)
    })
  )

  it.effect.runIf(onLinux)("without poolThreadNice no thread's priority changes", () =>
    Effect.gen(function* () {
      const path = yield* writeTempFile("identity.onnx", identityFloat)
      const before = threadNices()
      const session = yield* open({ modelPath: path, executionProviders: ["cpu"], intraOpThreads: 3 })
      expect(session.poolPriority).toBeUndefined()
      const started = startedSince(before)
      expect(started.size).toBeGreaterThanOrEqual(2)
      for (const nice of started.values()) expect(nice).toBe(before.get(String(process.pid)))
    })
  )

  it.effect("releases the session when its scope closes: later runs fail, an in-flight run finishes first", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const session = yield* Scope.provide(openIdentity, scope)
      const feeds = { input: { data: new Float32Array(4 * 64 * 64).fill(2), dims: [1, 4, 64, 64], type: "float32" as const } }
      const [inFlight] = yield* Effect.all([session.run(feeds), Scope.close(scope, Exit.void)], { concurrency: "unbounded" })
      expect(inFlight["output"]?.data[0]).toBe(2)
      const after = yield* Effect.flip(session.run(feeds))
      expect(after._tag).toBe("OnnxRunFailed")
      expect(after.message).toContain("the session has been released")
    })
  )
})

describe("warmUp", () => {
  it.effect("runs zeros through the model and gives the last run's outputs; zero runs touch nothing; ORT rejections surface typed", () =>
    Effect.gen(function* () {
      const path = yield* writeTempFile(
        "constant.onnx",
        constantOutputModel({ inputName: "images", inputDims: [1, 3, 8, 8], outputName: "out", outputDims: [1, 2], values: Float32Array.of(1, 2) })
      )
      const session = yield* open({ modelPath: path, executionProviders: ["cpu"] })
      const last = yield* warmUp(session, "images", [1, 3, 8, 8], "float32", 3)
      expect(Option.map(last, (outputs) => Array.from(outputs["out"]?.data ?? []))).toEqual(Option.some([1, 2]))
      const wrong = yield* Effect.flip(warmUp(session, "images", [1, 3, 4, 4, 2], "float32", 1))
      expect(wrong._tag).toBe("OnnxRunFailed")
      expect(yield* warmUp(session, "images", [1, 3, 4, 4, 2], "float32", 0)).toEqual(Option.none())
    })
  )
})
