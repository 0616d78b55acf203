/**
 * Staging buffers for uploads that must not land in live memory (overwrites: HTTP PUT, WebSocket put on an
 * existing image), recycled.
 *
 * Fresh memory is expensive to touch the first time: on the VMs we measured, 64 MiB cost ~350 ms of page
 * faults against ~5 ms to write it again. A producer PUTting frames of one size would pay that on every
 * frame; keeping a few idle buffers of recently used sizes avoids it. The idle memory is bounded.
 */

export class StagingPool {
  /** Idle buffers, least recently returned first. */
  private readonly idle: Buffer[] = []
  private idleBytes = 0

  /** @param maxIdleBytes most memory kept idle between uploads */
  constructor (readonly maxIdleBytes: number) {}

  /** A buffer of exactly `size` bytes, with arbitrary contents: the caller overwrites all of it. */
  take (size: number): Buffer {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      if (this.idle[i].byteLength === size) {
        const [buffer] = this.idle.splice(i, 1)
        this.idleBytes -= size
        return buffer
      }
    }
    return Buffer.allocUnsafeSlow(size)
  }

  /** Hand a buffer back once nothing reads or writes it any more. */
  give (buffer: Buffer): void {
    if (buffer.byteLength > this.maxIdleBytes) return
    this.idle.push(buffer)
    this.idleBytes += buffer.byteLength
    while (this.idleBytes > this.maxIdleBytes) this.idleBytes -= this.idle.shift()!.byteLength
  }

  stats (): { buffers: number, bytes: number, maxBytes: number } {
    return { buffers: this.idle.length, bytes: this.idleBytes, maxBytes: this.maxIdleBytes }
  }
}
