/**
 * The WebAssembly SIMD kernels: the module shipped is the one nv12.wat assembles to, this runtime
 * loads it, and they write what the JavaScript kernels write for every geometry they take.
 */
import { describe, expect, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Result } from "effect"
import {
  type FrameView,
  makePreprocessOptions,
  preprocess as preprocessResult,
  type PreprocessOptions,
  tensorLength
} from "../../src/frames/preprocess.js"
import { nv12KernelsBase64 } from "../../src/frames/simd/nv12Kernels.js"
import { SHRINK_AFTER, simdAvailable, simdConversions, simdMemoryBytes } from "../../src/frames/simd/nv12Simd.js"
import { assemble, kernelModuleSource } from "../../scripts/simd.js"
import { randomNv12 } from "../support/nv12.js"

const preprocess = (...args: Parameters<typeof preprocessResult>) => Result.getOrThrow(preprocessResult(...args))

const watPath = fileURLToPath(new URL("../../src/frames/simd/nv12.wat", import.meta.url))

/**
 * Runs `options` on `frame` with and without SIMD (into buffers full of garbage), checks that only
 * the first call took the SIMD kernels, and returns both tensors.
 */
const both = (frame: FrameView, options: PreprocessOptions) => {
  const garbage = (value: number) =>
    options.dtype === "uint8" ? new Uint8Array(tensorLength(options)).fill(value) : new Float32Array(tensorLength(options)).fill(value)
  const simd = garbage(Number.NaN)
  const js = garbage(-7)
  const before = simdConversions()
  preprocess(frame, options, simd)
  expect(simdConversions()).toBe(before + 1)
  preprocess(frame, options, js, { simd: false })
  expect(simdConversions()).toBe(before + 1)
  return { simd, js }
}

const maxDiff = (a: Float32Array | Uint8Array, b: Float32Array | Uint8Array): number => {
  let max = 0
  for (let i = 0; i < a.length; i++) max = Math.max(max, Number.isNaN(a[i]!) ? Infinity : Math.abs(a[i]! - b[i]!))
  return max
}

