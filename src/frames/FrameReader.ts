/**
 * Reads the frame a request names from shared memory, read-only; every
 * descriptor is closed before the handler runs, on every path.
 *
 * Two layouts (CONTRACT §5), chosen by what `frame_reference` is:
 * - a file: the raw layout — one frame from offset 0, geometry from the
 *   request's `frame_metadata`. One synchronous open/fstat/read/close.
 * - a directory: the frame-export layout — `frame.meta` (64-byte header,
 *   see frameMeta.ts) describes `frame.data`; the header's geometry is
 *   authoritative and the request's width/height (and format, if given)
 *   must agree with it. The frame carries the header's frameId/timestampNs.
 *
 * Torn (CONTRACT §5): the writer renames new files in without waiting for
 * us, so we read header → data → header; the read is torn when the headers
 * differ, frame.data's size is not the header's data_size, frame.data was
 * written (mtime) or renamed in (ctime) after frame.meta — the writer does both
 * to data first — or, when the header carries a `data_checksum`, the CRC-32 of
 * frame.data is not that one. Only the checksum proves every tear: file times
 * are a clock tick coarse, and a writer renames within one. We retry
 * `TORN_ATTEMPTS` times, `TORN_RETRY_MS` apart, then answer FRAME_TORN.
 * Stale: a request naming an integer `frame_id` that is not the header's gets
 * FRAME_STALE — detections must belong to the frame whose id we echo.
 *
 * `frame_reference` is caller input: it must lie below a configured root
 * after resolving `..`; every file is resolved (symlinks followed), checked
 * against the roots and lstat'ed as a regular file BEFORE it is opened — a
 * FIFO or device is never opened — then opened without following a link,
 * and the descriptor must be the inode checked, and still below a root (so a
 * swap between check and open is refused, not read).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { crc32 } from "node:zlib"
import { Context, Effect, Exit, Layer } from "effect"
import { defaults, RuntimeConfig } from "../config/RuntimeConfig.js"
import {
  FrameAccessDenied,
  type FrameError,
  FrameInvalid,
  FrameNotFound,
  FrameStale,
  FrameTorn
} from "../contract/errors.js"
import { frameFormat, type InferenceRequest } from "../contract/schema.js"
import { BufferPool } from "./BufferPool.js"
import { type Frame, frameByteLength, isPixelFormat, minStride, type PixelFormat } from "./Frame.js"
import { decodeFrameMeta, FRAME_META_BYTES, type FrameMetaHeader, pixelFormatOf, requestedFrameId } from "./frameMeta.js"

/** Reads of a frame-export directory before giving up with FRAME_TORN. */
export const TORN_ATTEMPTS = 3
/** Pause before re-reading a torn frame: the writer's data-to-meta window is microseconds, so this outlasts it. */
export const TORN_RETRY_MS = 1

export interface FrameReaderShape {
  /**
   * Reads the request's frame and runs `use` with it. The frame's bytes are
   * valid only until `use` ends (they return to a pool): never keep them.
   */
  readonly use: <A, E, R>(
    request: InferenceRequest,
    use: (frame: Frame) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | FrameError, R>
  /**
   * Optional: the frame read at once, for callers that run without a fiber.
   * `read` makes one attempt: the frame (hand it back with `release` when done
   * with it), its error, or `undefined` when only `use` can read it now (a
   * torn read — a file replaced while we read or between our check and open —
   * which waits and retries; `use` with the same
   * request goes on from the second attempt, so the retries add up as one).
   */
  readonly now?: {
    readonly read: (request: InferenceRequest) => Exit.Exit<Frame, FrameError> | undefined
    readonly release: (frame: Frame) => void
  }
}

export class FrameReader extends Context.Service<FrameReader, FrameReaderShape>()("@ruth-ai/model-runtime/FrameReader") {
  /** Reads from the filesystem, confined to `roots`, into buffers from `pool`. */
  static readonly make = (roots: ReadonlyArray<string>, pool: BufferPool = new BufferPool(defaults.framePoolBytes)): FrameReaderShape =>
    makeFileReader(roots, pool)

