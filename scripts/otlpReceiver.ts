/**
 * A minimal OTLP/HTTP trace receiver, to see a container's spans land without a collector:
 * it takes every `POST` (answered 200 `{}`) and prints each span of a JSON post as one line
 * (trace id, span id ← parent, name, duration, outcome). A protobuf post is counted, not
 * decoded: start the container with `OTEL_EXPORTER_OTLP_PROTOCOL=http/json` to read its spans.
 *
 *   npx tsx scripts/otlpReceiver.ts [PORT]     (default 4318, on 127.0.0.1)
 *
 * The tests of traces use the same receiver (`startOtlpReceiver`, `spansOf`).
 */
import * as http from "node:http"
import type * as net from "node:net"
import { pathToFileURL } from "node:url"

/** One POST as it arrived. */
export interface Post {
  readonly path: string
  readonly contentType: string | undefined
  readonly headers: http.IncomingHttpHeaders
  readonly body: Buffer
}

export type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean }
type KeyValues = ReadonlyArray<{ key: string; value: AnyValue }>

/** A span of an OTLP/JSON export, as the exporter writes it. */
export interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes: KeyValues
  events: Array<{ name: string; attributes: KeyValues }>
  status: { code: number; message?: string }
}

/** The spans of some posts, and their resource's attributes. */
export interface Received {
  readonly spans: Array<OtlpSpan>
  readonly resource: Record<string, unknown>
}

const valueOf = (v: AnyValue | undefined): unknown =>
  v === undefined ? undefined : v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue

/** OTLP attributes as a plain object. */
export const attrs = (list: KeyValues): Record<string, unknown> => Object.fromEntries(list.map((a) => [a.key, valueOf(a.value)]))

const isJson = (post: Post) => post.contentType?.startsWith("application/json") === true

/** Every span of the JSON posts among `posts`, and the (last) resource's attributes. */
export const spansOf = (posts: ReadonlyArray<Post>): Received => {
  const spans: Array<OtlpSpan> = []
  let resource: Record<string, unknown> = {}
  for (const post of posts.filter(isJson)) {
    const data = JSON.parse(post.body.toString("utf8")) as {
      resourceSpans: Array<{ resource: { attributes: KeyValues }; scopeSpans: Array<{ spans: Array<OtlpSpan> }> }>
    }
    for (const rs of data.resourceSpans) {
      resource = attrs(rs.resource.attributes)
      for (const ss of rs.scopeSpans) spans.push(...ss.spans)
    }
  }
  return { spans, resource }
}

/** One line for a person: `trace span ← parent name 12.3 ms outcome`. */
export const describeSpan = (span: OtlpSpan): string => {
  const ms = Number(BigInt(span.endTimeUnixNano) - BigInt(span.startTimeUnixNano)) / 1e6
  const a = attrs(span.attributes)
  const outcome = a["ruth.outcome"] === undefined ? "" : ` ${String(a["ruth.outcome"])}`
  return `${span.traceId} ${span.spanId} ← ${span.parentSpanId ?? "(root)".padEnd(16)} ${span.name.padEnd(17)} ${ms.toFixed(2)} ms${outcome}`
}

export interface OtlpReceiver {
  /** `http://host:port`: the value for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  readonly url: string
  /** Every POST so far. */
  readonly posts: ReadonlyArray<Post>
  readonly close: () => Promise<void>
}

/** Listens on `port` (0: a free one) of `host`; `onPost` sees every POST as it arrives. */
export const startOtlpReceiver = (
  port = 0,
  host = "127.0.0.1",
  onPost: (post: Post) => void = () => {}
): Promise<OtlpReceiver> =>
  new Promise((resolve, reject) => {
    const posts: Array<Post> = []
    const server = http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        const post = { path: req.url ?? "", contentType: req.headers["content-type"], headers: req.headers, body: Buffer.concat(chunks) }
        posts.push(post)
        onPost(post)
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.once("error", reject)
    server.listen(port, host, () =>
      resolve({
        url: `http://${host}:${(server.address() as net.AddressInfo).port}`,
        posts,
        close: () => new Promise<void>((done) => server.close(() => done()))
      }))
  })

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.argv[2] ?? 4318)
  const receiver = await startOtlpReceiver(port, "127.0.0.1", (post) => {
    if (!isJson(post)) {
      console.log(`${post.path}: ${post.body.length} bytes of ${post.contentType ?? "?"} (set OTEL_EXPORTER_OTLP_PROTOCOL=http/json to see the spans)`)
      return
    }
    const { resource, spans } = spansOf([post])
    console.log(`${post.path}: ${spans.length} span(s) from ${String(resource["service.name"] ?? "?")}`)
    for (const span of spans) console.log(`  ${describeSpan(span)}`)
  })
  console.log(`OTLP/HTTP receiver on ${receiver.url} (OTEL_EXPORTER_OTLP_ENDPOINT=${receiver.url}); Ctrl+C to stop`)
  const stop = () => void receiver.close().then(() => process.exit(0))
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
}
