/**
 * Reads the frame a request names from shared memory, read-only, inside the
 * request's scope (handles are closed on every path, including interruption).
 *
 * `frame_reference` is caller input: it is confined to the configured roots
 * after resolving `..` and symlinks, and opened with O_NOFOLLOW so a symlink
 * swapped in after the check is refused.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer, type Scope } from "effect"
import { RuntimeConfig } from "../config/RuntimeConfig.js"
import { FrameAccessDenied, type FrameError, FrameInvalid, FrameNotFound } from "../contract/errors.js"
import { frameFormat, type InferenceRequest } from "../contract/schema.js"
import { type Frame, frameByteLength, isPixelFormat, minStride, type PixelFormat } from "./Frame.js"

export interface FrameReaderShape {
  /** The frame of a request; its bytes are valid until the scope closes. */
  readonly read: (request: InferenceRequest) => Effect.Effect<Frame, FrameError, Scope.Scope>
}

export class FrameReader extends Context.Tag("@ruth-ai/model-runtime/FrameReader")<FrameReader, FrameReaderShape>() {
  /** Reads from the filesystem, confined to `roots`. */
  static readonly make = (roots: ReadonlyArray<string>): FrameReaderShape => makeFileReader(roots)

  /** The live reader, confined to `RuntimeConfig.frameRoots`. */
  static readonly layer = Layer.effect(
    FrameReader,
    Effect.map(RuntimeConfig, (config) => makeFileReader(config.frameRoots))
  )

  /**
   * Serves frames from memory by reference: handler tests need no shared
   * memory. A reference that is absent gives FRAME_NOT_FOUND.
   */
  static readonly layerMemory = (frames: ReadonlyMap<string, Omit<Frame, "reference">>) =>
    Layer.succeed(FrameReader, {
      read: (request) => {
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
        return Effect.succeed({ ...frame, reference: request.frame_reference })
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
      return new FrameAccessDenied({ path: p, reason: "symbolic links are not followed" })
    default:
      return new FrameInvalid({ path: p, reason: e instanceof Error ? e.message : String(e) })
  }
}

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK

/** Opens `p` read-only for the scope. */
export const openReadOnly = (p: string): Effect.Effect<number, FrameError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({ try: () => fs.openSync(p, OPEN_FLAGS), catch: (e) => fsError(p, e) }),
    (fd) => Effect.sync(() => fs.closeSync(fd))
  )

/** Reads exactly `length` bytes from offset 0, or says the file shrank. */
export const readExactly = (fd: number, p: string, length: number, into?: Uint8Array): Effect.Effect<Uint8Array, FrameError> =>
  Effect.suspend(() => {
    const buf = into ?? Buffer.allocUnsafe(length)
    let got = 0
    try {
      while (got < length) {
        const n = fs.readSync(fd, buf, got, length - got, got)
        if (n === 0) break
        got += n
      }
    } catch (e) {
      return Effect.fail(fsError(p, e))
    }
    return got === length
      ? Effect.succeed(buf.subarray(0, length))
      : Effect.fail(new FrameInvalid({ path: p, reason: `frame truncated while reading: ${got} of ${length} bytes` }))
  })

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

const makeFileReader = (roots: ReadonlyArray<string>): FrameReaderShape => {
  const lexicalRoots = roots.map((r) => path.resolve(r))
  const resolvedRoots = realRoots(lexicalRoots)
  const allowed = lexicalRoots.join(", ")

  /** The real path of a reference, confined to the roots. */
  const confine = (reference: string): Effect.Effect<string, FrameError> =>
    Effect.suspend(() => {
      if (!path.isAbsolute(reference) || reference.includes("\0")) {
        return Effect.fail(new FrameAccessDenied({ path: reference, reason: "must be an absolute path" }))
      }
      const lexical = path.resolve(reference)
      if (!isBelow(lexical, lexicalRoots)) {
        return Effect.fail(new FrameAccessDenied({ path: reference, reason: `outside the allowed roots (${allowed})` }))
      }
      let real: string
      try {
        real = fs.realpathSync.native(lexical)
      } catch (e) {
        return Effect.fail(fsError(reference, e))
      }
      if (!isBelow(real, resolvedRoots)) {
        return Effect.fail(
          new FrameAccessDenied({ path: reference, reason: `resolves to ${real}, outside the allowed roots (${allowed})` })
        )
      }
      return Effect.succeed(real)
    })

  return {
    read: (request) =>
      Effect.gen(function*() {
        const reference = request.frame_reference
        const geometry = frameGeometry(request)
        if (geometry instanceof FrameInvalid) return yield* geometry
        const real = yield* confine(reference)
        const fd = yield* openReadOnly(real)
        const stat = yield* Effect.try({ try: () => fs.fstatSync(fd), catch: (e) => fsError(reference, e) })
        if (!stat.isFile()) {
          return yield* new FrameInvalid({ path: reference, reason: "not a regular file" })
        }
        const { width, height } = request.frame_metadata
        if (stat.size < geometry.bytes) {
          return yield* new FrameInvalid({
            path: reference,
            reason: `file has ${stat.size} bytes, a ${width}x${height} ${geometry.format} frame with stride ${geometry.stride} needs ${geometry.bytes}`
          })
        }
        const data = yield* readExactly(fd, reference, geometry.bytes)
        return { reference, format: geometry.format, width, height, stride: geometry.stride, data } satisfies Frame
      })
  }
}
