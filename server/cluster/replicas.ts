/**
 * Worker replicas: a worker thread on this node that opens an image owned by another node gets a local,
 * read-only copy in this node's shared memory — the same SharedImage API, zero-copy among this node's
 * workers, one replica however many workers open it.
 *
 * Lifecycle of a replica of image X owned by node A:
 * - created by the first `ensure(X)` (a worker's open or describe missed): located through the directory,
 *   pulled in byte ranges of one generation (./replica-pull.ts), then made visible at once — a failed pull
 *   leaves nothing behind. Concurrent ensures share the pull.
 * - refreshed when the directory reports a newer generation of X: pulled into a staging buffer (no lock
 *   held while bytes travel), then committed as a new local generation through the store's seqlock, so
 *   `waitForChange` wakes. Latest-only: while a refresh runs, further updates only raise the target, and one
 *   more pull follows that fetches whatever is current then.
 * - marked stale (`stale: true` in its descriptor, pixels still readable, no more refreshes) when A deletes X
 *   or A's node goes down. A stale replica no worker holds is deleted by a periodic sweep; after that, opening
 *   X locates it afresh (PXP_ERR_NOT_FOUND if no live node has it).
 *
 * Replicas count against this node's capacity like any image. They are not this node's images: their
 * descriptors carry `owner`, and the cluster catalog must not publish them.
 *
 * The store knows nothing of clusters: a replica is an image with an origin (store.originOf), a
 * `ReplicaState` this manager owns and updates, whose fields the store adds to the replica's descriptors.
 */
import { pxpError } from '../../protocol/errors.js'
import type { ImageOrigin, ImageStore } from '../store/image-store.js'
import type { WorkerBridge } from '../workers/bridge.js'
import type { ClusterDirectory, ClusterDirectoryEvents, RemoteEntry } from './directory.js'
import { pullImage, type PullOptions } from './replica-pull.js'

export interface ReplicaOptions {
  /** Bytes per HTTP Range request when pulling. Default 4 MiB. */
  chunkBytes?: number
  /** Restarts of a pull whose generation changed mid-way before one whole-body GET is used. Default 3. */
  maxRestarts?: number
  /** How often stale replicas that no worker holds are deleted, in ms; 0 keeps them. Default 5000. */
  sweepMs?: number
  /** Told about refreshes that failed (the replica keeps its last pixels). Default: ignored. */
  onError?: (err: Error, id: string) => void
}

/**
 * What the store shows of a replica: its owner, the owner's generation its pixels are a copy of, and
 * whether the owner is gone (refreshes and staleness change it; descriptors read it each time).
 */
export class ReplicaState implements ImageOrigin {
  stale = false

  constructor (readonly node: string, readonly url: string, public sourceGeneration: number) {}

  describe (): { owner: string, sourceGeneration: number, stale: boolean } {
    return { owner: this.node, sourceGeneration: this.sourceGeneration, stale: this.stale }
  }
}

/** What the manager tracks per replica (also while the first pull runs). */
interface Tracked {
  readonly id: string
  /** The replica's origin in the store (from the moment its memory is reserved). */
  readonly state: ReplicaState
  node: string
  url: string
  /** Owner generation the local pixels hold (-1 while the first pull runs). */
  have: number
  /** Newest owner generation announced. */
  wanted: number
  stale: boolean
  refreshing: Promise<void> | null
}

const MiB = 1024 * 1024

export class ReplicaManager {
  private readonly tracked = new Map<string, Tracked>()
  private readonly firstPulls = new Map<string, Promise<boolean>>()
  private readonly pull: PullOptions
  private readonly onError: (err: Error, id: string) => void
  private readonly sweeper: NodeJS.Timeout | null
  private bridge: WorkerBridge | null = null
  private readonly resolve = async (id: string): Promise<boolean> => await this.ensure(id)
  private closed = false
  private readonly listeners: { [K in keyof ClusterDirectoryEvents]: (...args: ClusterDirectoryEvents[K]) => void }
  private readonly stopWatchingStore: () => void