  /** The live reader, confined to `RuntimeConfig.frameRoots`. */
  static readonly layer = Layer.effect(
    FrameReader,
    Effect.map(RuntimeConfig, (config) => makeFileReader(config.frameRoots, new BufferPool(config.framePoolBytes)))
  )

  /** The live reader with a pool the caller owns, e.g. to watch its occupancy (`inUse`). */
  static readonly layerWithPool = (pool: BufferPool) =>
    Layer.effect(FrameReader, Effect.map(RuntimeConfig, (config) => makeFileReader(config.frameRoots, pool)))

  /**
   * Serves frames from memory by reference: handler tests need no shared
   * memory. A reference that is absent gives FRAME_NOT_FOUND.
   */
  static readonly layerMemory = (frames: ReadonlyMap<string, Omit<Frame, "reference">>) => {
    const byReference = new Map<string, Frame>()
    for (const [reference, frame] of frames) byReference.set(reference, { ...frame, reference })
    const read = (request: InferenceRequest): Exit.Exit<Frame, FrameError> => {
      const frame = byReference.get(request.frame_reference)
      if (frame === undefined) return Exit.fail(new FrameNotFound({ path: request.frame_reference }))
      const meta = request.frame_metadata
      if (frame.width !== meta.width || frame.height !== meta.height) {
        return Exit.fail(
          new FrameInvalid({
            path: request.frame_reference,
            reason: `frame is ${frame.width}x${frame.height}, request says ${meta.width}x${meta.height}`
          })
        )
      }
      return Exit.succeed(frame)
    }
    return Layer.succeed(FrameReader, {
      use: (request, use) => Effect.flatMap(read(request), use),
      now: { read, release: () => {} }
    })
  }
}

/** `p` is strictly below one of `roots`. */
const isBelow = (p: string, roots: ReadonlyArray<string>): boolean =>
  roots.some((root) => p.startsWith(root.endsWith(path.sep) ? root : root + path.sep))

const realRoots = (roots: ReadonlyArray<string>): ReadonlyArray<string> =>
  roots.flatMap((root) => {
    try {
      return [fs.realpathSync.native(root)]
    } catch {
      return [] // a root that does not exist allows nothing
    }
  })

const errnoOf = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

/** Maps an fs error on `p` to the frame error a caller can act on. */
const fsError = (p: string, e: unknown): FrameError => {
  switch (errnoOf(e)) {
    case "ENOENT":
    case "ENOTDIR":
      return new FrameNotFound({ path: p })
    case "EACCES":
    case "EPERM":
      return new FrameAccessDenied({ path: p, reason: "permission denied" })
    case "ELOOP":
      return new FrameAccessDenied({ path: p, reason: "too many levels of symbolic links" })
    default:
      return new FrameInvalid({ path: p, reason: e instanceof Error ? e.message : String(e) })
  }
}

/**
 * Non-blocking so a FIFO or device swapped in after the type check cannot
 * stall us; no-follow so a link swapped in at the checked path is not followed.
 */
const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW

/** What a path resolved to, and what is there, found without opening it. */
interface Checked {
  readonly real: string
  readonly stat: fs.BigIntStats
}

const lstat = (p: string): fs.BigIntStats => fs.lstatSync(p, { bigint: true })

/** A step of the synchronous read stopped at a frame error, to answer as it is. */
class Abort {
  readonly _tag = "Abort"
  constructor(readonly error: FrameError) {}
}

/** A step of the synchronous read found that the writer replaced a file mid-read: try again. */
class Torn {
  readonly _tag = "Torn"
}
const torn = new Torn()

/** Why a step of the synchronous read stopped short, returned as a value beside the step's result. */
type Stop = Abort | Torn

const isStop = (step: unknown): step is Stop => step === torn || step instanceof Abort

/** Reads up to `length` bytes from offset 0 into `into`; fewer means the file shrank under us. */
const readUpTo = (fd: number, into: Uint8Array, length: number, shown: string): number | Abort => {
  let got = 0
  try {
    while (got < length) {
      const n = fs.readSync(fd, into, got, length - got, got)
      if (n === 0) break
      got += n
    }
  } catch (e) {
    return new Abort(fsError(shown, e))
  }
  return got
}

/** Where frame.data's padding beyond the frame is read through for its checksum (reads are synchronous: one suffices). */
let paddingScratch: Buffer | undefined

/**
 * The CRC-32 of a frame.data of `size` bytes whose first `data.length` are
 * already in `data`; `torn` if it shrank under us.
 */
const crc32OfData = (fd: number, data: Uint8Array, size: number, shown: string): number | Stop => {
  let crc = crc32(data)
  try {
    for (let at = data.length; at < size;) {
      const scratch = (paddingScratch ??= Buffer.allocUnsafeSlow(64 * 1024))
      const n = fs.readSync(fd, scratch, 0, Math.min(scratch.length, size - at), at)
      if (n === 0) return torn
      crc = crc32(scratch.subarray(0, n), crc)
      at += n
    }
  } catch (e) {
    return new Abort(fsError(shown, e))
  }
  return crc
}

/** Real time even under a TestClock: what we wait for is an outside writer, not Effect's clock. */
const pauseMs = (ms: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

/** Why a stride cannot hold a row of the format, if it cannot. */
const strideProblem = (format: PixelFormat, width: number, stride: number): string | undefined =>
  stride < minStride(format, width)
    ? `stride ${stride} is smaller than a ${format} row of width ${width} (${minStride(format, width)} bytes)`
    : undefined

/** The checked geometry of a request's frame. */
export const frameGeometry = (
  request: InferenceRequest
): { readonly format: PixelFormat; readonly stride: number; readonly bytes: number } | FrameInvalid => {
  const meta = request.frame_metadata
  const format = frameFormat(meta).toUpperCase()
  if (!isPixelFormat(format)) {
    return new FrameInvalid({
      path: request.frame_reference,
      reason: `unsupported format '${frameFormat(meta)}' (supported: NV12, RGB24, BGR24)`
    })
  }
  const stride = meta.stride ?? minStride(format, meta.width)
  const tooNarrow = strideProblem(format, meta.width, stride)
  if (tooNarrow !== undefined) return new FrameInvalid({ path: request.frame_reference, reason: tooNarrow })
  return { format, stride, bytes: frameByteLength(format, meta.width, meta.height, stride) }
}

const makeFileReader = (roots: ReadonlyArray<string>, pool: BufferPool): FrameReaderShape => {
  const lexicalRoots = roots.map((r) => path.resolve(r))
  const resolvedRoots = realRoots(lexicalRoots)
  const allowed = lexicalRoots.join(", ")

  /** The reference with `..` resolved, if it lies below a root. */
  const confineLexically = (reference: string): string | Abort => {
    if (!path.isAbsolute(reference) || reference.includes("\0")) {
      return new Abort(new FrameAccessDenied({ path: reference, reason: "must be an absolute path" }))
    }
    const lexical = path.resolve(reference)
    if (!isBelow(lexical, lexicalRoots)) {
      return new Abort(new FrameAccessDenied({ path: reference, reason: `outside the allowed roots (${allowed})` }))
    }
    return lexical
  }

  const outsideRoots = (shown: string, real: string) =>
    new Abort(new FrameAccessDenied({ path: shown, reason: `resolves to ${real}, outside the allowed roots (${allowed})` }))

  /**
   * Where `file` really is (checked against the roots) and what is there,
   * without opening it; errors name `shown` (the caller's spelling). In a
   * directory already resolved (`inResolvedDir`) only the last component
   * can be a link, so one lstat settles a plain file.
   */
  const resolveConfined = (file: string, shown: string, inResolvedDir: boolean): Checked | Abort => {
    try {
      const entry = inResolvedDir ? lstat(file) : undefined
      if (entry !== undefined && !entry.isSymbolicLink()) return { real: file, stat: entry }
      const real = fs.realpathSync.native(file)
      if (!isBelow(real, resolvedRoots)) return outsideRoots(shown, real)
      return { real, stat: lstat(real) }
    } catch (e) {
      return new Abort(fsError(shown, e))
    }
  }

  /** Where an open descriptor really is: /proc knows on Linux; elsewhere the path is resolved again. */
  const realPathOf = (fd: number, file: string): string => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      return fs.realpathSync.native(file)
    }
  }

