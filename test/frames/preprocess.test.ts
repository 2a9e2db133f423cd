import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import { imageToNv12, nv12ToRgb } from "../../src/frames/image.js"
import {
  type ColorMatrix,
  type ColorRange,
  type FrameView,
  makePreprocessOptions,
  preprocess as preprocessResult,
  PreprocessError,
  type PreprocessOptions,
  tensorByteLength,
  tensorLength
} from "../../src/frames/preprocess.js"
import { toNormalizedBox } from "../../src/frames/transform.js"
import { prng, randomNv12 } from "../support/nv12.js"

/** The tensor of input that fits (every test but the one on input that does not fit). */
const preprocess = (...args: Parameters<typeof preprocessResult>) => Result.getOrThrow(preprocessResult(...args))

// ---------------------------------------------------------------------------------------------
// Float64 reference: convert every frame pixel to RGB (clamped, as an RGB image), then bilinear
// resize with half-pixel centres, then pad / scale / mean / std / layout. Written independently of
// the implementation (explicit published coefficients, coordinate clamping instead of tap tables).

const published: Record<ColorMatrix, { rv: number; gu: number; gv: number; bu: number }> = {
  bt601: { rv: 1.402, gu: -0.344136, gv: -0.714136, bu: 1.772 },
  bt709: { rv: 1.5748, gu: -0.187324, gv: -0.468124, bu: 1.8556 }
}

const referenceRgb = (frame: FrameView, matrix: ColorMatrix, range: ColorRange): Float64Array => {
  const { data, width, height, stride } = frame
  const rgb = new Float64Array(width * height * 3)
  const clamp = (v: number) => Math.min(255, Math.max(0, v))
  const k = published[matrix]
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3
      if (frame.format !== "NV12") {
        const s = y * stride + x * 3
        const swap = frame.format === "BGR24"
        rgb[o] = data[s + (swap ? 2 : 0)]!
        rgb[o + 1] = data[s + 1]!
        rgb[o + 2] = data[s + (swap ? 0 : 2)]!
        continue
      }
      const c = stride * height + Math.floor(y / 2) * stride + Math.floor(x / 2) * 2
      let Y = data[y * stride + x]!
      let U = data[c]! - 128
      let V = data[c + 1]! - 128
      if (range === "limited") {
        Y = ((Y - 16) * 255) / 219
        U = (U * 255) / 224
        V = (V * 255) / 224
      }
      rgb[o] = clamp(Y + k.rv * V)
      rgb[o + 1] = clamp(Y + k.gu * U + k.gv * V)
      rgb[o + 2] = clamp(Y + k.bu * U)
    }
  }
  return rgb
}

/** cv2.resize(INTER_LINEAR) semantics: sample at (d + 0.5)·src/dst − 0.5, clamped to the image. */
const referenceResize = (rgb: Float64Array, w: number, h: number, dw: number, dh: number): Float64Array => {
  const out = new Float64Array(dw * dh * 3)
  const coord = (d: number, src: number, dst: number) => Math.min(src - 1, Math.max(0, ((d + 0.5) * src) / dst - 0.5))
  for (let dy = 0; dy < dh; dy++) {
    const fy = coord(dy, h, dh)
    const y0 = Math.floor(fy)
    const y1 = Math.min(h - 1, y0 + 1)
    const ty = fy - y0
    for (let dx = 0; dx < dw; dx++) {
      const fx = coord(dx, w, dw)
      const x0 = Math.floor(fx)
      const x1 = Math.min(w - 1, x0 + 1)
      const tx = fx - x0
      for (let c = 0; c < 3; c++) {
        const at = (x: number, y: number) => rgb[(y * w + x) * 3 + c]!
        const top = at(x0, y0) * (1 - tx) + at(x1, y0) * tx
        const bottom = at(x0, y1) * (1 - tx) + at(x1, y1) * tx
        out[(dy * dw + dx) * 3 + c] = top * (1 - ty) + bottom * ty
      }
    }
  }
  return out
}

