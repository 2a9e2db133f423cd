/**
 * Stand-ins for servers other than ours, on real sockets in temp dirs:
 * - `startOriginalServer`: behaves like the original Python container — reads ONE length-prefixed
 *   request per connection, answers it, closes the connection; a message it does not understand
 *   (no `frame_reference`, e.g. `{"op":"health"}`) makes it close the connection without a reply.
 * - `startScriptedServer`: answers every message with whatever `respond` returns, on persistent
 *   connections (for answers our container would not give, e.g. a health that is not ready).
 */
import * as net from "node:net"
import * as path from "node:path"
import { Effect, type Scope } from "effect"
import { encodeMessage, FrameDecoder, parseJson } from "../../src/contract/codec.js"
import { socketPathFor } from "../../src/config/RuntimeConfig.js"
import { tempDir } from "./harness.js"

export interface FakeServer {
  readonly socketPath: string
  readonly dir: string
  /** Connections accepted so far. */
  readonly connections: () => number
}

const listen = (
  socketPath: string,
  onConnection: (socket: net.Socket) => void
): Effect.Effect<() => number, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ readonly server: net.Server; readonly sockets: Set<net.Socket>; readonly count: () => number }>((resume) => {
      let count = 0
      const sockets = new Set<net.Socket>()
      const server = net.createServer((socket) => {
        count++
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => {})
        onConnection(socket)
      })
      server.listen(socketPath, () => resume(Effect.succeed({ server, sockets, count: () => count })))
    }),
    ({ server, sockets }) =>
      Effect.callback<void>((resume) => {
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ count }) => count))

/** Each decoded message of `socket`, parsed (or `undefined` when it is not JSON), to `onMessage`. */
const onMessages = (socket: net.Socket, onMessage: (message: unknown) => void) => {
  const decoder = new FrameDecoder()
  socket.on("data", (chunk: Buffer) => {
    for (const event of decoder.push(chunk)) {
      if (event._tag === "TooLarge") return void socket.destroy()
      const parsed = parseJson(event.payload)
      onMessage(parsed.ok ? parsed.value : undefined)
    }
  })
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

/** The original container for `modelId`, at `{dir}/vas_model_{modelId}.sock`. */
export const startOriginalServer = (modelId = "original-model"): Effect.Effect<FakeServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* tempDir()
    const socketPath = socketPathFor(dir, modelId)
    const connections = yield* listen(socketPath, (socket) => {
      let answered = false
      onMessages(socket, (message) => {
        if (answered) return
        answered = true
        if (!isRecord(message) || typeof message.frame_reference !== "string") return void socket.destroy()
        const meta = isRecord(message.frame_metadata) ? message.frame_metadata : {}
        socket.end(encodeMessage({
          model_id: message.model_id,
          camera_id: message.camera_id,
          frame_id: meta.frame_id ?? 0,
          detections: [],
          metadata: { inference_time_ms: 1 },
          error: null
        }))
      })
    })
    return { socketPath, dir, connections }
  })

/** A server answering every message with `respond(message)` on persistent connections; at `{dir}/{name}`. */
export const startScriptedServer = (
  respond: (message: unknown) => unknown,
  name = "scripted.sock"
): Effect.Effect<FakeServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* tempDir()
    const socketPath = path.join(dir, name)
    const connections = yield* listen(socketPath, (socket) => {
      onMessages(socket, (message) => socket.write(encodeMessage(respond(message))))
    })
    return { socketPath, dir, connections }
  })
