/**
 * The NV12 kernels of preprocess.ts in WebAssembly SIMD (nv12.wat):
 * `point` when every output pixel takes one whole source pixel at a fixed column step (1920→640
 * is exactly 3:1), `blend` when it takes two neighbouring columns and rows with the same weights
 * everywhere and one chroma sample (1280→640 is exactly 2:1), `blendc` for the same taps when each
 * takes its own chroma sample (2560→640 is exactly 4:1), and `blendw` for `blend`'s taps five to
 * seven bytes apart (1920→320 is exactly 6:1). The frame is copied into the
 * module's memory and converted four pixels at a time into three float32 planes; interleaved
 * (NHWC) and uint8 output are packed from those planes by `interleave`, `bytes` and
 * `interleaveBytes`; then the rows are copied out. Where WebAssembly
 * SIMD is missing, or the geometry does not fit, the caller's JavaScript kernel runs instead.
 */
import type { ChannelAffine, YuvToRgb } from "../color.js"
import { nv12KernelsBase64 } from "./nv12Kernels.js"

/** The part of the WebAssembly API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object
  readonly Instance: new (module: object, imports: object) => { readonly exports: object }
}

/** Every kernel takes the same arguments (byte offsets into the module's memory); see nv12.wat. */
type Kernel = (
  frame: number,
  rowY: number,
  rowY1: number,
  rowC: number,
  step4: number,
  groups: number,
  rows: number,
  outR: number,
  outG: number,
  outB: number,
  coef: number
) => void

/** Packs `n` groups of three planes (in output channel order) into one interleaved array at `out`. */
type Interleave = (in0: number, in1: number, in2: number, out: number, n: number) => void

interface Instance {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number }
  readonly point: Kernel
  readonly blend: Kernel
  readonly blendc: Kernel
  readonly blendw: Kernel
  readonly interleave: Interleave
  readonly bytes: (input: number, out: number, n: number) => void
  readonly interleaveBytes: Interleave
}

let compiled: { readonly wasm: WasmApi; readonly module: object } | undefined | null = null

const instantiate = (): Instance | undefined => {
  try {
    if (compiled === null) {
      const wasm = (globalThis as unknown as { readonly WebAssembly: WasmApi }).WebAssembly
      compiled = { wasm, module: new wasm.Module(Buffer.from(nv12KernelsBase64, "base64")) }
    }
    return compiled === undefined ? undefined : (new compiled.wasm.Instance(compiled.module, {}).exports as Instance)
  } catch {
    // A runtime without WebAssembly SIMD: the JavaScript kernels serve every geometry.
    compiled = undefined
    return undefined
  }
}

let instance: Instance | undefined | null = null

/** Whether this runtime runs the SIMD kernels (loaded on first use). */
export const simdAvailable = (): boolean => (instance ??= instantiate()) !== undefined

let served = 0

/** How many conversions the SIMD kernels have done in this thread (for diagnostics and tests). */
export const simdConversions = (): number => served

/** Bytes of memory the kernels hold now (0 before first use or without SIMD). */
export const simdMemoryBytes = (): number => (instance ? instance.memory.buffer.byteLength : 0)

/**
 * WebAssembly memory only grows, so one huge frame would keep its memory for good: after
 * `SHRINK_AFTER` calls in a row that each needed at most a quarter of it (and it is over
 * `SHRINK_FROM_BYTES`), the kernels start over with a fresh instance and memory of what they need.
 */
export const SHRINK_AFTER = 64
const SHRINK_FROM_BYTES = 16 * 1024 * 1024
let smallCalls = 0

/** Bytes a load may reach past the last byte a row uses. */
const SLACK = 32

/** Coefficients, swizzle masks, tap weights, blendc's and blendw's further masks and blendc's second chroma-row table offset: see nv12.wat. */
const COEF_BYTES = 192

const align16 = (n: number): number => (n + 15) & ~15

