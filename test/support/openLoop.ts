/** Checks on open-loop reports (`runOpenLoop`, `ruth-model bench --cameras`). */
import type { OpenLoopCounts } from "../../src/ipc/openLoop.js"

/** How many frames ended one way or another: every answer, no answer in time, a broken connection. Equals `sent`. */
export const accountedFor = (c: OpenLoopCounts): number =>
  c.ok + c.expired + c.superseded + c.overloaded + c.timeout +
  Object.values(c.otherErrors).reduce((a, b) => a + b, 0) + c.unanswered + c.failures

/** The text report's rows by camera (and `total`), each cell by its column's heading. */
export const openLoopRows = (stdout: string): Record<string, Record<string, string>> => {
  const lines = stdout.trim().split("\n")
  const headerAt = lines.findIndex((l) => l.startsWith("camera"))
  const header = lines[headerAt]!.trim().split(/\s{2,}/)
  const rows: Record<string, Record<string, string>> = {}
  for (const line of lines.slice(headerAt + 1)) {
    const cells = line.trim().split(/\s{2,}/)
    if (cells.length !== header.length) break
    rows[cells[0]!] = Object.fromEntries(header.map((h, i) => [h, cells[i]!]))
  }
  return rows
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null

/** The scripted answers in turn by frame id: ok, then one of each error (the last one without a code, as servers before the codes answer). */
const CODES = [undefined, "FRAME_EXPIRED", "SUPERSEDED", "OVERLOADED", "SOMETHING_NEW", null] as const
/** A `startScriptedServer` answer by frame id (see CODES: each of the six in turn); every request is recorded in `seen`. */
export const scriptedAnswer = (seen: Array<{ camera: string; frameId: number; timestamp: number }>) => (message: unknown) => {
  const m = isRecord(message) ? message : {}
  const meta = isRecord(m.frame_metadata) ? m.frame_metadata : {}
  const frameId = Number(meta.frame_id)
  seen.push({ camera: String(m.camera_id), frameId, timestamp: Number(m.timestamp) })
  const code = CODES[frameId % CODES.length]
  return {
    model_id: m.model_id, camera_id: m.camera_id, frame_id: frameId, detections: [], metadata: null,
    error: code === undefined ? null : `scripted ${code ?? "uncoded"}`,
    ...(typeof code === "string" ? { error_code: code } : {})
  }
}