interface Content {
  readonly w: number
  readonly h: number
  readonly x: number
  readonly y: number
}

const referenceContent = (frame: FrameView, o: PreprocessOptions): Content => {
  if (o.resize === "stretch") return { w: o.width, h: o.height, x: 0, y: 0 }
  const s = Math.min(o.width / frame.width, o.height / frame.height)
  const w = Math.round(frame.width * s)
  const h = Math.round(frame.height * s)
  return { w, h, x: Math.floor((o.width - w) / 2), y: Math.floor((o.height - h) / 2) }
}

/** The reference tensor, in pixel levels (0–255 scale) per output element, NCHW or NHWC as asked. */
const referenceLevels = (frame: FrameView, o: PreprocessOptions): Float64Array => {
  const content = referenceContent(frame, o)
  const rgb = referenceRgb(frame, o.colorMatrix, o.range)
  const resized = referenceResize(rgb, frame.width, frame.height, content.w, content.h)
  const out = new Float64Array(3 * o.width * o.height)
  for (let y = 0; y < o.height; y++) {
    for (let x = 0; x < o.width; x++) {
      const cx = x - content.x
      const cy = y - content.y
      const inside = cx >= 0 && cy >= 0 && cx < content.w && cy < content.h
      for (let oc = 0; oc < 3; oc++) {
        const rgbChannel = o.channelOrder === "rgb" ? oc : 2 - oc
        const v = inside ? resized[(cy * content.w + cx) * 3 + rgbChannel]! : o.padValue
        const index = o.layout === "nchw" ? oc * o.width * o.height + y * o.width + x : (y * o.width + x) * 3 + oc
        out[index] = o.dtype === "uint8" ? Math.round(v) : v
      }
    }
  }
  return out
}

/** Per output channel: max and mean |ours − reference| in pixel levels. */
const compare = (frame: FrameView, o: PreprocessOptions) => {
  const ours = preprocess(frame, o)
  const ref = referenceLevels(frame, o)
  expect(ours.tensor.length).toBe(ref.length)
  const stats = [0, 1, 2].map(() => ({ max: 0, sum: 0, n: 0 }))
  for (let i = 0; i < ref.length; i++) {
    const oc = o.layout === "nchw" ? Math.floor(i / (o.width * o.height)) : i % 3
    const raw = ours.tensor[i]!
    const level = o.dtype === "uint8" ? raw : ((raw * o.std[oc]! + o.mean[oc]!) / o.scale)
    const err = Math.abs(level - ref[i]!)
    const s = stats[oc]!
    s.max = Number.isNaN(err) ? Infinity : Math.max(s.max, err)
    s.sum += err
    s.n++
  }
  return { result: ours, channels: stats.map((s) => ({ max: s.max, mean: s.sum / s.n })) }
}

const expectClose = (frame: FrameView, o: PreprocessOptions) => {
  const { channels, result } = compare(frame, o)
  for (const c of channels) {
    expect(c.max).toBeLessThanOrEqual(2)
    expect(c.mean).toBeLessThanOrEqual(0.5)
  }
  return result
}

// ---------------------------------------------------------------------------------------------
// Frames

const sceneSvg = (w: number, h: number) => `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">
  <defs>
    <linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#2850a0"/><stop offset="1" stop-color="#f0e8d0"/></linearGradient>
    <radialGradient id="sun"><stop offset="0" stop-color="#ffee88"/><stop offset="1" stop-color="#ff6600"/></radialGradient>
  </defs>
  <rect width="${w}" height="${h}" fill="url(#sky)"/>
  <rect y="${h * 0.6}" width="${w}" height="${h * 0.4}" fill="#3a5a28"/>
  <circle cx="${w * 0.8}" cy="${h * 0.2}" r="${h * 0.12}" fill="url(#sun)"/>
  <rect x="${w * 0.1}" y="${h * 0.45}" width="${w * 0.25}" height="${h * 0.3}" fill="#d01010"/>
  <rect x="${w * 0.22}" y="${h * 0.5}" width="${w * 0.2}" height="${h * 0.2}" fill="#1020e0"/>
  <circle cx="${w * 0.6}" cy="${h * 0.7}" r="${h * 0.1}" fill="#10d040" stroke="#ff00ff" stroke-width="5"/>
  <text x="${w * 0.05}" y="${h * 0.15}" font-family="DejaVu Sans" font-size="${h / 10}" fill="#ffffff">Gate 7 · 12:04</text>
</svg>`

