/**
 * The seqlock and write-lock protocol over a slot's control words (layout.ts), as plain functions of an
 * Int32Array so the server, worker threads and (later) other processes run exactly the same steps.
 */
import { HEADER, isExternalToken, SLOT, slotBase } from './layout.js'

/** Try to take the write lock of `slot` for `token`; true when taken. Never blocks. */
export function tryLock (table: Int32Array, slot: number, token: number): boolean {
  return Atomics.compareExchange(table, slotBase(slot) + SLOT.WRITE_LOCK, 0, token) === 0
}

/** Release the write lock held by `token` and wake one waiting writer. False when `token` did not hold it. */
export function unlock (table: Int32Array, slot: number, token: number): boolean {
  const at = slotBase(slot) + SLOT.WRITE_LOCK
  if (Atomics.compareExchange(table, at, token, 0) !== token) return false
  Atomics.notify(table, at, 1)
  return true
}

/** Current holder of the write lock (0 when free). */
export function lockHolder (table: Int32Array, slot: number): number {
  return Atomics.load(table, slotBase(slot) + SLOT.WRITE_LOCK)
}

/** How often a lock waiter looks again when the holder's unlock cannot wake it (another process). */
export const FOREIGN_LOCK_POLL_MS = 1

/**
 * Wait (asynchronously) until the write lock of `slot` is taken by `token`. Resolves true when held,
 * false on timeout. Uses Atomics.waitAsync, so it never blocks the event loop.
 *
 * An unlock in another process cannot Atomics.notify this one, so while the holder is such a process the
 * wait is cut into `FOREIGN_LOCK_POLL_MS` slices. `isForeign` says who that is; by default the tokens of
 * attached processes (a client in another process treats every holder but itself as foreign).
 */
export async function lockAsync (
  table: Int32Array, slot: number, token: number, timeoutMs: number, isForeign: (holder: number) => boolean = isExternalToken,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  const at = slotBase(slot) + SLOT.WRITE_LOCK
  for (;;) {
    if (tryLock(table, slot, token)) return true
    const left = deadline - performance.now()
    if (left <= 0) return false
    const holder = Atomics.load(table, at)
    if (holder === 0) continue
    const res = Atomics.waitAsync(table, at, holder, isForeign(holder) ? Math.min(left, FOREIGN_LOCK_POLL_MS) : left)
    if (!res.async) continue
    // A pending waitAsync does not keep Node's event loop alive (nodejs/node#61941): without a ref'd timer
    // the process may exit, or never reach the timeout, while we wait for another thread's unlock.
    const keepAlive = setTimeout(() => {}, Math.ceil(left))
    try {
      await res.value
    } finally {
      clearTimeout(keepAlive)
    }
  }
}

/** Mark the start of a write: readers that overlap it will retry. Caller holds the write lock. */
export function beginWrite (table: Int32Array, slot: number): void {
  Atomics.add(table, slotBase(slot) + SLOT.SEQ, 1)
}

/**
 * Mark the end of a write and commit it as a new generation. Returns the new generation. Caller holds the
 * write lock, and calls notifyCommit() once it has released it.
 */
export function endWrite (table: Int32Array, slot: number): number {
  const base = slotBase(slot)
  // GENERATION moves before SEQ turns even: a reader that sees the even SEQ also sees the new generation,
  // so the generation it reports always names the bytes it copied.
  const generation = (Atomics.add(table, base + SLOT.GENERATION, 1) + 1) >>> 0
  Atomics.add(table, base + SLOT.SEQ, 1)
  return generation
}

/** Seqlock value to read before a consistent read; odd means a write is in progress. */
export function readSeq (table: Int32Array, slot: number): number {
  return Atomics.load(table, slotBase(slot) + SLOT.SEQ)
}

export function generationOf (table: Int32Array, slot: number): number {
  return Atomics.load(table, slotBase(slot) + SLOT.GENERATION) >>> 0
}

/**
 * Run `read` so that what it saw is one committed generation: retry while a write overlaps, up to
 * `attempts` times. Returns the generation read, or -1 when every attempt overlapped a write (the caller
 * then takes the write lock for one copy, so a reader never starves and never waits long).
 */
export function readOptimistic (table: Int32Array, slot: number, read: () => void, attempts = 4): number {
  const base = slotBase(slot)
  for (let i = 0; i < attempts; i++) {
    const s1 = Atomics.load(table, base + SLOT.SEQ)
    if ((s1 & 1) !== 0) continue
    const generation = Atomics.load(table, base + SLOT.GENERATION) >>> 0
    read()
    if (Atomics.load(table, base + SLOT.SEQ) === s1) return generation
  }
  return -1
}

