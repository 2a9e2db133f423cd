import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Result, Exit } from "effect"
import { decodeRequest, type InferenceRequest } from "../../src/contract/schema.js"
import { BufferPool } from "../../src/frames/BufferPool.js"
import { FrameReader } from "../../src/frames/FrameReader.js"
import { makePreprocessOptions, preprocess } from "../../src/frames/preprocess.js"
import { request, tempDir, writeFrameFile } from "../support/harness.js"
import { fifoWriter, openSpy } from "./openWitness.js"

const req = (ref: string, meta: Record<string, unknown> = {}): InferenceRequest =>
  Result.getOrThrow(decodeRequest(request(ref, { frame_metadata: { width: 64, height: 48, ...meta } })))

const openFds = () => fs.readdirSync("/proc/self/fd").length

/** Reads a frame with a reader confined to `roots`, returning the failure code or the frame. */
const read = (roots: ReadonlyArray<string>, r: InferenceRequest) =>
  FrameReader.make(roots).use(r, Effect.succeed).pipe(
    Effect.map((frame) => ({ ok: true as const, frame })),
    Effect.catch((e) => Effect.succeed({ ok: false as const, code: e.code, message: e.message }))
  )

describe("FrameReader (raw file layout)", () => {
  it.live("reads an NV12 frame of width*height*3/2 bytes from offset 0", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const p = path.join(dir, "frame")
      const bytes = Buffer.alloc(64 * 48 * 1.5 + 100) // trailing bytes are ignored
      for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251
      fs.writeFileSync(p, bytes)
      const r = yield* read([dir], req(p))
      expect(r.ok).toBe(true)
      if (r.ok) {
        expect(r.frame).toMatchObject({ width: 64, height: 48, stride: 64, format: "NV12" })
        expect(Buffer.from(r.frame.data).equals(bytes.subarray(0, 4608))).toBe(true)
      }
    }))

  it.live("honours stride, and RGB24/BGR24 sizes", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const p = path.join(dir, "padded")
      fs.writeFileSync(p, Buffer.alloc(80 * 72))
      expect((yield* read([dir], req(p, { stride: 80 }))).ok).toBe(true)
      expect(yield* read([dir], req(p, { stride: 96 }))).toMatchObject({ ok: false, code: "FRAME_INVALID" })
      expect(yield* read([dir], req(p, { stride: 32 }))).toMatchObject({ ok: false, code: "FRAME_INVALID", message: expect.stringContaining("stride 32") })
      const rgb = path.join(dir, "rgb")
      fs.writeFileSync(rgb, Buffer.alloc(64 * 48 * 3))
      expect((yield* read([dir], req(rgb, { format: "RGB24" }))).ok).toBe(true)
      expect(yield* read([dir], req(rgb, { format: "YUYV" }))).toMatchObject({ ok: false, code: "FRAME_INVALID", message: expect.stringContaining("'YUYV'") })
    }))

  it.live("an odd-width NV12 frame: stride = width cannot hold its chroma rows (FRAME_INVALID); the default stride can, and preprocesses", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const p = path.join(dir, "odd")
      // 63 pixels wide: 32 interleaved UV pairs, 64 bytes a chroma row.
      fs.writeFileSync(p, Buffer.alloc(64 * 32 + 64 * 16, 128))
      const odd = (meta: Record<string, unknown>) => req(p, { width: 63, height: 32, ...meta })
      expect(yield* read([dir], odd({ stride: 63 }))).toMatchObject({
        ok: false,
        code: "FRAME_INVALID",
        message: expect.stringContaining("stride 63 is smaller than a NV12 row of width 63 (64 bytes)")
      })
      for (const meta of [{}, { stride: 64 }]) {
        const r = yield* read([dir], odd(meta))
        expect(r.ok).toBe(true)
        if (r.ok) {
          expect(r.frame).toMatchObject({ width: 63, height: 32, stride: 64 })
          // What the reader accepts, preprocessing takes: the same rule (Frame.minStride).
          expect(Result.getOrThrow(preprocess(r.frame, makePreprocessOptions({ width: 32, height: 32 }))).tensor.length).toBe(3 * 32 * 32)
        }
      }
    }))

  it.live("FRAME_NOT_FOUND for a missing file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      expect(yield* read([dir], req(path.join(dir, "nope")))).toMatchObject({ ok: false, code: "FRAME_NOT_FOUND" })
    }))

  it.live("FRAME_INVALID for a file too small for the stated dimensions", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const small = writeFrameFile(dir, "small", 32, 32)
      expect(yield* read([dir], req(small))).toMatchObject({ ok: false, code: "FRAME_INVALID", message: expect.stringContaining("1536 bytes") })
    }))

  it.live("FRAME_ACCESS_DENIED outside the roots, via '..', via symlinks, and for relative paths", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const outside = yield* tempDir()
      const secret = writeFrameFile(outside, "secret", 64, 48)
      const inside = writeFrameFile(root, "ok", 64, 48)
      const denied = { ok: false, code: "FRAME_ACCESS_DENIED" }
      expect(yield* read([root], req(secret))).toMatchObject(denied)
      expect(yield* read([root], req(path.join(root, "..", path.basename(outside), "secret")))).toMatchObject(denied)
      fs.symlinkSync(secret, path.join(root, "link"))
      expect(yield* read([root], req(path.join(root, "link")))).toMatchObject(denied)
      fs.symlinkSync(outside, path.join(root, "dirlink"))
      expect(yield* read([root], req(path.join(root, "dirlink", "secret")))).toMatchObject(denied)
      expect(yield* read([root], req("ok"))).toMatchObject(denied)
      expect(yield* read([root], req(root))).toMatchObject(denied) // the root itself is not a frame
      // A symlink that stays inside the roots is fine.
      fs.symlinkSync(inside, path.join(root, "innerlink"))
      expect((yield* read([root], req(path.join(root, "innerlink")))).ok).toBe(true)
    }))

  it.live("never opens for writing and closes every handle, on success and on failure", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const ok = writeFrameFile(dir, "ok", 64, 48)
      const small = writeFrameFile(dir, "small", 8, 8)
      fs.chmodSync(ok, 0o444)
      const before = openFds()
      for (let i = 0; i < 200; i++) {
        yield* read([dir], req(ok))
        yield* read([dir], req(small))
        yield* read([dir], req(path.join(dir, "missing")))
      }
      expect(openFds()).toBe(before)
      const exit = yield* Effect.exit(FrameReader.make([dir]).use(req(ok), () => Effect.interrupt))
      expect(Exit.hasInterrupts(exit)).toBe(true)
      expect(openFds()).toBe(before)
    }))
})

