/**
 * The geometric relation between a frame and the model input made from it,
 * so model-space boxes can be mapped back to normalised frame coordinates.
 */

/** Model-input pixel = frame pixel × scale + pad (per axis). */
export interface FrameTransform {
  readonly frameWidth: number
  readonly frameHeight: number
  /** Model-input width and height in pixels. */
  readonly inputWidth: number
  readonly inputHeight: number
  /** Model pixels per frame pixel. */
  readonly scaleX: number
  readonly scaleY: number
  /** Padding (model pixels) added on the left and top by letterboxing. */
  readonly padX: number
  readonly padY: number
}

/** Clamps to 0–1; NaN becomes 0. */
export const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : Number.isFinite(v) ? v : 0)

/**
 * Maps a box in model-input pixels `[x0, y0, x1, y1]` to `[x_min, y_min, x_max, y_max]`
 * normalised to the frame (0–1, clamped, ordered).
 */
export const toNormalizedBox = (
  t: FrameTransform,
  x0: number,
  y0: number,
  x1: number,
  y1: number
): [number, number, number, number] => {
  const ax = clamp01((x0 - t.padX) / t.scaleX / t.frameWidth)
  const bx = clamp01((x1 - t.padX) / t.scaleX / t.frameWidth)
  const ay = clamp01((y0 - t.padY) / t.scaleY / t.frameHeight)
  const by = clamp01((y1 - t.padY) / t.scaleY / t.frameHeight)
  return [Math.min(ax, bx), Math.min(ay, by), Math.max(ax, bx), Math.max(ay, by)]
}

/** The transform of a letterbox resize: keep aspect, centre, pad the rest. */
export const letterboxTransform = (
  frameWidth: number,
  frameHeight: number,
  inputWidth: number,
  inputHeight: number
): FrameTransform => {
  const scale = Math.min(inputWidth / frameWidth, inputHeight / frameHeight)
  const contentW = Math.round(frameWidth * scale)
  const contentH = Math.round(frameHeight * scale)
  return {
    frameWidth,
    frameHeight,
    inputWidth,
    inputHeight,
    scaleX: contentW / frameWidth,
    scaleY: contentH / frameHeight,
    padX: Math.floor((inputWidth - contentW) / 2),
    padY: Math.floor((inputHeight - contentH) / 2)
  }
}

/** The transform of a stretch resize: each axis scaled independently, no padding. */
export const stretchTransform = (
  frameWidth: number,
  frameHeight: number,
  inputWidth: number,
  inputHeight: number
): FrameTransform => ({
  frameWidth,
  frameHeight,
  inputWidth,
  inputHeight,
  scaleX: inputWidth / frameWidth,
  scaleY: inputHeight / frameHeight,
  padX: 0,
  padY: 0
})