  interface Opened {
    readonly fd: number
    readonly stat: fs.BigIntStats
  }

  /** The open descriptor's stat, if it is the inode checked and still below a root. */
  const verifyOpened = (fd: number, checked: Checked, shown: string): Opened | Stop => {
    try {
      const stat = fs.fstatSync(fd, { bigint: true })
      if (stat.dev !== checked.stat.dev || stat.ino !== checked.stat.ino) return torn
      const real = realPathOf(fd, checked.real)
      return isBelow(real, resolvedRoots) ? { fd, stat } : outsideRoots(shown, real)
    } catch (e) {
      return new Abort(fsError(shown, e))
    }
  }

  /**
   * Opens a checked regular file read-only. `torn` when the path no longer
   * leads to the inode checked (the writer replaced it between check and
   * open); refused when it now leads out of the roots (a directory on the way
   * swapped for a link). The caller closes the descriptor; `stat` is its fstat.
   */
  const openChecked = (checked: Checked, shown: string): Opened | Stop => {
    if (!checked.stat.isFile()) return new Abort(new FrameInvalid({ path: shown, reason: "not a regular file" }))
    let fd: number
    try {
      fd = fs.openSync(checked.real, OPEN_FLAGS)
    } catch (e) {
      return errnoOf(e) === "ELOOP" ? torn : new Abort(fsError(shown, e)) // ELOOP: a link replaced the file
    }
    const opened = verifyOpened(fd, checked, shown)
    if (isStop(opened)) fs.closeSync(fd)
    return opened
  }