const naturalNv12 = async (w: number, h: number, matrix: ColorMatrix = "bt601", range: ColorRange = "full") => {
  const img = await imageToNv12(Buffer.from(sceneSvg(w, h)), { colorMatrix: matrix, range })
  const frame: FrameView = { data: img.data, width: img.width, height: img.height, stride: img.width, format: "NV12" }
  return frame
}

/** The same frame with `extra` bytes of noise at the end of every row. */
const withStride = (frame: FrameView, extra: number, seed = 7): FrameView => {
  const rowBytes = frame.format === "NV12" ? frame.width + (frame.width & 1) : frame.width * 3
  const stride = rowBytes + extra
  const rows = frame.format === "NV12" ? frame.height + Math.ceil(frame.height / 2) : frame.height
  const next = prng(seed)
  const data = new Uint8Array(rows * stride)
  for (let i = 0; i < data.length; i++) data[i] = next()
  for (let r = 0; r < rows; r++) data.set(frame.data.subarray(r * frame.stride, r * frame.stride + rowBytes), r * stride)
  return { ...frame, data, stride }
}

const packed = (frame: FrameView, format: "RGB24" | "BGR24"): FrameView => {
  const rgb = nv12ToRgb(frame)
  if (format === "BGR24") {
    for (let i = 0; i < rgb.length; i += 3) {
      const r = rgb[i]!
      rgb[i] = rgb[i + 2]!
      rgb[i + 2] = r
    }
  }
  return { data: rgb, width: frame.width, height: frame.height, stride: frame.width * 3, format }
}

// ---------------------------------------------------------------------------------------------

