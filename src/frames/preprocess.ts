/**
 * Frame → model-tensor preprocessing: colour conversion, bilinear resize (letterbox or stretch),
 * scale/mean/std normalisation and NCHW/NHWC layout in one pass over the output pixels.
 *
 * NV12 strategy: colour conversion is affine, so instead of converting the whole frame to RGB and
 * then resizing, we bilinearly sample Y/U/V at the output pixels only and convert there. That is
 * exact as long as none of the four source taps is out of the RGB gamut (a per-chroma lookup table
 * tells us); otherwise that output pixel is converted tap by tap with clamping, which is what
 * "convert to an RGB image, then resize" (e.g. OpenCV cvtColor + resize) computes.
 * Chroma is upsampled by nearest neighbour before interpolation, as OpenCV's cvtColor does.
 */
import { Data, Result } from "effect"
import { type ChannelAffine, type ColorMatrix, type ColorRange, type YuvToRgb, yuvToRgbCoefficients } from "./color.js"
import { frameByteLength, type FrameView, minStride, nv12ChromaOffset } from "./Frame.js"
import { blendSimd, pointSimd, type SimdJob } from "./simd/nv12Simd.js"
import { type FrameTransform, letterboxTransform, stretchTransform } from "./transform.js"

export type { FrameView, PixelFormat } from "./Frame.js"

export { type ChannelAffine, type ColorMatrix, type ColorRange, lumaWeights, type YuvToRgb, yuvToRgbCoefficients } from "./color.js"

export interface PreprocessOptions {
  /** Model input size in pixels. */
  readonly width: number
  readonly height: number
  readonly resize: "letterbox" | "stretch"
  /** 0–255 pixel value of the letterbox padding. */
  readonly padValue: number
  readonly colorMatrix: ColorMatrix
  readonly range: ColorRange
  readonly channelOrder: "rgb" | "bgr"
  /** Multiplies the 0–255 pixel value. */
  readonly scale: number
  /** Subtracted after scaling, in output channel order. */
  readonly mean: readonly [number, number, number]
  /** Divides after the mean, in output channel order. */
  readonly std: readonly [number, number, number]
  readonly layout: "nchw" | "nhwc"
  /** `uint8` = clamped, rounded 0–255 values; ignores scale/mean/std. */
  readonly dtype: "float32" | "uint8"
}

export const defaultPreprocessOptions: PreprocessOptions = {
  width: 640,
  height: 640,
  resize: "letterbox",
  padValue: 114,
  colorMatrix: "bt601",
  range: "full",
  channelOrder: "rgb",
  scale: 1 / 255,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  layout: "nchw",
  dtype: "float32"
}

export const makePreprocessOptions = (partial: Partial<PreprocessOptions>): PreprocessOptions => ({
  ...defaultPreprocessOptions,
  ...partial
})

export interface Preprocessed {
  readonly tensor: Float32Array | Uint8Array
  readonly dims: readonly [1, 3, number, number] | readonly [1, number, number, 3]
  readonly transform: FrameTransform
}

/** Number of elements of the tensor `preprocess` produces for these options. */
export const tensorLength = (options: PreprocessOptions): number => 3 * options.width * options.height

/** Bytes of the tensor `preprocess` produces for these options. */
export const tensorByteLength = (options: PreprocessOptions): number =>
  tensorLength(options) * (options.dtype === "float32" ? 4 : 1)

export const tensorDims = (
  options: PreprocessOptions
): readonly [1, 3, number, number] | readonly [1, number, number, 3] =>
  options.layout === "nchw" ? [1, 3, options.height, options.width] : [1, options.height, options.width, 3]

// ---------------------------------------------------------------------------------------------
// Cached per-geometry sampling tables

interface AxisTaps {
  readonly i0: Int32Array
  readonly i1: Int32Array
  readonly w: Float64Array
}

