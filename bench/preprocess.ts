/**
 * Preprocessing benchmark: NV12 frame → letterboxed NCHW float32 tensor, and for 1920x1080 →
 * 640 (natural frames) also NHWC float32, NCHW uint8 and NHWC uint8 (not compared with OpenCV).
 *
 *   npx tsx bench/preprocess.ts [--json] [--iterations N] [--no-opencv]
 *
 * When a Python with OpenCV is available, the same frames are also run through
 * cv2.cvtColor(NV12→RGB) + cv2.resize + cv2.copyMakeBorder + cv2.dnn.blobFromImage in a
 * subprocess (single-threaded, like ours), and the OpenCV tensor of the first frame is compared
 * with ours as a cross-check.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Result } from "effect"
import { imageToNv12, type Nv12Image } from "../src/frames/image.js"
import { type FrameView, type KernelChoice, makePreprocessOptions, preprocess, tensorLength } from "../src/frames/preprocess.js"
import { isMainModule, jsonOutput, option } from "./cli.js"

export interface PreprocessBenchOptions {
  readonly iterations?: number
  readonly warmup?: number
  /** Distinct frames cycled through, so the source is not always hot in cache. */
  readonly frames?: number
  /** Also time OpenCV when a Python with cv2 is found (default true). */
  readonly opencv?: boolean
}

type Output = { readonly layout: "nchw" | "nhwc"; readonly dtype: "float32" | "uint8" }

export interface PreprocessBenchRow {
  readonly source: string
  readonly target: string
  /** Layout and dtype, e.g. "nchw float32". */
  readonly output: string
  readonly content: "natural" | "noise"
  readonly medianMs: number
  readonly p99Ms: number
  /** The same with the JavaScript kernels only (`{ simd: false }`), in the same process. */
  readonly jsMedianMs: number
  /** jsMedianMs / medianMs: what the SIMD kernel gains (1 where it does not apply). */
  readonly simdGain: number
  /** OpenCV pipeline, one thread, same frames, default malloc (as a Python service would run it). */
  readonly opencvMedianMs?: number
  /** opencvMedianMs / medianMs. */
  readonly opencvRatio?: number
  /**
   * Same, with glibc told never to return memory to the OS: the ~11 MB of fresh temporaries per
   * frame otherwise cost page faults that dominate OpenCV's time.
   */
  readonly opencvWarmHeapMedianMs?: number
  readonly opencvWarmHeapRatio?: number
  /** Max |ours − OpenCV| over the first frame's tensor, in 0–255 pixel levels. */
  readonly maxDiffVsOpencvLevels?: number
}

const sources = [
  { width: 1920, height: 1080 },
  { width: 1280, height: 720 }
] as const
const targets = [640, 320] as const