  /**
   * Check, open, read and close in one synchronous step: frames live in
   * tmpfs, where these calls are memory copies, and the descriptor never
   * outlives the read. A directory hands over to the export layout (it is
   * never opened itself). `torn` when a file changed under us.
   */
  const readFrame = (request: InferenceRequest, lexical: string): Frame | Stop => {
    const reference = request.frame_reference
    const geometry = frameGeometry(request)
    const checked = resolveConfined(lexical, reference, false)
    if (isStop(checked)) return checked
    if (checked.stat.isDirectory()) return readExportDir(request, lexical, checked.real)
    const opened = openChecked(checked, reference)
    if (isStop(opened)) return opened
    try {
      return geometry instanceof FrameInvalid ? new Abort(geometry) : readRaw(request, opened, geometry)
    } finally {
      fs.closeSync(opened.fd)
    }
  }

  /** The raw layout's frame from an open file: the request's geometry, from offset 0. */
  const readRaw = (
    request: InferenceRequest,
    { fd, stat }: Opened,
    geometry: { readonly format: PixelFormat; readonly stride: number; readonly bytes: number }
  ): Frame | Abort => {
    const reference = request.frame_reference
    const { width, height } = request.frame_metadata
    const size = Number(stat.size)
    if (size < geometry.bytes) {
      return new Abort(
        new FrameInvalid({
          path: reference,
          reason:
            `file has ${size} bytes, a ${width}x${height} ${geometry.format} frame with stride ${geometry.stride} needs ${geometry.bytes}`
        })
      )
    }
    const data = pool.acquire(geometry.bytes)
    const got = readUpTo(fd, data, geometry.bytes, reference)
    if (got !== geometry.bytes) {
      pool.release(data)
      return got instanceof Abort
        ? got
        : new Abort(
          new FrameInvalid({ path: reference, reason: `frame truncated while reading: ${got} of ${geometry.bytes} bytes` })
        )
    }
    return { reference, format: geometry.format, width, height, stride: geometry.stride, data }
  }