/** Half-pixel-centre bilinear taps with edge clamping, as cv2.resize(INTER_LINEAR). */
const axisTaps = (src: number, dst: number): AxisTaps => {
  const i0 = new Int32Array(dst)
  const i1 = new Int32Array(dst)
  const w = new Float64Array(dst)
  const ratio = src / dst
  for (let d = 0; d < dst; d++) {
    const f = (d + 0.5) * ratio - 0.5
    let s = Math.floor(f)
    let frac = f - s
    if (s < 0) {
      s = 0
      frac = 0
    }
    if (s >= src - 1) {
      s = src - 1
      frac = 0
    }
    i0[d] = s
    i1[d] = Math.min(s + 1, src - 1)
    w[d] = frac
  }
  return { i0, i1, w }
}

interface Geometry {
  readonly transform: FrameTransform
  readonly contentW: number
  readonly contentH: number
  readonly padX: number
  readonly padY: number
  /** Byte offsets within a row of the left/right tap (Y plane, or packed RGB). */
  readonly colA: Int32Array
  readonly colB: Int32Array
  /** NV12: byte offsets within a UV row of the left/right tap's chroma pair. */
  readonly colCA: Int32Array
  readonly colCB: Int32Array
  readonly colW: Float64Array
  /** Byte offsets of the top/bottom tap's row. */
  readonly rowA: Int32Array
  readonly rowB: Int32Array
  /** NV12: byte offsets of the top/bottom tap's UV row. */
  readonly rowCA: Int32Array
  readonly rowCB: Int32Array
  readonly rowW: Float64Array
  /**
   * NV12, every luma tap weight 0 (the resize picks whole source pixels: 1920→640 is exactly 3:1),
   * and source columns at colA[0] + pointStep·x: the point kernel's case. 0 otherwise.
   */
  readonly pointStep: number
  /** Both taps of every output pixel share one chroma sample (e.g. 2:1, or whole source pixels). */
  readonly chromaPoint: boolean
  /**
   * NV12, not pointStep, the second taps one column right and one row down of the first, the same
   * weights for every column and every row, and first-tap columns at colA[0] + blendStep·x (e.g.
   * 1280→640 is exactly 2:1, 2560→640 4:1): the SIMD blend kernels' case (`blend`, or `blendw`
   * for steps over 4, when chromaPoint; else `blendc`). 0 otherwise.
   */
  readonly blendStep: number
}

/** True when no output position blends two different chroma samples along this axis. */
const chromaPointAxis = (taps: AxisTaps): boolean =>
  taps.w.every((w, i) => w === 0 || taps.i0[i]! >> 1 === taps.i1[i]! >> 1)

/** The step of the increasing arithmetic progression `cols` (1 for a single term), or 0 when it is not one. */
const arithmeticStep = (cols: Int32Array): number => {
  if (cols.length < 2) return 1
  const step = cols[1]! - cols[0]!
  if (step <= 0) return 0
  for (let i = 2; i < cols.length; i++) if (cols[i]! - cols[i - 1]! !== step) return 0
  return step
}

const buildGeometry = (frame: FrameView, options: PreprocessOptions): Geometry => {
  const transform =
    options.resize === "stretch"
      ? stretchTransform(frame.width, frame.height, options.width, options.height)
      : letterboxTransform(frame.width, frame.height, options.width, options.height)
  const contentW = Math.min(options.width, Math.round(transform.scaleX * frame.width))
  const contentH = Math.min(options.height, Math.round(transform.scaleY * frame.height))
  const xs = axisTaps(frame.width, contentW)
  const ys = axisTaps(frame.height, contentH)
  const nv12 = frame.format === "NV12"
  const bpp = nv12 ? 1 : 3
  const uvBase = nv12ChromaOffset(frame.height, frame.stride)
  const colA = xs.i0.map((x) => x * bpp)
  const colB = xs.i1.map((x) => x * bpp)
  const colCA = xs.i0.map((x) => (x >> 1) << 1)
  const colCB = xs.i1.map((x) => (x >> 1) << 1)
  const rowA = ys.i0.map((y) => y * frame.stride)
  const rowB = ys.i1.map((y) => y * frame.stride)
  const rowCA = ys.i0.map((y) => uvBase + (y >> 1) * frame.stride)
  const rowCB = ys.i1.map((y) => uvBase + (y >> 1) * frame.stride)
  const lumaPoint = xs.w.every((w) => w === 0) && ys.w.every((w) => w === 0)
  const chromaPoint = chromaPointAxis(xs) && chromaPointAxis(ys)
  const uniformTaps =
    colB.every((b, x) => b === colA[x]! + 1) && rowB.every((b, y) => b === rowA[y]! + frame.stride) &&
    xs.w.every((w) => w === xs.w[0]) && ys.w.every((w) => w === ys.w[0])
  return {
    transform,
    contentW,
    contentH,
    padX: transform.padX,
    padY: transform.padY,
    colA,
    colB,
    colCA,
    colCB,
    colW: xs.w,
    rowA,
    rowB,
    rowCA,
    rowCB,
    rowW: ys.w,
    pointStep: nv12 && lumaPoint ? arithmeticStep(colA) : 0,
    chromaPoint,
    blendStep: nv12 && !lumaPoint && uniformTaps ? arithmeticStep(colA) : 0
  }
}