  constructor (private readonly store: ImageStore, private readonly directory: ClusterDirectory, options: ReplicaOptions = {}) {
    const chunkBytes = options.chunkBytes ?? 4 * MiB
    const maxRestarts = options.maxRestarts ?? 3
    const sweepMs = options.sweepMs ?? 5000
    if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw pxpError('PXP_ERR_VALIDATION', 'option chunkBytes must be a positive integer')
    if (!Number.isInteger(maxRestarts) || maxRestarts < 0) throw pxpError('PXP_ERR_VALIDATION', 'option maxRestarts must be an integer >= 0')
    if (!Number.isInteger(sweepMs) || sweepMs < 0) throw pxpError('PXP_ERR_VALIDATION', 'option sweepMs must be an integer >= 0')
    this.pull = { chunkBytes, maxRestarts }
    this.onError = options.onError ?? (() => {})
    this.listeners = {
      updated: (entry) => this.onUpdated(entry),
      deleted: ({ id, node }) => {
        const t = this.tracked.get(id)
        if (t !== undefined && t.node === node) this.markStale(t)
      },
      'node-down': ({ node }) => {
        for (const t of this.tracked.values()) if (t.node === node) this.markStale(t)
      },
    }
    directory.on('updated', this.listeners.updated)
    directory.on('deleted', this.listeners.deleted)
    directory.on('node-down', this.listeners['node-down'])
    this.stopWatchingStore = store.onChange((type, d) => {
      // Deleted here (the sweep, an HTTP DELETE, eviction): forget it; a later open pulls it afresh.
      if (type === 'deleted' && !this.firstPulls.has(d.id)) this.tracked.delete(d.id)
    })
    this.sweeper = sweepMs > 0 ? setInterval(() => this.sweep(), sweepMs).unref() : null
  }

  /** Ids of the replicas this node holds (or is pulling). */
  ids (): string[] {
    return [...this.tracked.keys()]
  }

  /** The state of the replica `id` held here, or undefined when this node holds no replica of it. */
  replicaOf (id: string): ReplicaState | undefined {
    const t = this.tracked.get(id)
    return t !== undefined && this.isHeld(t) ? t.state : undefined
  }

  /**
   * Make `id` readable here: true when the store holds it (an image of this node, or a replica, made now
   * if need be), false when no live node owns it. Rejects with the pull's error (PXP_ERR_CAPACITY,
   * PXP_ERR_PEER_UNREACHABLE, …).
   */
  async ensure (id: string): Promise<boolean> {
    if (this.closed) throw pxpError('PXP_ERR_CLOSED', 'replica manager')
    if (this.store.has(id)) return true
    let pulling = this.firstPulls.get(id)
    if (pulling === undefined) {
      pulling = this.create(id).finally(() => this.firstPulls.delete(id))
      this.firstPulls.set(id, pulling)
    }
    return await pulling
  }

  /** Consult this manager when a worker of `bridge` opens or describes an image the store lacks. */
  serveWorkers (bridge: WorkerBridge): void {
    this.bridge = bridge
    bridge.resolveMissing = this.resolve
  }

  /**
   * Stop listening and refreshing (and unhook from the workers); replicas stay in the store, marked
   * stale, until deleted. Idempotent.
   */
  close (): void {
    if (this.closed) return
    this.closed = true
    if (this.bridge?.resolveMissing === this.resolve) this.bridge.resolveMissing = null
    this.directory.off('updated', this.listeners.updated)
    this.directory.off('deleted', this.listeners.deleted)
    this.directory.off('node-down', this.listeners['node-down'])
    this.stopWatchingStore()
    if (this.sweeper !== null) clearInterval(this.sweeper)
    for (const t of this.tracked.values()) this.markStale(t)
  }

  /** Wait for running pulls and refreshes to settle (tests, shutdown). */
  async settled (): Promise<void> {
    await Promise.allSettled([...this.firstPulls.values(), ...[...this.tracked.values()].map((t) => t.refreshing)])
  }

  // ---- internals -----------------------------------------------------------------------------------

