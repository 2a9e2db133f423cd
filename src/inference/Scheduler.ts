/**
 * Who gets the model next. Sits between admission (the in-flight limit) and the model: a request
 * that needs the model calls `scheduler.run(ticket, work)`, where `work` is what must happen under
 * the turn (the ONNX backend: `session.run`). At most `concurrency` works run at once; the rest
 * wait here, not in the session's own FIFO queue.
 *
 * Every ticket is judged when it could start (on arrival when a turn is free, or when its turn
 * comes) and, where the answer is already known on arrival, at once:
 * - its deadline has passed, or now + the estimated run time is past it → `DeadlineUnmet` (TIMEOUT),
 *   always on: the model is never spent on an answer nobody can use;
 * - `maxFrameAgeMs` > 0 and the frame (by its `timestamp`) is older than that → `FrameExpired`;
 * - `perCamera: "latest"`: a newer ticket of the same camera answers a waiting older one
 *   `Superseded` at once (a running one is never touched).
 *
 * The next ticket to start is chosen round-robin across cameras (each camera's queue FIFO). Why
 * round-robin and not earliest-deadline-first: every request of a container has the same timeout,
 * so EDF orders by arrival, which is plain FIFO and gives a camera sending 4× the frames 4× the
 * model — exactly the unfairness to remove. Round-robin gives every camera with work an equal share
 * whatever its rate, and the deadline check above already keeps hopeless work off the model.
 *
 * Plain data inside (a queue per camera, a ring of cameras), driven synchronously where a work
 * ends; the waiting fiber is the request's own (no extra fibers). "Now" is Effect's `Clock`, so
 * tests drive it with `TestClock`.
 */
import { Context, Effect, Layer } from "effect"
import { RuntimeConfig, defaults, type PerCamera } from "../config/RuntimeConfig.js"
import { DeadlineUnmet, FrameExpired, type Overloaded, type SchedulingDrop, Superseded } from "../contract/errors.js"
import type { InferenceRequest } from "../contract/schema.js"

/** What the scheduler needs to know about one request. */
export interface Ticket {
  readonly camera_id: string
  /** The frame's capture time, Unix seconds (the request's `timestamp`). */
  readonly timestamp: number
  /** Clock milliseconds after which an answer is useless; default: arrival + the request timeout. */
  readonly deadline?: number
  /** Tightens the freshness budget for this request (the request's `config.max_frame_age_ms`). */
  readonly maxFrameAgeMs?: number
}

/** A request's ticket: its camera, its frame's timestamp, and `config.max_frame_age_ms` when that is a number > 0. */
export const ticketOf = (request: InferenceRequest): Ticket => {
  const own = request.config?.["max_frame_age_ms"]
  return {
    camera_id: request.camera_id,
    timestamp: request.timestamp,
    ...(typeof own === "number" && Number.isFinite(own) && own > 0 ? { maxFrameAgeMs: own } : {})
  }
}

export interface SchedulerOptions {
  /** Freshness budget in ms; 0 = off. */
  readonly maxFrameAgeMs: number
  readonly perCamera: PerCamera
  /** The deadline of a ticket that names none: arrival + this. */
  readonly timeoutMs: number
  /** Works running at once (1: one session, one run at a time). */
  readonly concurrency: number
}

/** Requests answered without running, by reason (health's `dropped_by_reason`). */
export interface DroppedByReason {
  readonly expired: number
  readonly superseded: number
  readonly deadline: number
}

