/**
 * Colour: YUV → RGB coefficients and the per-channel affine map of normalisation — the types the
 * JavaScript kernels (preprocess.ts), the SIMD kernels (simd/nv12Simd.ts) and the image helpers share.
 */

export type ColorMatrix = "bt601" | "bt709"
export type ColorRange = "full" | "limited"

/** Luma weights of the two supported matrices (Y = kr·R + (1 − kr − kb)·G + kb·B). */
export const lumaWeights: Readonly<Record<ColorMatrix, { readonly kr: number; readonly kb: number }>> = {
  bt601: { kr: 0.299, kb: 0.114 },
  bt709: { kr: 0.2126, kb: 0.0722 }
}

/** R = yScale·(Y − yOffset) + rv·(V − 128); G = yScale·(Y − yOffset) + gu·(U − 128) + gv·(V − 128); B = … + bu·(U − 128). */
export interface YuvToRgb {
  readonly yOffset: number
  readonly yScale: number
  readonly rv: number
  readonly gu: number
  readonly gv: number
  readonly bu: number
}

export const yuvToRgbCoefficients = (matrix: ColorMatrix, range: ColorRange): YuvToRgb => {
  const { kb, kr } = lumaWeights[matrix]
  const kg = 1 - kr - kb
  const limited = range === "limited"
  const cScale = limited ? 255 / 224 : 1
  return {
    yOffset: limited ? 16 : 0,
    yScale: limited ? 255 / 219 : 1,
    rv: 2 * (1 - kr) * cScale,
    gu: ((-2 * kb * (1 - kb)) / kg) * cScale,
    gv: ((-2 * kr * (1 - kr)) / kg) * cScale,
    bu: 2 * (1 - kb) * cScale
  }
}

/** Output channel c = pixel value (0–255) · mul[c] + add[c], channels in R, G, B order. */
export interface ChannelAffine {
  readonly mulR: number
  readonly mulG: number
  readonly mulB: number
  readonly addR: number
  readonly addG: number
  readonly addB: number
}
