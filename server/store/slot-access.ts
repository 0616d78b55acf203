/**
 * Access to an image's memory through its control words in the image table: the write lock, the seqlock,
 * leases, and the frame buffers of loan/publish images. Every read and write the server thread makes goes
 * through here, so it follows the same protocol as worker threads and attached processes (protocol/sync.ts).
 */
import { pxpError } from '../../protocol/errors.js'
import { LOCK_TOKEN, SLOT, slotBase } from '../../protocol/layout.js'
import {
  beginWrite, cancelLoan, endWrite, generationOf, loanFrame, lockAsync, pinFront, publishFrame, readOptimistic, tryLock, unlock, unpin,
} from '../../protocol/sync.js'
import type { ImageTable } from './image-table.js'
import { gather, type Pieces } from './pixels.js'
import { rootOf, type ImageRecord } from './records.js'

/** How long the server thread may block waiting for a write lock before it waits asynchronously. */
const SYNC_LOCK_WAIT_MS = 5

export class SlotAccess {
  /**
   * @param lockTimeoutMs how long a write or locked read waits for a lock (or a free frame) held elsewhere
   * @param onUnleased called when the store's own lease on a deleted record was the last one
   */
  constructor (
    private readonly table: ImageTable,
    readonly lockTimeoutMs: number,
    private readonly onUnleased: (record: ImageRecord) => void,
  ) {}

  /**
   * Copy one committed generation of `record` into `bytes` and return that generation. Readers never wait
   * for writers except when a write overlaps every optimistic attempt; then the copy is made under the
   * write lock, which blocks writers for exactly one memory copy. Loan/publish images: the published frame
   * is pinned, so no writer can touch it during the copy.
   */
  async read (record: ImageRecord, bytes: Uint8Array): Promise<number> {
    const slot = rootOf(record).slot
    const words = this.table.words
    if (record.frames > 1) {
      const pinned = pinFront(words, slot)
      if (pinned === null) throw pxpError('PXP_ERR_LOCK_TIMEOUT', 0, record.id)
      try {
        gather(record.pieces[pinned.frame], bytes)
      } finally {
        unpin(words, slot, pinned.frame)
      }
      return pinned.generation
    }
    const generation = readOptimistic(words, slot, () => gather(record.pieces[0], bytes))
    if (generation >= 0) return generation
    return await this.leased(record, async () => {
      await this.lock(record)
      try {
        gather(record.pieces[0], bytes)
        return generationOf(words, slot)
      } finally {
        unlock(words, slot, LOCK_TOKEN.SERVER)
      }
    })
  }

  /**
   * Run `mutate` on the pieces of `record` and commit a new generation: under the write lock, or into a
   * loaned frame then published (`keepPixels`: start the loaned frame from the published pixels). The store
   * holds a lease meanwhile, so a concurrent delete cannot free the memory under the writer.
   */
  async update (record: ImageRecord, mutate: (pieces: Pieces) => void, keepPixels: boolean): Promise<void> {
    await this.leased(record, async () => {
      if (record.frames > 1) await this.updateByLoan(record, mutate, keepPixels)
      else await this.updateInPlace(record, mutate)
    })
  }

  /** Does any thread or process hold the image: a lease (open handle), a pinned or loaned frame, the write lock? */
  isHeld (record: ImageRecord): boolean {
    const words = this.table.words
    const base = slotBase(record.slot)
    if (Atomics.load(words, base + SLOT.LEASES) !== 0) return true
    // Views share their root's pins and lock; a root with views is never evicted anyway.
    if (record.parent !== null) return false
    if (Atomics.load(words, base + SLOT.WRITE_LOCK) !== 0) return true
    for (let f = 0; f < record.frames; f++) if (Atomics.load(words, base + SLOT.PINS + f) !== 0) return true
    return false
  }

  private async leased<T> (record: ImageRecord, work: () => Promise<T>): Promise<T> {
    this.table.addLeases(record.slot, 1)
    try {
      return await work()
    } finally {
      if (this.table.addLeases(record.slot, -1) === 0 && record.deleted) this.onUnleased(record)
    }
  }

  private async updateInPlace (record: ImageRecord, mutate: (pieces: Pieces) => void): Promise<void> {
    const words = this.table.words
    const slot = rootOf(record).slot
    await this.lock(record)
    try {
      if (record.deleted) throw pxpError('PXP_ERR_NOT_FOUND', record.id)
      beginWrite(words, slot)
      try {
        mutate(record.pieces[0])
      } finally {
        endWrite(words, slot)
      }
    } finally {
      unlock(words, slot, LOCK_TOKEN.SERVER)
    }
    this.table.notifyCommit(slot)
  }

  /** Frame-buffered images: fill a loaned buffer, then publish it; readers of the front are never disturbed. */
  private async updateByLoan (record: ImageRecord, mutate: (pieces: Pieces) => void, keepPixels: boolean): Promise<void> {
    const words = this.table.words
    const root = rootOf(record)
    const slot = root.slot
    const deadline = performance.now() + this.lockTimeoutMs
    let frame = loanFrame(words, slot)
    // Every other buffer is pinned by readers or loaned to a writer: wait for the next publish or unpin.
    while (frame < 0) {
      if (performance.now() > deadline) throw pxpError('PXP_ERR_LOCK_TIMEOUT', this.lockTimeoutMs, record.id)
      await new Promise((resolve) => setTimeout(resolve, 1))
      frame = loanFrame(words, slot)
    }
    try {
      if (keepPixels || record !== root) {
        // A view or partial update changes only part of the frame: start from the published pixels.
        const pinned = pinFront(words, slot)
        if (pinned === null) throw pxpError('PXP_ERR_LOCK_TIMEOUT', 0, record.id)
        try {
          root.pieces[frame][0].set(root.pieces[pinned.frame][0])
        } finally {
          unpin(words, slot, pinned.frame)
        }
      }
      mutate(record.pieces[frame])
      await this.lock(record)
    } catch (err) {
      cancelLoan(words, slot, frame)
      throw err
    }
    try {
      if (record.deleted) {
        cancelLoan(words, slot, frame)
        throw pxpError('PXP_ERR_NOT_FOUND', record.id)
      }
      publishFrame(words, slot, frame)
    } finally {
      unlock(words, slot, LOCK_TOKEN.SERVER)
    }
    this.table.notifyCommit(slot)
  }

  private async lock (record: ImageRecord): Promise<void> {
    // First a short synchronous wait: unlock() wakes a blocked waiter at once, so a reader competing with a
    // writer that re-locks in a tight loop still gets its turn; waiting through the event loop, it would not.
    // Bounded, so the server thread never stalls for more than a few frame copies.
    const words = this.table.words
    const slot = rootOf(record).slot
    const at = slotBase(slot) + SLOT.WRITE_LOCK
    const spinUntil = performance.now() + SYNC_LOCK_WAIT_MS
    while (performance.now() < spinUntil) {
      if (tryLock(words, slot, LOCK_TOKEN.SERVER)) return
      const holder = Atomics.load(words, at)
      if (holder !== 0) Atomics.wait(words, at, holder, 0.5)
    }
    const ok = await lockAsync(words, slot, LOCK_TOKEN.SERVER, this.lockTimeoutMs)
    if (!ok) throw pxpError('PXP_ERR_LOCK_TIMEOUT', this.lockTimeoutMs, record.id)
  }
}