describe("FrameReader (raw file layout) when frames vanish", () => {
  it.live("a deleted file is FRAME_NOT_FOUND, a truncated one FRAME_INVALID, a FIFO never blocks", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const p = writeFrameFile(dir, "frame", 64, 48)
      expect((yield* read([dir], req(p))).ok).toBe(true)
      fs.rmSync(p)
      expect(yield* read([dir], req(p))).toMatchObject({ ok: false, code: "FRAME_NOT_FOUND" })
      writeFrameFile(dir, "frame", 64, 48)
      fs.truncateSync(p, 1000)
      expect(yield* read([dir], req(p))).toMatchObject({ ok: false, code: "FRAME_INVALID", message: expect.stringContaining("file has 1000 bytes") })
      const fifo = path.join(dir, "fifo")
      execFileSync("mkfifo", [fifo])
      expect(yield* read([dir], req(fifo))).toMatchObject({ ok: false, code: "FRAME_INVALID", message: expect.stringContaining("not a regular file") })
    }))

  it.live("racing a writer that truncates, rewrites and deletes the file in place: clean errors, nothing leaked", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const width = 1280
      const height = 720
      const size = width * height * 1.5
      const p = writeFrameFile(dir, "frame", width, height)
      const pool = new BufferPool(64 << 20)
      const reader = FrameReader.make([dir], pool)
      const r = req(p, { width, height })
      const shrank = "FRAME_INVALID (shrank while reading)"
      const seen = new Map<string, number>()
      const before = openFds() // before the writer thread, which has descriptors of its own
      const race = Effect.gen(function*() {
        const writer = yield* Effect.acquireRelease(
          Effect.sync(() => new Worker(TRUNCATING_WRITER, { eval: true, workerData: { file: p, size } })),
          (w) => Effect.promise(() => w.terminate())
        )
        yield* Effect.promise(() => new Promise((resolve) => writer.once("message", resolve)))
        const started = Date.now()
        // At least a second, and until a read has seen the file shrink under it (give up after 10 s).
        while (Date.now() - started < 1_000 || (!seen.has(shrank) && Date.now() - started < 10_000)) {
          const outcome = yield* reader.use(r, (frame) => Effect.succeed(frame.data.length)).pipe(Effect.result)
          if (Result.isSuccess(outcome)) expect(outcome.success).toBe(size)
          const key = Result.isSuccess(outcome)
            ? "ok"
            : outcome.failure.message.includes("truncated while reading")
            ? shrank
            : outcome.failure.code
          seen.set(key, (seen.get(key) ?? 0) + 1)
        }
      })
      yield* Effect.scoped(race)
      expect([...seen.keys()].filter((k) => !["ok", "FRAME_NOT_FOUND", "FRAME_INVALID", shrank].includes(k))).toEqual([])
      expect(seen.get(shrank)).toBeGreaterThan(0)
      expect(openFds()).toBe(before)
      expect(pool.inUse).toBe(0)
    }))

  it.live("ignores frame_id: the raw layout records none", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      const p = writeFrameFile(dir, "frame", 64, 48)
      const r = yield* read([dir], req(p, { frame_id: 12345 }))
      expect(r.ok && r.frame.frameId === undefined).toBe(true)
    }))
})