  /**
   * Opens `name` in a frame-export directory (confined to the frame roots, named `shown` in
   * messages), hands it to `use` and closes it.
   */
  const withFileIn = <A>(dirReal: string, shownDir: string, name: string, use: (opened: Opened, shown: string) => A | Stop): A | Stop => {
    const shown = path.join(shownDir, name)
    const checked = resolveConfined(path.join(dirReal, name), shown, true)
    if (isStop(checked)) return checked
    const opened = openChecked(checked, shown)
    if (isStop(opened)) return opened
    try {
      return use(opened, shown)
    } finally {
      fs.closeSync(opened.fd)
    }
  }

  /** One read of `frame.meta`: its v1 bytes, and its times (when it was written and renamed in). */
  const readMeta = (dirReal: string, shownDir: string): { readonly bytes: Buffer; readonly stat: fs.BigIntStats } | Stop =>
    withFileIn(dirReal, shownDir, "frame.meta", (opened, shown) => {
      if (opened.stat.size < FRAME_META_BYTES) {
        return new Abort(
          new FrameInvalid({ path: shown, reason: `header has ${opened.stat.size} bytes, expected at least ${FRAME_META_BYTES}` })
        )
      }
      const bytes = Buffer.alloc(FRAME_META_BYTES)
      const got = readUpTo(opened.fd, bytes, FRAME_META_BYTES, shown)
      if (got instanceof Abort) return got
      return got === FRAME_META_BYTES ? { bytes, stat: opened.stat } : torn
    })

  /**
   * The frame a header describes, if the request may use it. Identity comes
   * first (a stale frame's geometry is moot); a data_size beyond the frame is
   * padding we ignore, as trailing bytes in the raw layout.
   */
  const checkHeader = (
    request: InferenceRequest,
    header: FrameMetaHeader,
    requested: bigint | undefined,
    shownDir: string
  ): { readonly format: PixelFormat; readonly bytes: number } | Abort => {
    const reference = request.frame_reference
    const shown = path.join(shownDir, "frame.meta")
    const invalid = (reason: string) => new Abort(new FrameInvalid({ path: shown, reason }))
    if (header.version < 1) return invalid(`unsupported header version ${header.version}`)
    if (requested !== undefined && requested !== header.frameId) {
      return new Abort(
        new FrameStale({ path: reference, requested: requested.toString(), found: header.frameId.toString() })
      )
    }
    const format = pixelFormatOf(header.pixelFormat)
    if (format === undefined) {
      return invalid(`unknown pixel_format ${header.pixelFormat} (known: 0 = NV12, 1 = RGB24, 2 = BGR24)`)
    }
    const { width, height, stride } = header
    if (width === 0 || height === 0) return invalid(`header says ${width}x${height}`)
    const meta = request.frame_metadata
    if (meta.width !== width || meta.height !== height) {
      return invalid(`header says ${width}x${height}, request says ${meta.width}x${meta.height}`)
    }
    if (meta.format !== undefined && meta.format.toUpperCase() !== format) {
      return invalid(`header says ${format}, request says ${meta.format}`)
    }
    const tooNarrow = strideProblem(format, width, stride)
    if (tooNarrow !== undefined) return invalid(tooNarrow)
    const bytes = frameByteLength(format, width, height, stride)
    if (header.dataSize < BigInt(bytes)) {
      return invalid(
        `data_size ${header.dataSize} is less than a ${width}x${height} ${format} frame with stride ${stride} (${bytes} bytes)`
      )
    }
    return { format, bytes }
  }

  /**
   * Reads the first `bytes` of `frame.data` into a pooled buffer; `torn` if
   * the file is not the one `header` describes: its size differs, it was
   * written or renamed in after frame.meta (the writer does both to data
   * first; equal times, one clock tick, prove nothing), it shrank, or its
   * CRC-32 is not the header's `data_checksum`.
   */
  const readData = (
    dirReal: string,
    shownDir: string,
    header: FrameMetaHeader,
    bytes: number,
    metaStat: fs.BigIntStats
  ): Uint8Array | Stop =>
    withFileIn(dirReal, shownDir, "frame.data", ({ fd, stat }, shown) => {
      if (stat.size !== header.dataSize || stat.mtimeNs > metaStat.mtimeNs || stat.ctimeNs > metaStat.ctimeNs) return torn
      const data = pool.acquire(bytes)
      const problem = verifyData(fd, data, bytes, header, shown)
      if (problem === undefined) return data
      pool.release(data)
      return problem
    })

