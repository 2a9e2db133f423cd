/**
 * Writing frames into shared memory the way the core does, in either layout
 * of CONTRACT §5 — for the CLI, the demo, benchmarks and tests. (A container
 * never writes frames: this is the caller's side.)
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { crc32 } from "node:zlib"
import { writeFileAtomically } from "../internal/files.js"
import { minStride, type PixelFormat } from "./Frame.js"
import {
  DATA_CHECKSUM_CRC32,
  FRAME_META_BYTES,
  FRAME_META_LITTLE_ENDIAN,
  FRAME_META_OFFSETS as at,
  FRAME_META_VERSION,
  PIXEL_FORMAT_CODES
} from "./frameLayout.js"

export {
  DATA_CHECKSUM_CRC32,
  DATA_CHECKSUM_OFFSET,
  FRAME_META_BYTES,
  FRAME_META_VERSION,
  PIXEL_FORMAT_CODES
} from "./frameLayout.js"

/** The `data_checksum` of a frame.data holding exactly `data`: the marker and the CRC-32 (zlib's) of every byte. */
export const dataChecksum = (data: Uint8Array): bigint => (BigInt(DATA_CHECKSUM_CRC32) << 32n) | BigInt(crc32(data))

export interface PublishedFrame {
  readonly data: Uint8Array
  readonly width: number
  readonly height: number
  readonly format?: PixelFormat
  /** Bytes per row; defaults to the format's minimum. */
  readonly stride?: number
}

/** Where shared memory is: /dev/shm when the machine has it, else the temp dir. */
export const sharedMemoryDir = (): string => (fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir())

/** Raw layout: one frame in a file from offset 0. */
export const publishRaw = (file: string, frame: PublishedFrame): void => writeFileAtomically(file, frame.data)

/** The 64-byte frame.meta header v1, in the host's byte order, with the `data_checksum` of `frame.data`. */
export const encodeFrameMeta = (
  frame: PublishedFrame,
  frameId: bigint,
  timestampNs: bigint = process.hrtime.bigint()
): Buffer => {
  const meta = Buffer.alloc(FRAME_META_BYTES)
  const le = FRAME_META_LITTLE_ENDIAN
  const u32 = (value: number, offset: number) => (le ? meta.writeUInt32LE(value, offset) : meta.writeUInt32BE(value, offset))
  const u64 = (value: bigint, offset: number) => (le ? meta.writeBigUInt64LE(value, offset) : meta.writeBigUInt64BE(value, offset))
  const format = frame.format ?? "NV12"
  u32(FRAME_META_VERSION, at.versionU32)
  u64(frameId, at.frameIdU64)
  u64(timestampNs, at.timestampNsU64)
  u32(frame.width, at.widthU32)
  u32(frame.height, at.heightU32)
  u32(PIXEL_FORMAT_CODES[format], at.pixelFormatU32)
  u32(frame.stride ?? minStride(format, frame.width), at.strideU32)
  u64(BigInt(frame.data.length), at.dataSizeU64)
  u64(dataChecksum(frame.data), at.dataChecksumU64)
  return meta
}

/**
 * Frame-export layout: `frame.data`, then `frame.meta` naming its checksum
 * (data first, as the core's writer does), so a reader can prove the pair whole.
 */
export const publishExportDir = (dir: string, frame: PublishedFrame, frameId: bigint): void => {
  fs.mkdirSync(dir, { recursive: true })
  writeFileAtomically(path.join(dir, "frame.data"), frame.data)
  writeFileAtomically(path.join(dir, "frame.meta"), encodeFrameMeta(frame, frameId))
}
