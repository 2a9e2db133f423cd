/**
 * The container runtime: runtime config + frame reader + the author's
 * handler + IPC server + heartbeat, with graceful shutdown, as one layer
 * (`layer`); `start`, `run` and the `launch` family are that layer launched.
 *
 * ```ts
 * NodeRuntime.runMain(ModelContainer.launch.pipe(Effect.provide(Handler)), { teardown: ModelContainer.teardown })
 * ```
 *
 * Shutdown (`shutdown`, or the program interrupted — `NodeRuntime.runMain`
 * interrupts it on SIGTERM/SIGINT): stop accepting and remove the socket
 * file, answer new requests on open connections with SHUTTING_DOWN, let
 * in-flight requests finish within the drain deadline, close connections,
 * write a final `stopped` heartbeat. With `handleSignals`, a signal while it
 * stops exits the process at once.
 */
import { Cause, Context, Data, Deferred, Effect, Exit, Layer, Option, type Runtime, Scope } from "effect"
import { ModelConfig } from "../config/ModelConfig.js"
import { type ModelSelectionError, selectModel } from "../config/ModelDiscovery.js"
import {
  checkFlagsAndEnvironment,
  environmentVariable,
  type FlagNames,
  type InvalidSettings,
  programEnvironment,
  RuntimeConfig,
  type RuntimeSettings,
  type RuntimeSettingsInput,
  type SettingsError,
  settingsFromModel
} from "../config/RuntimeConfig.js"
import { FrameReader } from "../frames/FrameReader.js"
import { layer as schedulerLayer, Scheduler } from "../inference/Scheduler.js"
import * as IpcServer from "../ipc/IpcServer.js"
import type { SocketPathError } from "../ipc/socketPath.js"
import { VERSION } from "../version.js"
import * as Heartbeat from "./Heartbeat.js"
import * as Logging from "./Logging.js"
import { InferenceHandler } from "../inference/InferenceHandler.js"
import { ContainerState, type MetricsSnapshot } from "./Metrics.js"
import { makePipeline } from "./pipeline.js"
import { ContainerMetrics, type MetricsListenError, serveHttp } from "./Prometheus.js"
import * as Tracing from "./Tracing.js"

export interface RunningContainer {
  readonly settings: RuntimeSettings
  readonly socketPath: string
  /** Where `GET /metrics` is served (`host:port`, the port bound), when `metricsAddr` is set. */
  readonly metricsAddress: string | undefined
  /** Where request spans are exported (the OTLP traces URL), when `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` is set. */
  readonly tracesUrl: string | undefined
  /** Status and counters, as health reports them. */
  readonly snapshot: () => MetricsSnapshot & { readonly status: ContainerState["status"] }
  /** Asks for a graceful shutdown (what `run` waits for; a signal interrupts the program instead). */
  readonly shutdown: Effect.Effect<void>
  /** Completes once shutdown has been asked for. */
  readonly awaitShutdown: Effect.Effect<void>
}

/** A running container, for as long as its layer's scope is open. */
export class ModelContainer extends Context.Service<ModelContainer, RunningContainer>()("@ruth-ai/model-runtime/ModelContainer") {}

export type StartError = SocketPathError | IpcServer.ListenError | MetricsListenError | InvalidSettings

const SIGNALS = { SIGTERM: 15, SIGINT: 2 } as const

/**
 * While the scope is open, SIGTERM/SIGINT exit the process at once (128 + the
 * signal's number). The first signal is the platform's: `NodeRuntime.runMain`
 * interrupts the program, which stops the container; its handler stays and
 * only interrupts again, so without this a second signal would wait for the
 * drain (the operator means it).
 */
const exitOnSignal: Effect.Effect<void, never, Scope.Scope> = Effect.asVoid(
  Effect.acquireRelease(
    Effect.sync(() =>
      Object.entries(SIGNALS).map(([signal, number]) => {
        const exit = () => process.exit(128 + number)
        process.on(signal, exit)
        return [signal, exit] as const
      })
    ),
    (handlers) => Effect.sync(() => handlers.forEach(([signal, exit]) => process.off(signal, exit)))
  )
)

