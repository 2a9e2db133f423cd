/**
 * Who gets the model next. Sits between admission (the in-flight limit) and the model: a request
 * that needs the model calls `scheduler.run(ticket, work)`, where `work` is what must happen under
 * the turn (the ONNX backend: `session.run`). At most `streams` turns run at once (one per
 * session); the rest wait here, not in the session's own FIFO queue.
 *
 * Batching (`maxBatch` > 1): when a stream comes free, up to `maxBatch` waiting tickets (taken
 * round-robin across cameras) start together as one turn; each gets a `Slot` whose `batch.join`
 * gathers their inputs into one `execute` (the ONNX backend: one `session.run` over a batch
 * tensor) and hands each its own output. `maxQueueDelayMs` > 0 lets a batch wait that long
 * (after its oldest ticket arrived) for more tickets; 0 runs only what already waits.
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
 * ends; the waiting fiber is the request's own (no extra fibers, except that with
 * `maxQueueDelayMs` a held ticket's fiber also sleeps until its batch may start). "Now" is
 * Effect's `Clock`, so tests drive it with `TestClock`.
 */
import { Context, Deferred, Effect, Exit, Layer } from "effect"
import { RuntimeConfig, defaults, type PerCamera, type RuntimeSettings } from "../config/RuntimeConfig.js"
import { DeadlineUnmet, FrameExpired, type Overloaded, type SchedulingDrop, Superseded } from "../contract/errors.js"
import type { DroppedByReason, InferenceRequest } from "../contract/schema.js"

export type { DroppedByReason }

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
  /** Turns running at once (1: one session, one run at a time). */
  readonly streams: number
  /** Tickets started together as one turn, at most (1: no batching). */
  readonly maxBatch: number
  /** How long a batch may wait for more tickets after its oldest arrived, ms; 0 = only what already waits. */
  readonly maxQueueDelayMs: number
}


