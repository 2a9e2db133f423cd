import { frameByteLength } from "../../src/frames/Frame.js"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import { crc32 } from "node:zlib"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Result, Exit } from "effect"
import { decodeRequest, type InferenceRequest } from "../../src/contract/schema.js"
import { BufferPool } from "../../src/frames/BufferPool.js"
import type { PixelFormat } from "../../src/frames/Frame.js"
import { FrameReader, TORN_ATTEMPTS } from "../../src/frames/FrameReader.js"
import { decodeFrameMeta } from "../../src/frames/frameMeta.js"
import { DATA_CHECKSUM_CRC32, encodeFrameMeta, publishExportDir, sharedMemoryDir } from "../../src/frames/publish.js"
import { request, tempDir } from "../support/harness.js"
import { fifoWriter, openSpy, spyOnOpen } from "./openWitness.js"

const W = 64
const H = 48
const NV12_BYTES = W * H * 1.5

/** A request for `ref`; `frame_id` only when given (the harness default names frame 1). */
const req = (ref: string, meta: Record<string, unknown> = {}): InferenceRequest =>
  Result.getOrThrow(decodeRequest(request(ref, { frame_metadata: { width: W, height: H, ...meta } })))

/** A fresh directory in shared memory (the temp dir where there is none), removed with the scope. */
const shmDir = () =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(sharedMemoryDir(), "ruth-test-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

const openFds = () => fs.readdirSync("/proc/self/fd").length

const read = (roots: ReadonlyArray<string>, r: InferenceRequest) =>
  FrameReader.make(roots).use(r, (frame) => Effect.succeed({ ...frame, data: Buffer.from(frame.data) })).pipe(
    Effect.map((frame) => ({ ok: true as const, frame })),
    Effect.catch((e) => Effect.succeed({ ok: false as const, code: e.code, message: e.message, error: e }))
  )

/** Publishes a patterned frame (byte i = i % 251) into `dir` and returns its bytes. */
const publish = (dir: string, frameId = 7n, format: PixelFormat = "NV12", stride?: number): Buffer => {
  const rowBytes = stride ?? (format === "NV12" ? W : W * 3)
  const data = Buffer.alloc(format === "NV12" ? rowBytes * H * 1.5 : rowBytes * H)
  for (let i = 0; i < data.length; i++) data[i] = i % 251
  publishExportDir(dir, { data, width: W, height: H, format, ...(stride !== undefined ? { stride } : {}) }, frameId)
  return data
}

/** Rewrites frame.meta with `edit` applied to a valid header for `data` (frame.data untouched, meta stays newer). */
const editMeta = (dir: string, data: Uint8Array, edit: (meta: Buffer) => Buffer | void) => {
  const meta = encodeFrameMeta({ data, width: W, height: H }, 7n)
  fs.writeFileSync(path.join(dir, "frame.meta"), edit(meta) ?? meta)
}

describe("FrameReader (frame-export directory layout)", () => {
  it.live("reads frame.data as frame.meta describes it, with the header's id and timestamp", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const dir = path.join(root, "camera_1")
      const data = publish(dir, 7n)
      for (const frameId of [undefined, 7, "7", "not-a-number", null, 7.5]) {
        const r = yield* read([root], req(dir, frameId === undefined ? {} : { frame_id: frameId }))
        expect(r).toMatchObject({ ok: true, frame: { format: "NV12", width: W, height: H, stride: W, frameId: 7n } })
        if (r.ok) {
          expect(r.frame.data.equals(data)).toBe(true)
          expect(typeof r.frame.timestampNs).toBe("bigint")
        }
      }
      // A trailing slash names the same directory.
      expect((yield* read([root], req(dir + "/"))).ok).toBe(true)
    }))

  it.live("header geometry is authoritative: its stride and formats 1 = RGB24, 2 = BGR24; the request's stride is ignored", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const padded = path.join(root, "padded")
      publish(padded, 7n, "NV12", 80)
      expect(yield* read([root], req(padded, { stride: 64 }))).toMatchObject({ ok: true, frame: { stride: 80 } })
      for (const format of ["RGB24", "BGR24"] as const) {
        const dir = path.join(root, format)
        const data = publish(dir, 7n, format)
        const r = yield* read([root], req(dir))
        expect(r).toMatchObject({ ok: true, frame: { format, stride: W * 3 } })
        if (r.ok) expect(r.frame.data.equals(data)).toBe(true)
      }
    }))

  it.live("FRAME_INVALID when the request disagrees with the header, or the header is unusable", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const dir = path.join(root, "cam")
      const data = publish(dir)
      const invalid = (text: string) => ({ ok: false, code: "FRAME_INVALID", message: expect.stringContaining(text) })
      expect(yield* read([root], req(dir, { width: 32 }))).toMatchObject(invalid("header says 64x48, request says 32x48"))
      expect(yield* read([root], req(dir, { format: "RGB24" }))).toMatchObject(invalid("header says NV12, request says RGB24"))

      editMeta(dir, data, (m) => void m.writeUInt32LE(7, 32))
      expect(yield* read([root], req(dir))).toMatchObject(invalid("unknown pixel_format 7"))
      editMeta(dir, data, (m) => void m.writeUInt32LE(0, 0))
      expect(yield* read([root], req(dir))).toMatchObject(invalid("unsupported header version 0"))
      editMeta(dir, data, (m) => m.subarray(0, 40))
      expect(yield* read([root], req(dir))).toMatchObject(invalid("header has 40 bytes, expected at least 64"))
      editMeta(dir, data, (m) => void m.writeUInt32LE(32, 36))
      expect(yield* read([root], req(dir))).toMatchObject(invalid("stride 32 is smaller"))
      // A header whose data_size cannot hold its own geometry is broken, not torn: no retry helps.
      editMeta(dir, data, (m) => void m.writeBigUInt64LE(100n, 40))
      fs.truncateSync(path.join(dir, "frame.data"), 100)
      fs.utimesSync(path.join(dir, "frame.data"), new Date(0), new Date(0))
      expect(yield* read([root], req(dir))).toMatchObject(invalid("data_size 100 is less than"))
    }))

  it.live("accepts later header versions and ignores what it does not know", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const dir = path.join(root, "cam")
      const data = publish(dir)
      editMeta(dir, data, (m) => {
        m.writeUInt32LE(2, 0)
        m.fill(0xab, 48)
        return Buffer.concat([m, Buffer.alloc(64, 0xcd)])
      })
      expect(yield* read([root], req(dir))).toMatchObject({ ok: true, frame: { frameId: 7n } })
    }))

  it.live("FRAME_STALE when the request names another frame_id than the header's", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const dir = path.join(root, "cam")
      publish(dir, 8n)
      for (const frameId of [7, "7", -1]) {
        const r = yield* read([root], req(dir, { frame_id: frameId }))
        expect(r).toMatchObject({ ok: false, code: "FRAME_STALE", message: expect.stringContaining("holds frame_id 8") })
      }
      // Identity is checked before geometry: a stale frame's shape says nothing about ours.
      expect(yield* read([root], req(dir, { frame_id: 7, width: 32 }))).toMatchObject({ ok: false, code: "FRAME_STALE" })
      // ids beyond 2^53 compare exactly when sent as strings
      publish(dir, 2n ** 63n + 1n)
      expect((yield* read([root], req(dir, { frame_id: (2n ** 63n + 1n).toString() }))).ok).toBe(true)
      expect(yield* read([root], req(dir, { frame_id: (2n ** 63n).toString() }))).toMatchObject({ code: "FRAME_STALE" })
    }))

  it.live(`FRAME_TORN after ${TORN_ATTEMPTS} attempts when frame.data is not the frame frame.meta describes`, () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const dir = path.join(root, "cam")
      const dataFile = path.join(dir, "frame.data")
      const data = publish(dir)
      const tornError = { ok: false, code: "FRAME_TORN", error: { attempts: TORN_ATTEMPTS } }
      // data_size disagrees with frame.data's size
      editMeta(dir, data, (m) => void m.writeBigUInt64LE(BigInt(NV12_BYTES + 10), 40))
      expect(yield* read([root], req(dir))).toMatchObject(tornError)
      // frame.data shrank (truncated in place) below data_size
      publish(dir)
      fs.truncateSync(dataFile, 100)
      expect(yield* read([root], req(dir))).toMatchObject(tornError)
      // frame.data is newer than frame.meta: the next frame's data with this frame's header
      publish(dir)
      const metaTime = fs.statSync(path.join(dir, "frame.meta")).mtime
      fs.utimesSync(dataFile, metaTime, new Date(metaTime.getTime() + 1000))
      expect(yield* read([root], req(dir))).toMatchObject(tornError)
      // and once the writer catches up, it reads again
      publish(dir)
      expect((yield* read([root], req(dir))).ok).toBe(true)
    }))

  /**
   * A live writer: every byte of frame n is n % 251. Racing it, every frame we
   * return must be whole; the only failure allowed is FRAME_TORN.
   */
  const raceWriter = (
    writer: { readonly alternateStride: boolean; readonly pauseMs: number; readonly early?: boolean; readonly checksum?: boolean }
  ) =>
    Effect.gen(function*() {
      const root = yield* shmDir() // where frames live in production, with tmpfs's timestamps
      const dir = path.join(root, "cam")
      publish(dir, 0n)
      const worker = yield* Effect.acquireRelease(
        Effect.sync(() => new Worker(WRITER, {
          eval: true,
          workerData: { dir, width: W, height: H, early: false, checksum: false, marker: DATA_CHECKSUM_CRC32, ...writer }
        })),
        (w) => Effect.promise(() => w.terminate())
      )
      yield* Effect.promise(() => new Promise((resolve) => worker.once("message", resolve)))
      const counts = { ok: 0, torn: 0 }
      const reader = FrameReader.make([root])
      const deadline = Date.now() + 1_500
      while (Date.now() < deadline) {
        const r = yield* reader.use(req(dir), (frame) =>
          Effect.sync(() => {
            const expected = Number(frame.frameId! % 251n)
            const stride = writer.alternateStride && frame.frameId! % 2n === 1n ? W + 16 : W
            return frame.stride === stride && frame.data.length === frameByteLength("NV12", W, H, stride) && frame.data.every((b) => b === expected)
          })).pipe(Effect.result)
        if (Result.isSuccess(r)) {
          expect(r.success).toBe(true)
          counts.ok++
        } else {
          expect(r.failure.code).toBe("FRAME_TORN")
          counts.torn++
        }
      }
      expect(counts.ok).toBeGreaterThan(0)
      return counts
    })

  it.live("racing a writer that replaces frames as fast as it can: whole frames or FRAME_TORN", () =>
    // Consecutive frames differ in size here, so header and size checks catch every tear.
    raceWriter({ alternateStride: true, pauseMs: 0 }))

  it.live("racing a paced writer of same-size frames without data_checksum: the next frame's data is caught by its file times", () =>
    // Same size, same header until the writer renames the new meta: only "data newer than meta" tells.
    // That needs frames a clock tick apart (file times may be coarse: up to 10 ms); cameras are 30+ ms apart.
    raceWriter({ alternateStride: false, pauseMs: 20 }))

  it.live("racing a writer that prepares the next frame's data early, unpaced, with data_checksum: every answer is whole", () =>
    // The issue's writer: frame n+1's data written before frame n's meta, renamed in after it. Its
    // times are older or within a tick, the size and header the same: only the checksum tells.
    raceWriter({ alternateStride: false, pauseMs: 0, early: true, checksum: true }))

  it.live("FRAME_NOT_FOUND for a missing frame.meta, frame.data or directory", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const dir = path.join(root, "cam")
      publish(dir)
      fs.rmSync(path.join(dir, "frame.data"))
      expect(yield* read([root], req(dir))).toMatchObject({ ok: false, code: "FRAME_NOT_FOUND", message: expect.stringContaining("frame.data") })
      publish(dir)
      fs.rmSync(path.join(dir, "frame.meta"))
      expect(yield* read([root], req(dir))).toMatchObject({ ok: false, code: "FRAME_NOT_FOUND", message: expect.stringContaining("frame.meta") })
      fs.rmSync(dir, { recursive: true })
      expect(yield* read([root], req(dir))).toMatchObject({ ok: false, code: "FRAME_NOT_FOUND" })
    }))

  it.live("confines the directory and each file to the roots; a FIFO cannot stall the read", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const outside = yield* tempDir()
      const denied = { ok: false, code: "FRAME_ACCESS_DENIED" }
      const secretDir = path.join(outside, "secret")
      publish(secretDir)
      expect(yield* read([root], req(secretDir))).toMatchObject(denied)
      fs.symlinkSync(secretDir, path.join(root, "dirlink"))
      expect(yield* read([root], req(path.join(root, "dirlink")))).toMatchObject(denied)
      for (const file of ["frame.data", "frame.meta"]) {
        const dir = path.join(root, `link-${file}`)
        publish(dir)
        fs.rmSync(path.join(dir, file))
        fs.symlinkSync(path.join(secretDir, file), path.join(dir, file))
        expect(yield* read([root], req(dir))).toMatchObject({ ...denied, message: expect.stringContaining(file) })
      }
      // Symlinks that stay inside the roots are fine.
      const real = path.join(root, "real")
      const data = publish(real)
      const inner = path.join(root, "inner")
      fs.mkdirSync(inner)
      fs.symlinkSync(path.join(real, "frame.data"), path.join(inner, "frame.data"))
      fs.symlinkSync(path.join(real, "frame.meta"), path.join(inner, "frame.meta"))
      const r = yield* read([root], req(inner))
      expect(r.ok && r.frame.data.equals(data)).toBe(true)

      const fifo = path.join(root, "fifo")
      publish(fifo)
      fs.rmSync(path.join(fifo, "frame.data"))
      execFileSync("mkfifo", [path.join(fifo, "frame.data")])
      expect(yield* read([root], req(fifo))).toMatchObject({ ok: false, code: "FRAME_INVALID", message: expect.stringContaining("not a regular file") })
    }))

  it.live("never opens a frame file that leads out of the roots or is not a regular file", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const outside = yield* tempDir()
      const fifo = path.join(outside, "fifo")
      execFileSync("mkfifo", [fifo])
      const writer = yield* fifoWriter(fifo)
      const toFifo = path.join(root, "to-fifo")
      publish(toFifo)
      fs.rmSync(path.join(toFifo, "frame.data"))
      fs.symlinkSync(fifo, path.join(toFifo, "frame.data"))
      const toZero = path.join(root, "to-zero")
      publish(toZero)
      fs.rmSync(path.join(toZero, "frame.meta"))
      fs.symlinkSync("/dev/zero", path.join(toZero, "frame.meta"))
      const innerFifo = path.join(root, "inner-fifo")
      publish(innerFifo)
      fs.rmSync(path.join(innerFifo, "frame.data"))
      execFileSync("mkfifo", [path.join(innerFifo, "frame.data")])
      const spy = yield* openSpy
      expect(yield* read([root], req(toFifo))).toMatchObject({ ok: false, code: "FRAME_ACCESS_DENIED", message: expect.stringContaining("frame.data") })
      expect(yield* read([root], req(toZero))).toMatchObject({ ok: false, code: "FRAME_ACCESS_DENIED", message: expect.stringContaining("frame.meta") })
      expect(yield* read([root], req(innerFifo))).toMatchObject({ ok: false, code: "FRAME_INVALID", message: expect.stringContaining("not a regular file") })
      // Only the frame.meta files were opened: both inside the root, both regular.
      expect(spy.opened).toEqual([path.join(toFifo, "frame.meta"), path.join(innerFifo, "frame.meta")].map((p) => fs.realpathSync(p)))
      expect(writer.waiting()).toBe(true)
      expect(yield* writer.released).toBe("0")
    }))

  it.live("never writes: read-only files in a read-only directory work, and nothing changes", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const dir = path.join(root, "cam")
      publish(dir)
      const files = ["frame.meta", "frame.data"].map((f) => path.join(dir, f))
      for (const f of files) fs.chmodSync(f, 0o444)
      fs.chmodSync(dir, 0o555) // r-x: a directory needs x to be traversed
      const snapshot = () => files.map((f) => ({ bytes: fs.readFileSync(f), stat: fs.statSync(f, { bigint: true }) }))
      const before = snapshot()
      const raw = path.join(root, "raw")
      fs.writeFileSync(raw, Buffer.alloc(NV12_BYTES, 9), { mode: 0o444 })
      const rawBefore = fs.statSync(raw, { bigint: true })
      const flagsSeen = yield* Effect.acquireUseRelease(
        Effect.sync(() => spyOnOpen()),
        (spy) =>
          Effect.gen(function*() {
            for (let i = 0; i < 20; i++) {
              expect((yield* read([root], req(dir))).ok).toBe(true)
              expect((yield* read([root], req(raw))).ok).toBe(true)
            }
            return spy.flags
          }),
        (spy) => Effect.sync(() => spy.restore())
      )
      expect(flagsSeen.length).toBeGreaterThanOrEqual(20 * 4) // frame.meta twice, frame.data, the raw file
      const writeFlags = fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_APPEND
      expect(flagsSeen.filter((f) => typeof f !== "number" || (f & writeFlags) !== 0)).toEqual([])
      const after = snapshot()
      for (const [i, b] of before.entries()) {
        expect(after[i]!.bytes.equals(b.bytes)).toBe(true)
        expect(after[i]!.stat.mtimeNs).toBe(b.stat.mtimeNs)
        expect(after[i]!.stat.ctimeNs).toBe(b.stat.ctimeNs)
      }
      expect(fs.statSync(raw, { bigint: true }).ctimeNs).toBe(rawBefore.ctimeNs)
      fs.chmodSync(dir, 0o755) // let the scope remove it
    }))

  it.live("closes every descriptor and returns every buffer, whatever the outcome", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const good = path.join(root, "good")
      const data = publish(good)
      const tornTime = path.join(root, "torn-time")
      publish(tornTime)
      fs.utimesSync(path.join(tornTime, "frame.data"), new Date(), new Date(Date.now() + 60_000))
      const tornSize = path.join(root, "torn-size")
      publish(tornSize)
      editMeta(tornSize, data, (m) => void m.writeBigUInt64LE(BigInt(NV12_BYTES + 1), 40))
      const broken = path.join(root, "broken")
      publish(broken)
      editMeta(broken, data, (m) => void m.writeBigUInt64LE(1n, 40))
      const pool = new BufferPool(1 << 20)
      const reader = FrameReader.make([root], pool)
      const before = openFds()
      for (let i = 0; i < 50; i++) {
        const cases = [[good, {}], [good, { frame_id: 6 }], [tornTime, {}], [tornSize, {}], [broken, {}], [path.join(root, "none"), {}]] as const
        const codes: Array<string> = []
        for (const [dir, meta] of cases) {
          const r = yield* Effect.result(reader.use(req(dir, meta), Effect.succeed))
          codes.push(r._tag === "Success" ? "ok" : r.failure.code)
        }
        expect(codes).toEqual(["ok", "FRAME_STALE", "FRAME_TORN", "FRAME_TORN", "FRAME_INVALID", "FRAME_NOT_FOUND"])
      }
      const exit = yield* Effect.exit(reader.use(req(good), () => Effect.interrupt))
      expect(Exit.hasInterrupts(exit)).toBe(true)
      expect(openFds()).toBe(before)
      expect(pool.inUse).toBe(0)
    }))
})