export interface SchedulerShape {
  /**
   * Runs `work` when this ticket's turn comes, or fails with why it never will. Interrupting the
   * caller while it waits takes the ticket out of the queue.
   */
  readonly run: <A, E, R>(ticket: Ticket, work: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Refused, R>
  /**
   * Fair admission, for a request of `camera` arriving when admission is full: when another camera
   * holds at least two more waiting tickets than `camera` does, the oldest waiting ticket of the
   * camera holding the most is answered `error` at once and this returns true (the newcomer takes
   * its place); otherwise false (refuse the newcomer). Admission first come, first served gives a
   * camera sending 4× the frames 4× the places, and round-robin can only share what waits.
   */
  readonly displace: (camera: string, error: Overloaded) => boolean
  readonly dropped: () => DroppedByReason
  /** Tickets waiting for a turn now. */
  readonly waiting: () => number
  /** The running estimate of one work, ms (0 until one has run). */
  readonly estimatedRunMs: () => number
}

/** Why a ticket never ran: dropped by a policy, or displaced by fair admission (`displace`). */
export type Refused = SchedulingDrop | Overloaded

export class Scheduler extends Context.Tag("@ruth-ai/model-runtime/Scheduler")<Scheduler, SchedulerShape>() {}

/** How many recent run times the estimate is the median of: robust to one slow run, quick to follow a change. */
const RECENT_RUNS = 9

interface Waiter {
  readonly ticket: Ticket
  readonly arrived: number
  readonly deadline: number
  state: "waiting" | "started" | "dropped" | "done"
  startedAt: number
  /** Why it was dropped, once it was. */
  error: Refused | undefined
  resume: ((effect: Effect.Effect<void, Refused>) => void) | undefined
}

/** Builds a scheduler; "now" is the `Clock` of the effect that makes it (a `TestClock` in tests). */
export const make = (options: Partial<SchedulerOptions> = {}): Effect.Effect<SchedulerShape> =>
  Effect.map(Effect.clock, (clock) => {
    const budget = options.maxFrameAgeMs ?? 0
    const latest = (options.perCamera ?? "all") === "latest"
    const timeoutMs = options.timeoutMs ?? defaults.requestTimeoutMs
    const concurrency = Math.max(1, options.concurrency ?? 1)
    const now = () => clock.unsafeCurrentTimeMillis()

    /** Each camera's waiting tickets, oldest first. */
    const queues = new Map<string, Array<Waiter>>()
    /** Cameras with waiting tickets, in turn order: the head goes next, then to the back. */
    const ring: Array<string> = []
    let running = 0
    let waitingCount = 0
    const dropped = { expired: 0, superseded: 0, deadline: 0 }
    const recent: Array<number> = []
    let estimate = 0

    const recordRun = (ms: number) => {
      recent.push(ms)
      if (recent.length > RECENT_RUNS) recent.shift()
      const sorted = [...recent].sort((a, b) => a - b)
      estimate = sorted[Math.floor(sorted.length / 2)] ?? 0
    }

    /** Why `w` must not start at `t`, or undefined when it may. */
    const verdict = (w: Waiter, t: number): SchedulingDrop | undefined => {
      const left = w.deadline - t
      // An estimate of a whole timeout or more is not trusted to refuse: nothing would run again to correct it.
      const trusted = estimate < w.deadline - w.arrived
      if (left <= 0 || (trusted && left < estimate)) {
        dropped.deadline++
        return new DeadlineUnmet({ timeoutMs: Math.max(0, Math.round(w.deadline - w.arrived)), leftMs: left, estimatedRunMs: estimate })
      }
      const own = w.ticket.maxFrameAgeMs
      const limit = own !== undefined && own > 0 && (budget === 0 || own < budget) ? own : budget
      if (limit > 0) {
        const age = t - w.ticket.timestamp * 1000
        if (age > limit) {
          dropped.expired++
          return new FrameExpired({ ageMs: age, budgetMs: limit })
        }
      }
      return undefined
    }

    const removeWaiting = (w: Waiter) => {
      const queue = queues.get(w.ticket.camera_id)
      if (queue === undefined) return
      const at = queue.indexOf(w)
      if (at < 0) return
      queue.splice(at, 1)
      waitingCount--
      if (queue.length === 0) {
        queues.delete(w.ticket.camera_id)
        ring.splice(ring.indexOf(w.ticket.camera_id), 1)
      }
    }

    const drop = (w: Waiter, error: Refused) => {
      w.state = "dropped"
      w.error = error
      w.resume?.(Effect.fail(error))
    }

    /** Starts waiting tickets while turns are free, answering at once those that can no longer be useful. */
    const dispatch = () => {
      while (running < concurrency && ring.length > 0) {
        const camera = ring.shift()!
        const queue = queues.get(camera)!
        const w = queue.shift()!
        waitingCount--
        if (queue.length > 0) ring.push(camera)
        else queues.delete(camera)
        const t = now()
        const error = verdict(w, t)
        if (error !== undefined) {
          drop(w, error)
          continue
        }
        running++
        w.state = "started"
        w.startedAt = t
        w.resume?.(Effect.void)
      }
    }

    const finish = (w: Waiter) => {
      if (w.state !== "started") return
      w.state = "done"
      running--
      recordRun(now() - w.startedAt)
      dispatch()
    }

    const enqueue = (w: Waiter) => {
      const camera = w.ticket.camera_id
      let queue = queues.get(camera)
      if (queue === undefined) {
        queue = []
        queues.set(camera, queue)
        ring.push(camera)
      }
      if (latest) {
        // One waits per camera: the newer frame (by timestamp; a tie goes to the later arrival) stays.
        const older = queue[0]
        if (older !== undefined) {
          if (older.ticket.timestamp > w.ticket.timestamp) {
            dropped.superseded++
            return new Superseded({ cameraId: camera })
          }
          queue.length = 0
          waitingCount--
          dropped.superseded++
          drop(older, new Superseded({ cameraId: camera }))
        }
      }
      queue.push(w)
      waitingCount++
      return undefined
    }

    const displace = (camera: string, error: Overloaded): boolean => {
      let busiest: Array<Waiter> | undefined
      const threshold = (queues.get(camera)?.length ?? 0) + 1
      for (const queue of queues.values()) if (queue.length > (busiest?.length ?? threshold)) busiest = queue
      const oldest = busiest?.[0]
      if (oldest === undefined) return false
      removeWaiting(oldest)
      drop(oldest, error)
      return true
    }

    const run = <A, E, R>(ticket: Ticket, work: Effect.Effect<A, E, R>): Effect.Effect<A, E | Refused, R> =>
      Effect.uninterruptibleMask((restore) => {
        const t = now()
        const w: Waiter = {
          ticket,
          arrived: t,
          deadline: ticket.deadline ?? t + timeoutMs,
          state: "waiting",
          startedAt: 0,
          error: undefined,
          resume: undefined
        }
        // Known on arrival: a frame only gets older, and a deadline only nearer.
        const early = verdict(w, t)
        if (early !== undefined) return Effect.fail(early)
        const worked = restore(work).pipe(Effect.ensuring(Effect.sync(() => finish(w))))
        if (running < concurrency && ring.length === 0) {
          running++
          w.state = "started"
          w.startedAt = t
          return worked
        }
        const refused = enqueue(w)
        if (refused !== undefined) return Effect.fail(refused)
        const turn = Effect.async<void, Refused>((resume) => {
          if (w.state === "waiting") w.resume = resume
          // Decided between enqueue and here (another fiber's work ended in between): answer as decided.
          else resume(w.error === undefined ? Effect.void : Effect.fail(w.error))
        })
        return restore(turn).pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              if (w.state === "waiting") removeWaiting(w)
              else finish(w)
              w.state = "done"
            })
          ),
          Effect.zipRight(worked)
        )
      })

    return {
      run,
      displace,
      dropped: () => ({ ...dropped }),
      waiting: () => waitingCount,
      estimatedRunMs: () => estimate
    }
  })

/** The scheduler with the container's settings (`RuntimeConfig`: freshness budget, per camera, timeout). */
export const layer: Layer.Layer<Scheduler, never, RuntimeConfig> = Layer.effect(
  Scheduler,
  Effect.flatMap(RuntimeConfig, (settings) =>
    make({
      maxFrameAgeMs: settings.maxFrameAgeMs,
      perCamera: settings.perCamera,
      timeoutMs: settings.requestTimeoutMs,
      concurrency: 1
    }))
)

/** A scheduler with `options` (tests; embedding without `RuntimeConfig`). */
export const layerWith = (options: Partial<SchedulerOptions> = {}): Layer.Layer<Scheduler> =>
  Layer.effect(Scheduler, make(options))