const geometryCacheLimit = 16
const geometryCache = new Map<string, Geometry>()

const geometryFor = (frame: FrameView, options: PreprocessOptions): Geometry => {
  const key = `${frame.format}:${frame.width}x${frame.height}/${frame.stride}:${options.width}x${options.height}:${options.resize}`
  const hit = geometryCache.get(key)
  if (hit !== undefined) return hit
  const built = buildGeometry(frame, options)
  if (geometryCache.size >= geometryCacheLimit) {
    const oldest = geometryCache.keys().next()
    if (oldest.done !== true) geometryCache.delete(oldest.value)
  }
  geometryCache.set(key, built)
  return built
}

/**
 * For each chroma pair (index U·256 + V): the Y range [lo, hi] (packed lo | hi << 8) for which
 * all three channels land in [0, 255]; empty ranges are stored as lo = 255, hi = 0.
 */
const buildGamutTable = (c: YuvToRgb): Uint16Array => {
  const table = new Uint16Array(65536)
  const eps = 1e-7
  // 0 ≤ yScale·(Y − yOffset) + k ≤ 255  ⇔  Y ∈ [yOffset − k/yScale, yOffset + (255 − k)/yScale]
  const lower = (k: number): number => Math.ceil(c.yOffset - k / c.yScale - eps)
  const upper = (k: number): number => Math.floor(c.yOffset + (255 - k) / c.yScale + eps)
  for (let u = 0; u < 256; u++) {
    const kb = c.bu * (u - 128)
    for (let v = 0; v < 256; v++) {
      const kr = c.rv * (v - 128)
      const kg = c.gu * (u - 128) + c.gv * (v - 128)
      const lo = Math.max(0, lower(kr), lower(kg), lower(kb))
      const hi = Math.min(255, upper(kr), upper(kg), upper(kb))
      table[(u << 8) | v] = lo > hi ? 255 : lo | (hi << 8)
    }
  }
  return table
}

const gamutCache = new Map<string, Uint16Array>()

const gamutFor = (matrix: ColorMatrix, range: ColorRange, c: YuvToRgb): Uint16Array => {
  const key = `${matrix}:${range}`
  const hit = gamutCache.get(key)
  if (hit !== undefined) return hit
  const built = buildGamutTable(c)
  gamutCache.set(key, built)
  return built
}

// ---------------------------------------------------------------------------------------------
// Kernels

/**
 * Colour matrix and normalisation folded into one affine map of raw (Y, U, V):
 * the fast path of the bilinear kernels, for pixels inside the RGB gamut.
 */
const fuseAffine = (c: YuvToRgb, a: ChannelAffine) => {
  const yR = c.yScale * a.mulR
  const yG = c.yScale * a.mulG
  const yB = c.yScale * a.mulB
  const vR = c.rv * a.mulR
  const uG = c.gu * a.mulG
  const vG = c.gv * a.mulG
  const uB = c.bu * a.mulB
  return {
    yR, yG, yB, vR, uG, vG, uB,
    kR: a.addR - c.yOffset * yR - 128 * vR,
    kG: a.addG - c.yOffset * yG - 128 * (uG + vG),
    kB: a.addB - c.yOffset * yB - 128 * uB
  }
}

/** Where R, G and B of content pixel (x, y) go: base + y·rowStep + x·pixStep + off{R,G,B}. */
interface OutputPlacement {
  readonly base: number
  readonly rowStep: number
  readonly pixStep: number
  readonly offR: number
  readonly offG: number
  readonly offB: number
}

