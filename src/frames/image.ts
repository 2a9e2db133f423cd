/**
 * Image helpers around sharp: encoded image → NV12 (test fixtures, benchmarks), NV12 → RGB/JPEG
 * (snapshots), and JPEG snapshots annotated with detection boxes.
 */
import type SharpDefault from "sharp"
import { frameByteLength, type FrameView, nv12ChromaOffset } from "./Frame.js"
import { clamp01 } from "./transform.js"
import {
  type ColorMatrix,
  type ColorRange,
  lumaWeights,
  yuvToRgbCoefficients
} from "./color.js"

export interface Nv12Image {
  readonly data: Uint8Array
  readonly width: number
  readonly height: number
}

export interface ImageToNv12Options {
  /** Resize to this size; with only one of the two, the aspect ratio is kept. */
  readonly width?: number
  readonly height?: number
  readonly colorMatrix?: ColorMatrix
  readonly range?: ColorRange
}

const clampByte = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v))

/** Packed 8-bit RGB (width·3 bytes per row) → NV12, chroma averaged over each 2×2 block. */
export const rgbToNv12 = (
  rgb: Uint8Array,
  width: number,
  height: number,
  colorMatrix: ColorMatrix = "bt601",
  range: ColorRange = "full"
): Nv12Image => {
  if (width % 2 !== 0 || height % 2 !== 0) throw new RangeError(`rgbToNv12: ${width}x${height} is not even`)
  if (rgb.length < width * height * 3) throw new RangeError(`rgbToNv12: ${rgb.length} bytes for ${width}x${height} RGB`)
  const { kr, kb } = lumaWeights[colorMatrix]
  const kg = 1 - kr - kb
  const limited = range === "limited"
  const yScale = limited ? 219 / 255 : 1
  const yOffset = limited ? 16 : 0
  const cScale = limited ? 224 / 255 : 1
  const out = new Uint8Array(frameByteLength("NV12", width, height, width))
  const uvBase = nv12ChromaOffset(height, width)
  for (let y = 0; y < height; y += 2) {
    for (let x = 0; x < width; x += 2) {
      let uSum = 0
      let vSum = 0
      for (let dy = 0; dy < 2; dy++) {
        for (let dx = 0; dx < 2; dx++) {
          const i = ((y + dy) * width + x + dx) * 3
          const r = rgb[i]!
          const g = rgb[i + 1]!
          const b = rgb[i + 2]!
          const luma = kr * r + kg * g + kb * b
          out[(y + dy) * width + x + dx] = clampByte(yOffset + yScale * luma)
          uSum += (b - luma) / (2 * (1 - kb))
          vSum += (r - luma) / (2 * (1 - kr))
        }
      }
      const c = uvBase + (y / 2) * width + x
      out[c] = clampByte(128 + (cScale * uSum) / 4)
      out[c + 1] = clampByte(128 + (cScale * vSum) / 4)
    }
  }
  return { data: out, width, height }
}

let sharpModule: Promise<typeof SharpDefault> | undefined
/** sharp, loaded on first use: importing the package does not load its native module (a handler-only container never does). */
const loadSharp = (): Promise<typeof SharpDefault> => (sharpModule ??= import("sharp").then((m) => m.default))

/** Decodes an image (JPEG/PNG/WebP/SVG, path or bytes), optionally resizes, crops to even size, converts to NV12. */
export const imageToNv12 = async (input: string | Buffer, opts: ImageToNv12Options = {}): Promise<Nv12Image> => {
  const sharp = await loadSharp()
  let pipeline = sharp(input).rotate().removeAlpha()
  if (opts.width !== undefined || opts.height !== undefined) {
    const fit = opts.width !== undefined && opts.height !== undefined ? "fill" : "inside"
    pipeline = pipeline.resize({
      ...(opts.width !== undefined ? { width: opts.width } : {}),
      ...(opts.height !== undefined ? { height: opts.height } : {}),
      fit
    })
  }
  const { data, info } = await pipeline.toColourspace("srgb").raw().toBuffer({ resolveWithObject: true })
  const channels = info.channels
  // NV12 needs whole 2×2 chroma blocks, so drop a trailing odd row/column.
  const width = info.width - (info.width % 2)
  const height = info.height - (info.height % 2)
  if (width < 2 || height < 2) throw new RangeError(`imageToNv12: image ${info.width}x${info.height} is too small`)
  const rgb = new Uint8Array(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (y * info.width + x) * channels
      const d = (y * width + x) * 3
      rgb[d] = data[s]!
      rgb[d + 1] = data[s + (channels >= 3 ? 1 : 0)]!
      rgb[d + 2] = data[s + (channels >= 3 ? 2 : 0)]!
    }
  }
  return rgbToNv12(rgb, width, height, opts.colorMatrix ?? "bt601", opts.range ?? "full")
}

export interface Nv12ToRgbOptions {
  readonly colorMatrix?: ColorMatrix
  readonly range?: ColorRange
}

