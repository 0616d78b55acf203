/**
 * The store's ids in sorted order, kept up to date from its `created`/`deleted` events, so a list page
 * finds where it starts by binary search instead of sorting (or describing) every image per request.
 */
import type { ImageStore } from '../store/image-store.js'

export class IdIndex {
  private ids: string[] | null = null

  constructor (private readonly store: ImageStore) {
    // Inserting into a sorted array moves pointers (a few microseconds for 16384 ids); a rebuild sorts.
    store.onChange((type, d) => {
      if (this.ids === null || type === 'updated') return
      const i = lowerBound(this.ids, d.id)
      if (type === 'created') this.ids.splice(i, 0, d.id)
      else if (this.ids[i] === d.id) this.ids.splice(i, 1)
    })
  }

  /** Every id, sorted (UTF-16 code unit order, which is byte order for ids: they are ASCII). */
  sorted (): readonly string[] {
    // Rebuilt lazily, and whenever the count disagrees with the store's (a backstop, never expected).
    if (this.ids === null || this.ids.length !== this.store.size) this.ids = this.store.ids().sort()
    return this.ids
  }
}

/** First index whose item is >= `key` (items sorted). */
export function lowerBound (items: readonly string[], key: string): number {
  let lo = 0
  let hi = items.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (items[mid] < key) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** First index whose item is > `key`. */
export function upperBound (items: readonly string[], key: string): number {
  const i = lowerBound(items, key)
  return items[i] === key ? i + 1 : i
}

const indexes = new WeakMap<ImageStore, IdIndex>()

/** The one index of a store (created on first use; its listeners live as long as the store). */
export function idIndexOf (store: ImageStore): IdIndex {
  let index = indexes.get(store)
  if (index === undefined) indexes.set(store, index = new IdIndex(store))
  return index
}