  /** Reads `bytes` of frame.data into `data`; why it is not the header's frame, if it is not. */
  const verifyData = (fd: number, data: Uint8Array, bytes: number, header: FrameMetaHeader, shown: string): Stop | undefined => {
    const got = readUpTo(fd, data, bytes, shown)
    if (got instanceof Abort) return got
    if (got !== bytes) return torn
    if (header.dataCrc32 === undefined) return undefined
    const crc = crc32OfData(fd, data, Number(header.dataSize), shown)
    if (isStop(crc)) return crc
    return crc === header.dataCrc32 ? undefined : torn
  }

  /** Header → data → header: the frame if both headers agree and describe the data, else `torn`. */
  const readExportDir = (request: InferenceRequest, shownDir: string, dirReal: string): Frame | Stop => {
    const requested = requestedFrameId(request.frame_metadata.frame_id)
    const before = readMeta(dirReal, shownDir)
    if (isStop(before)) return before
    const header = decodeFrameMeta(before.bytes)
    const checked = checkHeader(request, header, requested, shownDir)
    if (isStop(checked)) return checked
    const data = readData(dirReal, shownDir, header, checked.bytes, before.stat)
    if (isStop(data)) return data
    const after = readMeta(dirReal, shownDir)
    if (isStop(after) || !after.bytes.equals(before.bytes)) {
      pool.release(data)
      return isStop(after) ? after : torn
    }
    return {
      reference: request.frame_reference,
      format: checked.format,
      width: header.width,
      height: header.height,
      stride: header.stride,
      data,
      frameId: header.frameId,
      timestampNs: header.timestampNs
    }
  }

  /** One attempt, all synchronous: confine, open, check, read, close. `undefined`: torn, try again later. */
  const attempt = (request: InferenceRequest): Exit.Exit<Frame, FrameError> | undefined => {
    const lexical = confineLexically(request.frame_reference)
    if (lexical instanceof Abort) return Exit.fail(lexical.error)
    let frame: Frame | Stop
    try {
      frame = readFrame(request, lexical)
    } catch (e) {
      // Only what no step expects, e.g. closing a descriptor failing: still the caller's frame error.
      return Exit.fail(fsError(request.frame_reference, e))
    }
    if (frame instanceof Abort) return Exit.fail(frame.error)
    return frame instanceof Torn ? undefined : Exit.succeed(frame)
  }
  /** Requests whose first read (`now.read`) was torn: `use` goes on from the second attempt. */
  const tornOnce = new WeakSet<InferenceRequest>()
  const read = (request: InferenceRequest): Exit.Exit<Frame, FrameError> | undefined => {
    const result = attempt(request)
    if (result === undefined) tornOnce.add(request)
    return result
  }
  const release = (frame: Frame): void => pool.release(frame.data)

  /** Reads attempt `n`, pausing and reading again while torn, up to `TORN_ATTEMPTS` reads in all. */
  const acquire = (request: InferenceRequest, n: number): Effect.Effect<Frame, FrameError> =>
    Effect.suspend(() => {
      const frame = attempt(request)
      if (frame !== undefined) return frame
      return n >= TORN_ATTEMPTS
        ? Effect.fail(new FrameTorn({ path: request.frame_reference, attempts: n }))
        : Effect.andThen(pauseMs(TORN_RETRY_MS), acquire(request, n + 1))
    })
  const first = (request: InferenceRequest): Effect.Effect<Frame, FrameError> =>
    Effect.suspend(() =>
      tornOnce.delete(request) ? Effect.andThen(pauseMs(TORN_RETRY_MS), acquire(request, 2)) : acquire(request, 1)
    )

  return {
    use: (request, use) => Effect.acquireUseRelease(first(request), use, (frame) => Effect.sync(() => release(frame))),
    now: { read, release }
  }
}