describe("SIMD kernels", () => {
  it("ships exactly what nv12.wat assembles to, and this runtime runs it", async () => {
    const bytes = await assemble(readFileSync(watPath, "utf8"))
    expect(Buffer.from(nv12KernelsBase64, "base64").equals(Buffer.from(bytes))).toBe(true)
    expect(kernelModuleSource(bytes)).toContain(nv12KernelsBase64)
    expect(simdAvailable()).toBe(true)
  })

  it.each([
    ["1920x1080 -> 640x640 letterbox (3:1, the common case)", 1920, 1080, {}],
    ["3:1 stretch, BGR, ImageNet mean/std", 960, 540, { width: 320, height: 180, resize: "stretch", channelOrder: "bgr", mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }],
    ["1:1 with a width that is not a multiple of 4", 66, 40, { width: 66, height: 40, resize: "stretch" }],
    ["5:1 (columns from an even offset)", 500, 300, { width: 100, height: 60, resize: "stretch" }],
    ["3:1 letterbox with side bars", 300, 480, { width: 160, height: 160 }],
    ["BT.709 limited range", 192, 108, { width: 64, height: 36, resize: "stretch", colorMatrix: "bt709", range: "limited" }],
    ["blend: 1280x720 -> 640x640 letterbox (2:1)", 1280, 720, {}],
    ["blend: 2:1 stretch, BGR, ImageNet mean/std, width not a multiple of 4", 132, 80, { width: 66, height: 40, resize: "stretch", channelOrder: "bgr", mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }],
    ["blend: 3:1 across, 2:1 down (weights 0 and 1/2)", 192, 96, { width: 64, height: 48, resize: "stretch" }],
    ["blend: 2:1 letterbox with side bars, BT.709 limited", 300, 480, { width: 240, height: 240, colorMatrix: "bt709", range: "limited" }],
    ["blendc: 2560x1440 -> 640x640 letterbox (4:1, each tap its own chroma)", 2560, 1440, {}],
    ["blendc: 1280x720 -> 320x320 letterbox, BGR, ImageNet mean/std", 1280, 720, { width: 320, height: 320, channelOrder: "bgr", mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }],
    ["blendc: 4:1 across, 2:1 down (chroma rows shared, columns not)", 264, 96, { width: 66, height: 48, resize: "stretch" }],
    ["blendc: 2:1 across, 4:1 down, BT.709 limited", 128, 192, { width: 64, height: 48, resize: "stretch", colorMatrix: "bt709", range: "limited" }],
    ["blendw: 1920x1080 -> 320x320 letterbox (6:1, taps wider than one load)", 1920, 1080, { width: 320, height: 320 }],
    ["blendw: 3840x2160 -> 640x640 letterbox, BGR, ImageNet mean/std", 3840, 2160, { channelOrder: "bgr", mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] }],
    ["blendw: 6:1 stretch, width not a multiple of 4", 390, 120, { width: 65, height: 20, resize: "stretch" }],
    ["blendw: portrait 1080x1920 -> 320x320 letterbox (side bars), BT.709 limited", 1080, 1920, { width: 320, height: 320, colorMatrix: "bt709", range: "limited" }],
    ["blendc: portrait 720x1280 -> 320x320 letterbox (side bars)", 720, 1280, { width: 320, height: 320 }]
  ] as const)("%s: same tensor as the JavaScript kernel, in every layout and dtype", (_name, w, h, partial) => {
    const plain = randomNv12(w, h, w * 7 + h)
    const strided = randomNv12(w, h, w + h, w + (w & 1) + 24)
    for (const layout of ["nchw", "nhwc"] as const) {
      const options = makePreprocessOptions({ ...(partial as Partial<PreprocessOptions>), layout })
      const bytes = makePreprocessOptions({ ...(partial as Partial<PreprocessOptions>), layout, dtype: "uint8" })
      for (const frame of [plain, strided]) {
        const { simd, js } = both(frame, options)
        // float32 arithmetic against float64: far below one 0-255 level (~0.004 after /255), and not
        // nothing either, which shows the float32 (SIMD) path ran.
        const diff = maxDiff(simd, js)
        expect(diff).toBeLessThan(1e-5)
        expect(diff).toBeGreaterThan(0)
        // uint8: both round half to even; float32 against float64 may put a value on the other
        // side of a half, so one level at most, and rarely.
        const u8 = both(frame, bytes)
        expect(maxDiff(u8.simd, u8.js)).toBeLessThanOrEqual(1)
        expect(u8.simd.filter((v, i) => v !== u8.js[i]).length).toBeLessThanOrEqual(Math.ceil(u8.simd.length / 10_000))
      }
    }
  })

  it("leaves the JavaScript kernels to geometries they do not take (steps over 5, fractional ratios)", () => {
    const frame = randomNv12(140, 70, 3)
    for (const partial of [
      { width: 20, height: 10, resize: "stretch" as const },
      { width: 20, height: 10, resize: "stretch" as const, layout: "nhwc" as const, dtype: "uint8" as const },
      { width: 52, height: 30, resize: "stretch" as const }
    ]) {
      const options = makePreprocessOptions(partial)
      const make = () => (options.dtype === "uint8" ? new Uint8Array(tensorLength(options)) : new Float32Array(tensorLength(options)))
      const before = simdConversions()
      const a = preprocess(frame, options, make()).tensor
      expect(simdConversions()).toBe(before)
      const b = preprocess(frame, options, make(), { simd: false }).tensor
      expect(Array.from(a)).toEqual(Array.from(b))
    }
  })

  it("gives back the memory of a huge frame once frames are small again for a while, and still computes the same", () => {
    const huge = randomNv12(3840, 2160, 1)
    preprocess(huge, makePreprocessOptions({ width: 1280, height: 720, resize: "stretch" }))
    const grown = simdMemoryBytes()
    // The 3840x2160 frame and three 1280x720 float planes.
    expect(grown).toBeGreaterThan(20 * 1024 * 1024)
    const small = makePreprocessOptions({ width: 64, height: 36, resize: "stretch" })
    const frame = randomNv12(192, 108, 2)
    for (let i = 1; i < SHRINK_AFTER; i++) preprocess(frame, small)
    expect(simdMemoryBytes()).toBe(grown)
    const { simd, js } = both(frame, small)
    expect(simdMemoryBytes()).toBeLessThan(1024 * 1024)
    expect(maxDiff(simd, js)).toBeLessThan(1e-5)
  })
})