export interface SimdJob {
  /** The frame's bytes: luma rows, then interleaved UV rows. */
  readonly data: Uint8Array
  /** Bytes of `data` the kernel may read (the frame's length). */
  readonly frameBytes: number
  /** Per output row, the offset in `data` of its (first) luma row and of its chroma row. */
  readonly rowY: Int32Array
  readonly rowC: Int32Array
  /** Source column of output column 0 (its first tap), and the columns between output columns. */
  readonly x0: number
  readonly step: number
  readonly width: number
  readonly height: number
  /**
   * channel = clamp(yScale·(Y − yOffset) + chroma terms, 0, 255)·mul + add, for R, G and B
   * (uint8 output: mul 1, add 0, and the result rounded half to even).
   */
  readonly coefficients: YuvToRgb & ChannelAffine
  /** float32 or uint8 (the bytes of a uint8 tensor) output. */
  readonly out: Float32Array | Uint8Array
  /**
   * `nchw`: R, G and B of content pixel (x, y) go to base + y·rowStep + x + off{R,G,B} (plane offsets);
   * `nhwc`: to base + y·rowStep + 3·x + off{R,G,B} (offsets 0–2 within the pixel).
   */
  readonly layout: "nchw" | "nhwc"
  readonly base: number
  readonly rowStep: number
  readonly offR: number
  readonly offG: number
  readonly offB: number
}

/**
 * The blend kernels' taps: columns x and x + 1 weighted 1 − wx and wx, rows rowY and rowY1
 * weighted 1 − wy and wy. `rowC1` (per output row, the offset of rowY1's chroma row) when the
 * taps do not share one chroma sample: each tap then takes the chroma of its own column and row.
 */
export interface BlendTaps {
  readonly rowY1: Int32Array
  readonly rowC1?: Int32Array
  readonly wx: number
  readonly wy: number
}

/** Runs the point kernel; false (nothing written) when this runtime has no SIMD or the step is over 5. */
export const pointSimd = (job: SimdJob): boolean => run(job, undefined)

/**
 * Runs a blend kernel; false (nothing written) when this runtime has no SIMD or the step is over 7
 * (over 4 when the taps do not share one chroma sample).
 */
export const blendSimd = (job: SimdJob, taps: BlendTaps): boolean => run(job, taps)

/** Copies `rows` rows of `length` elements, `srcRow` apart from `from` in `src`, to `rowStep` apart from `to` in `out`. */
const copyRows = (
  src: Float32Array | Uint8Array,
  from: number,
  srcRow: number,
  length: number,
  out: Float32Array | Uint8Array,
  to: number,
  rowStep: number,
  rows: number
): void => {
  // Same element type on both sides (the caller's choice), so each set is one memory copy.
  if (srcRow === length && rowStep === length) {
    out.set(src.subarray(from, from + length * rows), to)
  } else {
    for (let y = 0; y < rows; y++) out.set(src.subarray(from + y * srcRow, from + y * srcRow + length), to + y * rowStep)
  }
}