  private async create (id: string): Promise<boolean> {
    const entry = await this.directory.locate(id)
    if (entry === null || this.closed) return false
    // Created here meanwhile (by a client of this node): nothing to replicate.
    if (this.store.has(id)) return true
    const state = new ReplicaState(entry.node, entry.url, entry.generation)
    const t: Tracked = { id, state, node: entry.node, url: entry.url, have: -1, wanted: entry.generation, stale: false, refreshing: null }
    this.tracked.set(id, t)
    const d = entry.descriptor
    try {
      // Memory and id first: a replica that cannot fit fails before a byte travels.
      const spec = d.mode !== null ? { width: d.width, height: d.height, mode: d.mode } : { shape: d.shape, typestr: d.typestr }
      const pending = this.store.beginCreate({ id, ...spec }, state)
      try {
        const pulled = await pullImage(this.source(t), pending.byteLength, this.pull)
        if (pulled.typestr !== d.typestr || pulled.shape.join(',') !== d.shape.join(',')) {
          throw pxpError('PXP_ERR_BYTE_COUNT', pending.byteLength, pulled.bytes.byteLength)
        }
        pending.write(pulled.bytes)
        // The generation pulled may be newer than the one located: the replica names what it really holds.
        state.sourceGeneration = pulled.generation
        pending.commit()
        t.have = pulled.generation
      } finally {
        pending.abort()
      }
    } catch (err) {
      this.tracked.delete(id)
      throw err
    }
    if (t.stale || this.closed) state.stale = true
    else if (t.wanted > t.have) this.refresh(t)
    return true
  }

  private onUpdated (entry: RemoteEntry): void {
    const t = this.tracked.get(entry.id)
    if (t === undefined || t.stale || t.node !== entry.node) return
    t.url = entry.url
    if (entry.generation > t.wanted) t.wanted = entry.generation
    // While the first pull runs, create() looks at `wanted` when it is done.
    if (t.have >= 0 && t.wanted > t.have) this.refresh(t)
  }

  /** Latest-only: one refresh at a time; it loops while a newer generation was announced meanwhile. */
  private refresh (t: Tracked): void {
    if (t.refreshing !== null) return
    t.refreshing = (async () => {
      let staging: Uint8Array | undefined
      try {
        while (!this.closed && !t.stale && t.wanted > t.have && this.tracked.get(t.id) === t && this.store.has(t.id)) {
          const byteLength = this.store.describe(t.id).byteLength
          staging ??= new Uint8Array(byteLength)
          const pulled = await pullImage(this.source(t), byteLength, this.pull, staging)
          if (this.closed || t.stale || !this.store.has(t.id)) break
          // An older generation than the pixels hold (events overtook each other): nothing to do.
          if (pulled.generation > t.have) {
            await this.store.refreshFromOrigin(t.id, pulled.bytes, () => {
              t.state.sourceGeneration = pulled.generation
              t.state.stale = false
            })
          }
          t.have = Math.max(t.have, pulled.generation)
        }
      } catch (err) {
        // The replica keeps its last pixels; the next announced generation tries again.
        if (!this.closed && !t.stale) this.onError(err as Error, t.id)
      } finally {
        t.refreshing = null
      }
    })()
  }

  private markStale (t: Tracked): void {
    if (t.stale) return
    t.stale = true
    // While the first pull runs the replica is not visible yet: create() marks it when it is.
    if (t.have >= 0) t.state.stale = true
  }

  /** Delete stale replicas no worker (or download) holds any more. Runs every `sweepMs`. */
  sweep (): void {
    for (const t of [...this.tracked.values()]) {
      if (!t.stale || !this.isHeld(t)) continue
      if (this.store.table.leases(this.store.slotOf(t.id)) > 0) continue
      this.tracked.delete(t.id)
      this.store.delete(t.id)
    }
  }

  /** Does the store hold this replica (and not, since, an image of the same id made here)? */
  private isHeld (t: Tracked): boolean {
    return this.store.has(t.id) && this.store.originOf(t.id) === t.state
  }

  private source (t: Tracked): { node: string, url: string, id: string, headers: Record<string, string> } {
    return { node: t.node, url: t.url, id: t.id, headers: this.directory.peerHeaders(t) }
  }
}

/**
 * Turn on worker replicas for a server: workers that open or describe an image this node lacks get a
 * replica when the directory knows an owner. Returns the manager; `close()` it before the server (it also
 * turns the hook off again).
 */
export function attachReplicas (
  server: { readonly store: ImageStore, readonly workers: WorkerBridge },
  directory: ClusterDirectory,
  options: ReplicaOptions = {},
): ReplicaManager {
  const manager = new ReplicaManager(server.store, directory, options)
  manager.serveWorkers(server.workers)
  return manager
}