describe("preprocess", () => {
  it("applies the contract's full-range BT.601 formula to a flat frame", () => {
    const w = 8
    const h = 6
    const frame = randomNv12(w, h, 1)
    frame.data.fill(100, 0, w * h)
    for (let i = w * h; i < frame.data.length; i += 2) {
      frame.data[i] = 90
      frame.data[i + 1] = 200
    }
    const { tensor, dims } = preprocess(frame, makePreprocessOptions({ width: 4, height: 3 }))
    expect(dims).toEqual([1, 3, 3, 4])
    const expected = [100 + 1.402 * 72, 100 - 0.344136 * -38 - 0.714136 * 72, 100 + 1.772 * -38]
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 12; i++) expect(tensor[c * 12 + i]).toBeCloseTo(expected[c]! / 255, 5)
    }
  })

  describe("matches the float64 reference on natural frames", () => {
    it("1920x1080 → 640x640 letterbox (exact 3:1)", async () => {
      expectClose(await naturalNv12(1920, 1080), makePreprocessOptions({}))
    })
    it("1280x720 → 640x640 letterbox (exact 2:1)", async () => {
      expectClose(await naturalNv12(1280, 720), makePreprocessOptions({}))
    })
    it("1000x600 → 416x416 letterbox (fractional ratio)", async () => {
      expectClose(await naturalNv12(1000, 600), makePreprocessOptions({ width: 416, height: 416 }))
    })
    it("640x480 → 333x217 stretch (odd target)", async () => {
      expectClose(await naturalNv12(640, 480), makePreprocessOptions({ width: 333, height: 217, resize: "stretch" }))
    })
    it("320x240 → 640x640 letterbox (upscale)", async () => {
      expectClose(await naturalNv12(320, 240), makePreprocessOptions({}))
    })
    for (const matrix of ["bt601", "bt709"] as const) {
      for (const range of ["full", "limited"] as const) {
        it(`${matrix} ${range} range`, async () => {
          const frame = await naturalNv12(800, 450, matrix, range)
          expectClose(frame, makePreprocessOptions({ width: 320, height: 320, colorMatrix: matrix, range }))
        })
      }
    }
  })

  describe("matches the float64 reference on random (mostly out-of-gamut) frames", () => {
    const cases: ReadonlyArray<[string, Partial<PreprocessOptions>, number, number]> = [
      ["point-sampled 3:1", { width: 64, height: 64 }, 192, 108],
      ["2:1", { width: 64, height: 64 }, 128, 72],
      ["fractional", { width: 77, height: 51 }, 150, 97],
      ["upscale stretch", { width: 90, height: 70, resize: "stretch" }, 31, 23],
      ["bt709 limited, bgr, nhwc", { width: 60, height: 60, colorMatrix: "bt709", range: "limited", channelOrder: "bgr", layout: "nhwc" }, 101, 77],
      ["bt601 limited", { width: 50, height: 40, range: "limited" }, 120, 100],
      ["bt709 full", { width: 50, height: 40, colorMatrix: "bt709" }, 120, 100]
    ]
    for (const [name, partial, w, h] of cases) {
      it(name, () => {
        expectClose(randomNv12(w, h, w * 31 + h), makePreprocessOptions(partial))
      })
    }
  })

  it("bgr channel order swaps the R and B planes", async () => {
    const frame = await naturalNv12(640, 360)
    const rgb = expectClose(frame, makePreprocessOptions({ width: 160, height: 160 }))
    const bgr = expectClose(frame, makePreprocessOptions({ width: 160, height: 160, channelOrder: "bgr" }))
    const plane = 160 * 160
    expect(Array.from(bgr.tensor.subarray(0, plane))).toEqual(Array.from(rgb.tensor.subarray(2 * plane)))
    expect(Array.from(bgr.tensor.subarray(2 * plane))).toEqual(Array.from(rgb.tensor.subarray(0, plane)))
    // The scene has large red and blue areas, so this is not vacuous.
    expect(Array.from(rgb.tensor.subarray(0, plane))).not.toEqual(Array.from(rgb.tensor.subarray(2 * plane)))
  })

  it("nhwc layout holds the same values as nchw, interleaved", async () => {
    const frame = await naturalNv12(640, 360)
    const nchw = expectClose(frame, makePreprocessOptions({ width: 96, height: 96 }))
    const nhwc = expectClose(frame, makePreprocessOptions({ width: 96, height: 96, layout: "nhwc" }))
    expect(nhwc.dims).toEqual([1, 96, 96, 3])
    const plane = 96 * 96
    for (let i = 0; i < plane; i += 37) {
      for (let c = 0; c < 3; c++) expect(nhwc.tensor[i * 3 + c]).toBe(nchw.tensor[c * plane + i])
    }
  })

  it("uint8 output is rounded, clamped 0–255 and ignores scale/mean/std", async () => {
    const frame = await naturalNv12(640, 360)
    const o = makePreprocessOptions({ width: 200, height: 150, dtype: "uint8", scale: 3, mean: [9, 9, 9], std: [2, 2, 2] })
    const { tensor } = expectClose(frame, o)
    expect(tensor).toBeInstanceOf(Uint8Array)
    expect(tensorByteLength(o)).toBe(3 * 200 * 150)
    expectClose(randomNv12(99, 61, 5), makePreprocessOptions({ width: 40, height: 40, dtype: "uint8", layout: "nhwc" }))
  })

  it("applies scale, mean and std per output channel", async () => {
    const frame = await naturalNv12(640, 360)
    expectClose(
      frame,
      makePreprocessOptions({
        width: 128,
        height: 128,
        channelOrder: "bgr",
        mean: [0.406, 0.456, 0.485],
        std: [0.225, 0.224, 0.229],
        padValue: 0
      })
    )
  })

  it("honours stride > width and ignores the padding bytes", async () => {
    const frame = await naturalNv12(300, 200)
    const strided = withStride(frame, 52)
    const o = makePreprocessOptions({ width: 128, height: 96 })
    expectClose(strided, o)
    expect(Array.from(preprocess(strided, o).tensor)).toEqual(Array.from(preprocess(frame, o).tensor))
    expectClose(withStride(randomNv12(37, 21, 3), 11), makePreprocessOptions({ width: 30, height: 30 }))
  })

  it("accepts RGB24 and BGR24 frames (also strided)", async () => {
    const nv12 = await naturalNv12(480, 270)
    const o = makePreprocessOptions({ width: 200, height: 200 })
    const fromRgb = expectClose(packed(nv12, "RGB24"), o)
    const fromBgr = expectClose(withStride(packed(nv12, "BGR24"), 5), o)
    expect(Array.from(fromBgr.tensor)).toEqual(Array.from(fromRgb.tensor))
    // Same picture as the NV12 path, up to the RGB image's 8-bit rounding.
    const fromNv12 = preprocess(nv12, o).tensor
    let maxDiff = 0
    for (let i = 0; i < fromNv12.length; i++) maxDiff = Math.max(maxDiff, Math.abs(fromNv12[i]! - fromRgb.tensor[i]!))
    expect(maxDiff * 255).toBeLessThanOrEqual(0.51)
  })

  it("matches the reference for arbitrary small geometries and options", () => {
    const matrix = fc.constantFrom<ColorMatrix>("bt601", "bt709")
    const range = fc.constantFrom<ColorRange>("full", "limited")
    fc.assert(
      fc.property(
        fc.record({
          w: fc.integer({ min: 1, max: 40 }),
          h: fc.integer({ min: 1, max: 40 }),
          extra: fc.integer({ min: 0, max: 9 }),
          seed: fc.integer({ min: 0, max: 1e6 }),
          format: fc.constantFrom<"NV12" | "RGB24" | "BGR24">("NV12", "RGB24", "BGR24"),
          tw: fc.integer({ min: 1, max: 48 }),
          th: fc.integer({ min: 1, max: 48 }),
          resize: fc.constantFrom<"letterbox" | "stretch">("letterbox", "stretch"),
          colorMatrix: matrix,
          range,
          channelOrder: fc.constantFrom<"rgb" | "bgr">("rgb", "bgr"),
          layout: fc.constantFrom<"nchw" | "nhwc">("nchw", "nhwc"),
          dtype: fc.constantFrom<"float32" | "uint8">("float32", "uint8"),
          padValue: fc.integer({ min: 0, max: 255 })
        }),
        (p) => {
          const base = randomNv12(p.w, p.h, p.seed)
          const frame = withStride(p.format === "NV12" ? base : packed(base, p.format), p.extra, p.seed + 1)
          const o = makePreprocessOptions({
            width: p.tw,
            height: p.th,
            resize: p.resize,
            colorMatrix: p.colorMatrix,
            range: p.range,
            channelOrder: p.channelOrder,
            layout: p.layout,
            dtype: p.dtype,
            padValue: p.padValue
          })
          expectClose(frame, o)
        }
      ),
      { numRuns: 150, seed: 20240501 }
    )
  })

  describe("transform", () => {
    it("maps the letterboxed content corners back to (0,0) and (1,1)", async () => {
      const frame = await naturalNv12(1280, 720)
      const { transform: t } = preprocess(frame, makePreprocessOptions({}))
      expect(t.padX).toBe(0)
      expect(t.padY).toBe(140)
      const contentW = t.scaleX * t.frameWidth
      const contentH = t.scaleY * t.frameHeight
      expect(toNormalizedBox(t, t.padX, t.padY, t.padX + contentW, t.padY + contentH)).toEqual([0, 0, 1, 1])
      const stretch = preprocess(frame, makePreprocessOptions({ width: 333, height: 217, resize: "stretch" })).transform
      expect(toNormalizedBox(stretch, 0, 0, 333, 217)).toEqual([0, 0, 1, 1])
    })

    it("a bright square in the frame maps back to where it was", () => {
      const w = 400
      const h = 300
      const frame = randomNv12(w, h, 11)
      frame.data.fill(30, 0, w * h)
      frame.data.fill(128, w * h)
      const [sx0, sy0, sx1, sy1] = [100, 60, 220, 150]
      for (let y = sy0; y < sy1; y++) frame.data.fill(230, y * w + sx0, y * w + sx1)
      const o = makePreprocessOptions({ width: 256, height: 256, padValue: 0 })
      const { tensor, transform } = preprocess(frame, o)
      let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity]
      for (let y = 0; y < 256; y++) {
        for (let x = 0; x < 256; x++) {
          if (tensor[y * 256 + x]! > 0.5) {
            x0 = Math.min(x0, x)
            y0 = Math.min(y0, y)
            x1 = Math.max(x1, x + 1)
            y1 = Math.max(y1, y + 1)
          }
        }
      }
      const box = toNormalizedBox(transform, x0, y0, x1, y1)
      const expected = [sx0 / w, sy0 / h, sx1 / w, sy1 / h]
      const pixel = 1 / (256 * Math.min(1, 300 / 400))
      for (let i = 0; i < 4; i++) expect(Math.abs(box[i]! - expected[i]!)).toBeLessThanOrEqual(pixel)
    })
  })

  describe("output buffer", () => {
    it("writes into a given buffer, overwriting whatever was there", async () => {
      const frame = await naturalNv12(640, 360)
      const o = makePreprocessOptions({ width: 128, height: 128 })
      const fresh = preprocess(frame, o).tensor
      const out = new Float32Array(tensorLength(o) + 10).fill(Number.NaN)
      const reused = preprocess(frame, o, out)
      expect(reused.tensor.buffer).toBe(out.buffer)
      expect(reused.tensor.length).toBe(tensorLength(o))
      expect(Array.from(reused.tensor)).toEqual(Array.from(fresh))
    })

    it("answers buffers, frames and sizes that do not fit with a PreprocessError saying why, without throwing", () => {
      const o = makePreprocessOptions({ width: 64, height: 64 })
      const frame = randomNv12(32, 32, 1)
      const failure = (result: ReturnType<typeof preprocessResult>) => {
        if (Result.isSuccess(result)) throw new Error("expected a PreprocessError, got a tensor")
        expect(result.failure).toBeInstanceOf(PreprocessError)
        return { input: result.failure.input, message: result.failure.message }
      }
      expect(failure(preprocessResult(frame, o, new Float32Array(tensorLength(o) - 1)))).toEqual({
        input: "output",
        message: "preprocess: output buffer holds 12287 elements, needs 12288"
      })
      expect(failure(preprocessResult(frame, o, new Uint8Array(tensorLength(o))))).toEqual({
        input: "output",
        message: "preprocess: output buffer must be a Float32Array"
      })
      expect(failure(preprocessResult({ ...frame, data: frame.data.subarray(0, 32 * 40) }, o))).toEqual({
        input: "frame",
        message: "preprocess: NV12 32x32 stride 32 needs 1536 bytes, got 1280"
      })
      expect(failure(preprocessResult({ ...frame, stride: 31 }, o))).toEqual({
        input: "frame",
        message: "preprocess: stride 31 is too small for a NV12 frame 32 pixels wide"
      })
      expect(failure(preprocessResult({ ...frame, width: 0 }, o))).toEqual({
        input: "frame",
        message: "preprocess: invalid frame size 0x32"
      })
      expect(failure(preprocessResult(frame, makePreprocessOptions({ width: 0, height: 64 })))).toEqual({
        input: "options",
        message: "preprocess: invalid model input size 0x64"
      })
    })
  })
})
