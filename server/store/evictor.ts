/**
 * Room for one more image: a free image-table slot and, usually, memory in the arena. With the `lru` policy
 * a store that is full evicts the least-recently-used idle images that make the new one fit (the plan is
 * made by ./eviction.ts before any goes); with `none` it refuses.
 *
 * Recency is the store's use clock: every read, commit and use a transport reports (`touch`) moves an image
 * to the back of the line, and so does being found held (a lease, pin, loan or write lock) while planning.
 */
import { isPixelportError, pxpError } from '../../protocol/errors.js'
import type { Arena } from '../memory/arena.js'
import { EVICTION_POLICIES, planEviction, type EvictionCandidate, type EvictionPolicy, type EvictionReason } from './eviction.js'
import type { ImageTable } from './image-table.js'
import { freesOf } from './records.js'
import type { ImageRecord } from './records.js'

/**
 * Which images eviction may remove to make room for one caller: those it could delete itself. Undefined:
 * any idle image (the server's own callers, worker threads and attached processes, which are trusted).
 */
export type MayEvict = (id: string) => boolean

export interface EvictorHost {
  readonly arena: Arena
  readonly table: ImageTable
  /** Slots promised to uploads in progress (not in the table yet). */
  promisedSlots (): number
  /** Every live image and view. */
  records (): Iterable<ImageRecord>
  /** Does a thread or process hold the image right now? */
  isHeld (record: ImageRecord): boolean
  /** Remove an image chosen for eviction. */
  evict (record: ImageRecord, reason: EvictionReason): void
}

export class Evictor {
  /** Bumped on every use: a record's lastUsed orders evictions. */
  private useClock = 0
  /** Checks that say whether something outside the store (snapshots being streamed) uses an image now. */
  private readonly guards = new Set<(id: string) => boolean>()

  constructor (readonly policy: EvictionPolicy, private readonly host: EvictorHost) {
    if (!EVICTION_POLICIES.includes(policy)) {
      throw pxpError('PXP_ERR_VALIDATION', `option evict must be one of ${EVICTION_POLICIES.join(', ')}, got ${JSON.stringify(policy)}`)
    }
  }

  /** The next tick of the use clock (a new record's lastUsed). */
  tick (): number {
    return ++this.useClock
  }

  /** A use of `record`: it goes to the back of the eviction order. Reading a view reads its parent's pixels. */
  touch (record: ImageRecord): void {
    record.lastUsed = ++this.useClock
    if (record.parent !== null) record.parent.lastUsed = record.lastUsed
  }

  /** Never evict an image `inUse` says is in use. Returns the function that removes the check. */
  addGuard (inUse: (id: string) => boolean): () => void {
    this.guards.add(inUse)
    return () => { this.guards.delete(inUse) }
  }

  /** Throw PXP_ERR_TOO_MANY_IMAGES when every slot is taken or promised. */
  assertSlotFree (): void {
    const { table } = this.host
    if (table.slotsInUse + this.host.promisedSlots() >= table.maxSlots) throw pxpError('PXP_ERR_TOO_MANY_IMAGES', table.maxSlots)
  }

  /**
   * Run `place` (an allocation on the arena; null when only a table slot is needed) once a slot is free.
   * When that fails for want of memory or slots and the policy is `lru`, evict the fewest least-recently-used
   * idle images that make it fit — planned first, so when no plan works nothing is evicted and the same
   * error is thrown. Never evicts the records in `keep`, nor (with `mayEvict`) an image the caller could not
   * delete itself: a client limited to `a/*` must not make room by removing `b/*`.
   */
  withRoom<T> (forId: string, keep: readonly ImageRecord[], mayEvict: MayEvict | undefined, place: ((arena: Arena) => T) | null): T | undefined {
    const { arena, table } = this.host
    try {
      this.assertSlotFree()
      return place?.(arena)
    } catch (err) {
      if (this.policy !== 'lru' || !isPixelportError(err) || (err.code !== 'PXP_ERR_CAPACITY' && err.code !== 'PXP_ERR_TOO_MANY_IMAGES')) throw err
      const slots = Math.max(0, table.slotsInUse + this.host.promisedSlots() + 1 - table.maxSlots)
      const candidates = this.candidates(keep).filter((c) => mayEvict === undefined || mayEvict(c.item.id))
      const plan = planEviction(arena, candidates, { slots, place })
      if (plan === null) throw err
      const reason: EvictionReason = { code: err.code, for: forId }
      for (const record of plan) this.host.evict(record, reason)
      // The plan was checked against the arena's own bookkeeping, so this fits. (Only a worker taking a lease
      // on an evicted image in the same instant could keep its memory; then this fails like a full store.)
      this.assertSlotFree()
      return place?.(arena)
    }
  }

  /** Live images nobody holds: no lease, pin, loan or write lock, no views, no guard says in use. */
  candidates (keep: readonly ImageRecord[] = []): Array<EvictionCandidate<ImageRecord>> {
    const candidates: Array<EvictionCandidate<ImageRecord>> = []
    for (const record of this.host.records()) {
      if (keep.includes(record) || record.children.size > 0) continue
      if (this.host.isHeld(record) || [...this.guards].some((inUse) => inUse(record.id))) {
        // Held right now is a use: a worker's reads send no message, so this is when the store learns of them.
        this.touch(record)
        continue
      }
      candidates.push({ item: record, lastUsed: record.lastUsed, frees: freesOf(record) })
    }
    return candidates
  }
}
