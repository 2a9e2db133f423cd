import { describe, expect, it } from "@effect/vitest"
import { stageTimes, summariseStages } from "../../src/ipc/stages.js"

/** What the ONNX backend's answer carries (ms). */
const backend = (run: number, wait = 0) => ({
  frame_read_ms: 0.5,
  preprocess_ms: 0.6,
  handoff_ms: 0.7,
  session_wait_ms: wait,
  inference_ms: run,
  postprocess_ms: 0.2,
  inference_time_ms: 0.6 + 0.7 + wait + run + 0.2 + 0.1,
  server_time_ms: 0.5 + 0.6 + 0.7 + wait + run + 0.2 + 0.3,
  device: "cpu"
})

describe("stage timings", () => {
  it("split a round trip into the socket, the frame read, the backend's stages, the model and the rest", () => {
    const t = stageTimes(backend(30, 5), 38.5)!
    expect(t.socketAndCodec).toBeCloseTo(38.5 - 37.3, 9)
    expect(t).toMatchObject({ frameRead: 0.5, preprocess: 0.6, handoff: 0.7, sessionWait: 5, model: 30, postprocess: 0.2, modelField: "inference_ms" })
    expect(t.runtime).toBeCloseTo(0.3, 9)
  })

  it("take a custom handler's whole time as the model's, and make up no backend stage", () => {
    const t = stageTimes({ frame_read_ms: 0.4, inference_time_ms: 12, server_time_ms: 12.6, mine: 1 }, 13)!
    expect(t).toMatchObject({ frameRead: 0.4, model: 12, modelField: "inference_time_ms" })
    expect(t.runtime).toBeCloseTo(0.2, 9)
    expect(t.socketAndCodec).toBeCloseTo(0.4, 9)
    expect(t).not.toHaveProperty("preprocess")
  })

  it("are absent when an answer does not carry the pipeline's timings", () => {
    expect(stageTimes(null, 3)).toBeUndefined()
    expect(stageTimes({ inference_ms: 3 }, 3)).toBeUndefined()
    expect(stageTimes({ frame_read_ms: 1, server_time_ms: "2", inference_ms: 1 }, 3)).toBeUndefined()
    expect(summariseStages([])).toBeUndefined()
  })

  it("summarise as medians: the model's run, the queue for it and what is outside both, each on its own", () => {
    const times = [stageTimes(backend(30), 33)!, stageTimes(backend(40, 30), 73)!, stageTimes(backend(35), 38)!]
    const s = summariseStages(times)!
    expect(s).toMatchObject({ samples: 3, totalMs: 38, model: 35, sessionWait: 0, preprocess: 0.6, modelField: "inference_ms" })
    // Outside the model and its queue: 3, 3 and 3 ms.
    expect(s.outsideModelAndQueueMs).toBeCloseTo(3, 9)
    expect(s.shareOutsideModelAndQueue).toBeCloseTo(3 / 38, 9)
    expect(s.modelShare).toBeCloseTo(35 / 38, 9)
    // A stage only some answers reported is left out rather than guessed.
    const mixed = summariseStages([...times, stageTimes({ frame_read_ms: 1, inference_time_ms: 5, server_time_ms: 6.5 }, 7)!])!
    expect(mixed).not.toHaveProperty("preprocess")
    expect(mixed.modelField).toBe("inference_time_ms")
  })

  it("name queueing separately: a run that mostly waits shows a large queue share, and the outside share excludes it", () => {
    // As bench at 8 clients saw it: 295 ms of a 346 ms round trip waiting for the session.
    const times = [stageTimes(backend(35, 295), 346)!, stageTimes(backend(36, 290), 342)!, stageTimes(backend(34, 300), 350)!]
    const s = summariseStages(times)!
    expect(s.sessionWaitShare).toBeCloseTo(295 / 346, 9)
    expect(s.modelShare).toBeCloseTo(35 / 346, 9)
    expect(s.outsideModelAndQueueMs).toBeLessThan(20)
    expect(s.shareOutsideModelAndQueue).toBeLessThan(0.05)
    // A handler that reports no session wait has no queue share to show.
    expect(summariseStages([stageTimes({ frame_read_ms: 1, inference_time_ms: 5, server_time_ms: 6.5 }, 7)!])).not.toHaveProperty("sessionWaitShare")
  })
})