type OutputArray = Float32Array | Uint8ClampedArray

const nv12Kernel = (
  d: Uint8Array,
  g: Geometry,
  c: YuvToRgb,
  gamut: Uint16Array,
  a: ChannelAffine,
  p: OutputPlacement,
  out: OutputArray
): void => {
  const { colA, colB, colCA, colCB, colW, rowA, rowB, rowCA, rowCB, rowW, contentW, contentH } = g
  const { yOffset, yScale, rv, gu, gv, bu } = c
  const { mulR, mulG, mulB, addR, addG, addB } = a
  const { pixStep, offR, offG, offB } = p
  const { yR, yG, yB, vR, uG, vG, uB, kR, kG, kB } = fuseAffine(c, a)
  for (let y = 0; y < contentH; y++) {
    const r0 = rowA[y]!
    const r1 = rowB[y]!
    const c0 = rowCA[y]!
    const c1 = rowCB[y]!
    const wy = rowW[y]!
    let o = p.base + y * p.rowStep
    for (let x = 0; x < contentW; x++, o += pixStep) {
      const xa = colA[x]!
      const xb = colB[x]!
      const ca = colCA[x]!
      const cb = colCB[x]!
      const wx = colW[x]!
      const y00 = d[r0 + xa]!
      const y01 = d[r0 + xb]!
      const y10 = d[r1 + xa]!
      const y11 = d[r1 + xb]!
      const u00 = d[c0 + ca]!
      const v00 = d[c0 + ca + 1]!
      const u01 = d[c0 + cb]!
      const v01 = d[c0 + cb + 1]!
      const u10 = d[c1 + ca]!
      const v10 = d[c1 + ca + 1]!
      const u11 = d[c1 + cb]!
      const v11 = d[c1 + cb + 1]!
      const g00 = gamut[(u00 << 8) | v00]!
      const g01 = gamut[(u01 << 8) | v01]!
      const g10 = gamut[(u10 << 8) | v10]!
      const g11 = gamut[(u11 << 8) | v11]!
      // Negative iff some tap's Y lies outside its chroma's in-gamut range.
      const outside =
        (y00 - (g00 & 255)) |
        ((g00 >> 8) - y00) |
        (y01 - (g01 & 255)) |
        ((g01 >> 8) - y01) |
        (y10 - (g10 & 255)) |
        ((g10 >> 8) - y10) |
        (y11 - (g11 & 255)) |
        ((g11 >> 8) - y11)
      if (outside >= 0) {
        const yt = y00 + (y01 - y00) * wx
        const yi = yt + (y10 + (y11 - y10) * wx - yt) * wy
        const ut = u00 + (u01 - u00) * wx
        const ui = ut + (u10 + (u11 - u10) * wx - ut) * wy
        const vt = v00 + (v01 - v00) * wx
        const vi = vt + (v10 + (v11 - v10) * wx - vt) * wy
        out[o + offR] = yi * yR + vi * vR + kR
        out[o + offG] = yi * yG + ui * uG + vi * vG + kG
        out[o + offB] = yi * yB + ui * uB + kB
      } else {
        // Rare (saturated colour edges, noise): convert each tap, clamp, then interpolate.
        const w00 = (1 - wx) * (1 - wy)
        const w01 = wx * (1 - wy)
        const w10 = (1 - wx) * wy
        const w11 = wx * wy
        const l00 = yScale * (y00 - yOffset)
        const l01 = yScale * (y01 - yOffset)
        const l10 = yScale * (y10 - yOffset)
        const l11 = yScale * (y11 - yOffset)
        const r =
          w00 * clamp255(l00 + rv * (v00 - 128)) +
          w01 * clamp255(l01 + rv * (v01 - 128)) +
          w10 * clamp255(l10 + rv * (v10 - 128)) +
          w11 * clamp255(l11 + rv * (v11 - 128))
        const gg =
          w00 * clamp255(l00 + gu * (u00 - 128) + gv * (v00 - 128)) +
          w01 * clamp255(l01 + gu * (u01 - 128) + gv * (v01 - 128)) +
          w10 * clamp255(l10 + gu * (u10 - 128) + gv * (v10 - 128)) +
          w11 * clamp255(l11 + gu * (u11 - 128) + gv * (v11 - 128))
        const b =
          w00 * clamp255(l00 + bu * (u00 - 128)) +
          w01 * clamp255(l01 + bu * (u01 - 128)) +
          w10 * clamp255(l10 + bu * (u10 - 128)) +
          w11 * clamp255(l11 + bu * (u11 - 128))
        out[o + offR] = r * mulR + addR
        out[o + offG] = gg * mulG + addG
        out[o + offB] = b * mulB + addB
      }
    }
  }
}

