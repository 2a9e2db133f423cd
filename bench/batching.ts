/**
 * Batching and parallel sessions ("streams") at the ONNX session level: where they pay on this
 * CPU machine. Sessions are `makeOnnxSession` worker sessions (the runtime's default), without
 * `poolThreadNice`, fed lent input arrays (`borrowInput`) as the runtime feeds them.
 *
 *   npx tsx bench/batching.ts [--model ocr|small|both] [--seconds S] [--repeats R] [--json]
 *
 * Configurations, each a closed loop for S seconds (default 4) after warm-up runs, the median of
 * R repeats (default 3; the repeats go round all configurations, so drift spreads over all):
 *   baseline   one session, intra-op threads = cores, batch 1
 *   batch B    the same session setup with inputs of batch B (dims [B,3,H,W]), B = 2, 4; one run
 *              in flight at a time, as the scheduler keeps one stream; frames/s = B × runs/s
 *   S streams  S sessions (S = 2), floor(cores / S) intra-op threads each, batch 1, each session
 *              kept busy by a closed loop of its own (S runs in flight); frames/s over all sessions
 *
 * Models: `ocr`, the PP-OCRv4 text detector of examples/models/text-detection at its input size
 * (640×640); `small`, a 1×1 Conv (3 → 1 channels) + Sigmoid on [N,3,160,160] built in process,
 * where the per-run overhead (hand-off to the worker thread, ORT's run setup) weighs.
 *
 * Per row: runs/s, frames/s, the median wall time of one run (call to result, hand-off
 * included; `ortMsP50` in JSON is ORT's own run time), and frames/s over the baseline's.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { loadModelConfig } from "../src/config/ModelConfig.js"
import { toPreprocessSettings } from "../src/inference/preprocessSettings.js"
import { median } from "../src/ipc/loadgen.js"
import { type InputTensor, makeOnnxSession, type OnnxError, type OnnxSession, type ValueInfo } from "../src/inference/OnnxSession.js"
import { encodeModel, writeTempFile } from "../test/support/onnxBuilder.js"
import { isMainModule, jsonOutput, option } from "./cli.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

export type BatchingModel = "ocr" | "small"

export const BATCHING_MODELS: ReadonlyArray<BatchingModel> = ["ocr", "small"]

export interface BatchingRow {
  readonly model: BatchingModel
  readonly config: string
  readonly batch: number
  readonly sessions: number
  readonly threadsPerSession: number
  /** Runs completed per second, all sessions together. */
  readonly runsPerSecond: number
  /** Frames (batch items) per second: batch × runs/s. */
  readonly framesPerSecond: number
  /** Median wall time of one run, from the call to its result (hand-off to the worker included). */
  readonly msPerRunP50: number
  /** Median time ORT itself ran, timed on the session's thread. */
  readonly ortMsP50: number
  /** framesPerSecond over the baseline row's (batch 1, one session). */
  readonly vsBaseline: number
  /** Runs measured, over all repeats and sessions. */
  readonly runs: number
}

export interface BatchingBenchOptions {
  readonly models?: ReadonlyArray<BatchingModel>
  /** Seconds of closed loop per configuration and repeat (default 4). */
  readonly seconds?: number
  /** Repeats per configuration; each row is their median (default 3). */
  readonly repeats?: number
  /** Runs per session before each measurement (default 3). */
  readonly warmupRuns?: number
  /** Per model: its heading, the session's declared inputs, then its table when measured. */
  readonly log?: (line: string) => void
}

interface Config {
  readonly label: string
  readonly batch: number
  readonly sessions: number
  readonly threadsPerSession: number
}

/** The model under test: its file (within the scope), input name and image size. */
interface ModelUnderTest {
  readonly title: string
  readonly modelPath: string
  readonly inputName: string
  readonly height: number
  readonly width: number
}

/** The text detector as examples/models/text-detection/model.yaml declares it. */
const ocrModel: Effect.Effect<ModelUnderTest, Error> = loadModelConfig(path.join(root, "examples/models/text-detection")).pipe(
  Effect.map((loaded) => ({
    title: `${loaded.config.model_name}, ${path.basename(loaded.weightsPath)}`,
    modelPath: loaded.weightsPath,
    inputName: loaded.config.backend.input_name ?? "x",
    height: toPreprocessSettings(loaded.config).height,
    width: toPreprocessSettings(loaded.config).width
  }))
)

const SMALL_SIZE = 160