/**
 * The container, composed in one place, on whichever `Transport` is provided (the socket, or
 * `IpcServer.memoryTransport` in a test). Acquired top to bottom, released bottom to top: the
 * status turns `draining` (heartbeat, health), the server drains and closes its connections, the
 * heartbeat stops with its `stopped` beat.
 */
export const layerOn: Layer.Layer<
  ModelContainer,
  StartError,
  RuntimeConfig | FrameReader | InferenceHandler | IpcServer.Transport
> = Layer.effect(
  ModelContainer,
  Effect.gen(function*() {
    const settings = yield* RuntimeConfig
    const metrics = new ContainerMetrics({ modelId: settings.modelId, cameras: settings.metricsCameras })
    yield* metrics.processMetrics()
    const state = new ContainerState(metrics)
    const shutdownRequested = yield* Deferred.make<void>()
    // What the shutdown holds from its start to its very end (the exit on a signal), released last.
    const stopping = yield* Scope.make()
    yield* Effect.addFinalizer((exit) => Scope.close(stopping, exit))
    yield* Effect.addFinalizer(() => Effect.logInfo(`model '${settings.modelId}' stopped`))
    const heartbeat = yield* Heartbeat.make(settings, state)
    // Before the server: the last spans are sent once the last request has drained, before the `stopped` beat.
    const traces = yield* Tracing.make(settings)

    const pipeline = yield* makePipeline({ settings, state, tracing: traces?.tracing })
    state.status = "ready"
    const transport = yield* IpcServer.Transport
    const server = yield* transport.serve(
      {
        socketPath: settings.socketPath,
        socketMode: settings.socketMode,
        maxMessageBytes: settings.maxMessageBytes,
        idleTimeoutMs: settings.idleTimeoutMs,
        drainTimeoutMs: settings.drainTimeoutMs
      },
      pipeline
    )
    metrics.gauges({
      inflight: () => state.inflight,
      inflightLimit: settings.maxInflight,
      connections: () => Effect.runSync(server.connections),
      ready: () => state.status === "ready",
      modelVersion: settings.modelVersion,
      executionProvider: (yield* InferenceHandler).executionProvider ?? "unknown"
    })
    const metricsAddress = settings.metricsAddr === "" ? undefined : yield* serveHttp(settings.metricsAddr, metrics)
    yield* heartbeat.start

    // Released first, before the server drains.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        state.status = "draining"
        if (settings.handleSignals) yield* Scope.provide(stopping)(exitOnSignal)
        yield* heartbeat.beat
      })
    )

    yield* Effect.logInfo(
      `model-runtime ${VERSION}: serving model '${settings.modelId}' on ${server.socketPath} ` +
        `(mode ${settings.socketMode.toString(8).padStart(4, "0")}, max_inflight ${settings.maxInflight}, ` +
        `timeout ${settings.requestTimeoutMs} ms)` +
        (metricsAddress === undefined ? "" : `; metrics on http://${metricsAddress}/metrics`)
    )

    return ModelContainer.of({
      settings,
      socketPath: server.socketPath,
      metricsAddress,
      tracesUrl: traces?.settings.url,
      snapshot: () => ({ ...state.snapshot(), status: state.status }),
      shutdown: Effect.asVoid(Deferred.succeed(shutdownRequested, undefined)),
      awaitShutdown: Deferred.await(shutdownRequested)
    })
  })
)

/** The container on its Unix socket: `layerOn` with the socket transport. */
export const layer: Layer.Layer<ModelContainer, StartError, RuntimeConfig | FrameReader | InferenceHandler> = layerOn.pipe(
  Layer.provide(IpcServer.socketTransport)
)

/**
 * Starts the container in the current scope and returns once it is listening
 * (the layer, built in the caller's scope). Closing the scope drains and stops it.
 */
export const start: Effect.Effect<
  RunningContainer,
  StartError,
  Scope.Scope | RuntimeConfig | FrameReader | InferenceHandler
> = Effect.map(Layer.build(layer), Context.get(ModelContainer))

