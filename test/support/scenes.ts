/**
 * Synthetic text scenes for text-detection tests and demos: SVG text (DejaVu Sans) rendered by
 * sharp onto light backgrounds, with each line's ground-truth box measured from its rendered ink.
 *
 * ```ts
 * const scenes = await sampleScenes()           // street-sign, notice-board, blank
 * const nv12 = await imageToNv12(scenes[0]!.png)
 * ```
 */
import sharp from "sharp"
import { escapeXml } from "../../src/frames/image.js"

/** `[x_min, y_min, x_max, y_max]`, normalised to the scene (0–1), top-left origin. */
export type Box = readonly [number, number, number, number]

export interface TextLineSpec {
  readonly text: string
  /** Left edge of the text and its baseline, in pixels. */
  readonly x: number
  readonly baseline: number
  /** Font size in pixels. */
  readonly size: number
  readonly bold?: boolean
  /** CSS colour of the ink; dark on light backgrounds. */
  readonly color?: string
}

export interface SceneSpec {
  readonly name: string
  readonly width?: number
  readonly height?: number
  readonly background: string
  /** Extra SVG drawn under the text (panels, borders, shapes that are not text). */
  readonly decor?: string
  readonly lines: ReadonlyArray<TextLineSpec>
}

export interface SceneLine {
  readonly text: string
  /** The bounding box of the line's ink, normalised. */
  readonly box: Box
  /** The same box in pixels, `[x0, y0, x1, y1)` (exclusive right/bottom). */
  readonly pixelBox: readonly [number, number, number, number]
}

export interface Scene {
  readonly name: string
  readonly width: number
  readonly height: number
  readonly png: Buffer
  readonly lines: ReadonlyArray<SceneLine>
}

export const SCENE_WIDTH = 1280
export const SCENE_HEIGHT = 720

const textElement = (line: TextLineSpec, color: string): string =>
  `<text x="${line.x}" y="${line.baseline}" font-family="DejaVu Sans" font-size="${line.size}"` +
  ` font-weight="${line.bold === true ? "bold" : "normal"}" fill="${color}">${escapeXml(line.text)}</text>`

const svg = (width: number, height: number, background: string, body: string): string =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
  `<rect width="${width}" height="${height}" fill="${background}"/>${body}</svg>`

/** The line drawn alone, black on white; its dark pixels are the ink. */
const measureInk = async (line: TextLineSpec, width: number, height: number): Promise<SceneLine> => {
  const { data, info } = await sharp(Buffer.from(svg(width, height, "#ffffff", textElement(line, "#000000"))))
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true })
  let x0 = info.width
  let y0 = info.height
  let x1 = -1
  let y1 = -1
  for (let y = 0; y < info.height; y++) {
    const row = y * info.width * info.channels
    for (let x = 0; x < info.width; x++) {
      if (data[row + x * info.channels]! < 128) {
        if (x < x0) x0 = x
        if (x > x1) x1 = x
        if (y < y0) y0 = y
        if (y > y1) y1 = y
      }
    }
  }
  if (x1 < 0) throw new Error(`scene line "${line.text}" rendered no ink (is DejaVu Sans installed?)`)
  const pixelBox = [x0, y0, x1 + 1, y1 + 1] as const
  return {
    text: line.text,
    pixelBox,
    box: [pixelBox[0] / width, pixelBox[1] / height, pixelBox[2] / width, pixelBox[3] / height]
  }
}

/** Renders a scene to PNG and measures every line's ink box. */
export const renderScene = async (spec: SceneSpec): Promise<Scene> => {
  const width = spec.width ?? SCENE_WIDTH
  const height = spec.height ?? SCENE_HEIGHT
  const body = (spec.decor ?? "") + spec.lines.map((l) => textElement(l, l.color ?? "#1a1a1a")).join("")
  const png = await sharp(Buffer.from(svg(width, height, spec.background, body))).png().toBuffer()
  const lines = await Promise.all(spec.lines.map((l) => measureInk(l, width, height)))
  return { name: spec.name, width, height, png, lines }
}

/** The sample scenes: text lines of 40–80 px, well apart, on light backgrounds; "blank" has none. */
export const sampleSceneSpecs: ReadonlyArray<SceneSpec> = [
  {
    name: "street-sign",
    background: "#dfe7ec",
    decor: `<rect x="240" y="120" width="800" height="420" rx="24" fill="#f7f7f2" stroke="#1f5f3a" stroke-width="10"/>`,
    lines: [
      { text: "MAIN STREET", x: 340, baseline: 250, size: 80, bold: true, color: "#1f5f3a" },
      { text: "Exit 12  Airport", x: 360, baseline: 380, size: 56, color: "#1f5f3a" },
      { text: "City Centre 3 km", x: 400, baseline: 480, size: 44, color: "#333333" }
    ]
  },
  {
    name: "notice-board",
    background: "#f4eedd",
    decor: `<rect x="80" y="60" width="1120" height="600" fill="#fbf8ef" stroke="#8a6d3b" stroke-width="6"/>`,
    lines: [
      { text: "NOTICE", x: 140, baseline: 160, size: 72, bold: true, color: "#7a1f1f" },
      { text: "The office is closed on Friday", x: 140, baseline: 300, size: 52 },
      { text: "Deliveries at the back door", x: 140, baseline: 430, size: 44 },
      { text: "Thank you", x: 140, baseline: 580, size: 40, color: "#2a3f6b" }
    ]
  },
  {
    name: "blank",
    background: "#eef1f4",
    // Plain panels only: PP-OCR reads a lone circle or rounded box at this scale as an "O" or "0".
    decor: `<rect x="200" y="160" width="380" height="260" fill="#d9dee5"/>` +
      `<rect x="720" y="300" width="420" height="300" fill="#e3e7d8"/>`,
    lines: []
  }
]

/** Renders the sample scenes (PNG bytes plus each line's text and ground-truth box). */
export const sampleScenes = (): Promise<ReadonlyArray<Scene>> => Promise.all(sampleSceneSpecs.map(renderScene))

/** Intersection over union of two `[x0, y0, x1, y1]` boxes. */
export const iou = (a: Box, b: Box): number => {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]))
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]))
  const inter = iw * ih
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
  return union > 0 ? inter / union : 0
}
