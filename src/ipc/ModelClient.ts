/**
 * A client for a model container: connect-per-request (as the reference
 * callers do) or a pool of persistent connections, with a timeout per call
 * and typed errors.
 */
import * as net from "node:net"
import { Context, Data, Duration, Effect, Layer, Pool, type Scope } from "effect"
import { encodeMessage, FrameDecoder, parseJson } from "../contract/codec.js"
import type { InferenceRequestInput, InferenceResponse } from "../contract/schema.js"

export class ClientError extends Data.TaggedError("ClientError")<{
  readonly kind: "connect" | "timeout" | "closed" | "protocol"
  readonly socketPath: string
  readonly reason: string
}> {
  override get message() {
    return `${this.socketPath}: ${this.kind === "connect" ? "cannot connect" : this.kind}: ${this.reason}`
  }
}

export interface ClientOptions {
  readonly socketPath: string
  /** Per call, connect included. Default 10 s. */
  readonly timeoutMs?: number
  /** 0 (default): a new connection per request. N > 0: up to N persistent connections. */
  readonly poolSize?: number
  readonly maxMessageBytes?: number
}

/** A health answer (`{"op":"health"}`). */
export interface HealthResponse {
  readonly op: "health"
  readonly status: string
  readonly model_id: string
  readonly model_version: string
  readonly version: string
  readonly uptime_seconds: number
  readonly total_requests: number
  readonly total_errors: number
  readonly inflight: number
  readonly max_inflight: number
  readonly [key: string]: unknown
}

export interface ModelClientShape {
  /** Sends any JSON value and returns the parsed reply. */
  readonly send: (message: unknown) => Effect.Effect<unknown, ClientError>
  readonly infer: (request: InferenceRequestInput) => Effect.Effect<InferenceResponse, ClientError>
  readonly health: Effect.Effect<HealthResponse, ClientError>
}

/** One socket carrying one request at a time. */
class ClientConnection {
  private readonly decoder: FrameDecoder
  private waiter: ((result: { ok: true; payload: Uint8Array } | { ok: false; error: ClientError }) => void) | undefined
  private failure: ClientError | undefined

  constructor(readonly socket: net.Socket, readonly socketPath: string, maxMessageBytes: number) {
    this.decoder = new FrameDecoder(maxMessageBytes)
    socket.on("data", (chunk: Buffer) => {
      for (const event of this.decoder.push(chunk)) {
        if (event._tag === "TooLarge") {
          this.fail(new ClientError({ kind: "protocol", socketPath, reason: `reply of ${event.length} bytes exceeds the limit` }))
          return
        }
        const w = this.waiter
        this.waiter = undefined
        w?.({ ok: true, payload: event.payload })
      }
    })
    const closed = () => this.fail(new ClientError({ kind: "closed", socketPath, reason: "connection closed before a reply" }))
    socket.on("close", closed)
    socket.on("error", (e) => this.fail(new ClientError({ kind: "closed", socketPath, reason: e.message })))
  }

  get broken(): boolean {
    return this.failure !== undefined
  }

  private fail(error: ClientError) {
    this.failure ??= error
    const w = this.waiter
    this.waiter = undefined
    w?.({ ok: false, error })
    this.socket.destroy()
  }

  /** Writes a framed message and waits for the next reply on this connection. */
  request(bytes: Uint8Array): Effect.Effect<unknown, ClientError> {
    return Effect.async<Uint8Array, ClientError>((resume) => {
      if (this.failure !== undefined) return resume(Effect.fail(this.failure))
      this.waiter = (r) => resume(r.ok ? Effect.succeed(r.payload) : Effect.fail(r.error))
      this.socket.write(bytes)
      // Abandoned mid-request (timeout): a late reply would answer the next request, so drop the connection.
      return Effect.sync(() => {
        if (this.waiter !== undefined) {
          this.waiter = undefined
          this.fail(new ClientError({ kind: "closed", socketPath: this.socketPath, reason: "request abandoned" }))
        }
      })
    }).pipe(
      Effect.flatMap((payload) => {
        const parsed = parseJson(payload)
        return parsed.ok
          ? Effect.succeed(parsed.value)
          : Effect.fail(new ClientError({ kind: "protocol", socketPath: this.socketPath, reason: `reply is not JSON: ${parsed.reason}` }))
      })
    )
  }
}

const connect = (socketPath: string, maxMessageBytes: number): Effect.Effect<ClientConnection, ClientError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<net.Socket, ClientError>((resume) => {
      const socket = net.connect(socketPath)
      const onError = (e: Error) => {
        socket.destroy()
        resume(Effect.fail(new ClientError({ kind: "connect", socketPath, reason: e.message })))
      }
      socket.once("error", onError)
      socket.once("connect", () => {
        socket.off("error", onError)
        resume(Effect.succeed(socket))
      })
      return Effect.sync(() => socket.destroy())
    }),
    (socket) => Effect.sync(() => socket.destroy())
  ).pipe(Effect.map((socket) => new ClientConnection(socket, socketPath, maxMessageBytes)))

/** A client in the current scope (pooled connections are closed with it). */
export const makeClient = (options: ClientOptions): Effect.Effect<ModelClientShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { socketPath } = options
    const maxMessageBytes = options.maxMessageBytes ?? 64 * 1024 * 1024
    const timeout = Duration.millis(options.timeoutMs ?? 10_000)
    const poolSize = options.poolSize ?? 0

    const withTimeout = <A>(effect: Effect.Effect<A, ClientError>) =>
      Effect.timeoutFail(effect, {
        duration: timeout,
        onTimeout: () => new ClientError({ kind: "timeout", socketPath, reason: `no reply within ${Duration.format(timeout)}` })
      })

    let sendBytes: (bytes: Uint8Array) => Effect.Effect<unknown, ClientError>
    if (poolSize > 0) {
      const pool = yield* Pool.make({ acquire: connect(socketPath, maxMessageBytes), size: poolSize })
      sendBytes = (bytes) =>
        Effect.scoped(
          Effect.flatMap(Pool.get(pool), (conn) =>
            conn.request(bytes).pipe(Effect.onExit(() => (conn.broken ? Pool.invalidate(pool, conn) : Effect.void)))
          )
        )
    } else {
      sendBytes = (bytes) => Effect.scoped(Effect.flatMap(connect(socketPath, maxMessageBytes), (conn) => conn.request(bytes)))
    }

    const send = (message: unknown) =>
      Effect.suspend(() => withTimeout(sendBytes(encodeMessage(message))))
    return {
      send,
      infer: (request) => send(request) as Effect.Effect<InferenceResponse, ClientError>,
      health: send({ op: "health" }) as Effect.Effect<HealthResponse, ClientError>
    }
  })

export class ModelClient extends Context.Tag("@ruth-ai/model-runtime/ModelClient")<ModelClient, ModelClientShape>() {
  static readonly layer = (options: ClientOptions) => Layer.scoped(ModelClient, makeClient(options))
}