/** `y = sigmoid(conv1x1(x))`, x [N,3,160,160] → y [N,1,160,160], written to a temp file that goes with the scope. */
const smallModel: Effect.Effect<ModelUnderTest, never, Scope.Scope> = Effect.map(
  writeTempFile(
    "conv1x1-sigmoid.onnx",
    encodeModel({
      inputs: [{ name: "x", elemType: "float32", dims: ["N", 3, SMALL_SIZE, SMALL_SIZE] }],
      outputs: [{ name: "y", elemType: "float32", dims: ["N", 1, SMALL_SIZE, SMALL_SIZE] }],
      initializers: [{ name: "w", dims: [1, 3, 1, 1], values: Float32Array.of(0.3, 0.6, 0.1) }],
      nodes: [
        { opType: "Conv", inputs: ["x", "w"], outputs: ["conv"] },
        { opType: "Sigmoid", inputs: ["conv"], outputs: ["y"] }
      ]
    })
  ),
  (modelPath) => ({
    title: `1×1 Conv (3 → 1) + Sigmoid, built in process`,
    modelPath,
    inputName: "x",
    height: SMALL_SIZE,
    width: SMALL_SIZE
  })
)

const BATCHES = [2, 4]
const STREAMS = [2]

/** The configurations measured: the baseline, batching on one session, then parallel sessions. */
const configsFor = (cores: number, batchDimDynamic: boolean): ReadonlyArray<Config> => [
  { label: "baseline", batch: 1, sessions: 1, threadsPerSession: cores },
  ...(batchDimDynamic ? BATCHES : []).map((batch) => ({ label: `batch ${batch}`, batch, sessions: 1, threadsPerSession: cores })),
  ...STREAMS.map((sessions) => ({
    label: `${sessions} streams`,
    batch: 1,
    sessions,
    threadsPerSession: Math.max(1, Math.floor(cores / sessions))
  }))
]

const describeInputs = (inputs: ReadonlyArray<ValueInfo>): string =>
  inputs.map((i) => `${i.name} ${i.elementType ?? "non-tensor"} [${i.dims.join(", ")}]`).join("; ")

/** A symbolic or negative leading dim: the model takes any batch size. */
const isBatchDimDynamic = (input: ValueInfo | undefined): boolean => {
  const first = input?.dims[0]
  return typeof first === "string" || (typeof first === "number" && first < 0)
}

/**
 * Feeds for one run of batch `batch`: an array lent by the session (moved to its thread, not
 * copied), filled with a fixed pattern once when fresh; lent arrays come back with their contents.
 */
const feedsFor = (session: OnnxSession, model: ModelUnderTest, batch: number) => {
  const dims = [batch, 3, model.height, model.width]
  const length = dims.reduce((n, d) => n * d, 1)
  return (): Record<string, InputTensor> => {
    const data = session.borrowInput("float32", length)
    // A new buffer is all zeros; the pattern never starts with 0.
    if (data[0] === 0) for (let i = 0; i < length; i++) data[i] = (Math.imul(i + 1, 0x9e3779b1) >>> 0) / 2 ** 32
    return { [model.inputName]: { data, dims, type: "float32" } }
  }
}

interface LoopResult {
  readonly runs: number
  readonly elapsedMs: number
  readonly wallMs: ReadonlyArray<number>
  readonly ortMs: ReadonlyArray<number>
}

/** Runs back to back, each call made when the previous one returned, until `stopAt` and at least `minRuns`. */
const closedLoop = (
  session: OnnxSession,
  feeds: () => Record<string, InputTensor>,
  stopAt: number,
  minRuns: number
): Effect.Effect<LoopResult, OnnxError> =>
  Effect.gen(function*() {
    const wallMs: Array<number> = []
    const ortMs: Array<number> = []
    const start = performance.now()
    let end = start
    while (wallMs.length < minRuns || end < stopAt) {
      const sent = performance.now()
      const result = yield* session.runTimed(feeds())
      end = performance.now()
      wallMs.push(end - sent)
      ortMs.push(result.runMs)
    }
    return { runs: wallMs.length, elapsedMs: end - start, wallMs, ortMs }
  })

interface Sample {
  readonly runsPerSecond: number
  readonly msPerRunP50: number
  readonly ortMsP50: number
  readonly runs: number
}

/** One repeat of `config`: fresh sessions, warm-up, then a closed loop per session for `seconds`. */
const measure = (model: ModelUnderTest, config: Config, seconds: number, warmupRuns: number): Effect.Effect<Sample, OnnxError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const all = Array.from({ length: config.sessions }, () => undefined)
      const sessions = yield* Effect.forEach(all, () =>
        makeOnnxSession({ modelPath: model.modelPath, executionProviders: ["cpu"], intraOpThreads: config.threadsPerSession }))
      const loops = sessions.map((session) => ({ session, feeds: feedsFor(session, model, config.batch) }))
      yield* Effect.forEach(loops, (l) => closedLoop(l.session, l.feeds, 0, warmupRuns), { concurrency: "unbounded" })
      const stopAt = performance.now() + seconds * 1000
      const results = yield* Effect.forEach(loops, (l) => closedLoop(l.session, l.feeds, stopAt, 1), { concurrency: "unbounded" })
      // Each loop's rate over its own span: the sessions' loops end at different moments after stopAt.
      return {
        runsPerSecond: results.reduce((sum, r) => sum + (r.runs * 1000) / r.elapsedMs, 0),
        msPerRunP50: median(results.flatMap((r) => r.wallMs)),
        ortMsP50: median(results.flatMap((r) => r.ortMs)),
        runs: results.reduce((sum, r) => sum + r.runs, 0)
      }
    })
  )

