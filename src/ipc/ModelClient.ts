/**
 * A client for a model container: connect-per-request (as the reference
 * callers do) or a pool of persistent connections, with a timeout per call
 * and typed errors. A pooled connection the server has closed (the original
 * server answers one request per connection) is replaced, and a request it
 * cannot have answered is retried once on a fresh connection.
 */
import * as net from "node:net"
import { Context, Data, Effect, Layer, Result, Schema, type Scope } from "effect"
import { encodeMessage, FrameDecoder, parseJson } from "../contract/codec.js"
import {
  formatSchemaError,
  HealthResponse as HealthResponseSchema,
  type InferenceRequestInput,
  InferenceResponse,
  MetricsResponse as MetricsResponseSchema
} from "../contract/schema.js"

/**
 * Why a call failed: `connect` (nothing accepts), `timeout`, `closed` (the connection ended
 * before the reply), `protocol` (a reply too large, not JSON, or not the answer asked for).
 */
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

/** A health answer (`{"op":"health"}`): the schema's fields, and whatever else the server added. */
export type HealthResponse = typeof HealthResponseSchema.Type & { readonly [key: string]: unknown }

/** A metrics answer (`{"op":"metrics"}`): the Prometheus text in `text`, and whatever else the server added. */
export type MetricsResponse = typeof MetricsResponseSchema.Type & { readonly [key: string]: unknown }

export interface ModelClientShape {
  /** Sends any JSON value and returns the parsed reply, unchecked. */
  readonly send: (message: unknown) => Effect.Effect<unknown, ClientError>
  /** The reply decoded as an inference response (CONTRACT §4); one that is not is a `protocol` error. */
  readonly infer: (request: InferenceRequestInput) => Effect.Effect<InferenceResponse, ClientError>
  /** The reply decoded as a health answer; one that is not is a `protocol` error. */
  readonly health: Effect.Effect<HealthResponse, ClientError>
  /**
   * The reply decoded as a metrics answer; one that is not is a `protocol` error. A server without
   * metrics (the original, which closes the connection) fails as `closed`.
   */
  readonly metrics: Effect.Effect<MetricsResponse, ClientError>
}

/**
 * How a request on a connection ended. `retryable`: the connection ended before any byte of the
 * reply (or before the request was written), so the server cannot have answered it on this
 * connection — typically a server that closes after each answer, as the original one does.
 */
export type Outcome =
  | { readonly ok: true; readonly payload: Uint8Array }
  | { readonly ok: false; readonly error: ClientError; readonly retryable: boolean }

/** One socket carrying one request at a time (shared by `makeClient` and the load generator). */
export class ClientConnection {
  private readonly decoder: FrameDecoder
  private waiter: ((outcome: Outcome) => void) | undefined
  private failure: ClientError | undefined
  /** A byte of the reply to the request in progress has arrived. */
  private replyStarted = false
  /** Replies received on this connection. */
  answered = 0

  constructor(readonly socket: net.Socket, readonly socketPath: string, maxMessageBytes: number) {
    this.decoder = new FrameDecoder(maxMessageBytes)
    socket.on("data", (chunk: Buffer) => {
      this.replyStarted = true
      for (const event of this.decoder.push(chunk)) {
        if (event._tag === "TooLarge") {
          this.fail(new ClientError({ kind: "protocol", socketPath, reason: `reply of ${event.length} bytes exceeds the limit` }))
          return
        }
        this.answered++
        this.replyStarted = false
        const w = this.waiter
        this.waiter = undefined
        w?.({ ok: true, payload: event.payload })
      }
    })
    socket.on("close", () => this.end("connection closed before a reply"))
    socket.on("error", (e) => this.end(e.message))
  }

  get broken(): boolean {
    return this.failure !== undefined
  }

  /** The peer closed or reset the connection. */
  private end(reason: string) {
    this.fail(new ClientError({ kind: "closed", socketPath: this.socketPath, reason }), !this.replyStarted)
  }

  /** Fails the request in progress (if any) and closes the socket for good. */
  fail(error: ClientError, retryable = false) {
    this.failure ??= error
    const w = this.waiter
    this.waiter = undefined
    w?.({ ok: false, error, retryable })
    this.socket.destroy()
  }

  /** Writes a framed message; `done` gets the next reply on this connection. */
  send(bytes: Uint8Array, done: (outcome: Outcome) => void) {
    // Never written: a broken connection (e.g. closed by the server after its last answer) is safe to retry.
    if (this.failure !== undefined) return done({ ok: false, error: this.failure, retryable: true })
    this.replyStarted = false
    this.waiter = done
    this.socket.write(bytes)
  }
}

