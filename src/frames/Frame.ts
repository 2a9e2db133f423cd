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

/** The pixel part of a frame: what preprocessing and image helpers need. */
export type FrameView = Pick<Frame, "data" | "width" | "height" | "stride" | "format">

/** NV12: where the interleaved UV plane starts, right after `height` luma rows of `stride` bytes. */
export const nv12ChromaOffset = (height: number, stride: number): number => stride * height

/** Bytes a frame of this geometry needs (the last row of each plane may omit its stride padding). */
export const frameByteLength = (format: PixelFormat, width: number, height: number, stride: number): number => {
  if (format === "NV12") {
    const chromaRows = Math.ceil(height / 2)
    return nv12ChromaOffset(height, stride) + (chromaRows - 1) * stride + 2 * Math.ceil(width / 2)
  }
  return (height - 1) * stride + 3 * width
}

/**
 * The smallest stride a format allows for a width: a row must hold the plane's widest row. For
 * NV12 that is the interleaved chroma row, 2 × ceil(width / 2) bytes — one more than the luma row
 * when the width is odd. The one rule the reader, preprocessing and the publishers use.
 */
export const minStride = (format: PixelFormat, width: number): number => (format === "NV12" ? width + (width & 1) : width * 3)

export const isPixelFormat = (s: string): s is PixelFormat => (PIXEL_FORMATS as ReadonlyArray<string>).includes(s)