/** Luma bilinear, one chroma sample per output pixel (see Geometry.chromaPoint). */
const nv12KernelChromaPoint = (
  d: Uint8Array,
  g: Geometry,
  c: YuvToRgb,
  gamut: Uint16Array,
  a: ChannelAffine,
  p: OutputPlacement,
  out: OutputArray
): void => {
  const { colA, colB, colCA, colW, rowA, rowB, rowCA, rowW, contentW, contentH } = g
  const { yOffset, yScale, rv, gu, gv, bu } = c
  const { mulR, mulG, mulB, addR, addG, addB } = a
  const { pixStep, offR, offG, offB } = p
  const { yR, yG, yB, vR, uG, vG, uB, kR, kG, kB } = fuseAffine(c, a)
  for (let y = 0; y < contentH; y++) {
    const r0 = rowA[y]!
    const r1 = rowB[y]!
    const c0 = rowCA[y]!
    const wy = rowW[y]!
    let o = p.base + y * p.rowStep
    for (let x = 0; x < contentW; x++, o += pixStep) {
      const xa = colA[x]!
      const xb = colB[x]!
      const wx = colW[x]!
      const ci = c0 + colCA[x]!
      const y00 = d[r0 + xa]!
      const y01 = d[r0 + xb]!
      const y10 = d[r1 + xa]!
      const y11 = d[r1 + xb]!
      const u = d[ci]!
      const v = d[ci + 1]!
      const range = gamut[(u << 8) | v]!
      const lo = range & 255
      const hi = range >> 8
      const outside = (y00 - lo) | (hi - y00) | (y01 - lo) | (hi - y01) | (y10 - lo) | (hi - y10) | (y11 - lo) | (hi - y11)
      if (outside >= 0) {
        const yt = y00 + (y01 - y00) * wx
        const yi = yt + (y10 + (y11 - y10) * wx - yt) * wy
        out[o + offR] = yi * yR + v * vR + kR
        out[o + offG] = yi * yG + u * uG + v * vG + kG
        out[o + offB] = yi * yB + u * uB + kB
      } else {
        const w00 = (1 - wx) * (1 - wy)
        const w01 = wx * (1 - wy)
        const w10 = (1 - wx) * wy
        const w11 = wx * wy
        const l00 = yScale * (y00 - yOffset)
        const l01 = yScale * (y01 - yOffset)
        const l10 = yScale * (y10 - yOffset)
        const l11 = yScale * (y11 - yOffset)
        const cr = rv * (v - 128)
        const cg = gu * (u - 128) + gv * (v - 128)
        const cb = bu * (u - 128)
        const r = w00 * clamp255(l00 + cr) + w01 * clamp255(l01 + cr) + w10 * clamp255(l10 + cr) + w11 * clamp255(l11 + cr)
        const gg = w00 * clamp255(l00 + cg) + w01 * clamp255(l01 + cg) + w10 * clamp255(l10 + cg) + w11 * clamp255(l11 + cg)
        const b = w00 * clamp255(l00 + cb) + w01 * clamp255(l01 + cb) + w10 * clamp255(l10 + cb) + w11 * clamp255(l11 + cb)
        out[o + offR] = r * mulR + addR
        out[o + offG] = gg * mulG + addG
        out[o + offB] = b * mulB + addB
      }
    }
  }
}

/**
 * One luma and one chroma sample per output pixel, source columns at a fixed step (see
 * Geometry.pointStep): convert and clamp. Column offsets are computed rather than looked up,
 * which takes about a fifth off the whole preprocessing at 1920→640.
 */
