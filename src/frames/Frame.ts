/**
 * A frame as the handler sees it: pixel bytes plus geometry. The bytes are
 * only valid for the duration of the request (they may come from a pool and
 * the writer may overwrite shared memory at any time): never keep them.
 */
export type PixelFormat = "NV12" | "RGB24" | "BGR24"

export const PIXEL_FORMATS: ReadonlyArray<PixelFormat> = ["NV12", "RGB24", "BGR24"]

export interface Frame {
  /** The request's `frame_reference`. */
  readonly reference: string
  readonly format: PixelFormat
  readonly width: number
  readonly height: number
  /** Bytes per row (of the Y and UV planes for NV12). */
  readonly stride: number
  readonly data: Uint8Array
  /** The frame id, when the layout records one (frame-export directory). */
  readonly frameId?: bigint
  readonly timestampNs?: bigint
}

/** Bytes a frame occupies for its format, dimensions and stride. */
export const frameByteLength = (format: PixelFormat, height: number, stride: number): number =>
  format === "NV12" ? stride * height + stride * Math.ceil(height / 2) : stride * height

/** The smallest stride a format allows for a width. */
export const minStride = (format: PixelFormat, width: number): number => (format === "NV12" ? width : width * 3)

export const isPixelFormat = (s: string): s is PixelFormat => (PIXEL_FORMATS as ReadonlyArray<string>).includes(s)