/** Frame n of the stepped writer: every byte n % 251, one size for all (only the content tells frames apart). */
const pixelsOf = (id: bigint): Buffer => Buffer.alloc(NV12_BYTES, Number(id % 251n))

/** frame.meta of frame `id`: with the checksum of its pixels, or none (reserved bytes 0, as writers before it). */
const metaOf = (id: bigint, checksum: boolean): Buffer => {
  const meta = encodeFrameMeta({ data: pixelsOf(id), width: W, height: H }, id)
  if (!checksum) meta.fill(0, 48, 56)
  return meta
}

type WriterOrder = "in order" | "next data prepared early"

/**
 * A writer that follows the contract (each file written to a temp file and
 * renamed, data before meta), as steps to pause between: frames 1..`last`
 * after frame 0. "next data prepared early": frame n+1's data file is written
 * before frame n's meta, and renamed in after it.
 */
const writerSteps = (dir: string, order: WriterOrder, checksum: boolean, last: bigint) => {
  const at = (name: string) => path.join(dir, name)
  const steps: Array<{ readonly label: string; readonly run: () => void }> = []
  const write = (label: string, name: string, bytes: Buffer) => steps.push({ label, run: () => fs.writeFileSync(at(name), bytes) })
  const rename = (label: string, from: string, to: string) => steps.push({ label, run: () => fs.renameSync(at(from), at(to)) })
  fs.writeFileSync(at("frame.data"), pixelsOf(0n))
  fs.writeFileSync(at("frame.meta"), metaOf(0n, checksum))
  if (order === "next data prepared early") fs.writeFileSync(at("data.1.tmp"), pixelsOf(1n))
  for (let n = 1n; n <= last; n++) {
    if (order === "in order") write(`write data ${n} to a temp file`, `data.${n}.tmp`, pixelsOf(n))
    rename(`rename data ${n} over frame.data`, `data.${n}.tmp`, "frame.data")
    if (order === "next data prepared early") write(`write data ${n + 1n} to a temp file, early`, `data.${n + 1n}.tmp`, pixelsOf(n + 1n))
    write(`write meta ${n} to a temp file`, `meta.${n}.tmp`, metaOf(n, checksum))
    rename(`rename meta ${n} over frame.meta`, `meta.${n}.tmp`, "frame.meta")
  }
  return steps
}

