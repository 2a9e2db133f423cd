import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import sharp from "sharp"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { exitOf } from "../support/child.js"
import { ruthModel, spawnRuthModel } from "../support/cli.js"
import { ExitCode } from "../../src/cli/common.js"
import { startContainer, tempDir, writeFrameFile } from "../support/harness.js"
import { accountedFor, openLoopRows, scriptedAnswer } from "../support/openLoop.js"
import { startOriginalServer, startScriptedServer } from "../support/originalServer.js"

/** A handler whose "session" runs one request at a time, reporting its wait and run as the ONNX backend does. */
const queueingHandler = () => {
  let session: Promise<void> = Promise.resolve()
  return {
    infer: () =>
      Effect.promise(async () => {
        const queued = performance.now()
        const turn = session
        let done = () => {}
        session = new Promise<void>((r) => (done = r))
        await turn
        const started = performance.now()
        await new Promise((r) => setTimeout(r, 10))
        const ran = performance.now()
        done()
        return { detections: [], metadata: { session_wait_ms: started - queued, inference_ms: ran - started } }
      })
  }
}

describe("ruth-model CLI", () => {
  it.live("health: exit 0 and a summary when ready; exit 3 when nothing listens", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const ok = yield* ruthModel(["health", "--socket", c.socketPath])
      expect(ok.code).toBe(0)
      expect(ok.stdout).toMatch(/^ready: model test-model/)
      const json = yield* ruthModel(["health", "--socket", c.socketPath, "--json"])
      expect(JSON.parse(json.stdout)).toMatchObject({ op: "health", status: "ready", model_id: "test-model" })
      const down = yield* ruthModel(["health", "--socket", `${c.dir}/nothing.sock`])
      expect(down.code).toBe(3)
      expect(down.stderr).toContain("cannot connect")
    }))

  it.live("infer: prints the response, exit 1 on an error response", () =>
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

  it.live("infer --traceparent: the request carries it (the handler sees it)", () =>
    Effect.gen(function*() {
      const seen: Array<unknown> = []
      const c = yield* startContainer({ handler: { infer: (req) => Effect.sync(() => seen.push(req.traceparent)).pipe(Effect.as([])) } })
      const frame = writeFrameFile(c.dir, "frame", 64, 48)
      const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
      const args = ["infer", "--socket", c.socketPath, "--frame", frame, "--width", "64", "--height", "48"]
      expect((yield* ruthModel([...args, "--traceparent", traceparent])).code).toBe(0)
      expect((yield* ruthModel(args)).code).toBe(0)
      expect(seen).toEqual([traceparent, undefined])
    }))

  it.live("infer --image: publishes the image in either layout, annotates the answer, leaves nothing in /dev/shm", () =>
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

  it.live("bench --json: one JSON object with throughput and percentiles, no failures", () =>
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

  it.live("bench: where the time went, from the answers' timings (a custom handler counts as the model)", () =>
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
      expect(stages.outsideModelAndQueueMs).toBeGreaterThan(0)
      expect(stages.outsideModelAndQueueMs).toBeLessThan(stages.model)
      expect(stages.shareOutsideModelAndQueue).toBeCloseTo(stages.outsideModelAndQueueMs / stages.totalMs, 6)
      expect(stages.modelShare).toBeCloseTo(stages.model / stages.totalMs, 6)
      expect(stages).not.toHaveProperty("sessionWaitShare")
      // No backend stages were reported, so none are made up.
      expect(stages).not.toHaveProperty("preprocess")
      const human = yield* ruthModel(args)
      expect(human.code).toBe(0)
      expect(human.stdout).toMatch(/stages {6}medians of \d+ answers, ms: socket\+codec [\d.]+ {2}frame read [\d.]+ {2}handler [\d.]+ {2}runtime [\d.]+/)
      expect(human.stdout).toMatch(/split {7}of the median round trip [\d.]+ ms: handler \(its whole time\) [\d.]+ ms \([\d.]+%\), outside the handler [\d.]+ ms \([\d.]+%\)/)
    }))

  it.live("bench --image: every request names the published image, which is gone afterwards; --frame and --image exclude each other", () =>
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

  it.live("bench --cameras --fps: the open loop, each camera at its rate, one row per camera and a total; --json one object", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const args = ["bench", "--socket", c.socketPath, "--cameras", "2", "--fps", "20,40", "--duration", "1"]
      const json = yield* ruthModel([...args, "--json"])
      expect(json.code, json.stderr).toBe(0)
      const r = JSON.parse(json.stdout)
      expect(r).toMatchObject({
        mode: "open-loop",
        connections: "per-request",
        stopped: false,
        cameras: [{ camera_id: "cam-1", fps: 20 }, { camera_id: "cam-2", fps: 40 }],
        total: { fps: 60, failures: 0, unanswered: 0 }
      })
      // Sent on schedule: 20 and 40 frames/s for 1 s.
      expect(r.cameras[0].sent).toBeGreaterThanOrEqual(18)
      expect(r.cameras[0].sent).toBeLessThanOrEqual(21)
      expect(r.cameras[1].sent).toBeGreaterThanOrEqual(36)
      expect(r.cameras[1].sent).toBeLessThanOrEqual(41)
      for (const counts of [...r.cameras, r.total]) expect(accountedFor(counts)).toBe(counts.sent)
      expect(r.total.ok).toBeGreaterThan(0)
      expect(r.total.frameAgeMs.p99).toBeGreaterThanOrEqual(r.total.frameAgeMs.p50)
      expect(json.stderr).toMatch(/\d+ sent +\d+ ok/) // live progress

      const text = yield* ruthModel([...args, "--persistent"])
      expect(text.code, text.stderr).toBe(0)
      expect(text.stdout).toMatch(/^open loop: 2 camera\(s\), 60 frames\/s in all for 1\.00 s, one pipelined connection per camera \(--persistent\)\n/)
      const rows = openLoopRows(text.stdout)
      expect(Object.keys(rows)).toEqual(["cam-1", "cam-2", "total"])
      expect(Object.keys(rows.total!)).toEqual([
        "camera", "fps", "sent", "ok", "expired", "superseded", "overloaded", "timeout", "other", "unanswered", "failed", "ok/s", "age p50 ms", "age p99 ms", "age max ms"
      ])
      expect(Number(rows.total!.sent)).toBe(Number(rows["cam-1"]!.sent) + Number(rows["cam-2"]!.sent))
      expect(rows.total!.failed).toBe("0")
    }))

  it.live("bench --cameras: answers counted under their error codes, codes without a column listed below the table", () =>
    Effect.gen(function*() {
      const server = yield* startScriptedServer(scriptedAnswer([]))
      // 0.6 s at 50 frames/s: 30 frames, five of each scripted answer.
      const r = yield* ruthModel(["bench", "--socket", server.socketPath, "--model-id", "m", "--cameras", "1", "--fps", "50", "--duration", "0.6"])
      expect(r.code, r.stderr).toBe(0)
      expect(openLoopRows(r.stdout).total).toMatchObject({
        sent: "30", ok: "5", expired: "5", superseded: "5", overloaded: "5", timeout: "0", other: "10", unanswered: "0", failed: "0"
      })
      expect(r.stdout).toContain("other error codes: SOMETHING_NEW 5, NO_CODE 5")
      expect(r.stdout).toContain("first error answer: scripted FRAME_EXPIRED")
    }))

  it.live("validate and discover: exit codes, human and --json output", () =>
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

describe("ruth-model against the original server (one request per connection, no extensions)", () => {
  it.live("infer takes the model id from the socket's name; a name without it needs --model-id", () =>
    Effect.gen(function*() {
      const original = yield* startOriginalServer("original-model")
      const args = ["--frame", "/dev/shm/cam1", "--width", "64", "--height", "48", "--frame-id", "5"]
      const ok = yield* ruthModel(["infer", "--socket", original.socketPath, ...args])
      expect(ok.code, ok.stderr).toBe(0)
      expect(JSON.parse(ok.stdout)).toMatchObject({ model_id: "original-model", camera_id: "cli", frame_id: 5, error: null })
      // Elsewhere the name says nothing: health is asked, the original closes, and the message says what to do.
      const renamed = `${original.dir}/model.sock`
      fs.symlinkSync(original.socketPath, renamed)
      const unnamed = yield* ruthModel(["infer", "--socket", renamed, ...args])
      expect(unnamed.code).toBe(3)
      expect(unnamed.stderr).toContain("--model-id")
      const given = yield* ruthModel(["infer", "--socket", renamed, "--model-id", "original-model", ...args])
      expect(given.code, given.stderr).toBe(0)
    }))

  it.live("bench (pooled by default): every request answered, the report says the server closes after each answer", () =>
    Effect.gen(function*() {
      const original = yield* startOriginalServer("original-model")
      const json = yield* ruthModel(["bench", "--socket", original.socketPath, "--concurrency", "4", "--duration", "0.5", "--json"])
      expect(json.code, json.stderr).toBe(0)
      const result = JSON.parse(json.stdout)
      expect(result).toMatchObject({ failures: 0, errorResponses: 0, connections: "per-request-server-closes" })
      expect(result.requests).toBeGreaterThan(0)
      const text = yield* ruthModel(["bench", "--socket", original.socketPath, "--concurrency", "2", "--duration", "0.3"])
      expect(text.code, text.stderr).toBe(0)
      expect(text.stdout).toContain("connections one per request (the server closes after each answer)")
      expect(text.stdout).toMatch(/errors {6}0 error responses, 0 transport failures/)
    }))

  it.live("bench against our own server stays persistent", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const text = yield* ruthModel(["bench", "--socket", c.socketPath, "--concurrency", "2", "--duration", "0.3"])
      expect(text.code, text.stderr).toBe(0)
      expect(text.stdout).toContain("connections pooled (persistent)")
      const json = yield* ruthModel(["bench", "--socket", c.socketPath, "--concurrency", "2", "--duration", "0.3", "--json"])
      expect(JSON.parse(json.stdout)).toMatchObject({ connections: "persistent", failures: 0 })
    }))
})

