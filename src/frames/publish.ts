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

export const FRAME_META_BYTES = 64
export const FRAME_META_VERSION = 1
/** `pixel_format` codes of frame.meta: 0 is the contract's NV12; 1 and 2 are our extension. */
export const PIXEL_FORMAT_CODES: Readonly<Record<PixelFormat, number>> = { NV12: 0, RGB24: 1, BGR24: 2 }
/** Offset of `data_checksum` (u64) in frame.meta: bytes 48–55, reserved and 0 in headers that carry none. */
export const DATA_CHECKSUM_OFFSET = 48
/** The high 32 bits of a `data_checksum` that holds a CRC-32 ("CR32"); the low 32 bits are the CRC. */
export const DATA_CHECKSUM_CRC32 = 0x43523332

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
  const le = os.endianness() === "LE"
  const u32 = (value: number, at: number) => (le ? meta.writeUInt32LE(value, at) : meta.writeUInt32BE(value, at))
  const u64 = (value: bigint, at: number) => (le ? meta.writeBigUInt64LE(value, at) : meta.writeBigUInt64BE(value, at))
  const format = frame.format ?? "NV12"
  u32(FRAME_META_VERSION, 0)
  u64(frameId, 8)
  u64(timestampNs, 16)
  u32(frame.width, 24)
  u32(frame.height, 28)
  u32(PIXEL_FORMAT_CODES[format], 32)
  u32(frame.stride ?? minStride(format, frame.width), 36)
  u64(BigInt(frame.data.length), 40)
  u64(dataChecksum(frame.data), DATA_CHECKSUM_OFFSET)
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
