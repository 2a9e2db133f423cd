/**
 * The `frame.meta` header of the frame-export directory layout (CONTRACT §5), as bytes: its size,
 * the offset of every v1 field, the byte order and the codes. The one description the reader
 * (frameMeta.ts) and the writer (publish.ts) both follow.
 */
import * as os from "node:os"
import type { PixelFormat } from "./Frame.js"

/** Bytes of a v1 header; later versions may only append. */
export const FRAME_META_BYTES = 64
export const FRAME_META_VERSION = 1
/** Fields are in the host's byte order (writer and reader share the machine). */
export const FRAME_META_LITTLE_ENDIAN = os.endianness() === "LE"

/** Byte offsets of the v1 fields: `u32` or `u64` as named. */
export const FRAME_META_OFFSETS = {
  versionU32: 0,
  frameIdU64: 8,
  timestampNsU64: 16,
  widthU32: 24,
  heightU32: 28,
  pixelFormatU32: 32,
  strideU32: 36,
  dataSizeU64: 40,
  dataChecksumU64: 48
} as const

/** `pixel_format` codes of frame.meta: 0 is the contract's NV12; 1 and 2 are our extension. */
export const PIXEL_FORMAT_CODES: Readonly<Record<PixelFormat, number>> = { NV12: 0, RGB24: 1, BGR24: 2 }
/** Offset of `data_checksum` (u64) in frame.meta: bytes 48–55, reserved and 0 in headers that carry none. */
export const DATA_CHECKSUM_OFFSET = FRAME_META_OFFSETS.dataChecksumU64
/** The high 32 bits of a `data_checksum` that holds a CRC-32 ("CR32"); the low 32 bits are the CRC. */
export const DATA_CHECKSUM_CRC32 = 0x43523332
