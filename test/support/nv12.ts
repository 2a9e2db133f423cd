/** Synthetic frames for preprocessing tests. */
import type { FrameView } from "../../src/frames/preprocess.js"

/** A deterministic byte generator (LCG, top bits). */
export const prng = (seed: number) => {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s >>> 24
  }
}

export const nv12Size = (h: number, stride: number) => stride * h + stride * Math.ceil(h / 2)

/** An NV12 frame of random bytes: mostly out-of-gamut colours, the clamping paths' worst case. */
export const randomNv12 = (w: number, h: number, seed: number, stride = w + (w & 1)): FrameView => {
  const next = prng(seed)
  const data = new Uint8Array(nv12Size(h, stride))
  for (let i = 0; i < data.length; i++) data[i] = next()
  return { data, width: w, height: h, stride, format: "NV12" }
}

/** A mid-grey NV12 frame (luma 16, neutral chroma), optionally with a white rectangle `[x0, y0, x1, y1)`. */
export const greyNv12 = (width: number, height: number, bright?: readonly [number, number, number, number]) => {
  const data = new Uint8Array((width * height * 3) / 2)
  data.fill(16, 0, width * height)
  data.fill(128, width * height)
  if (bright !== undefined) {
    for (let y = bright[1]; y < bright[3]; y++) data.fill(255, y * width + bright[0], y * width + bright[2])
  }
  return { format: "NV12" as const, width, height, stride: width, data }
}
