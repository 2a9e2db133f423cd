import * as fs from "node:fs"
import sharp from "sharp"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { ruthModel } from "../support/cli.js"
import { startContainer, tempDir, writeFrameFile } from "../support/harness.js"

describe("ruth-model CLI", () => {
  it.scopedLive("health: exit 0 and a summary when ready; exit 2 when nothing listens", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const ok = yield* ruthModel(["health", "--socket", c.socketPath])
      expect(ok.code).toBe(0)
      expect(ok.stdout).toMatch(/^ready: model test-model/)
      const json = yield* ruthModel(["health", "--socket", c.socketPath, "--json"])
      expect(JSON.parse(json.stdout)).toMatchObject({ op: "health", status: "ready", model_id: "test-model" })
      const down = yield* ruthModel(["health", "--socket", `${c.dir}/nothing.sock`])
      expect(down.code).toBe(2)
      expect(down.stderr).toContain("cannot connect")
    }))

  it.scopedLive("infer: prints the response, exit 1 on an error response", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const frame = writeFrameFile(c.dir, "frame", 64, 48)
      const ok = yield* ruthModel(["infer", "--socket", c.socketPath, "--frame", frame, "--width", "64", "--height", "48", "--frame-id", "9"])
      expect(ok.code).toBe(0)
      expect(JSON.parse(ok.stdout)).toMatchObject({ model_id: "test-model", frame_id: 9, error: null, detections: [] })
      const missing = yield* ruthModel(["infer", "--socket", c.socketPath, "--frame", `${c.dir}/none`, "--width", "64", "--height", "48"])
      expect(missing.code).toBe(1)
      expect(JSON.parse(missing.stdout)).toMatchObject({ error_code: "FRAME_NOT_FOUND" })
    }))

  it.scopedLive("infer --image: publishes the image in either layout, annotates the answer, leaves nothing in /dev/shm", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({
        handler: {
          infer: (_req, frame) =>
            Effect.succeed([{ class_id: 0, class_name: "sign", confidence: 0.8, bbox: [0.25, 0.25, 0.75, 0.75] }]).pipe(
              Effect.tap(() => Effect.sync(() => expect([frame.width, frame.height]).toEqual([1280, 720])))
            )
        }
      })
      for (const layout of ["raw", "export-dir"]) {
        const out = `${c.dir}/annotated-${layout}.jpg`
        const r = yield* ruthModel(["infer", "--socket", c.socketPath, "--image", "examples/scenes/street-sign.png", "--layout", layout, "--out", out])
        expect(r.code, r.stderr).toBe(0)
        expect(JSON.parse(r.stdout)).toMatchObject({ error: null, detections: [{ class_name: "sign" }] })
        const meta = yield* Effect.promise(() => sharp(out).metadata())
        expect(meta).toMatchObject({ format: "jpeg", width: 1280, height: 720 })
      }
      expect(fs.readdirSync("/dev/shm").filter((f) => f.startsWith("ruth-infer-"))).toEqual([])
    }))

  it.scopedLive("bench --json: one JSON object with throughput and percentiles, no failures", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const r = yield* ruthModel(["bench", "--socket", c.socketPath, "--concurrency", "4", "--duration", "1", "--connect-per-request", "--json"])
      expect(r.code).toBe(0)
      const result = JSON.parse(r.stdout)
      expect(result).toMatchObject({ concurrency: 4, connectPerRequest: true, errorResponses: 0, failures: 0 })
      expect(result.requests).toBeGreaterThan(0)
      expect(result.latencyMs.p99).toBeGreaterThanOrEqual(result.latencyMs.p50)
      expect(r.stderr).toMatch(/req\/s/) // live progress
    }))

  it.scopedLive("bench: where the time went, from the answers' timings (a custom handler counts as the model)", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({
        handler: { infer: () => Effect.as(Effect.sleep("15 millis"), { detections: [] }) }
      })
      const frame = writeFrameFile(c.dir, "frame", 64, 48)
      const args = ["bench", "--socket", c.socketPath, "--frame", frame, "--width", "64", "--height", "48", "--concurrency", "1", "--duration", "0.5"]
      const json = yield* ruthModel([...args, "--json"])
      expect(json.code, json.stderr).toBe(0)
      const result = JSON.parse(json.stdout)
      const stages = result.stages
      // Every answer carried the pipeline's timings; the handler slept 15 ms, which is most of each round trip.
      expect(stages).toMatchObject({ samples: result.requests, modelField: "inference_time_ms" })
      expect(stages.model).toBeGreaterThanOrEqual(15)
      expect(stages.totalMs).toBeGreaterThan(stages.model)
      expect(stages.outsideModelMs).toBeGreaterThan(0)
      expect(stages.outsideModelMs).toBeLessThan(stages.model)
      expect(stages.outsideModelShare).toBeCloseTo(stages.outsideModelMs / stages.totalMs, 6)
      // No backend stages were reported, so none are made up.
      expect(stages).not.toHaveProperty("preprocess")
      const human = yield* ruthModel(args)
      expect(human.code).toBe(0)
      expect(human.stdout).toMatch(/stages {6}medians of \d+ answers, ms: socket\+codec [\d.]+ {2}frame read [\d.]+ {2}handler [\d.]+ {2}runtime [\d.]+/)
      expect(human.stdout).toMatch(/outside the handler: [\d.]+ ms, [\d.]+% of the median round trip/)
    }))

  it.scopedLive("bench --image: every request names the published image, which is gone afterwards; --frame and --image exclude each other", () =>
    Effect.gen(function*() {
      const sizes = new Set<string>()
      const c = yield* startContainer({
        handler: { infer: (_req, frame) => Effect.sync(() => void sizes.add(`${frame.width}x${frame.height}`)).pipe(Effect.as([])) }
      })
      const r = yield* ruthModel(["bench", "--socket", c.socketPath, "--image", "examples/scenes/street-sign.png", "--concurrency", "2", "--duration", "0.5", "--json"])
      expect(r.code, r.stderr).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ errorResponses: 0, failures: 0 })
      expect([...sizes]).toEqual(["1280x720"])
      const resized = yield* ruthModel(["bench", "--socket", c.socketPath, "--image", "examples/scenes/street-sign.png", "--width", "640", "--height", "360", "--duration", "0.3", "--json"])
      expect(resized.code, resized.stderr).toBe(0)
      expect([...sizes]).toEqual(["1280x720", "640x360"])
      expect(fs.readdirSync("/dev/shm").filter((f) => /^ruth-bench-\d+\.nv12$/.test(f))).toEqual([])
      const both = yield* ruthModel(["bench", "--socket", c.socketPath, "--image", "examples/scenes/street-sign.png", "--frame", "/dev/shm/x"])
      expect(both.code).toBe(2)
      expect(both.stderr).toContain("at most one of --frame PATH or --image FILE")
    }))

  it.scopedLive("validate and discover: exit codes, human and --json output", () =>
    Effect.gen(function*() {
      const good = yield* ruthModel(["validate", "examples/models/text-detection"])
      expect(good.code).toBe(0)
      expect(good.stdout).toContain("valid: ")
      const dir = yield* tempDir()
      fs.mkdirSync(`${dir}/broken`)
      fs.writeFileSync(`${dir}/broken/model.yaml`, "model_id: broken\nconfidence_threshold: 2\n")
      fs.mkdirSync(`${dir}/empty`)
      const bad = yield* ruthModel(["validate", `${dir}/broken/model.yaml`, "--json"])
      expect(bad.code).toBe(1)
      const report = JSON.parse(bad.stdout)
      expect(report.valid).toBe(false)
      expect(report.problems.map((p: { path: string }) => p.path)).toEqual(
        expect.arrayContaining(["model_name", "model_version", "model_weights", "confidence_threshold"])
      )
      const table = yield* ruthModel(["discover", "--models-dir", dir])
      expect(table.code).toBe(0)
      expect(table.stdout).toMatch(/broken\s+unavailable\s+invalid_model_yaml/)
      expect(table.stdout).toMatch(/empty\s+unavailable\s+missing_model_yaml/)
      const json = JSON.parse((yield* ruthModel(["discover", "--models-dir", "examples/models", "--json"])).stdout)
      expect(json.models).toEqual([expect.objectContaining({ name: "text-detection", status: "available", model_id: "text-detection" })])
    }))

  it.live("--help lists every subcommand", () =>
    Effect.gen(function*() {
      const r = yield* ruthModel(["--help"])
      for (const sub of ["health", "infer", "bench", "validate", "discover", "serve", "demo"]) expect(r.stdout).toContain(sub)
      const h = yield* ruthModel(["bench", "--help"])
      expect(h.stdout).toContain("--connect-per-request")
    }))
})