/** A camera-like scene: sky gradient, ground, shapes in saturated colours, text. */
const sceneSvg = (width: number, height: number, seed: number): string => {
  let s = Math.imul(seed, 2654435761) >>> 0
  const rnd = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    return s / 4294967296
  }
  const shapes: Array<string> = []
  for (let i = 0; i < 40; i++) {
    const hue = Math.floor(rnd() * 360)
    const x = Math.floor(rnd() * width)
    const y = Math.floor(height * 0.3 + rnd() * height * 0.7)
    const w = Math.floor(20 + rnd() * width * 0.15)
    const h = Math.floor(20 + rnd() * height * 0.2)
    shapes.push(
      i % 3 === 0
        ? `<circle cx="${x}" cy="${y}" r="${w / 2}" fill="hsl(${hue},70%,50%)"/>`
        : `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="6" fill="hsl(${hue},60%,${30 + (i % 5) * 10}%)"/>`
    )
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
  <defs>
    <linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#4a7bd0"/><stop offset="1" stop-color="#dfe9f5"/></linearGradient>
    <linearGradient id="ground" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#5b6b3a"/><stop offset="1" stop-color="#2f3324"/></linearGradient>
  </defs>
  <rect width="${width}" height="${height}" fill="url(#sky)"/>
  <rect y="${height * 0.45}" width="${width}" height="${height * 0.55}" fill="url(#ground)"/>
  ${shapes.join("\n  ")}
  <text x="${width * 0.05}" y="${height * 0.12}" font-family="DejaVu Sans" font-size="${height / 14}" fill="#ffffff">CAM-${seed} 2024-05-01 12:00:0${seed % 10}</text>
</svg>`
}

const noiseFrame = (width: number, height: number, seed: number): Nv12Image => {
  const data = new Uint8Array((width * height * 3) / 2)
  let s = Math.imul(seed + 1, 2246822519) >>> 0
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    data[i] = s >>> 24
  }
  return { data, width, height }
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!

const toView = (img: Nv12Image): FrameView => ({
  data: img.data,
  width: img.width,
  height: img.height,
  stride: img.width,
  format: "NV12"
})

const findOpencvPython = (): string | undefined => {
  for (const py of ["/usr/bin/python3", "python3"]) {
    const probe = spawnSync(py, ["-c", "import cv2, numpy"], { stdio: "ignore" })
    if (probe.status === 0) return py
  }
  return undefined
}

const opencvScript = String.raw`
import json, sys, time
import numpy as np
import cv2
cv2.setNumThreads(1)
cfg = json.load(sys.stdin)
out = []
for case in cfg["cases"]:
    w, h, tw, th = case["width"], case["height"], case["targetWidth"], case["targetHeight"]
    frames = [np.fromfile(p, dtype=np.uint8).reshape(h * 3 // 2, w) for p in case["frames"]]
    scale = min(tw / w, th / h)
    cw, ch = int(w * scale + 0.5), int(h * scale + 0.5)
    px, py = (tw - cw) // 2, (th - ch) // 2
    def run(nv12):
        rgb = cv2.cvtColor(nv12, cv2.COLOR_YUV2RGB_NV12)
        img = cv2.resize(rgb, (cw, ch), interpolation=cv2.INTER_LINEAR)
        img = cv2.copyMakeBorder(img, py, th - ch - py, px, tw - cw - px, cv2.BORDER_CONSTANT, value=(114, 114, 114))
        return cv2.dnn.blobFromImage(img, scalefactor=1 / 255)
    for i in range(cfg["warmup"]):
        run(frames[i % len(frames)])
    times = []
    for i in range(cfg["iterations"]):
        f = frames[i % len(frames)]
        t = time.perf_counter()
        run(f)
        times.append((time.perf_counter() - t) * 1000)
    run(frames[0]).astype(np.float32).tofile(case["blobOut"])
    times.sort()
    out.append({"medianMs": times[len(times) // 2]})
print(json.dumps(out))
`

interface BenchCase {
  readonly source: { readonly width: number; readonly height: number }
  readonly target: number
  readonly output: Output
  readonly content: "natural" | "noise"
  readonly frames: ReadonlyArray<Nv12Image>
}

const planarFloat: Output = { layout: "nchw", dtype: "float32" }
/** The other outputs, timed for one geometry. */
const otherOutputs: ReadonlyArray<Output> = [
  { layout: "nhwc", dtype: "float32" },
  { layout: "nchw", dtype: "uint8" },
  { layout: "nhwc", dtype: "uint8" }
]
const isPlanarFloat = (c: BenchCase): boolean => c.output.layout === "nchw" && c.output.dtype === "float32"

const timeOurs = (
  c: BenchCase,
  iterations: number,
  warmup: number,
  kernels: KernelChoice = {}
): { medianMs: number; p99Ms: number; first: Float32Array } => {
  const options = makePreprocessOptions({ width: c.target, height: c.target, ...c.output })
  const out = options.dtype === "uint8" ? new Uint8Array(tensorLength(options)) : new Float32Array(tensorLength(options))
  const views = c.frames.map(toView)
  for (let i = 0; i < warmup; i++) preprocess(views[i % views.length]!, options, out, kernels)
  const times: Array<number> = []
  for (let i = 0; i < iterations; i++) {
    const view = views[i % views.length]!
    const t0 = performance.now()
    preprocess(view, options, out, kernels)
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  // cv2's COLOR_YUV2RGB_NV12 is limited-range BT.601, so the cross-check uses that range.
  const first = Result.getOrThrow(preprocess(views[0]!, makePreprocessOptions({ ...options, ...planarFloat, range: "limited" }))).tensor
  return { medianMs: percentile(times, 0.5), p99Ms: percentile(times, 0.99), first: first as Float32Array }
}

const warmHeapEnv = {
  MALLOC_MMAP_THRESHOLD_: "1000000000",
  MALLOC_TRIM_THRESHOLD_: "1000000000",
  MALLOC_TOP_PAD_: "100000000"
}

const timeOpencv = (
  python: string,
  cases: ReadonlyArray<BenchCase>,
  iterations: number,
  warmup: number,
  env: Readonly<Record<string, string>>
): Array<{ medianMs: number; blob: Float32Array } | undefined> => {
  const dir = mkdtempSync(join(tmpdir(), "preprocess-bench-"))
  try {
    const cfgCases = cases.map((c, ci) => ({
      width: c.source.width,
      height: c.source.height,
      targetWidth: c.target,
      targetHeight: c.target,
      blobOut: join(dir, `blob-${ci}.f32`),
      frames: c.frames.map((f, fi) => {
        const path = join(dir, `frame-${ci}-${fi}.nv12`)
        writeFileSync(path, f.data)
        return path
      })
    }))
    const result = spawnSync(python, ["-c", opencvScript], {
      input: JSON.stringify({ cases: cfgCases, iterations, warmup }),
      encoding: "utf8",
      maxBuffer: 1 << 20,
      env: { ...process.env, ...env }
    })
    if (result.status !== 0) {
      process.stderr.write(`OpenCV subprocess failed: ${result.stderr}\n`)
      return cases.map(() => undefined)
    }
    const parsed = JSON.parse(result.stdout) as Array<{ medianMs: number }>
    return cfgCases.map((cc, i) => {
      const row = parsed[i]
      if (row === undefined) return undefined
      const bytes = readFileSync(cc.blobOut)
      return { medianMs: row.medianMs, blob: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) }
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export const runPreprocessBench = async (opts: PreprocessBenchOptions = {}): Promise<Array<PreprocessBenchRow>> => {
  const iterations = Math.max(200, opts.iterations ?? 300)
  const warmup = opts.warmup ?? 50
  const frameCount = Math.max(1, opts.frames ?? 4)
  const cases: Array<BenchCase> = []
  for (const source of sources) {
    const natural = await Promise.all(
      Array.from({ length: frameCount }, (_, i) =>
        imageToNv12(Buffer.from(sceneSvg(source.width, source.height, i + 1)), source)
      )
    )
    const noise = Array.from({ length: frameCount }, (_, i) => noiseFrame(source.width, source.height, i))
    for (const target of targets) {
      cases.push({ source, target, output: planarFloat, content: "natural", frames: natural })
      cases.push({ source, target, output: planarFloat, content: "noise", frames: noise })
    }
    if (source.width === 1920) {
      for (const output of otherOutputs) cases.push({ source, target: 640, output, content: "natural", frames: natural })
    }
  }
  const ours = cases.map((c) => timeOurs(c, iterations, warmup))
  const jsOnly = cases.map((c) => timeOurs(c, iterations, warmup, { simd: false }))
  const python = opts.opencv === false ? undefined : findOpencvPython()
  // OpenCV's pipeline makes planar float32; the other outputs are ours alone.
  const cvCases = cases.filter(isPlanarFloat)
  const cvTimed = python === undefined ? undefined : timeOpencv(python, cvCases, iterations, warmup, {})
  const cvWarmTimed = python === undefined ? undefined : timeOpencv(python, cvCases, iterations, warmup, warmHeapEnv)
  const cv = cases.map((c) => cvTimed?.[cvCases.indexOf(c)])
  const cvWarm = cases.map((c) => cvWarmTimed?.[cvCases.indexOf(c)])
  return cases.map((c, i) => {
    const mine = ours[i]!
    const theirs = cv[i]
    const warm = cvWarm[i]
    const base: PreprocessBenchRow = {
      source: `${c.source.width}x${c.source.height}`,
      target: `${c.target}x${c.target}`,
      output: `${c.output.layout} ${c.output.dtype}`,
      content: c.content,
      medianMs: mine.medianMs,
      p99Ms: mine.p99Ms,
      jsMedianMs: jsOnly[i]!.medianMs,
      simdGain: jsOnly[i]!.medianMs / mine.medianMs
    }
    if (theirs === undefined) return base
    let maxDiff = 0
    for (let k = 0; k < mine.first.length; k++) {
      maxDiff = Math.max(maxDiff, Math.abs(mine.first[k]! - (theirs.blob[k] ?? Number.NaN)) * 255)
    }
    return {
      ...base,
      opencvMedianMs: theirs.medianMs,
      opencvRatio: theirs.medianMs / mine.medianMs,
      ...(warm !== undefined
        ? { opencvWarmHeapMedianMs: warm.medianMs, opencvWarmHeapRatio: warm.medianMs / mine.medianMs }
        : {}),
      maxDiffVsOpencvLevels: maxDiff
    }
  })
}

const fmt = (v: number | undefined, digits = 3): string => (v === undefined ? "-" : v.toFixed(digits))

export const formatPreprocessTable = (rows: ReadonlyArray<PreprocessBenchRow>): string => {
  const header = [
    "source",
    "target",
    "output",
    "content",
    "median ms",
    "p99 ms",
    "js-only ms",
    "js/ours",
    "opencv ms",
    "opencv/ours",
    "opencv warm-heap ms",
    "warm-heap/ours",
    "max diff vs cv2 (levels)"
  ]
  const body = rows.map((r) => [
    r.source,
    r.target,
    r.output,
    r.content,
    fmt(r.medianMs),
    fmt(r.p99Ms),
    fmt(r.jsMedianMs),
    fmt(r.simdGain, 2),
    fmt(r.opencvMedianMs),
    fmt(r.opencvRatio, 2),
    fmt(r.opencvWarmHeapMedianMs),
    fmt(r.opencvWarmHeapRatio, 2),
    fmt(r.maxDiffVsOpencvLevels, 2)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: ReadonlyArray<string>): string => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ")
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n")
}

if (isMainModule(import.meta.url)) {
  const args = process.argv.slice(2)
  const json = jsonOutput()
  const iterations = Number(option("iterations"))
  const rows = await runPreprocessBench({
    ...(Number.isFinite(iterations) ? { iterations } : {}),
    opencv: !args.includes("--no-opencv")
  })
  if (json) {
    for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`)
  } else {
    process.stdout.write(`${formatPreprocessTable(rows)}\n`)
    if (!args.includes("--no-opencv") && rows.every((r) => r.opencvMedianMs === undefined)) {
      process.stdout.write("(OpenCV not found: install python3-opencv to compare)\n")
    }
  }
}
