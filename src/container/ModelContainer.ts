/**
 * The container runtime: runtime config + frame reader + the author's
 * handler + IPC server + heartbeat, with graceful shutdown.
 *
 * ```ts
 * NodeRuntime.runMain(ModelContainer.launch.pipe(Effect.provide(Handler)))
 * ```
 *
 * Shutdown (SIGTERM/SIGINT, `shutdown`, or interruption): stop accepting and
 * remove the socket file, answer new requests on open connections with
 * SHUTTING_DOWN, let in-flight requests finish within the drain deadline,
 * close connections, write a final `stopped` heartbeat. A second signal exits
 * the process at once.
 */
import { Cause, Config, Data, Deferred, Effect, Exit, Layer, Option, type Runtime, type Scope } from "effect"
import { ModelConfig } from "../config/ModelConfig.js"
import { type ModelSelectionError, selectModel } from "../config/ModelDiscovery.js"
import {
  checkFlagsAndEnvironment,
  type FlagNames,
  programEnvironment,
  RuntimeConfig,
  type RuntimeSettings,
  type RuntimeSettingsInput,
  type SettingsError,
  settingsFromModel
} from "../config/RuntimeConfig.js"
import { FrameReader } from "../frames/FrameReader.js"
import { layer as schedulerLayer, Scheduler } from "../inference/Scheduler.js"
import { type ListenError, serve } from "../ipc/IpcServer.js"
import type { SocketPathError } from "../ipc/socketPath.js"
import { VERSION } from "../version.js"
import { startHeartbeat, writeHeartbeat } from "./Heartbeat.js"
import { InferenceHandler } from "./InferenceHandler.js"
import { ContainerState, type MetricsSnapshot } from "./Metrics.js"
import { makePipeline } from "./pipeline.js"

export interface RunningContainer {
  readonly settings: RuntimeSettings
  readonly socketPath: string
  /** Status and counters, as health reports them. */
  readonly snapshot: () => MetricsSnapshot & { readonly status: ContainerState["status"] }
  /** Asks for a graceful shutdown (what SIGTERM does). */
  readonly shutdown: Effect.Effect<void>
  /** Completes once shutdown has been asked for. */
  readonly awaitShutdown: Effect.Effect<void>
}

export type StartError = SocketPathError | ListenError

const SIGNALS = { SIGTERM: 15, SIGINT: 2 } as const

/** First signal: ask for shutdown. Second: exit now (the operator means it). */
const installSignalHandlers = (onFirst: () => void): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let received = 0
      const handlers = Object.entries(SIGNALS).map(([signal, number]) => {
        const handler = () => {
          received++
          if (received === 1) onFirst()
          else process.exit(128 + number)
        }
        process.on(signal, handler)
        return [signal, handler] as const
      })
      return handlers
    }),
    (handlers) => Effect.sync(() => handlers.forEach(([signal, handler]) => process.off(signal, handler)))
  )

/**
 * Starts the container in the current scope and returns once it is listening.
 * Closing the scope drains and stops it.
 */
export const start: Effect.Effect<
  RunningContainer,
  StartError,
  Scope.Scope | RuntimeConfig | FrameReader | InferenceHandler
> = Effect.gen(function*() {
  const settings = yield* RuntimeConfig
  const state = new ContainerState()
  const shutdownRequested = yield* Deferred.make<void>()
  const shutdown = Deferred.succeed(shutdownRequested, undefined).pipe(Effect.asVoid)

  if (settings.handleSignals) {
    yield* installSignalHandlers(() => {
      Deferred.doneUnsafe(shutdownRequested, Effect.void)
    })
  }
  // Registered first so it runs last: the final word in the heartbeat file.
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      state.status = "stopped"
      return settings.heartbeatIntervalMs > 0 ? writeHeartbeat(settings, state) : Effect.void
    }).pipe(Effect.andThen(Effect.logInfo(`model '${settings.modelId}' stopped`)))
  )

  const pipeline = yield* makePipeline({ settings, state })
  state.status = "ready"
  const server = yield* serve(
    {
      socketPath: settings.socketPath,
      socketMode: settings.socketMode,
      maxMessageBytes: settings.maxMessageBytes,
      idleTimeoutMs: settings.idleTimeoutMs
    },
    pipeline
  )
  yield* startHeartbeat(settings, state)

  // Runs before the server's own finalizer, which closes whatever is still open.
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      state.status = "draining"
      yield* server.stopAccepting
      if (settings.heartbeatIntervalMs > 0) yield* writeHeartbeat(settings, state)
      const busy = server.busyCount()
      yield* Effect.logInfo(`draining: ${busy} request(s) in flight, deadline ${settings.drainTimeoutMs} ms`)
      const drained = yield* server.awaitIdle.pipe(
        Effect.as(true),
        Effect.timeoutOrElse({ duration: settings.drainTimeoutMs, orElse: () => Effect.succeed(false) })
      )
      if (!drained) {
        yield* Effect.logWarning(`drain deadline passed with ${server.busyCount()} request(s) in flight; closing them`)
      }
      yield* server.closeConnections
    })
  )

  yield* Effect.logInfo(
    `model-runtime ${VERSION}: serving model '${settings.modelId}' on ${settings.socketPath} ` +
      `(mode ${settings.socketMode.toString(8).padStart(4, "0")}, max_inflight ${settings.maxInflight}, ` +
      `timeout ${settings.requestTimeoutMs} ms)`
  )

  return {
    settings,
    socketPath: settings.socketPath,
    snapshot: () => ({ ...state.snapshot(), status: state.status }),
    shutdown,
    awaitShutdown: Deferred.await(shutdownRequested)
  } satisfies RunningContainer
})

/** Serves until shutdown is asked for (signal or `shutdown`), then drains and returns. */
export const run: Effect.Effect<void, StartError, RuntimeConfig | FrameReader | InferenceHandler> = Effect.scoped(
  Effect.flatMap(start, (container) => container.awaitShutdown)
)

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
const envModelsDir = Config.option(Config.String("RUTH_MODELS_DIR")).pipe(
  Effect.map(Option.filter((dir) => dir.trim() !== "")),
  Effect.orElseSucceed(() => Option.none<string>())
)

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
  reportStartFailure(runWith(options)).pipe(Effect.provide(programEnvironment))

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
    Effect.flatMap(resolveLaunch(options), ({ settings }) => run.pipe(Effect.provide(containerLayer(settings, handler))))
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
