/**
 * Where a block's memory comes from: the one small interface the arena allocates through.
 *
 * The default provider makes plain in-process SharedArrayBuffers. A later provider backs blocks with
 * `/dev/shm` files so other processes can map the same pixels; it returns SharedArrayBuffers too, so
 * nothing above this interface changes.
 */
import type { FutexWake } from '../../protocol/cross-process.js'
import type { StoreMeta } from './shm-table-check.js'

export interface BlockMemory {
  readonly buffer: SharedArrayBuffer
  /** Name other processes can open the memory by (e.g. a /dev/shm segment), or null when private. */
  readonly name: string | null
}

export interface BlockProvider {
  /** Short name shown in stats and logs, e.g. `heap` or `shm`. */
  readonly kind: string
  /** Obtain `byteLength` bytes of zero-filled shared memory. Throws when the memory cannot be had. */
  allocate (byteLength: number): BlockMemory
  /** Give the memory back. The buffer must not be used by the caller afterwards. */
  release (memory: BlockMemory): void
  /**
   * Release everything this provider still holds (e.g. unlink segments). Idempotent. `keep`: leave memory
   * that outlives the process (segments) in place for the next server to adopt.
   */
  close (keep?: boolean): void
  /**
   * Memory for the image table, when the provider puts it where other processes can map it (a fixed-size
   * named segment). Absent: the table makes its own growable in-process buffer.
   */
  allocateTable? (byteLength: number): BlockMemory
  /** Present when other processes map the memory: wakes their futex waiters on a word of it. */
  readonly futexWake?: FutexWake
  /** Present when the memory outlives the process: saves what the table has no room for (see shm-adopt.ts). */
  saveMeta? (meta: StoreMeta): void
}

/** In-process SharedArrayBuffers: pages are committed lazily by the OS, so big blocks cost nothing until used. */
export class HeapBlockProvider implements BlockProvider {
  readonly kind = 'heap'

  allocate (byteLength: number): BlockMemory {
    return { buffer: new SharedArrayBuffer(byteLength), name: null }
  }

  release (_memory: BlockMemory): void {
    // Nothing to do: the garbage collector reclaims the buffer once no thread references it.
  }

  close (): void {}
}