describe("ruth-model exit codes and messages", () => {
  const image = "examples/scenes/street-sign.png"

  it.live("infer --out into a missing directory: the response, then one line naming the file, exit 1", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const r = yield* ruthModel(["infer", "--socket", c.socketPath, "--image", image, "--out", "/nonexistent-dir/a.jpg"])
      expect(r.code).toBe(1)
      expect(JSON.parse(r.stdout)).toMatchObject({ error: null })
      expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^ruth-model: cannot write \/nonexistent-dir\/a\.jpg: .*ENOENT/)])
    }))

  /** Runs each case (2 at a time) and checks its exit code and, when given, its one line on stderr. */
  const expectExits = (cases: ReadonlyArray<readonly [ReadonlyArray<string>, number, (string | undefined)?, Record<string, string>?]>) =>
    Effect.gen(function*() {
      const results = yield* Effect.forEach(cases, ([args, , , env]) => ruthModel(args, env), { concurrency: 2 })
      for (const [i, r] of results.entries()) {
        const [args, code, line] = cases[i]!
        expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(code)
        if (line !== undefined) expect(r.stderr.trim()).toBe(`ruth-model: ${line}`)
        expect(r.stderr).not.toMatch(/^\s+at /m) // no stack traces
      }
    })

  const socket = "/tmp/never-used.sock"

  it.live("infer: numeric flags are checked first and named, exit 2; the image is blamed only when it cannot be read", () =>
    Effect.gen(function*() {
      yield* expectExits([
        [["infer", "--socket", socket, "--image", image, "--width", "-5"], 2, "--width must be a positive integer, got -5"],
        [["infer", "--socket", socket, "--image", image, "--height", "0"], 2, "--height must be a positive integer, got 0"],
        [["infer", "--socket", socket, "--frame", "/dev/shm/x", "--width", "4", "--height", "4", "--stride", "-1"], 2, "--stride must be a positive integer, got -1"],
        [["infer", "--socket", socket, "--image", image, "--timeout-ms", "0"], 2, "--timeout-ms must be a positive integer, got 0"]
      ])
      const dir = yield* tempDir()
      fs.writeFileSync(`${dir}/not-an-image.png`, "text")
      const bad = yield* ruthModel(["infer", "--socket", socket, "--image", `${dir}/not-an-image.png`])
      expect(bad.code).toBe(2)
      expect(bad.stderr).toContain(`cannot read ${dir}/not-an-image.png as an image`)
    }), 120_000)

  it.live("bench and health: numeric flags are refused at once, exit 2, naming the flag", () =>
    expectExits([
      [["bench", "--socket", socket, "-c", "0"], 2, "--concurrency must be a positive integer, got 0"],
      [["bench", "--socket", socket, "-c", "-1"], 2, "--concurrency must be a positive integer, got -1"],
      [["bench", "--socket", socket, "--duration", "0"], 2, "--duration must be a positive number of seconds, got 0"],
      [["bench", "--socket", socket, "--duration", "-2"], 2, "--duration must be a positive number of seconds, got -2"],
      [["bench", "--socket", socket, "--image", image, "--width", "-5"], 2, "--width must be a positive integer, got -5"],
      [["health", "--socket", socket, "--timeout-ms", "-1"], 2, "--timeout-ms must be a positive integer, got -1"]
    ]), 120_000)

  it.live("bench's open-loop flags: checked before anything else, exit 2, one line naming the flag", () =>
    expectExits([
      [["bench", "--socket", socket, "--cameras", "0"], 2, "--cameras must be a positive integer, got 0"],
      [["bench", "--socket", socket, "--cameras", "2", "-c", "4"], 2, "--cameras excludes --concurrency (open loop: cameras at their rates; closed loop: clients waiting for answers)"],
      [["bench", "--socket", socket, "--fps", "30"], 2, "--fps needs --cameras K (the open loop)"],
      [["bench", "--socket", socket, "--persistent"], 2, "--persistent needs --cameras K (the open loop)"],
      [["bench", "--socket", socket, "--cameras", "2", "--persistent", "--connect-per-request"], 2, "give at most one of --connect-per-request or --persistent"],
      [["bench", "--socket", socket, "--cameras", "4", "--fps", "30,30"], 2, "--fps gives 2 rates for 4 camera(s): give one for all or one per camera"],
      [["bench", "--socket", socket, "--cameras", "2", "--fps", "30,fast"], 2, "--fps must be positive frames per second, one value or one per camera, got 30,fast"],
      [["bench", "--socket", socket, "--cameras", "2", "--fps", "0"], 2, "--fps must be positive frames per second, one value or one per camera, got 0"],
      [["bench", "--socket", socket, "--cameras", "2", "--fps", "30,"], 2, "--fps must be positive frames per second, one value or one per camera, got 30,"]
    ]), 120_000)

  const noEnv = { RUTH_MODEL_ID: "" }
  const noSocket = "give --socket PATH (or set RUTH_MODEL_ID to use the default path)"

  it.live("health: 0 ready, 1 not ready, 2 usage, 3 unreachable", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const starting = yield* startScriptedServer(() => ({
        op: "health", status: "starting", model_id: "m", model_version: "1", version: "x",
        uptime_seconds: 0, total_requests: 0, total_errors: 0, inflight: 0, max_inflight: 1
      }))
      yield* expectExits([
        [["health", "--socket", c.socketPath], 0],
        [["health", "--socket", starting.socketPath], 1],
        [["health"], 2, noSocket, noEnv],
        [["health", "--socket", c.socketPath, "--bogus"], 2],
        [["health", "--socket", `${c.dir}/vas_model_nothing.sock`], 3]
      ])
    }), 120_000)

  it.live("infer: 0 answered, 1 error response, 2 usage (ours and the CLI parser's), 3 unreachable", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const frame = writeFrameFile(c.dir, "frame", 64, 48)
      const frameArgs = ["--frame", frame, "--width", "64", "--height", "48"]
      yield* expectExits([
        [["infer", "--socket", c.socketPath, ...frameArgs], 0],
        [["infer", "--socket", c.socketPath, "--frame", `${c.dir}/none`, "--width", "64", "--height", "48"], 1],
        [["infer", ...frameArgs], 2, noSocket, noEnv],
        [["infer", "--socket", c.socketPath, "--frame", frame], 2, "--frame needs --width and --height"],
        [["infer", "--socket", c.socketPath, "--frame", frame, "--width", "x", "--height", "48"], 2],
        [["infer", "--socket", `${c.dir}/vas_model_nothing.sock`, ...frameArgs], 3]
      ])
    }), 120_000)

  it.live("bench: 0 ran to its end, 2 usage (ours and the CLI parser's), 3 unreachable", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      yield* expectExits([
        [["bench", "--socket", c.socketPath, "--duration", "0.2"], 0],
        [["bench", "--duration", "0.2"], 2, noSocket, noEnv],
        [["bench", "--socket", c.socketPath, "--concurrency", "many"], 2],
        [["bench", "--socket", `${c.dir}/vas_model_nothing.sock`, "--duration", "0.2"], 3]
      ])
    }), 120_000)

  it.live("Ctrl+C during bench, closed or open loop: the report of what ran, exit 130 (SIGTERM: 143)", () =>
    Effect.gen(function*() {
      const c = yield* startContainer()
      const closed = ["--concurrency", "2"]
      const open = ["--cameras", "2", "--fps", "50"]
      const runs = [[closed, false, "SIGINT"], [closed, true, "SIGINT"], [open, false, "SIGINT"], [open, true, "SIGINT"], [closed, false, "SIGTERM"]] as const
      for (const [mode, json, stop] of runs) {
        const child = spawnRuthModel(["bench", "--socket", c.socketPath, ...mode, "--duration", "600", ...(json ? ["--json"] : [])])
        let stdout = ""
        let stderr = ""
        child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
        // Once the live progress shows answers, interrupt.
        yield* Effect.promise(() =>
          new Promise<void>((resolve) => {
            child.stderr!.on("data", (d: Buffer) => {
              stderr += d.toString()
              if (child.signalCode === null && !child.killed && /[1-9]\d* (requests|ok)/.test(stderr)) {
                child.kill(stop) // once: a second Ctrl+C ends a process the default way
                resolve()
              }
            })
          })
        )
        const { code, signal } = yield* Effect.promise(() => exitOf(child))
        expect(code, `${signal} ${stdout} ${stderr}`).toBe(stop === "SIGINT" ? ExitCode.interrupted : ExitCode.terminated)
        if (mode === open) {
          if (json) expect(JSON.parse(stdout)).toMatchObject({ mode: "open-loop", stopped: true, total: { failures: 0 } })
          else expect(stdout).toMatch(/^open loop: 2 camera\(s\), 100 frames\/s in all for [\d.]+ s, one connection per request \(stopped early\)\n/)
        } else if (json) expect(JSON.parse(stdout)).toMatchObject({ mode: "closed-loop", stopped: true, failures: 0 })
        else expect(stdout).toMatch(/^\d+ requests in [\d.]+ s with 2 client\(s\) \(stopped early\)/)
      }
    }), 120_000)

  it.live("Ctrl+C before the load began (still asking a silent server for its model id): exit 130", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir()
      // A socket whose name does not say the model, held by a server that never answers.
      const socketPath = path.join(dir, "silent.sock")
      const server = net.createServer(() => {})
      yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<void>((resolve) => server.listen(socketPath, resolve))),
        () => Effect.sync(() => server.close())
      )
      let connected!: () => void
      const asked = new Promise<void>((resolve) => (connected = resolve))
      server.on("connection", () => connected())
      const child = spawnRuthModel(["bench", "--socket", socketPath, "--timeout-ms", "60000", "--duration", "600"])
      let stdout = ""
      child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
      yield* Effect.promise(() => asked)
      child.kill("SIGINT")
      const { code } = yield* Effect.promise(() => exitOf(child))
      expect(code).toBe(130)
      expect(stdout).toBe("")
    }), 120_000)

  it.live("bench names queueing apart from the model: requests waiting for one session show a large queue share", () =>
    Effect.gen(function*() {
      const c = yield* startContainer({ handler: queueingHandler() })
      const frame = writeFrameFile(c.dir, "frame", 64, 48)
      const args = ["bench", "--socket", c.socketPath, "--frame", frame, "--width", "64", "--height", "48", "--concurrency", "6", "--duration", "1"]
      const r = yield* ruthModel([...args, "--json"])
      expect(r.code, r.stderr).toBe(0)
      const s = JSON.parse(r.stdout).stages
      // Six clients, one session: each request waits for the others' runs.
      expect(s.sessionWait).toBeGreaterThan(s.model)
      expect(s.sessionWaitShare).toBeGreaterThan(s.modelShare)
      expect(s.sessionWaitShare).toBeCloseTo(s.sessionWait / s.totalMs, 6)
      // The share outside the model and the queue does not include the queue.
      expect(s.outsideModelAndQueueMs).toBeLessThan(s.totalMs - s.sessionWait)
      expect(s.shareOutsideModelAndQueue).toBeLessThan(1 - s.sessionWaitShare)
      const human = yield* ruthModel(args)
      expect(human.stdout).toMatch(
        /split {7}of the median round trip [\d.]+ ms: model \(session\.run\) [\d.]+ ms \([\d.]+%\), queueing \(session wait\) [\d.]+ ms \([\d.]+%\), outside model and queue [\d.]+ ms \([\d.]+%\)/
      )
    }), 120_000)
})