/** The requests started together in one turn. */
export interface Batch {
  /** How many started together (1 without batching). */
  readonly size: number
  /**
   * Hands this request's `input` to the batch and waits for its own output. Once every request of
   * the batch has joined (or ended its work without joining), the first to join runs its
   * `execute` once over all inputs, in join order, and each gets the output at its input's index.
   * Alone in its batch, `execute` runs at once over `[input]`. Call it at most once per turn. Once
   * joined, a member is not interrupted until the batch has run (its input may be read until then).
   */
  readonly join: <I, O, E>(
    input: I,
    execute: (inputs: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<O>, E>
  ) => Effect.Effect<O, E>
}

/** What a turn gives its work: where it runs and with whom. */
export interface Slot {
  /** Which of the `streams` this turn holds, 0-based (the ONNX backend: which session). */
  readonly stream: number
  readonly batch: Batch
}

/** A ticket's work: an effect, or one built from its slot when the turn comes. */
export type Work<A, E, R> = Effect.Effect<A, E, R> | ((slot: Slot) => Effect.Effect<A, E, R>)

export interface SchedulerShape {
  /**
   * Runs `work` when this ticket's turn comes, or fails with why it never will. Interrupting the
   * caller while it waits takes the ticket out of the queue.
   */
  readonly run: <A, E, R>(ticket: Ticket, work: Work<A, E, R>) => Effect.Effect<A, E | Refused, R>
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
  /** The running estimate of one turn, ms (0 until one has run). */
  readonly estimatedRunMs: () => number
  /** Turns at once (a backend opens this many sessions). */
  readonly streams: number
  /** The largest batch a turn may hold (a backend checks its model can take it). */
  readonly maxBatch: number
}

/** Why a ticket never ran: dropped by a policy, or displaced by fair admission (`displace`). */
export type Refused = SchedulingDrop | Overloaded

export class Scheduler extends Context.Service<Scheduler, SchedulerShape>()("@ruth-ai/model-runtime/Scheduler") {}

/** How many recent run times the estimate is the median of: robust to one slow run, quick to follow a change. */
const RECENT_RUNS = 9

/** The batch of a turn that started alone: `execute` over the one input. */
const alone: Batch = {
  size: 1,
  join: (input, execute) =>
    Effect.flatMap(execute([input]), (outputs) =>
      outputs.length === 1 ? Effect.succeed(outputs[0]!) : Effect.die(new Error(`a batch of 1 gave ${outputs.length} outputs`)))
}

/** Tickets started together, sharing one stream until the last one's work ends. */
interface Group {
  readonly stream: number
  readonly startedAt: number
  /** Members whose work has not ended. */
  live: number
  /** What the members of a batch of several share (absent for a turn alone: the common case). */
  readonly shared: Shared | undefined
}

/** A batch of several: the inputs joined so far and each member's output to come. */
interface Shared {
  readonly size: number
  /** Members that have neither joined nor ended. */
  pending: number
  readonly inputs: Array<unknown>
  readonly outputs: Array<Deferred.Deferred<unknown, unknown>>
  /** Done when no member is left to join: the first to join then runs the batch. */
  readonly allIn: Deferred.Deferred<void>
}

interface Waiter {
  readonly ticket: Ticket
  readonly arrived: number
  readonly deadline: number
  state: "waiting" | "started" | "dropped" | "done"
  /** Why it was dropped, once it was. */
  error: Refused | undefined
  resume: ((effect: Effect.Effect<void, Refused>) => void) | undefined
  group: Group | undefined
  slot: Slot | undefined
  joined: boolean
}

/** Builds a scheduler; "now" is the `Clock` of the effect that makes it (a `TestClock` in tests). */
export const make = (options: Partial<SchedulerOptions> = {}): Effect.Effect<SchedulerShape> =>
  Effect.clockWith((clock) => Effect.sync(() => {
    const budget = options.maxFrameAgeMs ?? 0
    const latest = (options.perCamera ?? "all") === "latest"
    const timeoutMs = options.timeoutMs ?? defaults.requestTimeoutMs
    const streams = Math.max(1, options.streams ?? 1)
    const maxBatch = Math.max(1, options.maxBatch ?? 1)
    const delay = maxBatch > 1 ? Math.max(0, options.maxQueueDelayMs ?? 0) : 0
    const now = () => clock.currentTimeMillisUnsafe()

    /** Each camera's waiting tickets, oldest first. */
    const queues = new Map<string, Array<Waiter>>()
    /** Cameras with waiting tickets, in turn order: the head goes next, then to the back. */
    const ring: Array<string> = []
    /** Streams not held by a turn; the lowest index is taken first. */
    const free: Array<number> = Array.from({ length: streams }, (_, i) => streams - 1 - i)
    let waitingCount = 0
    const dropped = { expired: 0, superseded: 0, deadline: 0, displaced: 0 }
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

    /** The next waiting ticket, round-robin across cameras. */
    const takeNext = (): Waiter => {
      const camera = ring.shift()!
      const queue = queues.get(camera)!
      const w = queue.shift()!
      waitingCount--
      if (queue.length > 0) ring.push(camera)
      else queues.delete(camera)
      return w
    }

    /** One member's view of a batch of several (one that ends without joining is counted out in `finish`). */
    const memberBatch = (w: Waiter, g: Shared): Batch => ({
      size: g.size,
      join: <I, O, E>(input: I, execute: (inputs: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<O>, E>) =>
        Effect.suspend((): Effect.Effect<O, E> => {
          if (w.joined || w.state !== "started") return Effect.die(new Error("Batch.join: called twice, or outside the turn"))
          w.joined = true
          const own = Deferred.makeUnsafe<O, E>()
          const index = g.inputs.length
          g.inputs.push(input)
          g.outputs.push(own as Deferred.Deferred<unknown, unknown>)
          g.pending--
          if (g.pending === 0) Deferred.doneUnsafe(g.allIn, Effect.void)
          // Uninterruptible until the batch has run: `execute` may still read this member's input
          // (the ONNX backend: its frame, valid only while this fiber holds it).
          if (index > 0) return Effect.uninterruptible(Deferred.await(own))
          // The first to join runs the batch once the others are in (each only reads its frame meanwhile).
          const runBatch = Deferred.await(g.allIn).pipe(
            Effect.andThen(Effect.suspend(() => Effect.exit(execute(g.inputs as ReadonlyArray<I>)))),
            Effect.map((exit) => {
              const outs = g.outputs as ReadonlyArray<Deferred.Deferred<O, E>>
              if (Exit.isSuccess(exit) && exit.value.length !== outs.length) {
                const defect = Effect.die(new Error(`a batch of ${outs.length} gave ${exit.value.length} outputs`))
                for (const d of outs) Deferred.doneUnsafe(d, defect)
              } else if (Exit.isSuccess(exit)) {
                outs.forEach((d, i) => Deferred.doneUnsafe(d, Effect.succeed(exit.value[i]!)))
              } else {
                const failed = Effect.failCause(exit.cause)
                for (const d of outs) Deferred.doneUnsafe(d, failed)
              }
            })
          )
          return Effect.uninterruptible(runBatch).pipe(Effect.andThen(Deferred.await(own)))
        })
    })

    const start = (members: ReadonlyArray<Waiter>, t: number) => {
      const stream = free.pop()!
      const size = members.length
      const shared: Shared | undefined = size === 1
        ? undefined
        : { size, pending: size, inputs: [], outputs: [], allIn: Deferred.makeUnsafe<void>() }
      const group: Group = { stream, startedAt: t, live: size, shared }
      for (const w of members) {
        w.state = "started"
        w.group = group
        w.slot = { stream, batch: shared === undefined ? alone : memberBatch(w, shared) }
        w.resume?.(Effect.void)
      }
    }

    /** Whether a batch should wait for more tickets (its oldest has waited less than `delay`). */
    const holding = (t: number): boolean => {
      if (delay === 0 || waitingCount >= maxBatch) return false
      for (const camera of ring) if (t - queues.get(camera)![0]!.arrived >= delay) return false
      return true
    }

    /** Starts waiting tickets while streams are free, answering at once those that can no longer be useful. */
    const dispatchOnce = () => {
      while (free.length > 0 && ring.length > 0) {
        const t = now()
        if (holding(t)) return
        const members: Array<Waiter> = []
        while (members.length < maxBatch && ring.length > 0) {
          const w = takeNext()
          const error = verdict(w, t)
          if (error !== undefined) drop(w, error)
          else members.push(w)
        }
        if (members.length > 0) start(members, t)
      }
    }

    /**
     * `dispatchOnce`, never nested: Effect 4 runs a resumed fiber inside the resumer, so a drop or a
     * start can run a caller that submits again (or a work that ends) before this dispatch is done
     * with the stream it saw free. Such a call only asks for another pass.
     */
    let dispatching = false
    let again = false
    const dispatch = () => {
      if (dispatching) return void (again = true)
      dispatching = true
      try {
        do {
          again = false
          dispatchOnce()
        } while (again)
      } finally {
        dispatching = false
      }
    }

    const finish = (w: Waiter) => {
      if (w.state !== "started") return
      w.state = "done"
      const g = w.group!
      const shared = g.shared
      if (shared !== undefined && !w.joined && --shared.pending === 0 && shared.inputs.length > 0) {
        Deferred.doneUnsafe(shared.allIn, Effect.void)
      }
      if (--g.live > 0) return
      free.push(g.stream)
      recordRun(now() - g.startedAt)
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
          // The queue holds the newer one before the older is answered: answering may run its caller at once.
          queue[0] = w
          dropped.superseded++
          drop(older, new Superseded({ cameraId: camera }))
          return undefined
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
      dropped.displaced++
      drop(oldest, error)
      return true
    }

    /** A batch held for more tickets is started by the oldest's own fiber once it has waited `delay`. */
    const wakeAfterDelay = (w: Waiter) =>
      Effect.sleep(Math.max(0, w.arrived + delay - now())).pipe(
        Effect.andThen(Effect.sync(dispatch)),
        Effect.andThen(Effect.never)
      )

    const run = <A, E, R>(ticket: Ticket, work: Work<A, E, R>): Effect.Effect<A, E | Refused, R> =>
      Effect.uninterruptibleMask((restore) => {
        const t = now()
        const w: Waiter = {
          ticket,
          arrived: t,
          deadline: ticket.deadline ?? t + timeoutMs,
          state: "waiting",
          error: undefined,
          resume: undefined,
          group: undefined,
          slot: undefined,
          joined: false
        }
        // Known on arrival: a frame only gets older, and a deadline only nearer.
        const early = verdict(w, t)
        if (early !== undefined) return Effect.fail(early)
        const worked = Effect.suspend(() => restore(Effect.isEffect(work) ? work : work(w.slot!))).pipe(
          Effect.ensuring(Effect.sync(() => finish(w)))
        )
        // Not while a dispatch is under way (this caller was resumed inside it): it may be about to take that stream.
        if (free.length > 0 && ring.length === 0 && delay === 0 && !dispatching) {
          start([w], t)
          return worked
        }
        const refused = enqueue(w)
        if (refused !== undefined) return Effect.fail(refused)
        dispatch()
        const awaitTurn = Effect.callback<void, Refused>((resume) => {
          if (w.state === "waiting") w.resume = resume
          // Decided before here (at enqueue, or another fiber's work ended in between): answer as decided.
          else resume(w.error === undefined ? Effect.void : Effect.fail(w.error))
        })
        const turn = delay > 0 && w.state === "waiting" ? Effect.raceFirst(awaitTurn, wakeAfterDelay(w)) : awaitTurn
        return restore(turn).pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              if (w.state === "waiting") removeWaiting(w)
              else finish(w)
              w.state = "done"
            })
          ),
          Effect.andThen(worked)
        )
      })