/** Opens a connection; `done` gets it, or a `connect` error. */
export const openConnection = (
  socketPath: string,
  maxMessageBytes: number,
  done: (conn: ClientConnection | ClientError) => void
): net.Socket => {
  const socket = net.connect(socketPath)
  const onError = (e: Error) => {
    socket.destroy()
    done(new ClientError({ kind: "connect", socketPath, reason: e.message }))
  }
  socket.once("error", onError)
  socket.once("connect", () => {
    socket.off("error", onError)
    done(new ClientConnection(socket, socketPath, maxMessageBytes))
  })
  return socket
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * A reply checked by a response schema: lenient where servers differ — keys the schema does not
 * name are kept, as sent (servers add fields) — and a `protocol` error naming each field that is
 * missing or of the wrong type, so a caller never gets a wrong value in a right-looking type.
 */
const decodeReply = <A>(
  decode: (input: unknown, options: { readonly errors: "all"; readonly reportInput: true }) => Result.Result<A, Schema.SchemaError>,
  what: string,
  socketPath: string
) =>
(reply: unknown): Effect.Effect<A, ClientError> => {
  const decoded = decode(reply, { errors: "all", reportInput: true })
  if (Result.isFailure(decoded)) {
    return Effect.fail(
      new ClientError({ kind: "protocol", socketPath, reason: `reply is not ${what}: ${formatSchemaError(decoded.failure)}` })
    )
  }
  return Effect.succeed(isRecord(reply) ? { ...reply, ...decoded.success } : decoded.success)
}

/**
 * A client in the current scope (pooled connections are closed with it).
 * Each call is one callback-driven step (connection, write, reply, timer):
 * the client sits on benchmarks' and callers' hot paths.
 */
export const makeClient = (options: ClientOptions): Effect.Effect<ModelClientShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { socketPath } = options
    const maxMessageBytes = options.maxMessageBytes ?? 64 * 1024 * 1024
    const timeoutMs = options.timeoutMs ?? 10_000
    const poolSize = options.poolSize ?? 0
    const idle: Array<ClientConnection> = []
    const waiting: Array<{ readonly use: (conn: ClientConnection | ClientError) => void; readonly fresh: boolean }> = []
    const live = new Set<ClientConnection>()
    let opening = 0
    let closed = false

    const open = (use: (conn: ClientConnection | ClientError) => void) => {
      opening++
      openConnection(socketPath, maxMessageBytes, (conn) => {
        opening--
        if (!(conn instanceof ClientError)) live.add(conn)
        use(conn)
      })
    }

    const discard = (conn: ClientConnection) => {
      conn.socket.destroy()
      live.delete(conn)
    }

    /**
     * Hands a connection to `use`: an idle one still open (unless `fresh`), a new one within the
     * pool size, or the next one freed.
     */
    const acquire = (use: (conn: ClientConnection | ClientError) => void, fresh = false) => {
      if (closed) return use(new ClientError({ kind: "closed", socketPath, reason: "client closed" }))
      for (let conn = idle.pop(); conn !== undefined; conn = idle.pop()) {
        // The server closed it since its last answer (as a one-request-per-connection server does).
        if (conn.broken || fresh) discard(conn)
        else return use(conn)
      }
      if (poolSize > 0 && live.size + opening >= poolSize) return void waiting.push({ use, fresh })
      open(use)
    }

    const release = (conn: ClientConnection) => {
      const next = waiting.shift()
      if (conn.broken || poolSize === 0 || closed || next?.fresh === true) {
        discard(conn)
        if (next !== undefined) acquire(next.use, next.fresh)
        return
      }
      if (next !== undefined) next.use(conn)
      else idle.push(conn)
    }

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const conn of live) conn.socket.destroy()
        for (const w of waiting.splice(0)) w.use(new ClientError({ kind: "closed", socketPath, reason: "client closed" }))
      })
    )

    const send = (message: unknown): Effect.Effect<unknown, ClientError> =>
      Effect.callback<unknown, ClientError>((resume) => {
        const bytes = encodeMessage(message)
        let settled = false
        let current: ClientConnection | undefined
        const settle = (result: Effect.Effect<unknown, ClientError>) => {
          if (settled) return false
          settled = true
          clearTimeout(timer)
          resume(result)
          return true
        }
        // Abandoned mid-request: a late reply would answer the next request, so that connection goes.
        const abandon = (error: ClientError) => {
          if (current !== undefined) current.fail(error)
        }
        const timer = setTimeout(() => {
          const error = new ClientError({ kind: "timeout", socketPath, reason: `no reply within ${timeoutMs} ms` })
          if (settle(Effect.fail(error))) abandon(error)
        }, timeoutMs)
        /** One try; a request the server cannot have answered is tried once more on a fresh connection. */
        const attempt = (fresh: boolean) =>
          acquire((conn) => {
            if (conn instanceof ClientError) return void settle(Effect.fail(conn))
            if (settled) return release(conn) // timed out or interrupted while waiting for a connection
            current = conn
            conn.send(bytes, (outcome) => {
              current = undefined
              release(conn)
              if (settled) return
              if (!outcome.ok) {
                if (outcome.retryable && !fresh) return attempt(true)
                return void settle(Effect.fail(outcome.error))
              }
              const parsed = parseJson(outcome.payload)
              settle(
                parsed.ok
                  ? Effect.succeed(parsed.value)
                  : Effect.fail(new ClientError({ kind: "protocol", socketPath, reason: `reply is not JSON: ${parsed.reason}` }))
              )
            })
          }, fresh)
        attempt(false)
        return Effect.sync(() => {
          if (settle(Effect.interrupt)) abandon(new ClientError({ kind: "closed", socketPath, reason: "request interrupted" }))
        })
      })

    const decodeResponse = decodeReply(Schema.decodeUnknownResult(InferenceResponse), "an inference response", socketPath)
    const decodeHealth = decodeReply(Schema.decodeUnknownResult(HealthResponseSchema), "a health answer", socketPath)
    const decodeMetrics = decodeReply(Schema.decodeUnknownResult(MetricsResponseSchema), "a metrics answer", socketPath)

    return {
      send,
      infer: (request) => Effect.flatMap(send(request), decodeResponse),
      health: Effect.flatMap(send({ op: "health" }), decodeHealth),
      metrics: Effect.flatMap(send({ op: "metrics" }), decodeMetrics)
    }
  })

export class ModelClient extends Context.Service<ModelClient, ModelClientShape>()("@ruth-ai/model-runtime/ModelClient") {
  static readonly layer = (options: ClientOptions) => Layer.effect(ModelClient, makeClient(options))
}
