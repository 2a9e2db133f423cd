/**
 * The scheduler's policies with fake works (each a Deferred the test completes) and TestClock:
 * what starts, in which order, and what is answered without running — no real time anywhere.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Deferred, Effect, Exit, Fiber, Option } from "effect"
import { TestClock } from "effect/testing"
import { Overloaded, toWireError } from "../../src/contract/errors.js"
import * as Scheduler from "../../src/inference/Scheduler.js"

/** Clock milliseconds at the start of every test; frames are stamped relative to it. */
const T0 = 1_700_000_000_000
const stamp = (msBeforeNow = 0) => (T0 - msBeforeNow) / 1000

/** Lets forked fibers run up to where they wait. */
const settle = Effect.repeat(Effect.yieldNow, { times: 20 })

type Outcome = Exit.Exit<string, unknown>

/** A scheduler and fake works: `submit` queues one, `complete` ends a started one, `started` is the start order. */
const bench = (options: Partial<Scheduler.SchedulerOptions> = {}) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(T0)
    const scheduler = yield* Scheduler.make(options)
    const started: Array<string> = []
    const gates = new Map<string, Deferred.Deferred<void>>()
    const fibers = new Map<string, Fiber.Fiber<string, unknown>>()
    const submit = (name: string, ticket: Partial<Scheduler.Ticket> & { readonly camera_id: string }) =>
      Effect.gen(function*() {
        const gate = yield* Deferred.make<void>()
        gates.set(name, gate)
        const work = Effect.sync(() => started.push(name)).pipe(Effect.andThen(Deferred.await(gate)), Effect.as(name))
        const now = yield* Clock.currentTimeMillis
        fibers.set(name, yield* Effect.forkChild(scheduler.run({ timestamp: now / 1000, ...ticket }, work)))
        yield* settle
      })
    /** Ends `name`'s work, after `ms` of (test) run time. */
    const complete = (name: string, ms = 0) =>
      Effect.gen(function*() {
        if (ms > 0) yield* TestClock.adjust(ms)
        yield* Deferred.succeed(gates.get(name)!, undefined)
        yield* settle
      })
    /** The outcome of `name`, once it has one. */
    const outcome = (name: string): Effect.Effect<Outcome | undefined> =>
      Effect.sync(() => fibers.get(name)!.pollUnsafe())
    const codeOf = (name: string) =>
      Effect.map(outcome(name), (o) => {
        // Effect 4's Cause is a list of reasons, not a tree: the typed failure, if any.
        const error = o !== undefined && Exit.isFailure(o) ? Cause.findErrorOption(o.cause) : Option.none()
        return Option.isSome(error) ? toWireError(error.value as Parameters<typeof toWireError>[0]) : o
      })
    return { scheduler, started, submit, complete, outcome, codeOf }
  })

