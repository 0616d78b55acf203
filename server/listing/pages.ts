/**
 * List pages: `GET /images` and WebSocket `list` return at most `limit` descriptors (and at most a byte
 * budget of them) per request, in id order, with a `next` cursor to continue from, or null at the end.
 *
 * The work of one request is bounded by its page: the start is found by binary search in the sorted
 * ids (IdIndex), and only the descriptors returned are built. (A token limited to some ids still skips
 * the ids it may not see one by one: a comparison each, no descriptor.)
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError } from '../../protocol/errors.js'
import { LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT } from '../../protocol/messages.js'
import type { Principal } from '../auth/tokens.js'
import type { ClusterDescriptor } from '../cluster/node.js'
import type { ImageStore } from '../store/image-store.js'
import { decodeCursor, encodeCursor, KEY_SEPARATOR, type ListScope } from './cursor.js'
import { idIndexOf, upperBound } from './id-index.js'

/** Descriptors per page when the request names no `limit`. */
export const DEFAULT_PAGE_SIZE = LIST_DEFAULT_LIMIT
/** Largest `limit` accepted; a larger one is refused with PXP_ERR_VALIDATION (not clamped). */
export const MAX_PAGE_SIZE = LIST_MAX_LIMIT
/**
 * Bytes of descriptors (measured as JSON, which is never shorter than their MessagePack) an HTTP page
 * holds at most: a descriptor of a `lines` image lists every row, so a count alone does not bound a page.
 */
export const HTTP_PAGE_BYTES = 8 * 1024 * 1024

export interface PageRequest {
  limit?: number
  cursor?: string
}

export interface Page<T> {
  images: T[]
  /** Cursor of the next page; null when this page is the last. */
  next: string | null
}

/** The page's limit, checked (the schemas check it too; this keeps every caller honest). */
function limitOf (request: PageRequest): number {
  const limit = request.limit ?? DEFAULT_PAGE_SIZE
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw pxpError('PXP_ERR_VALIDATION', `limit must be an integer from 1 to ${MAX_PAGE_SIZE}, got ${JSON.stringify(limit)}`)
  }
  return limit
}

/**
 * Walk `keys` (sorted) from `from`, taking the items `item` gives (null: skip, the caller may not see
 * it) until `limit` items or `budget` bytes; the page then ends before the next item it would take.
 */
function collect<T> (scope: ListScope, keys: readonly string[], from: number, limit: number, budget: number, item: (i: number) => T | null): Page<T> {
  const images: T[] = []
  let bytes = 0
  let last = -1
  for (let i = from; i < keys.length; i++) {
    if (images.length >= limit) {
      // Only a next item the caller may see makes a next page.
      if (item(i) === null) continue
      return { images, next: encodeCursor(scope, keys[last]) }
    }
    const value = item(i)
    if (value === null) continue
    const size = JSON.stringify(value).length
    // A page always holds at least one item, however large.
    if (images.length > 0 && bytes + size > budget) return { images, next: encodeCursor(scope, keys[last]) }
    images.push(value)
    bytes += size
    last = i
  }
  return { images, next: null }
}

/** A page of this node's images, in id order. */
export function localPage (store: ImageStore, principal: Principal, request: PageRequest, budget: number): Page<ImageDescriptor> {
  const limit = limitOf(request)
  const ids = idIndexOf(store).sorted()
  const from = request.cursor === undefined ? 0 : upperBound(ids, decodeCursor('local', request.cursor))
  return collect('local', ids, from, limit, budget, (i) => {
    const id = ids[i]
    if (!principal.mayTouch(id) || !store.has(id)) return null
    // A view is listed only to whom may also see its base (its pixels are the base's).
    const descriptor = store.describe(id)
    return principal.maySee(descriptor) ? descriptor : null
  })
}

/** A page of a cluster listing (every node's images, already fetched), in (id, node) order. */
export function clusterPage (listing: readonly ClusterDescriptor[], principal: Principal, request: PageRequest, budget: number): Page<ClusterDescriptor> {
  const limit = limitOf(request)
  const entries = principal.visible([...listing])
    .map((d) => [d.id + KEY_SEPARATOR + d.node, d] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  const keys = entries.map((e) => e[0])
  const from = request.cursor === undefined ? 0 : upperBound(keys, decodeCursor('cluster', request.cursor))
  return collect('cluster', keys, from, limit, budget, (i) => entries[i][1])
}