/**
 * Returns once the filesystem's clock has passed every time on `dir`'s files,
 * so whatever the writer does next is stamped later (a pause longer than a
 * clock tick, however coarse; waited for by watching a probe file, not slept).
 */
const pastClockTick = (dir: string) => {
  const probe = path.join(dir, "clock.probe")
  const latest = fs.readdirSync(dir)
    .filter((name) => name !== "clock.probe")
    .map((name) => fs.statSync(path.join(dir, name), { bigint: true }))
    .reduce((max, stat) => (stat.ctimeNs > max ? stat.ctimeNs : stat.mtimeNs > max ? stat.mtimeNs : max), 0n)
  for (let i = 0; ; i++) {
    fs.writeFileSync(probe, String(i))
    if (fs.statSync(probe, { bigint: true }).ctimeNs > latest) return
  }
}

describe("FrameReader proves a frame-export pair whole (CONTRACT §5)", () => {
  const writers = [
    { order: "in order", checksum: true },
    { order: "next data prepared early", checksum: true },
    { order: "in order", checksum: false },
    { order: "next data prepared early", checksum: false }
  ] as const

  for (const { order, checksum } of writers) {
    const kind = checksum ? "with data_checksum (no pause needed)" : "without data_checksum, pausing past a clock tick"
    it.live(`a writer ${kind}, ${order}, paused after every step: the header's frame, FRAME_TORN or FRAME_STALE — never other pixels`, () =>
      Effect.gen(function*() {
        const root = yield* shmDir()
        const dir = path.join(root, "cam")
        fs.mkdirSync(dir)
        const reader = FrameReader.make([root])
        const outcomes: Array<string> = []
        for (const step of writerSteps(dir, order, checksum, 3n)) {
          if (!checksum) pastClockTick(dir) // the writer's pause: this step is stamped after the last one
          step.run()
          // What the core would ask for now: the frame frame.meta names.
          const named = decodeFrameMeta(fs.readFileSync(path.join(dir, "frame.meta"))).frameId
          const r = yield* reader.use(req(dir, { frame_id: named.toString() }), (frame) =>
            Effect.sync(() =>
              frame.frameId === named && Buffer.from(frame.data).equals(pixelsOf(named)) ? "whole" : `frame ${named} with other pixels`
            )).pipe(Effect.catch((e) => Effect.succeed(e.code)))
          outcomes.push(`${step.label}: ${r}`)
        }
        expect(outcomes.filter((o) => !/: (whole|FRAME_TORN|FRAME_STALE)$/.test(o))).toEqual([])
        // Between a meta's rename and the next data's rename the pair is whole, and is read as such.
        expect(outcomes.filter((o) => o.startsWith("rename meta"))).toEqual(
          [1, 2, 3].map((n) => `rename meta ${n} over frame.meta: whole`)
        )
        // And the pause points after a data rename are exactly where the pair is torn.
        expect(outcomes.filter((o) => o.startsWith("rename data"))).toEqual(
          [1, 2, 3].map((n) => `rename data ${n} over frame.data: FRAME_TORN`)
        )
      }))
  }

  it.live("data_checksum catches what file times cannot: the next frame's data with a header written after it", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const dir = path.join(root, "cam")
      const meta = path.join(dir, "frame.meta")
      publishExportDir(dir, { data: pixelsOf(1n), width: W, height: H }, 1n)
      expect(decodeFrameMeta(fs.readFileSync(meta)).dataCrc32).toBe(crc32(pixelsOf(1n)))
      // frame.data is frame 2's, frame.meta (frame 1's, same size) renamed in after it: its times say "whole".
      publishExportDir(dir, { data: pixelsOf(2n), width: W, height: H }, 2n)
      fs.writeFileSync(meta + ".tmp", metaOf(1n, true))
      fs.renameSync(meta + ".tmp", meta)
      expect(yield* read([root], req(dir, { frame_id: 1 }))).toMatchObject({ ok: false, code: "FRAME_TORN" })
      // Padding beyond the frame (data_size > the frame's bytes) is covered too.
      const padded = Buffer.concat([pixelsOf(3n), Buffer.alloc(100_000, 1)])
      publishExportDir(dir, { data: padded, width: W, height: H }, 3n)
      expect(yield* read([root], req(dir, { frame_id: 3 }))).toMatchObject({ ok: true, frame: { frameId: 3n } })
      const header = fs.readFileSync(meta)
      padded[padded.length - 1] = 2
      fs.writeFileSync(path.join(dir, "frame.data"), padded)
      fs.writeFileSync(meta + ".tmp", header)
      fs.renameSync(meta + ".tmp", meta)
      expect(yield* read([root], req(dir, { frame_id: 3 }))).toMatchObject({ ok: false, code: "FRAME_TORN" })
    }))
})