const nv12KernelPoint = (
  d: Uint8Array,
  g: Geometry,
  c: YuvToRgb,
  a: ChannelAffine,
  p: OutputPlacement,
  out: OutputArray
): void => {
  const { colA, pointStep, rowA, rowCA, contentW, contentH } = g
  const { yOffset, yScale, rv, gu, gv, bu } = c
  const { mulR, mulG, mulB, addR, addG, addB } = a
  const { pixStep, offR, offG, offB } = p
  const x0 = colA[0]!
  for (let y = 0; y < contentH; y++) {
    const r0 = rowA[y]!
    const c0 = rowCA[y]!
    let o = p.base + y * p.rowStep
    for (let x = 0, xa = x0; x < contentW; x++, o += pixStep, xa += pointStep) {
      const l = yScale * (d[r0 + xa]! - yOffset)
      // The chroma pair of luma column xa starts at its even column.
      const ci = c0 + ((xa >> 1) << 1)
      const u = d[ci]! - 128
      const v = d[ci + 1]! - 128
      out[o + offR] = clamp255(l + rv * v) * mulR + addR
      out[o + offG] = clamp255(l + gu * u + gv * v) * mulG + addG
      out[o + offB] = clamp255(l + bu * u) * mulB + addB
    }
  }
}

/** Branch-free clamp to [0, 255]: compare-and-branch clamps cost 3× on noisy frames (mispredictions). */
const clamp255 = (v: number): number => (Math.abs(v) - Math.abs(v - 255) + 255) * 0.5

