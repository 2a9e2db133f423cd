/**
 * `ruth-model top` (or `stats`): a live view of a container, redrawn every interval from its
 * `{"op":"health"}` and `{"op":"metrics"}` answers — req/s, outcomes, p50/p99 per stage, in
 * flight against the limit, frame age — until Ctrl-C / SIGTERM (exit 0). `--json`: one snapshot.
 */
import { Command, Flag } from "effect/cli"
import { Clock, Console, Effect, Result } from "effect"
import { ClientError, makeClient, type ModelClientShape } from "../ipc/ModelClient.js"
import { parsePrometheusText, type PrometheusTextError } from "../ipc/prometheusText.js"
import {
  type CliEnvironment,
  CliFailure,
  clientFlags,
  defaultIs,
  ExitCode,
  positiveFlags,
  resolveSocket,
  unreachable
} from "./common.js"
import { renderSnapshot, snapshot, type TopSample } from "./topView.js"

export const INTERVAL_MS = 1000

const options = (env: CliEnvironment) => ({
  ...clientFlags(env),
  intervalMs: Flag.Int("interval-ms").pipe(
    Flag.withDescription(`time between two samples (the view's refresh; rates and p50/p99 are over it), in milliseconds${defaultIs(INTERVAL_MS)}`),
    Flag.withDefault(INTERVAL_MS)
  ),
  json: Flag.Boolean("json").pipe(
    Flag.withDefault(false),
    Flag.withDescription("print one snapshot as a JSON object (two samples one interval apart, so rates exist) and exit")
  )
})

/** Why a sample could not be taken. */
type SampleError = ClientError | PrometheusTextError

/**
 * Takes samples of the container behind `client`. A container that does not serve metrics is asked
 * for health only from then on, so the view does not add an error answer to its counts every
 * interval: one that answers `{"op":"metrics"}` with something else (an older runtime answers an
 * error), or closes the connection on it the first time, having just answered health.
 */
const sampler = (client: ModelClientShape, onNoMetrics: (e: ClientError) => Effect.Effect<void>) => {
  /** Unknown until the first answer; a connection closed later is a failed sample, not a verdict. */
  let metricsServed: boolean | undefined
  const metrics = Effect.gen(function*() {
    if (metricsServed === false) return undefined
    const reply = yield* Effect.result(client.metrics)
    if (Result.isFailure(reply)) {
      const e = reply.failure
      if (!(e.kind === "protocol" || (e.kind === "closed" && metricsServed === undefined))) return yield* e
      metricsServed = false
      yield* onNoMetrics(e)
      return undefined
    }
    metricsServed = true
    const samples = parsePrometheusText(reply.success.text)
    return Result.isSuccess(samples) ? samples.success : yield* samples.failure
  })
  return Effect.gen(function*() {
    const health = yield* client.health
    const samples = yield* metrics
    const taken: TopSample = { atMs: yield* Clock.currentTimeMillis, health, metrics: samples }
    return taken
  })
}

/** The first sample's failure as the command's: exit 3, one line (an original container: that it serves no health or metrics). */
const firstFailure = (socketPath: string) => (e: SampleError): CliFailure =>
  e instanceof ClientError
    ? e.kind === "closed"
      ? new CliFailure({
        message: `${socketPath} closed the connection on {"op":"health"}: this container serves neither health nor metrics ` +
          `(an original container?); ruth-model top needs a container of this runtime`,
        exitCode: ExitCode.unreachable
      })
      : unreachable(e)
    : new CliFailure({ message: `${socketPath}: ${e.message}`, exitCode: ExitCode.unreachable })

/** Home, each line cleared to its end, the rest of the screen cleared: a redraw in place without flicker. */
const inPlace = (lines: ReadonlyArray<string>) => `\x1b[H${lines.map((l) => `${l}\x1b[K`).join("\n")}\n\x1b[J`

export const topCommand = (env: CliEnvironment) =>
  Command.make("top", options(env), (o) =>
    Effect.gen(function*() {
      yield* positiveFlags({ integers: { "--timeout-ms": o.timeoutMs, "--interval-ms": o.intervalMs } })
      const socketPath = yield* resolveSocket(o.socket, env)
      // One kept connection (replaced if the container closes it): the view is one of the container's connections.
      const client = yield* makeClient({ socketPath, timeoutMs: o.timeoutMs, poolSize: 1 })
      const sample = sampler(client, (e) =>
        Console.error(`ruth-model: ${socketPath} does not serve metrics ({"op":"metrics"}: ${e.reason}); showing health's numbers only`))
      let previous = yield* Effect.mapError(sample, firstFailure(socketPath))
      if (o.json) {
        yield* Effect.sleep(o.intervalMs)
        const current = yield* Effect.mapError(sample, firstFailure(socketPath))
        return yield* Console.log(JSON.stringify(snapshot(socketPath, previous, current)))
      }
      const tty = process.stdout.isTTY === true
      const header = `ruth-model top: ${socketPath}, every ${o.intervalMs / 1000} s (Ctrl-C to stop)`
      const draw = (lines: ReadonlyArray<string>) =>
        tty ? Effect.sync(() => void process.stdout.write(inPlace([header, ...lines]))) : Console.log([header, ...lines, ""].join("\n"))
      for (;;) {
        yield* Effect.sleep(o.intervalMs)
        const current = yield* Effect.result(sample)
        if (Result.isFailure(current)) {
          // A container restarting or gone: say so and keep asking (its counters restart from 0, read as a reset).
          yield* draw([`no answer: ${current.failure.message} (asking again every ${o.intervalMs / 1000} s)`])
          continue
        }
        yield* draw(renderSnapshot(snapshot(socketPath, previous, current.success)))
        previous = current.success
      }
    }).pipe(Effect.scoped)).pipe(
      Command.withAlias("stats"),
      Command.withDescription(
        "A live view of a container, redrawn every --interval-ms from its health and metrics answers: req/s, outcomes by code " +
          "(count and rate), p50/p99 of the request and of each stage, in flight against the limit, connections, frame age, " +
          "requests not run by reason. Rates and percentiles are over the last interval. Ctrl-C stops it (exit 0); --json prints one snapshot."
      )
    )