/** Every configuration of one model, `repeats` rounds through all of them; one row per configuration. */
const benchModel = (
  name: BatchingModel,
  seconds: number,
  repeats: number,
  warmupRuns: number,
  log: (line: string) => void
): Effect.Effect<Array<BatchingRow>, Error> =>
  Effect.scoped(
    Effect.gen(function*() {
      const model = yield* (name === "ocr" ? ocrModel : smallModel)
      const inputs = yield* Effect.scoped(
        Effect.map(makeOnnxSession({ modelPath: model.modelPath, executionProviders: ["cpu"] }), (s) => s.inputs)
      )
      const dynamic = isBatchDimDynamic(inputs.find((i) => i.name === model.inputName))
      log(`\n## ${name}: ${model.title}, ${model.height}×${model.width}\n`)
      log(`session.inputs: ${describeInputs(inputs)} (batch dim ${dynamic ? "dynamic" : "fixed: batch 1 only"})\n`)
      const configs = configsFor(os.availableParallelism(), dynamic)
      const samples = configs.map((): Array<Sample> => [])
      for (let round = 0; round < repeats; round++) {
        for (const [i, config] of configs.entries()) samples[i]!.push(yield* measure(model, config, seconds, warmupRuns))
      }
      const rows = configs.map((config, i) => {
        const s = samples[i]!
        const runsPerSecond = median(s.map((x) => x.runsPerSecond))
        return {
          model: name,
          config: config.label,
          batch: config.batch,
          sessions: config.sessions,
          threadsPerSession: config.threadsPerSession,
          runsPerSecond,
          framesPerSecond: runsPerSecond * config.batch,
          msPerRunP50: median(s.map((x) => x.msPerRunP50)),
          ortMsP50: median(s.map((x) => x.ortMsP50)),
          runs: s.reduce((sum, x) => sum + x.runs, 0)
        }
      })
      const baseline = rows[0]!.framesPerSecond
      const withRatio = rows.map((r) => ({ ...r, vsBaseline: r.framesPerSecond / baseline }))
      log(formatBatchingTable(withRatio))
      return withRatio
    })
  )

/** Measures every configuration of each model in turn (never in parallel: they share the cores). */
export const runBatchingBench = (options: BatchingBenchOptions = {}): Promise<Array<BatchingRow>> => {
  const seconds = options.seconds ?? 4
  const repeats = options.repeats ?? 3
  const warmupRuns = options.warmupRuns ?? 3
  const log = options.log ?? (() => {})
  return Effect.runPromise(
    Effect.map(
      Effect.forEach(options.models ?? BATCHING_MODELS, (name) => benchModel(name, seconds, repeats, warmupRuns, log)),
      (perModel) => perModel.flat()
    )
  )
}

/** The CPU, its core count, Node's version and the date, for the top of a report. */
export const machineLine = (): string =>
  `${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.cpus().length} CPUs, Node ${process.version}, ${new Date().toISOString()}`

/** One model's rows as a markdown table. */
export const formatBatchingTable = (rows: ReadonlyArray<BatchingRow>): string =>
  [
    "| config | batch | sessions | threads/session | runs/s | frames/s | ms/run p50 | vs baseline |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.config} | ${r.batch} | ${r.sessions} | ${r.threadsPerSession} | ${r.runsPerSecond.toFixed(1)} | ${
        r.framesPerSecond.toFixed(1)
      } | ${r.msPerRunP50.toFixed(2)} | ${r.vsBaseline.toFixed(2)}× |`
    )
  ].join("\n")

/** A positive number given as `--name`, or `fallback` when absent. */
const positiveOption = (name: string, fallback: number, integer: boolean): number => {
  const given = option(name)
  if (given === undefined) return fallback
  const value = Number(given)
  if (!(value > 0) || (integer && !Number.isInteger(value))) {
    throw new Error(`--${name} must be a positive ${integer ? "integer" : "number"}, got ${given}`)
  }
  return value
}

if (isMainModule(import.meta.url)) {
  const json = jsonOutput()
  const which = option("model") ?? "both"
  if (which !== "ocr" && which !== "small" && which !== "both") throw new Error(`--model must be ocr, small or both, got ${which}`)
  const log = json ? () => {} : (line: string) => console.log(line)
  log(`# ONNX session: batching and streams\n\n${machineLine()}`)
  const rows = await runBatchingBench({
    models: which === "both" ? BATCHING_MODELS : [which],
    seconds: positiveOption("seconds", 4, false),
    repeats: positiveOption("repeats", 3, true),
    log
  })
  if (json) for (const row of rows) console.log(JSON.stringify({ bench: "batching", ...row }))
}