    return {
      run,
      displace,
      dropped: () => ({ ...dropped }),
      waiting: () => waitingCount,
      estimatedRunMs: () => estimate,
      streams,
      maxBatch
    }
  }))

/** A scheduler's options from runtime settings: the one place the two are mapped. */
export const optionsOf = (
  settings: Pick<RuntimeSettings, "maxFrameAgeMs" | "perCamera" | "requestTimeoutMs" | "streams" | "maxBatch" | "maxQueueDelayMs">
): SchedulerOptions => ({
  maxFrameAgeMs: settings.maxFrameAgeMs,
  perCamera: settings.perCamera,
  timeoutMs: settings.requestTimeoutMs,
  streams: settings.streams,
  maxBatch: settings.maxBatch,
  maxQueueDelayMs: settings.maxQueueDelayMs
})

/** The scheduler with the container's settings (`RuntimeConfig`: freshness budget, per camera, timeout, streams, batches). */
export const layer: Layer.Layer<Scheduler, never, RuntimeConfig> = Layer.effect(
  Scheduler,
  Effect.flatMap(RuntimeConfig, (settings) => make(optionsOf(settings)))
)

/** A scheduler with `options` (tests; embedding without `RuntimeConfig`). */
export const layerWith = (options: Partial<SchedulerOptions> = {}): Layer.Layer<Scheduler> =>
  Layer.effect(Scheduler, make(options))