describe("Scheduler", () => {
  it.effect("with nothing waiting, a ticket runs at once and its work's answer is the caller's", () =>
    Effect.gen(function*() {
      const b = yield* bench()
      yield* b.submit("a1", { camera_id: "A" })
      expect(b.started).toEqual(["a1"])
      yield* b.complete("a1")
      expect(yield* b.outcome("a1")).toEqual(Exit.succeed("a1"))
      expect(b.scheduler.dropped()).toEqual({ expired: 0, superseded: 0, deadline: 0, displaced: 0 })
    }))

  it.effect("runs one work at a time; the others wait their turn", () =>
    Effect.gen(function*() {
      const b = yield* bench()
      yield* b.submit("a1", { camera_id: "A" })
      yield* b.submit("a2", { camera_id: "A" })
      expect(b.started).toEqual(["a1"])
      expect(b.scheduler.waiting()).toBe(1)
      yield* b.complete("a1")
      expect(b.started).toEqual(["a1", "a2"])
    }))

  describe("freshness budget", () => {
    it.effect("a frame already older than the budget on arrival is FRAME_EXPIRED at once and never runs", () =>
      Effect.gen(function*() {
        const b = yield* bench({ maxFrameAgeMs: 200 })
        yield* b.submit("old", { camera_id: "A", timestamp: stamp(250) })
        expect(b.started).toEqual([])
        const answer = yield* b.codeOf("old")
        expect(answer).toMatchObject({ error_code: "FRAME_EXPIRED" })
        expect(answer).toHaveProperty("error", expect.stringContaining("budget is 200 ms"))
        expect(b.scheduler.dropped()).toEqual({ expired: 1, superseded: 0, deadline: 0, displaced: 0 })
      }))

    it.effect("a frame that ages past the budget while it waits is FRAME_EXPIRED at its turn, and the next one runs", () =>
      Effect.gen(function*() {
        const b = yield* bench({ maxFrameAgeMs: 200 })
        yield* b.submit("a1", { camera_id: "A" })
        yield* b.submit("b1", { camera_id: "B" })
        yield* TestClock.adjust(150)
        yield* b.submit("c1", { camera_id: "C" }) // stamped 150 ms after b1
        expect(yield* b.outcome("b1")).toBeUndefined()
        yield* b.complete("a1", 100) // b1 is 250 ms old now, c1 100 ms
        expect(yield* b.codeOf("b1")).toMatchObject({ error_code: "FRAME_EXPIRED" })
        expect(b.started).toEqual(["a1", "c1"])
        expect(b.scheduler.dropped().expired).toBe(1)
      }))

    it.effect("a request's own budget tightens the container's, never loosens it", () =>
      Effect.gen(function*() {
        const b = yield* bench({ maxFrameAgeMs: 200 })
        yield* b.submit("tight", { camera_id: "A", timestamp: stamp(80), maxFrameAgeMs: 50 })
        yield* b.submit("loose", { camera_id: "B", timestamp: stamp(250), maxFrameAgeMs: 1000 })
        expect(yield* b.codeOf("tight")).toMatchObject({ error_code: "FRAME_EXPIRED" })
        expect(yield* b.codeOf("loose")).toMatchObject({ error_code: "FRAME_EXPIRED" })
        const open = yield* bench()
        yield* open.submit("own", { camera_id: "A", timestamp: stamp(80), maxFrameAgeMs: 50 })
        expect(yield* open.codeOf("own")).toMatchObject({ error_code: "FRAME_EXPIRED" })
      }))

    it.effect("off by default: an old frame runs", () =>
      Effect.gen(function*() {
        const b = yield* bench()
        yield* b.submit("old", { camera_id: "A", timestamp: stamp(60_000) })
        expect(b.started).toEqual(["old"])
      }))
  })

  describe("per camera: latest", () => {
    it.effect("a newer frame supersedes the waiting older one at once, never the running one", () =>
      Effect.gen(function*() {
        const b = yield* bench({ perCamera: "latest" })
        yield* b.submit("a1", { camera_id: "A" })
        yield* b.submit("a2", { camera_id: "A", timestamp: stamp() + 0.01 })
        yield* b.submit("b1", { camera_id: "B" })
        yield* b.submit("a3", { camera_id: "A", timestamp: stamp() + 0.02 })
        // Answered while a1 still runs: nobody waits for an answer that is already decided.
        expect(yield* b.codeOf("a2")).toMatchObject({ error_code: "SUPERSEDED", error: expect.stringContaining("camera 'A'") })
        expect(yield* b.outcome("a1")).toBeUndefined()
        expect(yield* b.outcome("b1")).toBeUndefined()
        yield* b.complete("a1")
        expect(yield* b.outcome("a1")).toEqual(Exit.succeed("a1"))
        // A keeps its place in the round: its newest frame goes before B's.
        yield* b.complete("a3")
        expect(b.started).toEqual(["a1", "a3", "b1"])
        expect(b.scheduler.dropped()).toEqual({ expired: 0, superseded: 1, deadline: 0, displaced: 0 })
      }))

    it.effect("a frame arriving late with an older timestamp than the waiting one is the one superseded", () =>
      Effect.gen(function*() {
        const b = yield* bench({ perCamera: "latest" })
        yield* b.submit("a1", { camera_id: "A" })
        yield* b.submit("new", { camera_id: "A", timestamp: stamp() + 0.05 })
        yield* b.submit("late", { camera_id: "A", timestamp: stamp() + 0.01 })
        expect(yield* b.codeOf("late")).toMatchObject({ error_code: "SUPERSEDED" })
        yield* b.complete("a1")
        expect(b.started).toEqual(["a1", "new"])
      }))

    it.effect("with all (the default), every frame of a camera runs in order", () =>
      Effect.gen(function*() {
        const b = yield* bench()
        for (const name of ["a1", "a2", "a3"]) yield* b.submit(name, { camera_id: "A" })
        yield* b.complete("a1")
        yield* b.complete("a2")
        expect(b.started).toEqual(["a1", "a2", "a3"])
        expect(b.scheduler.dropped().superseded).toBe(0)
      }))
  })

  it.effect("fair share: camera A with 8 waiting and B with 2 start A,B,A,B,A,A,…", () =>
    Effect.gen(function*() {
      const b = yield* bench()
      yield* b.submit("x", { camera_id: "X" })
      for (let i = 1; i <= 8; i++) yield* b.submit(`a${i}`, { camera_id: "A" })
      for (let i = 1; i <= 2; i++) yield* b.submit(`b${i}`, { camera_id: "B" })
      while (b.started.length < 11) yield* b.complete(b.started[b.started.length - 1]!)
      expect(b.started).toEqual(["x", "a1", "b1", "a2", "b2", "a3", "a4", "a5", "a6", "a7", "a8"])
    }))

  describe("deadline-aware (always on)", () => {
    it.effect("a ticket whose deadline passes while it waits is answered TIMEOUT at its turn without running", () =>
      Effect.gen(function*() {
        const b = yield* bench({ timeoutMs: 1000 })
        yield* b.submit("a1", { camera_id: "A" })
        yield* b.submit("b1", { camera_id: "B" })
        expect(yield* b.outcome("b1")).toBeUndefined()
        yield* b.complete("a1", 1500)
        expect(b.started).toEqual(["a1"])
        const answer = yield* b.codeOf("b1")
        expect(answer).toMatchObject({ error_code: "TIMEOUT", error: expect.stringContaining("not run") })
        expect(b.scheduler.dropped()).toEqual({ expired: 0, superseded: 0, deadline: 1, displaced: 0 })
      }))

    it.effect("a ticket that cannot finish before its deadline (by the run-time estimate) is not started", () =>
      Effect.gen(function*() {
        const b = yield* bench({ timeoutMs: 1000 })
        yield* b.submit("a1", { camera_id: "A" })
        yield* b.complete("a1", 400) // one run: 400 ms
        expect(b.scheduler.estimatedRunMs()).toBe(400)
        yield* b.submit("a2", { camera_id: "A" })
        yield* b.submit("b1", { camera_id: "B" }) // arrives with 1000 ms to go
        yield* b.complete("a2", 700) // b1 has 300 ms left, a run takes ~400
        const answer = yield* b.codeOf("b1")
        expect(answer).toMatchObject({ error_code: "TIMEOUT", error: expect.stringContaining("300 ms were left") })
        expect(b.started).toEqual(["a1", "a2"])
      }))

    it.effect("runs slower than the whole timeout never lock the model out: a request arriving to a free model still runs", () =>
      Effect.gen(function*() {
        const b = yield* bench({ timeoutMs: 1000 })
        yield* b.submit("a1", { camera_id: "A" })
        yield* b.complete("a1", 1500)
        expect(b.scheduler.estimatedRunMs()).toBe(1500)
        yield* b.submit("a2", { camera_id: "A" })
        expect(b.started).toEqual(["a1", "a2"])
        expect(b.scheduler.dropped().deadline).toBe(0)
      }))

    it.effect("an explicit deadline already past on arrival is answered at once", () =>
      Effect.gen(function*() {
        const b = yield* bench()
        yield* b.submit("late", { camera_id: "A", deadline: T0 - 1 })
        expect(b.started).toEqual([])
        expect(yield* b.codeOf("late")).toMatchObject({ error_code: "TIMEOUT" })
      }))
  })

  it.effect("a caller interrupted while waiting leaves the queue; one interrupted while running frees the turn", () =>
    Effect.gen(function*() {
      const scheduler = yield* Scheduler.make()
      const gate = yield* Deferred.make<void>()
      const ran: Array<string> = []
      const work = (name: string) => Effect.sync(() => ran.push(name)).pipe(Effect.andThen(Deferred.await(gate)))
      const running = yield* Effect.forkChild(scheduler.run({ camera_id: "A", timestamp: stamp() }, work("a1")))
      yield* settle
      const waiting = yield* Effect.forkChild(scheduler.run({ camera_id: "B", timestamp: stamp() }, work("b1")))
      yield* settle
      expect(scheduler.waiting()).toBe(1)
      yield* Fiber.interrupt(waiting)
      expect(scheduler.waiting()).toBe(0)
      yield* Fiber.interrupt(running)
      const next = yield* Effect.forkChild(scheduler.run({ camera_id: "C", timestamp: stamp() }, work("c1")))
      yield* settle
      expect(ran).toEqual(["a1", "c1"])
      yield* Fiber.interrupt(next)
    }))

  it.effect("counts every drop by reason", () =>
    Effect.gen(function*() {
      const b = yield* bench({ maxFrameAgeMs: 200, perCamera: "latest" })
      yield* b.submit("a1", { camera_id: "A" })
      yield* b.submit("a2", { camera_id: "A", timestamp: stamp() + 0.001 })
      yield* b.submit("a3", { camera_id: "A", timestamp: stamp() + 0.002 }) // supersedes a2
      yield* b.submit("old", { camera_id: "B", timestamp: stamp(500) }) // expired on arrival
      yield* b.submit("c1", { camera_id: "C", deadline: T0 + 100 }) // fresh, but its deadline will pass
      yield* b.complete("a1", 300)
      // a3 is now 298 ms old (expired); c1's deadline passed.
      expect(b.scheduler.dropped()).toEqual({ expired: 2, superseded: 1, deadline: 1, displaced: 0 })
      expect(b.started).toEqual(["a1"])
    }))

  describe("fair admission (displace)", () => {
    const full = new Overloaded({ maxInflight: 4 })

    it.effect("a camera holding fewer waiting tickets takes the place of the busiest camera's oldest waiting one", () =>
      Effect.gen(function*() {
        const b = yield* bench()
        yield* b.submit("a1", { camera_id: "A" })
        yield* b.submit("a2", { camera_id: "A" })
        yield* b.submit("a3", { camera_id: "A" })
        // B holds none, A two waiting: A's oldest waiting (a2) is answered OVERLOADED, never runs.
        expect(b.scheduler.displace("B", full)).toBe(true)
        yield* settle
        expect(yield* b.codeOf("a2")).toEqual({ error: "overloaded: 4 requests already in flight", error_code: "OVERLOADED" })
        expect(b.scheduler.waiting()).toBe(1)
        expect(b.scheduler.dropped().displaced).toBe(1)
        // One apart is as fair as it gets: the newcomer is refused instead, whoever it is.
        expect(b.scheduler.displace("B", full)).toBe(false)
        expect(b.scheduler.displace("A", full)).toBe(false)
        // The running one is never touched.
        yield* b.complete("a1")
        expect(b.started).toEqual(["a1", "a3"])
        expect(yield* b.outcome("a1")).toEqual(Exit.succeed("a1"))
      }))

    it.effect("with a limit on places, a camera sending 4x the frames gets an equal share of the model, not 4x", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const scheduler = yield* Scheduler.make()
        const places = 8
        let inflight = 0
        const ran: Record<string, number> = { A: 0, B: 0, C: 0, D: 0 }
        let running: Deferred.Deferred<void> | undefined
        const work = (camera: string) =>
          Effect.gen(function*() {
            const done = yield* Deferred.make<void>()
            running = done
            ran[camera]!++
            yield* Deferred.await(done)
          })
        // Admission as the container's: a place when one is free, else the newcomer displaces or is refused.
        const arrive = (camera: string) =>
          Effect.gen(function*() {
            if (inflight >= places && !scheduler.displace(camera, full)) return
            inflight++
            const now = yield* Clock.currentTimeMillis
            yield* Effect.forkChild(
              scheduler.run({ camera_id: camera, timestamp: now / 1000 }, work(camera)).pipe(
                Effect.ensuring(Effect.sync(() => inflight--))
              )
            )
            yield* settle
          })
        // Per run of the model (10 ms): one frame from each of A, B, C and four from D.
        for (let round = 0; round < 80; round++) {
          for (const camera of ["A", "D", "B", "D", "C", "D", "D"]) yield* arrive(camera)
          yield* TestClock.adjust(10)
          yield* Deferred.succeed(running!, undefined)
          yield* settle
        }
        const counts = Object.values(ran)
        const mean = counts.reduce((a, b) => a + b, 0) / counts.length
        expect(mean).toBeGreaterThan(15)
        for (const count of counts) expect(Math.abs(count - mean) / mean).toBeLessThanOrEqual(0.15)
      }))
  })

  describe("streams and batches", () => {
    /** A work that records its slot, joins its batch with `input` (unless `join` is false) and waits for `gate`. */
    const slotWork = (log: Array<string>, name: string, gate: Deferred.Deferred<void>, join = true) => (slot: Scheduler.Slot) =>
      Effect.gen(function*() {
        log.push(`${name}@${slot.stream}/${slot.batch.size}`)
        if (!join) {
          yield* Deferred.await(gate)
          return `${name} left`
        }
        return yield* slot.batch.join(name, (inputs) =>
          Effect.gen(function*() {
            log.push(`run ${inputs.join("+")}`)
            yield* Deferred.await(gate)
            return inputs.map((i) => `${i} done`)
          }))
      })

    const submitTo = (scheduler: Scheduler.SchedulerShape, camera: string, work: (slot: Scheduler.Slot) => Effect.Effect<string>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const fiber = yield* Effect.forkChild(scheduler.run({ camera_id: camera, timestamp: now / 1000 }, work))
        yield* settle
        return fiber
      })

    it.effect("with two streams, two turns run at once, each on its own stream; a third waits for a free one", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const scheduler = yield* Scheduler.make({ streams: 2 })
        const log: Array<string> = []
        const gates = [yield* Deferred.make<void>(), yield* Deferred.make<void>(), yield* Deferred.make<void>()] as const
        const a = yield* submitTo(scheduler, "A", slotWork(log, "a1", gates[0]))
        yield* submitTo(scheduler, "B", slotWork(log, "b1", gates[1]))
        const c = yield* submitTo(scheduler, "C", slotWork(log, "c1", gates[2]))
        expect(log).toEqual(["a1@0/1", "run a1", "b1@1/1", "run b1"])
        expect(scheduler.waiting()).toBe(1)
        yield* Deferred.succeed(gates[0], undefined)
        yield* settle
        expect(yield* Fiber.join(a)).toBe("a1 done")
        // c1 takes the stream a1 gave back.
        expect(log.slice(4)).toEqual(["c1@0/1", "run c1"])
        yield* Deferred.succeed(gates[2], undefined)
        expect(yield* Fiber.join(c)).toBe("c1 done")
      }))

    it.effect("a refused ticket whose caller sends again at once (resumed inside the dispatch) does not start a second turn on the one stream", () =>
      Effect.gen(function*() {
        // Effect 4 runs a resumed fiber inside the resumer: dropping x1 runs its caller, which submits
        // c1 while the dispatch that dropped x1 is still filling a batch for the stream it saw free.
        yield* TestClock.setTime(T0)
        const scheduler = yield* Scheduler.make({ maxBatch: 2, maxFrameAgeMs: 200 })
        const log: Array<string> = []
        const first = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const a = yield* submitTo(scheduler, "A", slotWork(log, "a1", first))
        const d = yield* submitTo(scheduler, "D", slotWork(log, "d1", gate))
        const x = yield* Effect.forkChild(
          scheduler.run({ camera_id: "X", timestamp: stamp(150) }, slotWork(log, "x1", gate)).pipe(
            Effect.catch(() =>
              Effect.flatMap(Clock.currentTimeMillis, (now) =>
                scheduler.run({ camera_id: "C", timestamp: now / 1000 }, slotWork(log, "c1", gate))
              )
            )
          )
        )
        yield* settle
        yield* TestClock.adjust(100) // x1 is 250 ms old now: expired at its turn; d1 100 ms
        yield* Deferred.succeed(first, undefined)
        yield* settle
        expect(yield* Fiber.join(a)).toBe("a1 done")
        // d1 and c1 share the one stream as one batch (not two turns at once, one on no stream); x1 never ran.
        expect(log.slice(2)).toEqual(["d1@0/2", "c1@0/2", "run d1+c1"])
        yield* Deferred.succeed(gate, undefined)
        expect(yield* Fiber.join(d)).toBe("d1 done")
        expect(yield* Fiber.join(x)).toBe("c1 done")
        expect(scheduler.dropped().expired).toBe(1)
      }))

    it.effect("max_batch: waiting tickets of different cameras start together and run as one execute; each gets its own output", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const scheduler = yield* Scheduler.make({ maxBatch: 3 })
        const log: Array<string> = []
        const first = yield* Deferred.make<void>()
        const rest = yield* Deferred.make<void>()
        yield* submitTo(scheduler, "A", slotWork(log, "a1", first))
        const fibers = [
          yield* submitTo(scheduler, "B", slotWork(log, "b1", rest)),
          yield* submitTo(scheduler, "C", slotWork(log, "c1", rest)),
          yield* submitTo(scheduler, "D", slotWork(log, "d1", rest)),
          yield* submitTo(scheduler, "A", slotWork(log, "a2", rest))
        ]
        // Nothing waited when a1 came: it ran alone (max_queue_delay_ms 0 runs only what already waits).
        expect(log).toEqual(["a1@0/1", "run a1"])
        yield* Deferred.succeed(first, undefined)
        yield* settle
        // Round-robin across cameras fills the batch: b1, c1, d1 (a2 next time), one run over the three.
        expect(log.slice(2)).toEqual(["b1@0/3", "c1@0/3", "d1@0/3", "run b1+c1+d1"])
        yield* Deferred.succeed(rest, undefined)
        yield* settle
        expect(yield* Fiber.join(fibers[0]!)).toBe("b1 done")
        expect(yield* Fiber.join(fibers[1]!)).toBe("c1 done")
        expect(yield* Fiber.join(fibers[2]!)).toBe("d1 done")
        expect(yield* Fiber.join(fibers[3]!)).toBe("a2 done")
        expect(log.slice(6)).toEqual(["a2@0/1", "run a2"])
      }))

    it.effect("a member that ends without joining (e.g. its frame failed) does not hold the others' run", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const scheduler = yield* Scheduler.make({ maxBatch: 3 })
        const log: Array<string> = []
        const first = yield* Deferred.make<void>()
        const leave = yield* Deferred.make<void>()
        const rest = yield* Deferred.make<void>()
        yield* submitTo(scheduler, "A", slotWork(log, "a1", first))
        const b = yield* submitTo(scheduler, "B", slotWork(log, "b1", rest))
        const c = yield* submitTo(scheduler, "C", slotWork(log, "c1", leave, false))
        const d = yield* submitTo(scheduler, "D", slotWork(log, "d1", rest))
        yield* Deferred.succeed(first, undefined)
        yield* settle
        // b1 and d1 joined; c1 has not: the batch waits for it.
        expect(log.slice(2)).toEqual(["b1@0/3", "c1@0/3", "d1@0/3"])
        yield* Deferred.succeed(leave, undefined)
        yield* settle
        expect(yield* Fiber.join(c)).toBe("c1 left")
        expect(log.slice(5)).toEqual(["run b1+d1"])
        yield* Deferred.succeed(rest, undefined)
        expect(yield* Fiber.join(b)).toBe("b1 done")
        expect(yield* Fiber.join(d)).toBe("d1 done")
      }))

    it.effect("a member interrupted after joining is let finish the batch: its input is still read by the run, the others get theirs", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const scheduler = yield* Scheduler.make({ maxBatch: 2 })
        const log: Array<string> = []
        const first = yield* Deferred.make<void>()
        const rest = yield* Deferred.make<void>()
        yield* submitTo(scheduler, "A", slotWork(log, "a1", first))
        const b = yield* submitTo(scheduler, "B", slotWork(log, "b1", rest))
        const c = yield* submitTo(scheduler, "C", slotWork(log, "c1", rest))
        yield* Deferred.succeed(first, undefined)
        yield* settle
        expect(log.slice(2)).toEqual(["b1@0/2", "c1@0/2", "run b1+c1"])
        // c1's caller gives up while the batch runs: the interruption waits for the run.
        const interrupting = yield* Effect.forkChild(Fiber.interrupt(c))
        yield* settle
        expect(interrupting.pollUnsafe()).toBeUndefined()
        yield* Deferred.succeed(rest, undefined)
        yield* settle
        expect(yield* Fiber.join(b)).toBe("b1 done")
        expect(Exit.hasInterrupts(yield* Fiber.await(c))).toBe(true)
        yield* Fiber.join(interrupting)
      }))

    it.effect("a batch's failure is every member's failure", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const scheduler = yield* Scheduler.make({ maxBatch: 2 })
        const gate = yield* Deferred.make<void>()
        const log: Array<string> = []
        yield* submitTo(scheduler, "A", slotWork(log, "a1", gate))
        const failing = (slot: Scheduler.Slot): Effect.Effect<string> =>
          slot.batch.join("x", (inputs) => Effect.fail(`model failed for ${inputs.length}`)).pipe(
            Effect.map(() => "ran"),
            Effect.catch((e) => Effect.succeed(e))
          )
        const b = yield* submitTo(scheduler, "B", failing)
        const c = yield* submitTo(scheduler, "C", failing)
        yield* Deferred.succeed(gate, undefined)
        yield* settle
        expect(yield* Fiber.join(b)).toBe("model failed for 2")
        expect(yield* Fiber.join(c)).toBe("model failed for 2")
      }))

    it.effect("max_queue_delay_ms: a batch waits that long for more frames, and starts at once when it is full", () =>
      Effect.gen(function*() {
        yield* TestClock.setTime(T0)
        const scheduler = yield* Scheduler.make({ maxBatch: 2, maxQueueDelayMs: 50 })
        const log: Array<string> = []
        const gate = yield* Deferred.make<void>()
        yield* Deferred.succeed(gate, undefined)
        const a = yield* submitTo(scheduler, "A", slotWork(log, "a1", gate))
        // The model is free, but a1 waits for a second frame.
        expect(log).toEqual([])
        yield* TestClock.adjust(30)
        const b = yield* submitTo(scheduler, "B", slotWork(log, "b1", gate))
        // Full: it starts at once, 30 ms after a1 came (in whichever order the two fibers resume).
        expect([...log.slice(0, 2)].sort()).toEqual(["a1@0/2", "b1@0/2"])
        expect(log[2]).toMatch(/^run (a1\+b1|b1\+a1)$/)
        expect(yield* Fiber.join(a)).toBe("a1 done")
        expect(yield* Fiber.join(b)).toBe("b1 done")
        const c = yield* submitTo(scheduler, "C", slotWork(log, "c1", gate))
        yield* TestClock.adjust(49)
        yield* settle
        expect(log.length).toBe(3)
        // Nobody else came: after 50 ms c1 runs alone.
        yield* TestClock.adjust(1)
        yield* settle
        expect(log.slice(3)).toEqual(["c1@0/1", "run c1"])
        expect(yield* Fiber.join(c)).toBe("c1 done")
      }))
  })
})