/** Rewrites a frame file in place (never atomically): truncate, refill, sometimes delete and recreate. */
const TRUNCATING_WRITER = `
const fs = require("node:fs")
const { parentPort, workerData } = require("node:worker_threads")
const { file, size } = workerData
const full = Buffer.alloc(size, 7)
parentPort.postMessage("running")
for (let i = 0; ; i++) {
  if (i % 16 === 0) { try { fs.rmSync(file) } catch {} }
  const fd = fs.openSync(file, "w")
  fs.writeSync(fd, full, 0, size, 0)
  fs.ftruncateSync(fd, i % 3 === 0 ? 0 : size >> 1)
  fs.writeSync(fd, full, 0, size, 0)
  fs.closeSync(fd)
}
`

describe("FrameReader (raw file layout) checks a path before it opens it", () => {
  it.live("a link in the root to a FIFO, a file or a device outside it, or a FIFO inside: refused, never opened", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const outside = yield* tempDir()
      const fifo = path.join(outside, "fifo")
      execFileSync("mkfifo", [fifo])
      const writer = yield* fifoWriter(fifo)
      expect(writer.waiting()).toBe(true)
      fs.symlinkSync(fifo, path.join(root, "fifo-link"))
      fs.symlinkSync(writeFrameFile(outside, "secret", 64, 48), path.join(root, "secret-link"))
      fs.symlinkSync("/dev/zero", path.join(root, "zero-link"))
      execFileSync("mkfifo", [path.join(root, "fifo")])
      const spy = yield* openSpy
      const answers: Array<string> = []
      for (const name of ["fifo-link", "secret-link", "zero-link", "fifo"]) {
        const r = yield* read([root], req(path.join(root, name)))
        answers.push(r.ok ? `${name}: read` : `${name}: ${r.code}`)
      }
      expect(answers).toEqual([
        "fifo-link: FRAME_ACCESS_DENIED",
        "secret-link: FRAME_ACCESS_DENIED",
        "zero-link: FRAME_ACCESS_DENIED",
        "fifo: FRAME_INVALID"
      ])
      expect(spy.opened).toEqual([])
      // The writer on the outside FIFO still waits for a reader: none came. It was waiting for one indeed:
      expect(writer.waiting()).toBe(true)
      expect(yield* writer.released).toBe("0")
    }))

  it.live("a file swapped between the check and the open: a link to outside is refused unread, a replaced frame is read afresh", () =>
    Effect.gen(function*() {
      const root = yield* tempDir()
      const outside = yield* tempDir()
      const secret = writeFrameFile(outside, "secret", 64, 48, 9)
      const p = writeFrameFile(root, "frame", 64, 48, 1)
      const spy = yield* openSpy
      spy.beforeNextOpen = (opening) => {
        fs.rmSync(opening)
        fs.symlinkSync(secret, opening)
      }
      expect(yield* read([root], req(p))).toMatchObject({ ok: false, code: "FRAME_ACCESS_DENIED", message: expect.stringContaining("outside") })
      expect(spy.opened.filter((opened) => opened.startsWith(fs.realpathSync(outside)))).toEqual([])
      // The core replacing the frame (rename) between our check and open: the new frame, checked afresh.
      fs.rmSync(p)
      writeFrameFile(root, "frame", 64, 48, 1)
      spy.beforeNextOpen = (opening) => fs.renameSync(writeFrameFile(root, "next", 64, 48, 2), opening)
      const r = yield* read([root], req(p))
      expect(r.ok && r.frame.data.every((b) => b === 2)).toBe(true)
    }))
})

describe("FrameReader.layerMemory", () => {
  it.effect("serves frames by reference without shared memory", () =>
    Effect.gen(function*() {
      const reader = yield* FrameReader
      const frame = yield* reader.use(req("mem://cam1"), Effect.succeed)
      expect(frame.data.length).toBe(4608)
      const missing = yield* Effect.flip(reader.use(req("mem://cam2"), Effect.succeed))
      expect(missing.code).toBe("FRAME_NOT_FOUND")
      const wrongSize = yield* Effect.flip(reader.use(req("mem://cam1", { width: 32 }), Effect.succeed))
      expect(wrongSize.code).toBe("FRAME_INVALID")
    }).pipe(
      Effect.provide(
        FrameReader.layerMemory(new Map([["mem://cam1", { format: "NV12" as const, width: 64, height: 48, stride: 64, data: new Uint8Array(4608) }]]))
      )
    ))
})
