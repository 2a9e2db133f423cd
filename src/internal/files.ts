/** Small file-system helpers shared across the runtime. */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"

/** Create a new file, never open an existing one, never follow a symlink at the name. */
const CREATE_NEW = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW

/**
 * Replaces `file` atomically: write a temp file beside it, then rename, so a
 * reader sees the old content or the new, never half of it. The temp name is
 * unpredictable and created exclusively without following links (the
 * directory may be shared: /tmp), and the file gets `mode` whatever the umask.
 */
export const writeFileAtomically = (file: string, bytes: string | Uint8Array, mode = 0o644): void => {
  const tmp = `${file}.${process.pid}.${randomBytes(8).toString("hex")}.tmp`
  const fd = fs.openSync(tmp, CREATE_NEW, mode)
  try {
    try {
      fs.fchmodSync(fd, mode)
      fs.writeFileSync(fd, bytes)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(tmp, file)
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw e
  }
}
