/** Small file-system helpers shared across the runtime. */
import * as fs from "node:fs"

/**
 * Replaces `file` atomically: write a temp file beside it, then rename, so a
 * reader sees the old content or the new, never half of it.
 */
export const writeFileAtomically = (file: string, bytes: string | Uint8Array): void => {
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, bytes)
  fs.renameSync(tmp, file)
}