const packedKernel = (
  d: Uint8Array,
  g: Geometry,
  bgrInput: boolean,
  a: ChannelAffine,
  p: OutputPlacement,
  out: OutputArray
): void => {
  const { colA, colB, colW, rowA, rowB, rowW, contentW, contentH } = g
  const { mulR, mulG, mulB, addR, addG, addB } = a
  const { pixStep, offG } = p
  // Swapping where R and B are written handles BGR input without a second loop.
  const offR = bgrInput ? p.offB : p.offR
  const offB = bgrInput ? p.offR : p.offB
  const m0 = bgrInput ? mulB : mulR
  const m2 = bgrInput ? mulR : mulB
  const a0 = bgrInput ? addB : addR
  const a2 = bgrInput ? addR : addB
  for (let y = 0; y < contentH; y++) {
    const r0 = rowA[y]!
    const r1 = rowB[y]!
    const wy = rowW[y]!
    let o = p.base + y * p.rowStep
    for (let x = 0; x < contentW; x++, o += pixStep) {
      const i00 = r0 + colA[x]!
      const i01 = r0 + colB[x]!
      const i10 = r1 + colA[x]!
      const i11 = r1 + colB[x]!
      const wx = colW[x]!
      let s00 = d[i00]!
      let s01 = d[i01]!
      let s10 = d[i10]!
      let s11 = d[i11]!
      let t = s00 + (s01 - s00) * wx
      out[o + offR] = (t + (s10 + (s11 - s10) * wx - t) * wy) * m0 + a0
      s00 = d[i00 + 1]!
      s01 = d[i01 + 1]!
      s10 = d[i10 + 1]!
      s11 = d[i11 + 1]!
      t = s00 + (s01 - s00) * wx
      out[o + offG] = (t + (s10 + (s11 - s10) * wx - t) * wy) * mulG + addG
      s00 = d[i00 + 2]!
      s01 = d[i01 + 2]!
      s10 = d[i10 + 2]!
      s11 = d[i11 + 2]!
      t = s00 + (s01 - s00) * wx
      out[o + offB] = (t + (s10 + (s11 - s10) * wx - t) * wy) * m2 + a2
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Padding

/** Fills `count` output pixels starting at pixel `start` of a row-major image. */
const fillPixels = (
  out: OutputArray,
  layoutNchw: boolean,
  planeSize: number,
  start: number,
  count: number,
  v: readonly [number, number, number]
): void => {
  if (count <= 0) return
  if (layoutNchw) {
    out.fill(v[0], start, start + count)
    out.fill(v[1], planeSize + start, planeSize + start + count)
    out.fill(v[2], 2 * planeSize + start, 2 * planeSize + start + count)
    return
  }
  if (v[0] === v[1] && v[1] === v[2]) {
    out.fill(v[0], start * 3, (start + count) * 3)
    return
  }
  for (let i = start * 3, end = (start + count) * 3; i < end; i += 3) {
    out[i] = v[0]
    out[i + 1] = v[1]
    out[i + 2] = v[2]
  }
}

const fillPadding = (
  out: OutputArray,
  options: PreprocessOptions,
  g: Geometry,
  v: readonly [number, number, number]
): void => {
  const W = options.width
  const H = options.height
  const nchw = options.layout === "nchw"
  const plane = W * H
  const right = g.padX + g.contentW
  const bottom = g.padY + g.contentH
  fillPixels(out, nchw, plane, 0, g.padY * W, v)
  fillPixels(out, nchw, plane, bottom * W, (H - bottom) * W, v)
  if (g.padX > 0 || right < W) {
    for (let y = g.padY; y < bottom; y++) {
      fillPixels(out, nchw, plane, y * W, g.padX, v)
      fillPixels(out, nchw, plane, y * W + right, W - right, v)
    }
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Input `preprocess` cannot convert, and why: a frame whose size, stride or bytes do not fit
 * (`frame`), a model input size that is no size (`options`), or an output buffer of the wrong
 * type or too short (`output`). From a handler's point of view each is a bug in what it passed.
 */
export class PreprocessError extends Data.TaggedError("PreprocessError")<{
  readonly input: "frame" | "options" | "output"
  readonly reason: string
}> {
  override get message(): string {
    return `preprocess: ${this.reason}`
  }
}

const checkFrame = (frame: FrameView): PreprocessError | undefined => {
  const { width, height, stride, format, data } = frame
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    return new PreprocessError({ input: "frame", reason: `invalid frame size ${width}x${height}` })
  }
  if (!Number.isInteger(stride) || stride < minStride(format, width)) {
    return new PreprocessError({
      input: "frame",
      reason: `stride ${stride} is too small for a ${format} frame ${width} pixels wide`
    })
  }
  const needed = frameByteLength(format, width, height, stride)
  if (data.length < needed) {
    return new PreprocessError({
      input: "frame",
      reason: `${format} ${width}x${height} stride ${stride} needs ${needed} bytes, got ${data.length}`
    })
  }
  return undefined
}

const checkOptions = (options: PreprocessOptions): PreprocessError | undefined => {
  const { width, height } = options
  return !Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1
    ? new PreprocessError({ input: "options", reason: `invalid model input size ${width}x${height}` })
    : undefined
}

/** The tensor to write: `out` when it fits, a new one when there is none. */
const outputFor = (
  options: PreprocessOptions,
  out: Float32Array | Uint8Array | undefined
): Float32Array | Uint8Array | PreprocessError => {
  const length = tensorLength(options)
  const float = options.dtype === "float32"
  if (out === undefined) return float ? new Float32Array(length) : new Uint8Array(length)
  const matches = float ? out instanceof Float32Array : out instanceof Uint8Array
  if (!matches) {
    return new PreprocessError({ input: "output", reason: `output buffer must be a ${float ? "Float32Array" : "Uint8Array"}` })
  }
  if (out.length < length) {
    return new PreprocessError({ input: "output", reason: `output buffer holds ${out.length} elements, needs ${length}` })
  }
  return out.length === length ? out : out.subarray(0, length)
}

/** Which kernels `preprocess` may use; the default is the fastest this runtime has. */
export interface KernelChoice {
  /**
   * WebAssembly SIMD where it applies (NV12 frames whose resize steps a whole number of source
   * pixels per output pixel, e.g. 3:1, any layout and dtype); false: JavaScript only. Default true.
   */
  readonly simd?: boolean
}

/**
 * Converts a frame to a model input tensor. Writes into `out` when it is given, of the matching
 * dtype and at least `tensorLength(options)` long (so steady-state use allocates nothing).
 * Input that does not fit (see `PreprocessError`) is a failure, checked before any pixel is read.
 */
export const preprocess = (
  frame: FrameView,
  options: PreprocessOptions,
  out?: Float32Array | Uint8Array,
  kernels: KernelChoice = {}
): Result.Result<Preprocessed, PreprocessError> => {
  const invalid = checkFrame(frame) ?? checkOptions(options)
  if (invalid !== undefined) return Result.fail(invalid)
  const tensor = outputFor(options, out)
  if (tensor instanceof PreprocessError) return Result.fail(tensor)
  return Result.succeed(convert(frame, options, tensor, kernels))
}

/** `preprocess` on checked input. */
const convert = (
  frame: FrameView,
  options: PreprocessOptions,
  tensor: Float32Array | Uint8Array,
  kernels: KernelChoice
): Preprocessed => {
  const length = tensorLength(options)
  const float = options.dtype === "float32"
  // Uint8ClampedArray stores round-and-clamp, which is exactly the uint8 dtype's contract.
  const target: OutputArray =
    tensor instanceof Float32Array ? tensor : new Uint8ClampedArray(tensor.buffer, tensor.byteOffset, length)

  const g = geometryFor(frame, options)
  const bgrOut = options.channelOrder === "bgr"
  const iR = bgrOut ? 2 : 0
  const iB = bgrOut ? 0 : 2
  const mul = (i: number): number => (float ? options.scale / options.std[i]! : 1)
  const add = (i: number): number => (float ? -options.mean[i]! / options.std[i]! : 0)
  const affine: ChannelAffine = {
    mulR: mul(iR),
    mulG: mul(1),
    mulB: mul(iB),
    addR: add(iR),
    addG: add(1),
    addB: add(iB)
  }
  const W = options.width
  const plane = W * options.height
  const nchw = options.layout === "nchw"
  const contentOrigin = g.padY * W + g.padX
  const placement: OutputPlacement = nchw
    ? { base: contentOrigin, rowStep: W, pixStep: 1, offR: iR * plane, offG: plane, offB: iB * plane }
    : { base: contentOrigin * 3, rowStep: W * 3, pixStep: 3, offR: iR, offG: 1, offB: iB }

  const padLevel = Math.min(255, Math.max(0, options.padValue))
  const padOut = (i: number): number => padLevel * mul(i) + add(i)
  fillPadding(target, options, g, [padOut(0), padOut(1), padOut(2)])

  if (frame.format === "NV12") {
    const c = yuvToRgbCoefficients(options.colorMatrix, options.range)
    // The SIMD kernels serve every layout and dtype (where this runtime has them).
    const simdJob = (step: number): SimdJob | undefined =>
      kernels.simd !== false
        ? {
          data: frame.data,
          frameBytes: frameByteLength(frame.format, frame.width, frame.height, frame.stride),
          rowY: g.rowA,
          rowC: g.rowCA,
          x0: g.colA[0]!,
          step,
          width: g.contentW,
          height: g.contentH,
          coefficients: { ...c, ...affine },
          out: target instanceof Float32Array ? target : new Uint8Array(target.buffer, target.byteOffset, target.length),
          layout: options.layout,
          base: placement.base,
          rowStep: placement.rowStep,
          offR: placement.offR,
          offG: placement.offG,
          offB: placement.offB
        }
        : undefined
    if (g.pointStep > 0) {
      const job = simdJob(g.pointStep)
      if (job === undefined || !pointSimd(job)) nv12KernelPoint(frame.data, g, c, affine, placement, target)
    } else if (g.chromaPoint) {
      const job = g.blendStep > 0 ? simdJob(g.blendStep) : undefined
      if (job === undefined || !blendSimd(job, { rowY1: g.rowB, wx: g.colW[0]!, wy: g.rowW[0]! })) {
        nv12KernelChromaPoint(frame.data, g, c, gamutFor(options.colorMatrix, options.range, c), affine, placement, target)
      }
    } else {
      const job = g.blendStep > 0 ? simdJob(g.blendStep) : undefined
      if (job === undefined || !blendSimd(job, { rowY1: g.rowB, rowC1: g.rowCB, wx: g.colW[0]!, wy: g.rowW[0]! })) {
        nv12Kernel(frame.data, g, c, gamutFor(options.colorMatrix, options.range, c), affine, placement, target)
      }
    }
  } else {
    packedKernel(frame.data, g, frame.format === "BGR24", affine, placement, target)
  }
  return { tensor, dims: tensorDims(options), transform: g.transform }
}
