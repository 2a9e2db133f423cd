import { describe, expect, it } from "@effect/vitest"
import sharp from "sharp"
import {
  annotateJpeg,
  detectionsSvg,
  escapeXml,
  frameToJpeg,
  imageToNv12,
  nv12ToRgb,
  rgbToNv12
} from "../../src/frames/image.js"
import type { FrameView } from "../../src/frames/preprocess.js"

const smoothSvg = (w: number, h: number) => `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">
  <defs>
    <linearGradient id="a" x1="0" y1="0" x2="1" y2="0"><stop offset="0" stop-color="#c03018"/><stop offset="1" stop-color="#18a0c0"/></linearGradient>
    <linearGradient id="b" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#ffffff" stop-opacity="0"/><stop offset="1" stop-color="#203010" stop-opacity="0.9"/></linearGradient>
  </defs>
  <rect width="${w}" height="${h}" fill="url(#a)"/>
  <rect width="${w}" height="${h}" fill="url(#b)"/>
</svg>`

const view = (img: { data: Uint8Array; width: number; height: number }): FrameView => ({
  data: img.data,
  width: img.width,
  height: img.height,
  stride: img.width,
  format: "NV12"
})

const decodeRgb = async (input: Buffer) => {
  const { data, info } = await sharp(input).removeAlpha().raw().toBuffer({ resolveWithObject: true })
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels }
}

const diffStats = (a: Uint8Array, b: Uint8Array) => {
  let max = 0
  let sum = 0
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!)
    max = Math.max(max, d)
    sum += d
  }
  return { max, mean: sum / a.length }
}

describe("imageToNv12 / nv12ToRgb", () => {
  for (const [matrix, range] of [
    ["bt601", "full"],
    ["bt709", "limited"]
  ] as const) {
    it(`round-trips a smooth image closely (${matrix} ${range})`, async () => {
      const svg = Buffer.from(smoothSvg(320, 240))
      const original = await decodeRgb(svg)
      const nv12 = await imageToNv12(svg, { colorMatrix: matrix, range })
      expect([nv12.width, nv12.height]).toEqual([320, 240])
      expect(nv12.data.length).toBe((320 * 240 * 3) / 2)
      const back = nv12ToRgb(view(nv12), { colorMatrix: matrix, range })
      const { max, mean } = diffStats(back, original.data)
      expect(mean).toBeLessThan(1.5)
      expect(max).toBeLessThanOrEqual(6)
    })
  }

  it("the wrong matrix on the way back is visibly wrong (the option matters)", async () => {
    const svg = Buffer.from(smoothSvg(320, 240))
    const original = await decodeRgb(svg)
    const nv12 = await imageToNv12(svg, { colorMatrix: "bt709", range: "limited" })
    const wrong = nv12ToRgb(view(nv12))
    expect(diffStats(wrong, original.data).max).toBeGreaterThan(10)
  })

  it("resizes and forces an even size", async () => {
    const odd = await sharp({ create: { width: 101, height: 75, channels: 3, background: "#336699" } }).png().toBuffer()
    const a = await imageToNv12(odd)
    expect([a.width, a.height]).toEqual([100, 74])
    const b = await imageToNv12(odd, { width: 64, height: 48 })
    expect([b.width, b.height]).toEqual([64, 48])
    const c = await imageToNv12(odd, { width: 51 })
    expect(c.width).toBe(50)
    expect(c.height).toBe(38) // 51 × 75/101 = 37.9 → 38, already even
  })

  it("converts a flat colour with the contract's BT.601 full-range inverse", () => {
    const rgb = new Uint8Array(4 * 2 * 3)
    for (let i = 0; i < rgb.length; i += 3) rgb.set([200, 60, 30], i)
    const { data } = rgbToNv12(rgb, 4, 2)
    const y = 0.299 * 200 + 0.587 * 60 + 0.114 * 30
    expect(data[0]).toBe(Math.round(y))
    expect(data[8]).toBe(Math.round(128 + (30 - y) / 1.772))
    expect(data[9]).toBe(Math.round(128 + (200 - y) / 1.402))
  })

  it("nv12ToRgb handles a strided frame", () => {
    const rgb = new Uint8Array(6 * 4 * 3).map((_, i) => (i * 37) % 256)
    const nv12 = rgbToNv12(rgb, 6, 4)
    const stride = 10
    const data = new Uint8Array(stride * 6).fill(255)
    for (let r = 0; r < 6; r++) data.set(nv12.data.subarray(r * 6, r * 6 + 6), r * stride)
    const strided: FrameView = { data, width: 6, height: 4, stride, format: "NV12" }
    expect(Array.from(nv12ToRgb(strided))).toEqual(Array.from(nv12ToRgb(view(nv12))))
  })
})

describe("frameToJpeg / annotateJpeg", () => {
  const detections = [
    { class_name: "person", confidence: 0.91, bbox: [0.25, 0.25, 0.75, 0.75] as const },
    { class_name: `<car & "truck">`, confidence: 0.5, bbox: [0.05, 0.6, 0.2, 0.95] as const }
  ]

  it("frameToJpeg encodes a JPEG of the frame's size", async () => {
    const nv12 = await imageToNv12(Buffer.from(smoothSvg(320, 240)))
    const jpeg = await frameToJpeg(view(nv12), 90)
    expect(jpeg.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]))
    const meta = await sharp(jpeg).metadata()
    expect([meta.format, meta.width, meta.height]).toEqual(["jpeg", 320, 240])
  })

  it("draws boxes: pixels on the box edge change, pixels far from any box do not", async () => {
    const nv12 = await imageToNv12(Buffer.from(smoothSvg(320, 240)))
    const frame = view(nv12)
    const plain = await decodeRgb(await frameToJpeg(frame, 95))
    const annotatedJpeg = await annotateJpeg(frame, detections, 95)
    const meta = await sharp(annotatedJpeg).metadata()
    expect([meta.format, meta.width, meta.height]).toEqual(["jpeg", 320, 240])
    const annotated = await decodeRgb(annotatedJpeg)
    const pixelDiff = (x: number, y: number) => {
      const i = (y * 320 + x) * 3
      return Math.max(...[0, 1, 2].map((c) => Math.abs(annotated.data[i + c]! - plain.data[i + c]!)))
    }
    // Across the left edge of the "person" box (x = 80) and across its bottom edge (y = 180).
    const acrossX = (x: number, y: number) => Math.max(...[-2, -1, 0, 1, 2].map((d) => pixelDiff(x + d, y)))
    const acrossY = (x: number, y: number) => Math.max(...[-2, -1, 0, 1, 2].map((d) => pixelDiff(x, y + d)))
    expect(acrossX(80, 120)).toBeGreaterThan(24)
    expect(acrossY(160, 180)).toBeGreaterThan(24)
    // Inside the box, away from label and edges, and outside all boxes: unchanged up to JPEG noise.
    expect(pixelDiff(160, 120)).toBeLessThan(12)
    expect(pixelDiff(300, 20)).toBeLessThan(12)
  })

  it("escapes XML in labels", () => {
    expect(escapeXml(`<a & "b" 'c'>`)).toBe("&lt;a &amp; &quot;b&quot; &apos;c&apos;&gt;")
    const svg = detectionsSvg(320, 240, detections)
    expect(svg).toContain("&lt;car &amp; &quot;truck&quot;&gt; 0.50")
    expect(svg).toContain("person 0.91")
    expect(svg).not.toContain("<car")
  })
})
