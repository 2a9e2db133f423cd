/**
 * The point kernel in WebAssembly SIMD (point.wat): NV12 → planar float32 when every output pixel
 * takes one whole source pixel at a fixed column step (1920→640 is exactly 3:1). The frame is
 * copied into the module's memory, converted four pixels at a time, and the rows copied out.
 * Where WebAssembly SIMD is missing, or the geometry does not fit, the caller's JavaScript kernel
 * runs instead.
 */
import type { ChannelAffine, YuvToRgb } from "../preprocess.js"
import { pointKernelBase64 } from "./pointKernel.js"

/** The part of the WebAssembly API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object
  readonly Instance: new (module: object, imports: object) => { readonly exports: object }
}

interface Instance {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number }
  readonly point: (
    frame: number,
    rowY: number,
    rowC: number,
    step4: number,
    groups: number,
    rows: number,
    outR: number,
    outG: number,
    outB: number,
    coef: number
  ) => void
}

const instantiate = (): Instance | undefined => {
  try {
    const wasm = (globalThis as unknown as { readonly WebAssembly: WasmApi }).WebAssembly
    const module = new wasm.Module(Buffer.from(pointKernelBase64, "base64"))
    return new wasm.Instance(module, {}).exports as Instance
  } catch {
    // A runtime without WebAssembly SIMD: the JavaScript kernels serve every geometry.
    return undefined
  }
}

let instance: Instance | undefined | null = null

/** Whether this runtime runs the SIMD kernel (loaded on first use). */
export const simdAvailable = (): boolean => (instance ??= instantiate()) !== undefined

/** The largest column step whose four pixels fit one 16-byte load. */
export const MAX_SIMD_STEP = 5

/** Bytes a load may reach past the last byte a row uses. */
const SLACK = 32

const align16 = (n: number): number => (n + 15) & ~15

export interface PointJob {
  /** The frame's bytes: luma rows, then interleaved UV rows. */
  readonly data: Uint8Array
  /** Bytes of `data` the kernel may read (the frame's length). */
  readonly frameBytes: number
  /** Per output row, the offset in `data` of its luma row and of its chroma row. */
  readonly rowY: Int32Array
  readonly rowC: Int32Array
  /** Source column of output column 0, and the columns between output columns. */
  readonly x0: number
  readonly step: number
  readonly width: number
  readonly height: number
  /** channel = clamp(yScale·(Y − yOffset) + chroma terms, 0, 255)·mul + add, for R, G and B. */
  readonly coefficients: YuvToRgb & ChannelAffine
  /** Planar output: R, G and B of content pixel (x, y) go to base + y·rowStep + x + off{R,G,B}. */
  readonly out: Float32Array
  readonly base: number
  readonly rowStep: number
  readonly offR: number
  readonly offG: number
  readonly offB: number
}

/** Runs `job` with SIMD; false (nothing written) when this runtime has no SIMD or the step is too large. */
export const pointSimd = (job: PointJob): boolean => {
  const kernel = (instance ??= instantiate())
  if (kernel === undefined || job.step < 1 || job.step > MAX_SIMD_STEP || job.width < 1 || job.height < 1) return false
  const { data, frameBytes, rowY, rowC, x0, step, width, height, coefficients: k, out } = job
  const groups = Math.ceil(width / 4)
  const planeBytes = height * groups * 16
  // Layout: coefficients and masks | row tables | frame (+ slack) | R, G, B planes.
  const coefAt = 0
  const rowYAt = 96
  const rowCAt = align16(rowYAt + 4 * height)
  const frameAt = align16(rowCAt + 4 * height)
  const outAt = align16(frameAt + frameBytes + SLACK)
  const needed = outAt + 3 * planeBytes
  const have = kernel.memory.buffer.byteLength
  if (needed > have) kernel.memory.grow(Math.ceil((needed - have) / 65536))
  const buffer = kernel.memory.buffer
  const bytes = new Uint8Array(buffer)
  const floats = new Float32Array(buffer)
  const ints = new Int32Array(buffer)

  floats.set([k.yScale, k.yOffset, k.rv, k.gu, k.gv, k.bu, k.mulR, k.mulG, k.mulB, k.addR, k.addG, k.addB], coefAt / 4)
  // Swizzle masks: byte 0 of u32 lane i takes source byte mask[i]; 0x80 zeroes the other bytes.
  const cx0 = (x0 >> 1) << 1
  bytes.fill(0x80, 48, 96)
  for (let i = 0; i < 4; i++) {
    const chroma = (((x0 + step * i) >> 1) << 1) - cx0
    bytes[48 + 4 * i] = step * i
    bytes[64 + 4 * i] = chroma
    bytes[80 + 4 * i] = chroma + 1
  }
  for (let y = 0; y < height; y++) {
    ints[rowYAt / 4 + y] = rowY[y]! + x0
    ints[rowCAt / 4 + y] = rowC[y]! + cx0
  }
  bytes.set(frameBytes === data.length ? data : data.subarray(0, frameBytes), frameAt)

  kernel.point(frameAt, rowYAt, rowCAt, 4 * step, groups, height, outAt, outAt + planeBytes, outAt + 2 * planeBytes, coefAt)

  const rowFloats = groups * 4
  const planes = [job.offR, job.offG, job.offB]
  for (let c = 0; c < 3; c++) {
    const src = (outAt + c * planeBytes) / 4
    const dst = job.base + planes[c]!
    if (rowFloats === width && job.rowStep === width) {
      out.set(floats.subarray(src, src + width * height), dst)
    } else {
      for (let y = 0; y < height; y++) out.set(floats.subarray(src + y * rowFloats, src + y * rowFloats + width), dst + y * job.rowStep)
    }
  }
  return true
}
