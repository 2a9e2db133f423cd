/** `ruth-model health`: exit 0 only when the container answers and is ready. */
import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { makeClient } from "../ipc/ModelClient.js"
import { CliFailure, ExitCode, jsonOption, positiveFlags, resolveSocket, socketOption, timeoutOption, unreachable } from "./common.js"

export const healthCommand = Command.make(
  "health",
  { socket: socketOption, timeoutMs: timeoutOption, json: jsonOption },
  ({ json, socket, timeoutMs }) =>
    Effect.gen(function*() {
      yield* positiveFlags({ integers: { "--timeout-ms": timeoutMs } })
      const socketPath = yield* resolveSocket(socket)
      const health = yield* Effect.scoped(
        Effect.flatMap(makeClient({ socketPath, timeoutMs }), (client) => client.health)
      ).pipe(Effect.mapError(unreachable))
      if (json) yield* Console.log(JSON.stringify(health))
      else {
        yield* Console.log(
          `${health.status}: model ${health.model_id} ${health.model_version} (runtime ${health.version}), ` +
            `up ${health.uptime_seconds}s, ${health.total_requests} requests, ${health.total_errors} errors, ` +
            `${health.inflight}/${health.max_inflight} in flight`
        )
      }
      if (health.status !== "ready") return yield* new CliFailure({ message: "", exitCode: ExitCode.negative })
    })
).pipe(Command.withDescription("Ask a container for its health; exit 0 only when it is ready."))