/** Serves until shutdown is asked for (`shutdown`) or the program is interrupted, then drains and returns. */
export const run: Effect.Effect<void, StartError, RuntimeConfig | FrameReader | InferenceHandler> = ModelContainer.use(
  (container) => container.awaitShutdown
).pipe(Effect.provide(layer))

/** What `launchWith` takes: settings that win over the environment, and where models live. */
export type LaunchOptions = Partial<RuntimeSettingsInput> & {
  /** Scan this directory for `{model}/model.yaml` (default: `RUTH_MODELS_DIR`, else no discovery). */
  readonly modelsDir?: string
  /** How the caller spells these options, for messages (the CLI: `--max-inflight`); default: the keys. */
  readonly flagNames?: FlagNames
}

// Moved to config (kept here for callers of `ModelContainer.settingsFromModel` / `selectModel`).
export { type ModelSelectionError, selectModel, settingsFromModel }

/** `RUTH_MODELS_DIR`, when set to something. */
const envModelsDir = environmentVariable("RUTH_MODELS_DIR")

/**
 * The configuration layers of a launch: `RuntimeConfig.fromSources` over the flags, and — when a
 * models dir and a model id are known — `ModelConfig.fromDiscovery` below it (its output holds both
 * services then). Flags and environment are checked before the models dir is scanned, so a bad
 * value is reported as such and not as a model that cannot be found.
 */
export const launchConfig = (options: LaunchOptions = {}): Layer.Layer<RuntimeConfig, SettingsError | ModelSelectionError> =>
  Layer.unwrap(Effect.gen(function*() {
    const { flagNames, modelsDir: dirFlag, ...flags } = options
    const names = flagNames === undefined ? {} : { flagNames }
    const { modelId } = yield* checkFlagsAndEnvironment({ flags, ...names })
    const modelsDir = dirFlag ?? Option.getOrUndefined(yield* envModelsDir)
    const runtime = RuntimeConfig.fromSources(flags, names)
    return modelsDir !== undefined && modelId !== undefined
      ? runtime.pipe(Layer.provideMerge(ModelConfig.fromDiscovery(modelsDir, modelId)))
      : runtime
  }))

/**
 * Runs a container program with the logger its flags and environment ask for (`logFormat`,
 * `logLevel`: `RUTH_LOG_FORMAT`, `RUTH_LOG_LEVEL`), every line annotated with the model id. A bad
 * value fails it before anything is logged. `launch*`, `ruth-model serve` and `demo` use it; `run`,
 * `runWith` and `serveModel` leave an embedding program's logger alone.
 */
export const withLogging = (options: LaunchOptions = {}) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | InvalidSettings, R> =>
  Effect.suspend(() => {
    const { flagNames, modelsDir: _, ...flags } = options
    return checkFlagsAndEnvironment({ flags, ...(flagNames === undefined ? {} : { flagNames }) })
  }).pipe(
    Effect.flatMap((early) =>
      (early.modelId === undefined ? self : Effect.annotateLogs(self, Logging.MODEL_ID_KEY, early.modelId)).pipe(
        Effect.provide(Logging.layer(early))
      )
    )
  )

/**
 * Resolves the settings once (`launchConfig`), logging the effective configuration, and returns
 * them with the selected model when a models dir and model id are known.
 */
export const resolveLaunch = (options: LaunchOptions = {}) =>
  Effect.gen(function*() {
    const settings = yield* RuntimeConfig
    const model = Option.getOrUndefined(yield* Effect.serviceOption(ModelConfig))
    return { settings, model }
  }).pipe(Effect.provide(launchConfig(options)))

/** Runtime config (from `resolveLaunch`), the live frame reader and the scheduler: what a handler layer may use. */
const runtimeLayer = (settings: RuntimeSettings) =>
  Layer.merge(FrameReader.layer, schedulerLayer).pipe(Layer.provideMerge(Layer.succeed(RuntimeConfig, settings)))

/** The one place a container's layers meet: the handler gets the runtime's services (the scheduler among them). */
const containerLayer = <E>(settings: RuntimeSettings, handler: Layer.Layer<InferenceHandler, E, Scheduler | RuntimeConfig>) =>
  handler.pipe(Layer.provideMerge(runtimeLayer(settings)))