/** A frame-export writer as the core runs it: data then meta, each renamed into place, never waiting. */
const WRITER = `
const fs = require("node:fs")
const path = require("node:path")
const { parentPort, workerData } = require("node:worker_threads")
const { crc32 } = require("node:zlib")
const { dir, width, height, alternateStride, pauseMs, early, checksum, marker } = workerData
const pause = new Int32Array(new SharedArrayBuffer(4))
const le = require("node:os").endianness() === "LE"
const put = (file, bytes) => { fs.writeFileSync(file + ".tmp", bytes); fs.renameSync(file + ".tmp", file) }
const strideOf = (id) => alternateStride && id % 2n === 1n ? width + 16 : width
const dataOf = (id) => Buffer.alloc(strideOf(id) * height * 1.5, Number(id % 251n))
const early_ = (id) => path.join(dir, "frame.data." + id + ".early")
if (early) fs.writeFileSync(early_(1n), dataOf(1n))
let sent = false
for (let id = 1n; ; id++) {
  const stride = strideOf(id)
  const data = dataOf(id)
  const meta = Buffer.alloc(64)
  const u32 = (v, at) => le ? meta.writeUInt32LE(v, at) : meta.writeUInt32BE(v, at)
  const u64 = (v, at) => le ? meta.writeBigUInt64LE(v, at) : meta.writeBigUInt64BE(v, at)
  u32(1, 0); u64(id, 8); u64(process.hrtime.bigint(), 16); u32(width, 24); u32(height, 28); u32(0, 32); u32(stride, 36)
  u64(BigInt(data.length), 40)
  if (checksum) u64((BigInt(marker) << 32n) | BigInt(crc32(data)), 48)
  if (early) {
    // this frame's data was written during the previous frame; the next one's is written before this meta
    fs.renameSync(early_(id), path.join(dir, "frame.data"))
    fs.writeFileSync(early_(id + 1n), dataOf(id + 1n))
  } else put(path.join(dir, "frame.data"), data)
  put(path.join(dir, "frame.meta"), meta)
  if (!sent) { parentPort.postMessage("running"); sent = true }
  if (pauseMs > 0) Atomics.wait(pause, 0, 0, pauseMs)
}
`
