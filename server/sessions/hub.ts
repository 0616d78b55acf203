/**
 * What every session of one server shares, whichever transport it came in on (worker thread or attached
 * process): the store, the missing-image resolver of the cluster, and one relay of the store's changes to
 * the sessions that watch them.
 */
import type { ChangeType, ImageDescriptor } from '../../protocol/descriptor.js'
import { HEADER, TABLE_FLAG } from '../../protocol/layout.js'
import type { ImageStore } from '../store/image-store.js'

/**
 * Make `id` local if it can be (e.g. pull a replica of another node's image); resolves to whether it now
 * is. Consulted when a session asks for an image this store does not hold.
 */
export type MissingImageResolver = (id: string) => Promise<boolean>

/** A session the hub relays store changes to. */
export interface ChangeWatcher {
  event: (type: ChangeType, descriptor: ImageDescriptor) => void
}

export class SessionHub {
  private resolver: MissingImageResolver | null = null
  private readonly watchers = new Set<ChangeWatcher>()
  /** Stops the one store subscription; null while nobody watches. */
  private stopRelay: (() => void) | null = null

  constructor (readonly store: ImageStore) {}

  /**
   * Asked when a session opens or describes an image this store does not hold, before answering
   * PXP_ERR_NOT_FOUND. The cluster sets it to pull a replica (server/cluster/replicas.ts, through
   * WorkerBridge.resolveMissing); null (default): not-found is final. Opening an image the table holds
   * never reaches it.
   */
  get resolveMissing (): MissingImageResolver | null { return this.resolver }
  set resolveMissing (resolver: MissingImageResolver | null) {
    this.resolver = resolver
    // Clients that open from shared memory read this bit on a miss, so it takes effect for sessions
    // connected before, too: with it set they ask the server (describe) instead of failing at once.
    const words = this.store.table.words
    if (resolver === null) Atomics.and(words, HEADER.FLAGS, ~TABLE_FLAG.ASK_MISSING)
    else Atomics.or(words, HEADER.FLAGS, TABLE_FLAG.ASK_MISSING)
  }

  /**
   * null when `id` can be answered from the store as it is; else the resolver's attempt to make it local.
   * The caller then answers from the store (PXP_ERR_NOT_FOUND if it is still missing); a resolver that
   * fails (PXP_ERR_PEER_UNREACHABLE, PXP_ERR_CAPACITY, …) rejects, and that error is the answer.
   */
  whenLocal (id: string): Promise<unknown> | null {
    if (this.resolver === null || this.store.has(id)) return null
    return this.resolver(id)
  }

  /**
   * Relay the store's changes to `watcher` (or stop). One store subscription serves every watcher, so a
   * hundred workers are one listener on the store, not a hundred.
   */
  watch (watcher: ChangeWatcher, on: boolean): void {
    if (on) this.watchers.add(watcher)
    else this.watchers.delete(watcher)
    if (this.watchers.size > 0 && this.stopRelay === null) {
      this.stopRelay = this.store.onChange((type, descriptor) => {
        // A watcher that fails while sending (a slow attach socket) leaves the set while we iterate: fine for a Set.
        for (const w of this.watchers) w.event(type, descriptor)
      })
    } else if (this.watchers.size === 0 && this.stopRelay !== null) {
      this.stopRelay()
      this.stopRelay = null
    }
  }
}