export type LaunchError = StartError | SettingsError | ModelSelectionError

/**
 * A program's failure to start, reported as a process should: its message as one line on
 * stderr (no stack trace; the logger writes to stdout), exit code 1. The effect then ends
 * interrupted, so `NodeRuntime.runMain` does not report it a second time (with Effect 4, give
 * runMain `{ teardown }` from this module so that the interruption exits 1, not 130).
 */
export const reportStartFailure = <A, E extends { readonly message: string }, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, never, R> =>
  Effect.catch(self, (error) =>
    Effect.andThen(
      Effect.sync(() => {
        process.stderr.write(`model-runtime: ${error.message}\n`)
        process.exitCode = 1
      }),
      Effect.interrupt
    ))

/**
 * The exit code of a container's main, for `NodeRuntime.runMain(program, { teardown })`: success
 * or an interruption (a drained SIGTERM/SIGINT, a start failure `reportStartFailure` reported)
 * exits with `process.exitCode` (0 unless set), anything else with 1. Effect 3's runMain did
 * this by default; Effect 4's default exits 130 for an interruption.
 */
export const teardown: Runtime.Teardown = (exit, onExit) => {
  const code = typeof process.exitCode === "number" ? process.exitCode : Number(process.exitCode ?? 0)
  onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? code : 1)
}

/**
 * `run` configured from `options`, the environment and — when a models dir
 * and model id are given — the model's model.yaml; typed errors, for embedding.
 */
export const runWith = (options: LaunchOptions): Effect.Effect<void, LaunchError, InferenceHandler> =>
  Effect.flatMap(resolveLaunch(options), ({ settings }) => run.pipe(Effect.provide(runtimeLayer(settings))))

/** `runWith` as a program's main: a failure to start goes to stderr, exit code 1 (`reportStartFailure`). */
export const launchWith = (options: LaunchOptions): Effect.Effect<void, never, InferenceHandler> =>
  reportStartFailure(runWith(options).pipe(withLogging(options))).pipe(Effect.provide(programEnvironment))

/**
 * `launchWith` for a handler layer that uses the runtime's services, e.g. the `Scheduler`
 * (`yield* Scheduler`, then `scheduler.run(ticketOf(request), work)` per request): the layer is
 * built with the container's settings.
 */
export const launchHandler = <E extends { readonly message: string }>(
  handler: Layer.Layer<InferenceHandler, E, Scheduler | RuntimeConfig>,
  options: LaunchOptions = {}
): Effect.Effect<void> =>
  reportStartFailure(
    Effect.flatMap(resolveLaunch(options), ({ settings }) => run.pipe(Effect.provide(containerLayer(settings, handler)))).pipe(
      withLogging(options)
    )
  ).pipe(Effect.provide(programEnvironment))

/** All a model author needs besides the handler: configuration from the environment. */
export const launch: Effect.Effect<void, never, InferenceHandler> = Effect.suspend(() => launchWith({}))

/** `serveModel` was asked for without a model to serve. */
export class NoModelSelected extends Data.TaggedError("NoModelSelected")<{}> {
  override get message() {
    return "no model to serve: give a models dir and a model id (--models-dir/--model-id, or RUTH_MODELS_DIR/RUTH_MODEL_ID)"
  }
}

/**
 * Serves a discovered model with the built-in backend its model.yaml
 * selects (ONNX), no code needed. The model is loaded and warmed up before
 * the socket is bound, so a container that listens is ready.
 */
export const serveModel = (options: LaunchOptions) =>
  Effect.gen(function*() {
    const { model, settings } = yield* resolveLaunch(options)
    if (model === undefined) return yield* new NoModelSelected()
    // Loaded on demand: handler-only containers never pay for the native ONNX runtime.
    const OnnxHandler = yield* Effect.promise(() => import("../inference/OnnxHandler.js"))
    yield* run.pipe(Effect.provide(containerLayer(settings, OnnxHandler.layer(model))))
  })