const run = (job: SimdJob, taps: BlendTaps | undefined): boolean => {
  let kernel = (instance ??= instantiate())
  // The four pixels' luma taps (up to 3·step + 1) must fit one 16-byte load, or (blendw) two
  // pixels' taps (up to step + 1) each of two loads.
  const maxStep = taps === undefined ? 5 : taps.rowC1 === undefined ? 7 : 4
  if (kernel === undefined || job.step < 1 || job.step > maxStep || job.width < 1 || job.height < 1) return false
  const wide = taps !== undefined && job.step > 4
  const { data, frameBytes, rowY, rowC, x0, step, width, height, coefficients: k, out } = job
  const groups = Math.ceil(width / 4)
  const planeBytes = height * groups * 16
  // Layout: coefficients, masks and weights | row tables | frame (+ slack) | R, G, B planes.
  const rowYAt = COEF_BYTES
  const rowY1At = align16(rowYAt + 4 * height)
  const rowCAt = align16(rowY1At + (taps === undefined ? 0 : 4 * height))
  const rowC1At = align16(rowCAt + 4 * height)
  const frameAt = align16(rowC1At + (taps?.rowC1 === undefined ? 0 : 4 * height))
  const outAt = align16(frameAt + frameBytes + SLACK)
  // Any output but planar float32 is packed from the planes into a region after them.
  const interleaved = job.layout === "nhwc"
  const bytesOut = out instanceof Uint8Array
  const packed = height * groups
  const packAt = outAt + 3 * planeBytes
  const packBytes = interleaved ? packed * (bytesOut ? 12 : 48) + 16 : bytesOut ? 3 * packed * 4 : 0
  const needed = packAt + packBytes
  if (kernel.memory.buffer.byteLength > SHRINK_FROM_BYTES && needed * 4 <= kernel.memory.buffer.byteLength) {
    if (++smallCalls >= SHRINK_AFTER) {
      smallCalls = 0
      kernel = instance = instantiate() ?? kernel
    }
  } else {
    smallCalls = 0
  }
  const have = kernel.memory.buffer.byteLength
  if (needed > have) kernel.memory.grow(Math.ceil((needed - have) / 65536))
  const buffer = kernel.memory.buffer
  const bytes = new Uint8Array(buffer)
  const floats = new Float32Array(buffer)
  const ints = new Int32Array(buffer)

  floats.set([k.yScale, k.yOffset, k.rv, k.gu, k.gv, k.bu, k.mulR, k.mulG, k.mulB, k.addR, k.addG, k.addB], 0)
  // Swizzle masks: byte 0 of u32 lane i takes source byte mask[i]; 0x80 zeroes the other bytes.
  const cx0 = (x0 >> 1) << 1
  bytes.fill(0x80, 48, 112)
  bytes.fill(0x80, 128, 192)
  for (let i = 0; i < 4; i++) {
    const chroma = (((x0 + step * i) >> 1) << 1) - cx0
    if (wide) {
      // blendw: pixels 2 and 3 from the second load, 2·step bytes on (an even offset, as cx0 is).
      const [at, from] = i < 2 ? [0, 0] : [80, 2 * step]
      bytes[48 + at + 4 * i] = step * i - from
      bytes[64 + at + 4 * i] = chroma - from
      bytes[80 + at + 4 * i] = chroma + 1 - from
      bytes[96 + at + 4 * i] = step * i + 1 - from
    } else {
      const chroma1 = (((x0 + step * i + 1) >> 1) << 1) - cx0
      bytes[48 + 4 * i] = step * i
      bytes[64 + 4 * i] = chroma
      bytes[80 + 4 * i] = chroma + 1
      bytes[96 + 4 * i] = step * i + 1
      bytes[128 + 4 * i] = chroma1
      bytes[144 + 4 * i] = chroma1 + 1
    }
  }
  if (!wide) ints[160 / 4] = rowC1At
  for (let y = 0; y < height; y++) {
    ints[rowYAt / 4 + y] = rowY[y]! + x0
    ints[rowCAt / 4 + y] = rowC[y]! + cx0
  }
  bytes.set(frameBytes === data.length ? data : data.subarray(0, frameBytes), frameAt)

  const outR = outAt
  const outG = outAt + planeBytes
  const outB = outAt + 2 * planeBytes
  if (taps !== undefined) {
    const { rowY1, rowC1, wx, wy } = taps
    for (let y = 0; y < height; y++) ints[rowY1At / 4 + y] = rowY1[y]! + x0
    if (rowC1 !== undefined) for (let y = 0; y < height; y++) ints[rowC1At / 4 + y] = rowC1[y]! + cx0
    floats.set([(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy], 112 / 4)
  }
  const convert = taps === undefined
    ? kernel.point
    : taps.rowC1 !== undefined
    ? kernel.blendc
    : wide
    ? kernel.blendw
    : kernel.blend
  convert(frameAt, rowYAt, rowY1At, rowCAt, 4 * step, groups, height, outR, outG, outB, 0)

  const planeAt = [outR, outG, outB]
  const offsets = [job.offR, job.offG, job.offB]
  if (interleaved) {
    // The planes in output channel order: channel k takes the colour whose offset in the pixel is k.
    const [c0, c1, c2] = [0, 1, 2].map((k) => planeAt[offsets.indexOf(k)]!) as [number, number, number]
    ;(bytesOut ? kernel.interleaveBytes : kernel.interleave)(c0, c1, c2, packAt, packed)
    const view = bytesOut ? bytes : floats
    const at = bytesOut ? packAt : packAt / 4
    copyRows(view, at, groups * 12, width * 3, out, job.base, job.rowStep, height)
  } else {
    for (let c = 0; c < 3; c++) {
      let at = planeAt[c]! / 4
      if (bytesOut) {
        at = packAt + c * packed * 4
        kernel.bytes(planeAt[c]!, at, packed)
      }
      copyRows(bytesOut ? bytes : floats, at, groups * 4, width, out, job.base + offsets[c]!, job.rowStep, height)
    }
  }
  served++
  return true
}
