/**
 * Reusable frame buffers: a request borrows one of exactly the frame's size
 * and gives it back when it ends, so steady traffic allocates nothing (a
 * fresh multi-megabyte buffer per request is mostly garbage-collector work).
 * Free buffers are kept up to `maxPooledBytes`; beyond that they are dropped.
 */
export class BufferPool {
  private readonly free = new Map<number, Array<Uint8Array>>()
  private pooledBytes = 0
  private borrowed = 0

  constructor(readonly maxPooledBytes: number) {}

  /** A buffer of exactly `size` bytes (contents undefined). */
  acquire(size: number): Uint8Array {
    this.borrowed++
    const list = this.free.get(size)
    const buf = list?.pop()
    if (buf !== undefined) {
      this.pooledBytes -= size
      return buf
    }
    return Buffer.allocUnsafeSlow(size)
  }

  release(buf: Uint8Array): void {
    this.borrowed--
    if (this.pooledBytes + buf.byteLength > this.maxPooledBytes) return
    const list = this.free.get(buf.byteLength)
    if (list === undefined) this.free.set(buf.byteLength, [buf])
    else list.push(buf)
    this.pooledBytes += buf.byteLength
  }

  /** Buffers currently lent out (0 when no request holds a frame). */
  get inUse(): number {
    return this.borrowed
  }

  /** Bytes held by free buffers. */
  get idleBytes(): number {
    return this.pooledBytes
  }
}