// ---- frame buffers: loan / publish / pin (images with FRAMES > 1) ---------------------------------------

export interface PinnedFrame {
  /** Index of the pinned frame buffer. */
  frame: number
  /** The generation that buffer holds. */
  generation: number
}

export function framesOf (table: Int32Array, slot: number): number {
  return Atomics.load(table, slotBase(slot) + SLOT.FRAMES)
}

/**
 * Pin the published frame buffer and learn which generation it holds. Returns null only when every
 * attempt raced a publish (callers retry or fall back); a pinned buffer is never loaned to a writer.
 */
export function pinFront (table: Int32Array, slot: number, attempts = 64): PinnedFrame | null {
  const base = slotBase(slot)
  for (let i = 0; i < attempts; i++) {
    const s1 = Atomics.load(table, base + SLOT.SEQ)
    if ((s1 & 1) !== 0) continue
    const frame = Atomics.load(table, base + SLOT.FRONT)
    const generation = Atomics.load(table, base + SLOT.GENERATION) >>> 0
    if (Atomics.load(table, base + SLOT.SEQ) !== s1) continue
    const at = base + SLOT.PINS + frame
    const pins = Atomics.load(table, at)
    // -1 means a writer loaned it after it stopped being the front: the pair we read is stale, retry.
    if (pins < 0 || Atomics.compareExchange(table, at, pins, pins + 1) !== pins) continue
    // Pinned, but between reading FRONT and the pin a writer may have moved the front on, loaned this very
    // buffer, refilled and republished it (ABA): then `generation` would not name its bytes. Nothing was
    // published in between only if SEQ is still s1.
    if (Atomics.load(table, base + SLOT.SEQ) === s1) return { frame, generation }
    Atomics.sub(table, at, 1)
  }
  return null
}

/** Drop one pin of `frame`. */
export function unpin (table: Int32Array, slot: number, frame: number): void {
  Atomics.sub(table, slotBase(slot) + SLOT.PINS + frame, 1)
}

/** Loan a frame buffer that is neither published nor pinned; -1 when every other buffer is busy. */
export function loanFrame (table: Int32Array, slot: number): number {
  const base = slotBase(slot)
  const frames = Atomics.load(table, base + SLOT.FRAMES)
  const front = Atomics.load(table, base + SLOT.FRONT)
  for (let k = 1; k < frames; k++) {
    // Start after the front so consecutive loans cycle through the buffers.
    const f = (front + k) % frames
    if (Atomics.compareExchange(table, base + SLOT.PINS + f, 0, -1) !== 0) continue
    // `front` may be stale: another writer may have published f in the meantime, and an unpinned front has
    // PINS 0 too. Loaning the front would let us write into the frame readers are reading (a seqlock reader
    // of the front would not notice). Once the loan is ours f can only become the front by our publish.
    if (Atomics.load(table, base + SLOT.FRONT) !== f) return f
    Atomics.store(table, base + SLOT.PINS + f, 0)
  }
  return -1
}

/** Give a loaned buffer back unpublished. */
export function cancelLoan (table: Int32Array, slot: number, frame: number): void {
  Atomics.compareExchange(table, slotBase(slot) + SLOT.PINS + frame, -1, 0)
}

/**
 * Publish a loaned buffer as the new front and commit a new generation. Caller holds the write lock, and
 * calls notifyCommit() once it has released it. The old front becomes loanable once its readers unpin it.
 */
export function publishFrame (table: Int32Array, slot: number, frame: number): number {
  const base = slotBase(slot)
  Atomics.add(table, base + SLOT.SEQ, 1)
  Atomics.store(table, base + SLOT.FRONT, frame)
  Atomics.store(table, base + SLOT.PINS + frame, 0)
  const generation = (Atomics.add(table, base + SLOT.GENERATION, 1) + 1) >>> 0
  Atomics.add(table, base + SLOT.SEQ, 1)
  return generation
}

/**
 * Wake everyone waiting for a new generation of `slot`, and the server watching COMMIT_SEQ. Call it after
 * unlock(): a woken reader that turns writer then finds the lock free instead of queueing behind us.
 */
export function notifyCommit (table: Int32Array, slot: number): void {
  Atomics.notify(table, slotBase(slot) + SLOT.GENERATION)
  Atomics.add(table, HEADER.COMMIT_SEQ, 1)
  Atomics.notify(table, HEADER.COMMIT_SEQ)
}
