/**
 * What reading a frame costs on the synchronous fast path (`FrameReader.now.read`, the path every
 * request takes): a 1920×1080 NV12 frame (3.1 MB) from shared memory, in each layout —
 *
 * - raw file;
 * - frame-export directory, header without `data_checksum` (v1 rules: sizes and file times) — the
 *   baseline for the next row;
 * - frame-export directory, header with `data_checksum` (the CRC-32 of frame.data is verified);
 * - the CRC-32 alone over the frame's bytes (zlib.crc32), for reference;
 * - a 64×48 frame in either layout (v1 header): the syscalls of checking paths, opening and
 *   closing, which the big frame's copy hides.
 *
 * The cases run round-robin in one process, so they share the machine's noise; medians and p99.
 *
 *   npx tsx bench/frameRead.ts [--json] [--iterations N]
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { crc32 } from "node:zlib"
import { Result } from "effect"
import { decodeRequest, type InferenceRequest } from "../src/contract/schema.js"
import { BufferPool } from "../src/frames/BufferPool.js"
import { FrameReader } from "../src/frames/FrameReader.js"
import { encodeFrameMeta, publishExportDir, publishRaw, sharedMemoryDir } from "../src/frames/publish.js"
import { isMainModule, jsonOutput, option } from "./cli.js"

export interface FrameReadRow {
  readonly case: string
  readonly medianMs: number
  readonly p99Ms: number
}

const WIDTH = 1920
const HEIGHT = 1080

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN

export const runFrameReadBench = (options: { readonly iterations?: number } = {}): ReadonlyArray<FrameReadRow> => {
  const iterations = options.iterations ?? 2_000
  const root = fs.mkdtempSync(path.join(sharedMemoryDir(), "ruth-bench-frames-"))
  try {
    const data = Buffer.alloc((WIDTH * HEIGHT * 3) / 2)
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff
    const frame = { data, width: WIDTH, height: HEIGHT }
    const raw = path.join(root, "raw.nv12")
    publishRaw(raw, frame)
    const checked = path.join(root, "with-checksum")
    publishExportDir(checked, frame, 1n)
    /** A frame-export dir whose header has no data_checksum, as writers before it leave it. */
    const publishV1 = (dir: string, f: typeof frame) => {
      publishExportDir(dir, f, 1n)
      const meta = encodeFrameMeta(f, 1n).fill(0, 48, 56)
      fs.writeFileSync(path.join(dir, "frame.meta.tmp"), meta)
      fs.renameSync(path.join(dir, "frame.meta.tmp"), path.join(dir, "frame.meta"))
    }
    const v1 = path.join(root, "without-checksum")
    publishV1(v1, frame)
    const small = { data: data.subarray(0, (64 * 48 * 3) / 2), width: 64, height: 48 }
    const smallRaw = path.join(root, "small.nv12")
    publishRaw(smallRaw, small)
    const smallV1 = path.join(root, "small-without-checksum")
    publishV1(smallV1, small)

    const reader = FrameReader.make([root], new BufferPool(64 << 20))
    const now = reader.now
    if (now === undefined) throw new Error("the file reader has no synchronous path")
    const request = (ref: string, width = WIDTH, height = HEIGHT): InferenceRequest =>
      Result.getOrThrow(decodeRequest({
        frame_reference: ref,
        frame_metadata: { width, height, format: "NV12", frame_id: 1 },
        camera_id: "bench",
        model_id: "bench",
        timestamp: 1
      }))
    const readOnce = (r: InferenceRequest) => () => {
      const exit = now.read(r)
      if (exit === undefined || exit._tag === "Failure") throw new Error(`read failed: ${JSON.stringify(exit)}`)
      now.release(exit.value)
    }
    const cases: ReadonlyArray<{ readonly name: string; readonly run: () => void }> = [
      { name: "raw file", run: readOnce(request(raw)) },
      { name: "frame-export dir, v1 header (no data_checksum)", run: readOnce(request(v1)) },
      { name: "frame-export dir, data_checksum verified", run: readOnce(request(checked)) },
      { name: "zlib.crc32 of the frame alone", run: () => void crc32(data) },
      { name: "64×48 raw file", run: readOnce(request(smallRaw, 64, 48)) },
      { name: "64×48 frame-export dir, v1 header", run: readOnce(request(smallV1, 64, 48)) }
    ]
    const times = cases.map(() => [] as Array<number>)
    for (let i = 0; i < iterations + 100; i++) {
      for (const [c, { run }] of cases.entries()) {
        const start = process.hrtime.bigint()
        run()
        if (i >= 100) times[c]!.push(Number(process.hrtime.bigint() - start) / 1e6) // first 100: warm-up
      }
    }
    return cases.map(({ name }, c) => {
      const sorted = times[c]!.sort((a, b) => a - b)
      return { case: name, medianMs: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) }
    })
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
}

export const formatFrameReadTable = (rows: ReadonlyArray<FrameReadRow>): string =>
  [
    `| NV12 frame (${WIDTH}×${HEIGHT} unless named), FrameReader.now.read | median ms | p99 ms |`,
    "|---|---:|---:|",
    ...rows.map((r) => `| ${r.case} | ${r.medianMs.toFixed(4)} | ${r.p99Ms.toFixed(3)} |`)
  ].join("\n")

if (isMainModule(import.meta.url)) {
  const iterations = option("iterations")
  const rows = runFrameReadBench(iterations === undefined ? {} : { iterations: Number(iterations) })
  if (jsonOutput()) for (const row of rows) console.log(JSON.stringify({ bench: "frame-read", ...row }))
  else console.log(formatFrameReadTable(rows))
}
