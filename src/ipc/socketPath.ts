/**
 * Claiming a Unix socket path (CONTRACT §1): a stale socket left by a crashed
 * container is replaced; a live server or a non-socket at the path is never
 * touched and start-up fails saying why.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { Data, Effect } from "effect"

export class SocketPathError extends Data.TaggedError("SocketPathError")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `cannot listen on ${this.path}: ${this.reason}`
  }
}

/** Tries a connection: true when a server answers at `p`. */
const isLive = (p: string): Effect.Effect<boolean> =>
  Effect.callback<boolean>((resume) => {
    const socket = net.connect(p)
    const done = (live: boolean) => {
      socket.removeAllListeners()
      socket.on("error", () => {})
      socket.destroy()
      resume(Effect.succeed(live))
    }
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.timeoutOrElse({ duration: "1 second", orElse: () => Effect.succeed(true) }))

/** Makes `p` free to bind: creates its directory, removes a dead socket, refuses anything else. */
export const claimSocketPath = (p: string): Effect.Effect<void, SocketPathError> =>
  Effect.gen(function*() {
    yield* Effect.try({
      try: () => fs.mkdirSync(path.dirname(p), { recursive: true }),
      catch: (e) => new SocketPathError({ path: p, reason: `cannot create its directory: ${String(e)}` })
    })
    let stat: fs.Stats
    try {
      stat = fs.lstatSync(p)
    } catch {
      return // nothing there
    }
    if (!stat.isSocket()) {
      return yield* new SocketPathError({
        path: p,
        reason: "the path exists and is not a socket; refusing to delete it (remove it or choose another socket dir)"
      })
    }
    if (yield* isLive(p)) {
      return yield* new SocketPathError({
        path: p,
        reason: "another server is listening there (is a container for this model already running?)"
      })
    }
    yield* Effect.try({
      try: () => fs.unlinkSync(p),
      catch: (e) => new SocketPathError({ path: p, reason: `cannot remove the stale socket: ${String(e)}` })
    })
    yield* Effect.logInfo(`replaced a stale socket at ${p}`)
  })

/** Removes the socket file if it is still the one we bound (same inode), never someone else's. */
export const releaseSocketPath = (p: string, inode: number): Effect.Effect<void> =>
  Effect.sync(() => {
    try {
      const stat = fs.lstatSync(p)
      if (stat.isSocket() && stat.ino === inode) fs.unlinkSync(p)
    } catch {
      // already gone
    }
  })