/** Full-resolution packed RGB (width·3 bytes per row) of a frame; NV12 chroma is nearest-upsampled. */
export const nv12ToRgb = (frame: FrameView, opts: Nv12ToRgbOptions = {}): Uint8Array => {
  const { data, width, height, stride, format } = frame
  if (data.length < frameByteLength(format, width, height, stride)) {
    throw new RangeError(`nv12ToRgb: ${data.length} bytes is too small for ${format} ${width}x${height} stride ${stride}`)
  }
  const out = new Uint8Array(width * height * 3)
  if (format !== "NV12") {
    const swap = format === "BGR24"
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const s = y * stride + x * 3
        const d = (y * width + x) * 3
        out[d] = data[s + (swap ? 2 : 0)]!
        out[d + 1] = data[s + 1]!
        out[d + 2] = data[s + (swap ? 0 : 2)]!
      }
    }
    return out
  }
  const c = yuvToRgbCoefficients(opts.colorMatrix ?? "bt601", opts.range ?? "full")
  const uvBase = nv12ChromaOffset(height, stride)
  for (let y = 0; y < height; y++) {
    const cRow = uvBase + (y >> 1) * stride
    for (let x = 0; x < width; x++) {
      const l = c.yScale * (data[y * stride + x]! - c.yOffset)
      const ci = cRow + ((x >> 1) << 1)
      const u = data[ci]! - 128
      const v = data[ci + 1]! - 128
      const d = (y * width + x) * 3
      out[d] = clampByte(l + c.rv * v)
      out[d + 1] = clampByte(l + c.gu * u + c.gv * v)
      out[d + 2] = clampByte(l + c.bu * u)
    }
  }
  return out
}

const rawRgb = async (frame: FrameView, opts: Nv12ToRgbOptions) =>
  (await loadSharp())(nv12ToRgb(frame, opts), { raw: { width: frame.width, height: frame.height, channels: 3 } })

/** JPEG snapshot of a frame. */
export const frameToJpeg = (frame: FrameView, quality = 85, opts: Nv12ToRgbOptions = {}): Promise<Buffer> =>
  rawRgb(frame, opts).then((image) => image.jpeg({ quality }).toBuffer())

export interface Detection {
  readonly class_name: string
  readonly confidence: number
  /** [x_min, y_min, x_max, y_max] normalised to the frame (0–1). */
  readonly bbox: readonly [number, number, number, number]
}

export const escapeXml = (text: string): string =>
  text.replace(/[&<>"']/g, (ch) =>
    ch === "&" ? "&amp;" : ch === "<" ? "&lt;" : ch === ">" ? "&gt;" : ch === '"' ? "&quot;" : "&apos;"
  )

const palette = ["#ff3838", "#2c99a8", "#ff9d97", "#1a9334", "#ffb21d", "#3de8ff", "#cfd231", "#8438ff", "#00c2ff", "#ff37c7"]

/** A stable colour per class name so the same class looks the same across snapshots. */
const colourFor = (name: string): string => {
  let h = 0
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0
  return palette[h % palette.length]!
}

/** The SVG overlay `annotateJpeg` composites: one rectangle and one label per detection. */
export const detectionsSvg = (width: number, height: number, detections: ReadonlyArray<Detection>): string => {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 300))
  const fontSize = Math.max(12, Math.round(Math.min(width, height) / 40))
  const parts = detections.map((det) => {
    const [a, b, c, d] = det.bbox
    const x0 = Math.round(clamp01(Math.min(a, c)) * width)
    const y0 = Math.round(clamp01(Math.min(b, d)) * height)
    const x1 = Math.round(clamp01(Math.max(a, c)) * width)
    const y1 = Math.round(clamp01(Math.max(b, d)) * height)
    const colour = colourFor(det.class_name)
    const label = escapeXml(`${det.class_name} ${det.confidence.toFixed(2)}`)
    const labelH = fontSize + 6
    // Put the label above the box, or inside it when the box touches the top edge.
    const labelY = y0 - labelH >= 0 ? y0 - labelH : y0
    const labelW = Math.round(label.length * fontSize * 0.6) + 8
    return [
      `<rect x="${x0}" y="${y0}" width="${Math.max(0, x1 - x0)}" height="${Math.max(0, y1 - y0)}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>`,
      `<rect x="${x0}" y="${labelY}" width="${labelW}" height="${labelH}" fill="${colour}"/>`,
      `<text x="${x0 + 4}" y="${labelY + fontSize}" font-family="DejaVu Sans, sans-serif" font-size="${fontSize}" fill="#ffffff">${label}</text>`
    ].join("")
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join("")}</svg>`
}

/** JPEG snapshot of a frame with detection boxes and `class_name confidence` labels drawn on it. */
export const annotateJpeg = (
  frame: FrameView,
  detections: ReadonlyArray<Detection>,
  quality = 85,
  opts: Nv12ToRgbOptions = {}
): Promise<Buffer> =>
  rawRgb(frame, opts).then((image) =>
    image
      .composite([{ input: Buffer.from(detectionsSvg(frame.width, frame.height, detections)), top: 0, left: 0 }])
      .jpeg({ quality })
      .toBuffer()
  )
