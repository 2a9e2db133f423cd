/**
 * Length-prefixed framing: `[u32 big-endian length][length bytes of UTF-8 JSON]`.
 *
 * `FrameDecoder` is incremental and does no I/O: feed it chunks exactly as they
 * arrive; any split or merge of the stream yields the same messages. An
 * announced length above the limit is reported before a byte of it is buffered.
 */

export const HEADER_BYTES = 4
export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024

export type DecodedEvent =
  | { readonly _tag: "Message"; readonly payload: Uint8Array }
  | { readonly _tag: "TooLarge"; readonly length: number; readonly limit: number }

export class FrameDecoder {
  /** Chunks received but not yet part of a complete message (kept apart: no copy until one completes). */
  private chunks: Array<Uint8Array> = []
  private buffered = 0
  private failed = false

  constructor(readonly maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES) {}

  /** True once a too-large length was seen: the stream cannot be resynchronised. */
  get isFailed(): boolean {
    return this.failed
  }

  /** Bytes buffered for an incomplete message. */
  get bufferedBytes(): number {
    return this.buffered
  }

  /** Feeds a chunk; returns the events it completes, in stream order. */
  push(chunk: Uint8Array): Array<DecodedEvent> {
    const events: Array<DecodedEvent> = []
    if (this.failed || chunk.length === 0) return events
    if (this.chunks.length > 0) {
      this.chunks.push(chunk)
      this.buffered += chunk.length
      if (this.buffered < HEADER_BYTES) return events
      const length = this.peekLength()
      if (length > this.maxMessageBytes) return this.fail(events, length)
      if (this.buffered < HEADER_BYTES + length) return events
      chunk = concatAll(this.chunks, this.buffered)
      this.chunks = []
      this.buffered = 0
    }
    let offset = 0
    while (chunk.length - offset >= HEADER_BYTES) {
      const length = readLength(chunk, offset)
      if (length > this.maxMessageBytes) return this.fail(events, length)
      const end = offset + HEADER_BYTES + length
      if (end > chunk.length) break
      events.push({ _tag: "Message", payload: chunk.subarray(offset + HEADER_BYTES, end) })
      offset = end
    }
    if (offset < chunk.length) {
      // Copy the tail so we never pin a large chunk for a few leftover bytes.
      this.chunks = [chunk.slice(offset)]
      this.buffered = chunk.length - offset
    }
    return events
  }

  private fail(events: Array<DecodedEvent>, length: number): Array<DecodedEvent> {
    this.failed = true
    this.chunks = []
    this.buffered = 0
    events.push({ _tag: "TooLarge", length, limit: this.maxMessageBytes })
    return events
  }

  /** The announced length at the head of the buffered chunks (needs >= 4 bytes buffered). */
  private peekLength(): number {
    const head = new Uint8Array(HEADER_BYTES)
    let filled = 0
    for (const c of this.chunks) {
      const take = Math.min(HEADER_BYTES - filled, c.length)
      head.set(c.subarray(0, take), filled)
      filled += take
      if (filled === HEADER_BYTES) break
    }
    return readLength(head, 0)
  }
}

const readLength = (buf: Uint8Array, offset: number): number =>
  buf[offset]! * 0x1000000 + (buf[offset + 1]! << 16) + (buf[offset + 2]! << 8) + buf[offset + 3]!

const concatAll = (chunks: ReadonlyArray<Uint8Array>, total: number): Uint8Array => {
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

/**
 * Small messages are written into a slab, each region once, as Node's own
 * Buffer pool does: no allocation or length scan per message, and no region
 * is reused while a socket may still hold it (a slab is garbage once every
 * message cut from it is).
 */
const SLAB_BYTES = 64 * 1024
const SLAB_MAX_MESSAGE = SLAB_BYTES / 8
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES)
let slabUsed = 0

/** Frames a JSON value: 4-byte big-endian length, then its UTF-8 JSON. */
export const encodeMessage = (value: unknown): Buffer => {
  const json = JSON.stringify(value)
  // At most 3 UTF-8 bytes per UTF-16 unit.
  const worst = HEADER_BYTES + json.length * 3
  if (worst > SLAB_MAX_MESSAGE) {
    const size = Buffer.byteLength(json, "utf8")
    const out = Buffer.allocUnsafe(HEADER_BYTES + size)
    out.writeUInt32BE(size, 0)
    out.write(json, HEADER_BYTES, "utf8")
    return out
  }
  if (slabUsed + worst > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES)
    slabUsed = 0
  }
  const start = slabUsed
  const size = slab.write(json, start + HEADER_BYTES, "utf8")
  slab.writeUInt32BE(size, start)
  const end = start + HEADER_BYTES + size
  slabUsed = (end + 7) & ~7
  return slab.subarray(start, end)
}

/** Frames raw payload bytes (tests and tools that send non-JSON on purpose). */
export const encodePayload = (payload: Uint8Array): Buffer => {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length)
  out.writeUInt32BE(payload.length, 0)
  out.set(payload, HEADER_BYTES)
  return out
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** Parses a payload as UTF-8 JSON, saying why when it is not. */
export const parseJson = (payload: Uint8Array): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string } => {
  try {
    return { ok: true, value: JSON.parse(utf8.decode(payload)) }
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) }
  }
}

/** Deepest nesting of arrays and objects a message may have (a request needs 2; echoing deeper values risks the stack). */
export const MAX_JSON_DEPTH = 64

/**
 * True when a JSON payload nests arrays/objects deeper than `max`. A loop over
 * the bytes, no recursion, so a hostile depth cannot overflow the stack here
 * (as it would in `JSON.stringify` or a schema's error message later).
 */
export const exceedsJsonDepth = (payload: Uint8Array, max: number = MAX_JSON_DEPTH): boolean => {
  // Each level needs an opening and a closing byte.
  if (payload.length <= 2 * max) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < payload.length; i++) {
    const b = payload[i]!
    if (inString) {
      if (b === 0x5c) i++ // backslash: skip the escaped byte
      else if (b === 0x22) inString = false
    } else if (b === 0x22) inString = true
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > max) return true
    } else if (b === 0x5d || b === 0x7d) depth--
  }
  return false
}

const isNested = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

/** No more than two levels of objects/arrays, as an ordinary request has (a look at two levels, no recursion). */
const nestsAtMostTwo = (value: unknown): boolean => {
  if (!isNested(value)) return true
  for (const key in value) {
    const child = value[key]
    if (isNested(child)) for (const k in child) if (isNested(child[k])) return false
  }
  return true
}

/**
 * `exceedsJsonDepth` for a payload already parsed into `value`: an ordinary
 * request is settled by a glance at the value (≈15× cheaper than the byte
 * scan, which this runs on every request's path), anything deeper by the scan.
 */
export const parsedExceedsJsonDepth = (payload: Uint8Array, value: unknown, max: number = MAX_JSON_DEPTH): boolean =>
  !(max >= 2 && nestsAtMostTwo(value)) && exceedsJsonDepth(payload, max)
