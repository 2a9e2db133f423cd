/**
 * Reads the frame a request names from shared memory, read-only; the
 * descriptor is closed before the handler runs, on every path.
 *
 * `frame_reference` is caller input: it must lie below a configured root
 * after resolving `..`, and the file actually opened — after following any
 * symlinks — must lie below a root too (checked on the open descriptor, so
 * nothing can be swapped in between check and read).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import { RuntimeConfig } from "../config/RuntimeConfig.js"
import { FrameAccessDenied, type FrameError, FrameInvalid, FrameNotFound } from "../contract/errors.js"
import { frameFormat, type InferenceRequest } from "../contract/schema.js"
import { BufferPool } from "./BufferPool.js"
import { type Frame, frameByteLength, isPixelFormat, minStride, type PixelFormat } from "./Frame.js"

/** Free frame buffers kept for reuse when nothing else is configured. */
export const DEFAULT_POOL_BYTES = 256 * 1024 * 1024

export interface FrameReaderShape {
  /**
   * Reads the request's frame and runs `use` with it. The frame's bytes are
   * valid only until `use` ends (they return to a pool): never keep them.
   */
  readonly use: <A, E, R>(
    request: InferenceRequest,
    use: (frame: Frame) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | FrameError, R>
}

export class FrameReader extends Context.Tag("@ruth-ai/model-runtime/FrameReader")<FrameReader, FrameReaderShape>() {
  /** Reads from the filesystem, confined to `roots`, into buffers from `pool`. */
  static readonly make = (roots: ReadonlyArray<string>, pool: BufferPool = new BufferPool(DEFAULT_POOL_BYTES)): FrameReaderShape =>
    makeFileReader(roots, pool)

  /** The live reader, confined to `RuntimeConfig.frameRoots`. */
  static readonly layer = Layer.effect(
    FrameReader,
    Effect.map(RuntimeConfig, (config) => makeFileReader(config.frameRoots, new BufferPool(config.framePoolBytes)))
  )

  /**
   * Serves frames from memory by reference: handler tests need no shared
   * memory. A reference that is absent gives FRAME_NOT_FOUND.
   */
  static readonly layerMemory = (frames: ReadonlyMap<string, Omit<Frame, "reference">>) =>
    Layer.succeed(FrameReader, {
      use: (request, use) => {
        const frame = frames.get(request.frame_reference)
        if (frame === undefined) return Effect.fail(new FrameNotFound({ path: request.frame_reference }))
        const meta = request.frame_metadata
        if (frame.width !== meta.width || frame.height !== meta.height) {
          return Effect.fail(
            new FrameInvalid({
              path: request.frame_reference,
              reason: `frame is ${frame.width}x${frame.height}, request says ${meta.width}x${meta.height}`
            })
          )
        }
        return use({ ...frame, reference: request.frame_reference })
      }
    })
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

/** Non-blocking so a FIFO or device planted at the path cannot stall us before the type check. */
const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK

/** Thrown inside the synchronous read and turned into the error channel at its edge. */
class Abort {
  constructor(readonly error: FrameError) {}
}

/** Reads exactly `length` bytes from offset 0 into `into`, or says the file shrank. */
const readExactly = (fd: number, p: string, into: Uint8Array, length: number): void => {
  let got = 0
  while (got < length) {
    const n = fs.readSync(fd, into, got, length - got, got)
    if (n === 0) break
    got += n
  }
  if (got !== length) {
    throw new Abort(new FrameInvalid({ path: p, reason: `frame truncated while reading: ${got} of ${length} bytes` }))
  }
}

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
  if (stride < minStride(format, meta.width)) {
    return new FrameInvalid({
      path: request.frame_reference,
      reason: `stride ${stride} is smaller than a ${format} row of width ${meta.width} (${minStride(format, meta.width)} bytes)`
    })
  }
  return { format, stride, bytes: frameByteLength(format, meta.height, stride) }
}

const makeFileReader = (roots: ReadonlyArray<string>, pool: BufferPool): FrameReaderShape => {
  const lexicalRoots = roots.map((r) => path.resolve(r))
  const resolvedRoots = realRoots(lexicalRoots)
  const allowed = lexicalRoots.join(", ")

  /** The reference with `..` resolved, if it lies below a root. */
  const confineLexically = (reference: string): Effect.Effect<string, FrameError> => {
    if (!path.isAbsolute(reference) || reference.includes("\0")) {
      return Effect.fail(new FrameAccessDenied({ path: reference, reason: "must be an absolute path" }))
    }
    const lexical = path.resolve(reference)
    return isBelow(lexical, lexicalRoots)
      ? Effect.succeed(lexical)
      : Effect.fail(new FrameAccessDenied({ path: reference, reason: `outside the allowed roots (${allowed})` }))
  }

  /**
   * Where the opened file really is. On Linux we ask /proc about the open
   * descriptor itself (one syscall, and no window for a swap between check
   * and open); elsewhere we resolve the path.
   */
  const realPathOf = (fd: number, lexical: string): string => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      return fs.realpathSync.native(lexical)
    }
  }

  /**
   * Open, check, read and close in one synchronous step: frames live in
   * tmpfs, where these calls are memory copies, and the descriptor never
   * outlives the read.
   */
  const readFrame = (request: InferenceRequest, lexical: string): Frame & { readonly data: Uint8Array } => {
    const reference = request.frame_reference
    const geometry = frameGeometry(request)
    if (geometry instanceof FrameInvalid) throw new Abort(geometry)
    let fd: number
    try {
      fd = fs.openSync(lexical, OPEN_FLAGS)
    } catch (e) {
      throw new Abort(fsError(reference, e))
    }
    try {
      const real = realPathOf(fd, lexical)
      if (!isBelow(real, resolvedRoots)) {
        throw new Abort(
          new FrameAccessDenied({ path: reference, reason: `resolves to ${real}, outside the allowed roots (${allowed})` })
        )
      }
      const stat = fs.fstatSync(fd)
      if (!stat.isFile()) throw new Abort(new FrameInvalid({ path: reference, reason: "not a regular file" }))
      const { width, height } = request.frame_metadata
      if (stat.size < geometry.bytes) {
        throw new Abort(
          new FrameInvalid({
            path: reference,
            reason:
              `file has ${stat.size} bytes, a ${width}x${height} ${geometry.format} frame with stride ${geometry.stride} needs ${geometry.bytes}`
          })
        )
      }
      const data = pool.acquire(geometry.bytes)
      try {
        readExactly(fd, reference, data, geometry.bytes)
      } catch (e) {
        pool.release(data)
        throw e
      }
      return { reference, format: geometry.format, width, height, stride: geometry.stride, data }
    } catch (e) {
      throw e instanceof Abort ? e : new Abort(fsError(reference, e))
    } finally {
      fs.closeSync(fd)
    }
  }

  return {
    use: (request, use) =>
      Effect.flatMap(confineLexically(request.frame_reference), (lexical) =>
        Effect.acquireUseRelease(
          Effect.try({
            try: () => readFrame(request, lexical),
            catch: (e) => (e instanceof Abort ? e.error : fsError(request.frame_reference, e))
          }),
          use,
          (frame) => Effect.sync(() => pool.release(frame.data))
        )
      )
  }
}
