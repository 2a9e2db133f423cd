/** `ruth-model health`: exit 0 only when the container answers and is ready. */
import { Command } from "effect/cli"
import { Console, Effect } from "effect"
import type { DroppedByReason } from "../contract/schema.js"
import { type HealthResponse, makeClient } from "../ipc/ModelClient.js"
import { type CliEnvironment, CliFailure, clientFlags, ExitCode, jsonOption, positiveFlags, resolveSocket, unreachable } from "./common.js"

/** The scheduler's drops by reason, each with the words a person reads (`3 past their deadline`). */
export const dropsByReason = (dropped: DroppedByReason): ReadonlyArray<readonly [string, number]> => [
  ["superseded", dropped.superseded],
  ["expired", dropped.expired],
  ["past their deadline", dropped.deadline],
  ["displaced", dropped.displaced]
]

/** Health as one line for a person; the scheduler's drops when there were any (this runtime's servers). */
export const describeHealth = (health: HealthResponse): string => {
  const dropped = health.dropped_by_reason
  const drops = dropped === undefined
    ? []
    : dropsByReason(dropped)
      .filter(([, n]) => n > 0)
      .map(([what, n]) => `${n} ${what}`)
  return `${health.status}: model ${health.model_id} ${health.model_version} (runtime ${health.version}), ` +
    `up ${health.uptime_seconds}s, ${health.total_requests} requests, ${health.total_errors} errors, ` +
    `${health.inflight}/${health.max_inflight} in flight` +
    (drops.length > 0 ? `; not run: ${drops.join(", ")}` : "")
}

export const healthCommand = (env: CliEnvironment) => Command.make(
  "health",
  { ...clientFlags(env), json: jsonOption },
  ({ json, socket, timeoutMs }) =>
    Effect.gen(function*() {
      yield* positiveFlags({ integers: { "--timeout-ms": timeoutMs } })
      const socketPath = yield* resolveSocket(socket, env)
      const health = yield* Effect.scoped(
        Effect.flatMap(makeClient({ socketPath, timeoutMs }), (client) => client.health)
      ).pipe(Effect.mapError(unreachable))
      yield* Console.log(json ? JSON.stringify(health) : describeHealth(health))
      if (health.status !== "ready") return yield* new CliFailure({ message: "", exitCode: ExitCode.negative })
    })
).pipe(Command.withDescription("Ask a container for its health; exit 0 only when it is ready."))
