/**
 * The `frame.meta` header of the frame-export directory layout (CONTRACT §5):
 * 64 bytes in the host's byte order. Version 1 is what we know; later
 * versions may only append, so any version >= 1 is read and the bytes past
 * the v1 fields are ignored.
 *
 * `pixel_format` 0 is the contract's NV12; 1 = RGB24 and 2 = BGR24 are our
 * extension. Offsets, sizes and codes are frameLayout.ts's, which the writer
 * (publish.ts) follows too.
 * `data_checksum` (bytes 48–55, reserved in the first headers, so 0 from
 * writers that predate it) lets a reader prove frame.data is the header's.
 */
import type { PixelFormat } from "./Frame.js"
import {
  DATA_CHECKSUM_CRC32,
  FRAME_META_BYTES,
  FRAME_META_LITTLE_ENDIAN,
  FRAME_META_OFFSETS as at,
  PIXEL_FORMAT_CODES
} from "./frameLayout.js"

export { FRAME_META_BYTES }

export interface FrameMetaHeader {
  readonly version: number
  readonly frameId: bigint
  readonly timestampNs: bigint
  readonly width: number
  readonly height: number
  /** The raw `pixel_format` code; see `pixelFormatOf`. */
  readonly pixelFormat: number
  readonly stride: number
  readonly dataSize: bigint
  /** The CRC-32 of all `dataSize` bytes of frame.data, when the writer recorded one. */
  readonly dataCrc32: number | undefined
}

const crc32Of = (checksum: bigint): number | undefined =>
  checksum >> 32n === BigInt(DATA_CHECKSUM_CRC32) ? Number(checksum & 0xffff_ffffn) : undefined

/**
 * Decodes the v1 fields of a header of at least `FRAME_META_BYTES` bytes. A
 * `data_checksum` without the CRC-32 marker (0, or a kind we do not know) is
 * no checksum.
 */
export const decodeFrameMeta = (bytes: Uint8Array): FrameMetaHeader => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const u32 = (offset: number) => view.getUint32(offset, FRAME_META_LITTLE_ENDIAN)
  const u64 = (offset: number) => view.getBigUint64(offset, FRAME_META_LITTLE_ENDIAN)
  return {
    version: u32(at.versionU32),
    frameId: u64(at.frameIdU64),
    timestampNs: u64(at.timestampNsU64),
    width: u32(at.widthU32),
    height: u32(at.heightU32),
    pixelFormat: u32(at.pixelFormatU32),
    stride: u32(at.strideU32),
    dataSize: u64(at.dataSizeU64),
    dataCrc32: crc32Of(u64(at.dataChecksumU64))
  }
}

const FORMAT_BY_CODE: ReadonlyMap<number, PixelFormat> = new Map(
  Object.entries(PIXEL_FORMAT_CODES).map(([format, code]) => [code, format as PixelFormat])
)

/** The pixel format a `pixel_format` code names, if we know it. */
export const pixelFormatOf = (code: number): PixelFormat | undefined => FORMAT_BY_CODE.get(code)

/**
 * The frame id a request names, when it names one we can compare: an integer
 * number or a string of digits. Anything else (absent, null, "cam1-42") is
 * not checked.
 */
export const requestedFrameId = (frameId: unknown): bigint | undefined => {
  if (typeof frameId === "number" && Number.isInteger(frameId)) return BigInt(frameId)
  if (typeof frameId === "string" && /^-?\d+$/.test(frameId.trim())) return BigInt(frameId.trim())
  return undefined
}
