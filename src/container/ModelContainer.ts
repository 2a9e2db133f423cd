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
import { type ConfigError, Deferred, Effect, Layer, type Scope } from "effect"
import { RuntimeConfig, type RuntimeSettings, type RuntimeSettingsInput } from "../config/RuntimeConfig.js"
import { FrameReader } from "../frames/FrameReader.js"
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
      Deferred.unsafeDone(shutdownRequested, Effect.void)
    })
  }
  // Registered first so it runs last: the final word in the heartbeat file.
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      state.status = "stopped"
      return settings.heartbeatIntervalMs > 0 ? writeHeartbeat(settings, state) : Effect.void
    }).pipe(Effect.zipRight(Effect.logInfo(`model '${settings.modelId}' stopped`)))
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
        Effect.timeoutTo({ duration: settings.drainTimeoutMs, onSuccess: (ok) => ok, onTimeout: () => false })
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

/** Runtime config from the environment (plus `overrides`) and the live frame reader. */
export const layerFromEnv = (overrides: Partial<RuntimeSettingsInput> = {}) =>
  FrameReader.layer.pipe(Layer.provideMerge(RuntimeConfig.fromEnv(overrides)))

/** `run` configured from the environment: all a model author needs besides the handler. */
export const launch: Effect.Effect<void, StartError | ConfigError.ConfigError, InferenceHandler> = run.pipe(
  Effect.provide(layerFromEnv())
)

/** `launch` with settings that win over the environment. */
export const launchWith = (
  overrides: Partial<RuntimeSettingsInput>
): Effect.Effect<void, StartError | ConfigError.ConfigError, InferenceHandler> =>
  run.pipe(Effect.provide(layerFromEnv(overrides)))
