/**
 * Eviction plans: which least-recently-used images must go so that one allocation (an image, a view, a
 * replica) fits, worked out before any goes.
 *
 * The plan is made on a planning copy of the arena (its bookkeeping over no memory): candidates are freed
 * there one at a time, oldest first, and the allocation is tried after each. Freed runs may not join into
 * a run large enough (fragmentation), so "enough bytes" is never assumed: the allocator itself decides. The
 * plan is then checked once more on a fresh copy with exactly the frees the store will make, in its order,
 * so when the store evicts, the allocation that follows succeeds; when no plan works, nothing is evicted.
 */
import { isPixelportError } from '../../protocol/errors.js'
import type { Allocation, Arena } from '../memory/arena.js'

/** `none` (default): a full store refuses with 507. `lru`: evict least-recently-used idle images first. */
export type EvictionPolicy = 'none' | 'lru'
export const EVICTION_POLICIES: readonly EvictionPolicy[] = ['none', 'lru']

/** Why images were evicted: the error the allocation would otherwise have failed with, and for what. */
export interface EvictionReason {
  code: 'PXP_ERR_CAPACITY' | 'PXP_ERR_TOO_MANY_IMAGES'
  /** Id of the image or view being made room for. */
  for: string
}

export interface EvictionCandidate<T> {
  readonly item: T
  /** Use clock of the last use the store saw; lowest goes first. */
  readonly lastUsed: number
  /** Memory given back to the arena when it goes (none for a view: its pixels are its parent's). */
  readonly frees: readonly Allocation[]
}

export interface EvictionNeed {
  /** Image-table slots that must become free (0 when slots are not what is short). */
  slots: number
  /** Makes the allocation on `arena` (a planning copy), throwing PXP_ERR_CAPACITY when it does not fit; null when no memory is needed. */
  place: ((arena: Arena) => unknown) | null
}

/**
 * The fewest candidates, least recently used first, whose eviction makes `need` fit; null when evicting
 * every candidate would not do (then nothing may be evicted).
 */
export function planEviction<T> (arena: Arena, candidates: ReadonlyArray<EvictionCandidate<T>>, need: EvictionNeed): T[] | null {
  const order = [...candidates].sort((a, b) => a.lastUsed - b.lastUsed)
  const shadow = arena.planningCopy()
  const chosen: Array<EvictionCandidate<T>> = []
  for (let next = 0; ; next++) {
    // A successful try changes the shadow, which is dropped right after; a failed one leaves it as it was.
    if (chosen.length >= need.slots && fits(shadow, need)) break
    if (next >= order.length) return null
    for (const a of order[next].frees) shadow.free(a)
    chosen.push(order[next])
  }
  if (need.place !== null) {
    // Tries in between may have released empty blocks the real arena still has: check the exact sequence.
    const check = arena.planningCopy()
    for (const c of chosen) for (const a of c.frees) check.free(a)
    if (!fits(check, need)) return null
  }
  return chosen.map((c) => c.item)
}

function fits (arena: Arena, need: EvictionNeed): boolean {
  if (need.place === null) return true
  try {
    need.place(arena)
    return true
  } catch (err) {
    if (isPixelportError(err) && err.code === 'PXP_ERR_CAPACITY') return false
    throw err
  }
}
