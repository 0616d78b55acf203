/**
 * Prometheus metrics of one server, in a registry of its own (never prom-client's global one: two servers
 * in one process must not mix their figures).
 *
 * Store and memory figures are read when Prometheus scrapes (collect callbacks), so they cost nothing in
 * between. Transports report what only they see through the small `TransportMetrics` interface in
 * `ctx.metrics`: bytes they stream, subscriptions and connections they hold. Labels are bounded sets
 * (transport names); nothing is labelled per image.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { HEADER } from '../../protocol/layout.js'
import type { ImageStore, StoreStats } from '../store/image-store.js'
import type { SnapshotCache, SnapshotStats } from '../store/snapshots.js'

/** Transports that move pixel bytes to and from remote clients. */
export type StreamTransport = 'http' | 'ws'

/** What transports report. Cheap enough to call per frame. */
export interface TransportMetrics {
  /** Pixel bytes sent to a remote reader (downloads, encoded pictures, streamed frames). */
  addBytesStreamed (transport: StreamTransport, bytes: number): void
  /** Pixel bytes received from a remote writer (uploads, overwrites). */
  addBytesReceived (transport: StreamTransport, bytes: number): void
  /** Active subscriptions went up (+1 per subscribe) or down (-1 per unsubscribe, or -n when a connection closes). */
  addSubscriptions (delta: number): void
  /** Open connections of a transport the server does not count itself (e.g. `ws`): +1 on open, -1 on close. */
  addConnections (transport: string, delta: number): void
  /**
   * Or, instead of counting deltas: have the gauge read at scrape time (added to any deltas). Returns the
   * function that stops it (call it when the transport closes).
   */
  observeSubscriptions (read: () => number): () => void
  observeConnections (transport: string, read: () => number): () => void
}

export interface MetricsSources {
  readonly store: ImageStore
  readonly snapshots: SnapshotCache
  /** Connections the server counts itself, read at scrape time, by transport (e.g. `worker`, `attach`). */
  readonly connections?: Readonly<Record<string, () => number>>
}

interface Figures {
  store: StoreStats
  snapshots: SnapshotStats
  leases: number
}

export class ServerMetrics implements TransportMetrics {
  readonly registry = new Registry()
  private readonly streamed: Counter<'transport'>
  private readonly received: Counter<'transport'>
  private subscriptionCount = 0
  private readonly subscriptionReaders = new Set<() => number>()
  private readonly connectionCounts = new Map<string, number>()
  private readonly connectionReaders = new Map<string, Set<() => number>>()
  /** Last generation counted per root image: commits are counted exactly even when events coalesce. */
  private readonly generations = new Map<string, number>()
  private cached: Figures | null = null

  constructor (private readonly sources: MetricsSources) {
    const registers = [this.registry]
    const { store } = sources
    const figures = (): Figures => this.figures()
    const gauge = (name: string, help: string, read: (f: Figures) => number): void => {
      void new Gauge({ name, help, registers, collect () { this.set(read(figures())) } })
    }

    gauge('pixelport_images', 'Images in the store (views not counted)', (f) => f.store.images)
    gauge('pixelport_views', 'Views in the store', (f) => f.store.views)
    gauge('pixelport_images_retired', 'Deleted images whose memory a reader or worker still holds', (f) => f.store.retired)
    gauge('pixelport_images_max', 'Most images and views the store holds', (f) => f.store.maxImages)
    gauge('pixelport_memory_capacity_bytes', 'Bytes of image memory the store may use', (f) => f.store.capacity)
    gauge('pixelport_memory_used_bytes', 'Bytes handed out to images', (f) => f.store.used)
    gauge('pixelport_memory_free_bytes', 'Capacity not handed out (possibly in pieces)', (f) => f.store.free)
    gauge('pixelport_memory_reserved_bytes', 'Bytes of blocks obtained from the provider', (f) => f.store.reserved)
    gauge('pixelport_memory_largest_free_run_bytes', 'Largest single image that would still fit contiguously', (f) => f.store.largestFreeRun)
    gauge('pixelport_memory_blocks', 'Shared-memory blocks in use', (f) => f.store.blocks)
    gauge('pixelport_snapshots', 'Consistent copies held for remote readers', (f) => f.snapshots.snapshots)
    gauge('pixelport_snapshot_bytes', 'Bytes of snapshots held for remote readers', (f) => f.snapshots.bytes)
    gauge('pixelport_snapshot_max_bytes', 'Budget for snapshot bytes', (f) => f.snapshots.maxBytes)
    gauge('pixelport_leases', 'Open handles on images across all threads and processes (LEASES words of the image table)', (f) => f.leases)

    for (const [transport, read] of Object.entries(sources.connections ?? {})) this.observeConnections(transport, read)
    const connections = new Gauge({
      name: 'pixelport_connections',
      help: 'Open connections by transport',
      labelNames: ['transport'],
      registers,
      collect: () => {
        const transports = new Set([...this.connectionCounts.keys(), ...this.connectionReaders.keys()])
        for (const transport of transports) {
          let n = this.connectionCounts.get(transport) ?? 0
          for (const read of this.connectionReaders.get(transport) ?? []) n += read()
          connections.set({ transport }, n)
        }
      },
    })
    const subscriptions = new Gauge({
      name: 'pixelport_subscriptions',
      help: 'Active image subscriptions of remote clients',
      registers,
      collect: () => {
        let n = this.subscriptionCount
        for (const read of this.subscriptionReaders) n += read()
        subscriptions.set(n)
      },
    })
    this.streamed = new Counter({ name: 'pixelport_bytes_streamed_total', help: 'Pixel bytes sent to remote readers', labelNames: ['transport'], registers })
    this.received = new Counter({ name: 'pixelport_bytes_received_total', help: 'Pixel bytes received from remote writers', labelNames: ['transport'], registers })
    // Present from the first scrape, so rate() has a starting point.
    for (const transport of ['http', 'ws'] as const) {
      this.streamed.inc({ transport }, 0)
      this.received.inc({ transport }, 0)
    }

    const committed = new Counter({ name: 'pixelport_generations_committed_total', help: 'Writes committed to images (new generations), all images together', registers })
    const created = new Counter({ name: 'pixelport_images_created_total', help: 'Images and views created', registers })
    const deleted = new Counter({ name: 'pixelport_images_deleted_total', help: 'Images and views deleted', registers })
    for (const d of store.list()) if (d.view === null) this.generations.set(d.id, d.generation)
    store.onChange((type, d: ImageDescriptor) => {
      if (type === 'created') {
        created.inc()
        if (d.view === null) this.generations.set(d.id, d.generation)
      } else if (type === 'updated') {
        // Views repeat their root's commits.
        if (d.view !== null) return
        const before = this.generations.get(d.id) ?? 0
        if (d.generation > before) committed.inc(d.generation - before)
        this.generations.set(d.id, d.generation)
      } else {
        deleted.inc()
        this.generations.delete(d.id)
      }
    })
    const evicted = new Counter({ name: 'pixelport_evictions_total', help: 'Images and views evicted to make room (--evict lru); also counted as deleted', registers })
    store.on('evicted', () => { evicted.inc() })
  }

  addBytesStreamed (transport: StreamTransport, bytes: number): void {
    if (bytes > 0) this.streamed.inc({ transport }, bytes)
  }

  addBytesReceived (transport: StreamTransport, bytes: number): void {
    if (bytes > 0) this.received.inc({ transport }, bytes)
  }

  addSubscriptions (delta: number): void {
    this.subscriptionCount += delta
  }

  addConnections (transport: string, delta: number): void {
    this.connectionCounts.set(transport, (this.connectionCounts.get(transport) ?? 0) + delta)
  }

  observeSubscriptions (read: () => number): () => void {
    this.subscriptionReaders.add(read)
    return () => { this.subscriptionReaders.delete(read) }
  }

  observeConnections (transport: string, read: () => number): () => void {
    let readers = this.connectionReaders.get(transport)
    if (readers === undefined) {
      readers = new Set()
      this.connectionReaders.set(transport, readers)
    }
    readers.add(read)
    return () => { readers.delete(read) }
  }

  /** The Prometheus text exposition of every metric. */
  async scrape (): Promise<string> {
    return await this.registry.metrics()
  }

  /**
   * Uploads in progress on every transport and the staging bytes they hold (server/uploads), read at scrape
   * time; `aborted` counts uploads cut short by a timeout or shutdown, by error code.
   */
  observeUploads (read: () => { uploads: number, bytes: number, maxBytes: number }): (code: string) => void {
    const registers = [this.registry]
    void new Gauge({ name: 'pixelport_uploads_in_progress', help: 'Uploads receiving their body, all transports', registers, collect () { this.set(read().uploads) } })
    void new Gauge({ name: 'pixelport_upload_staging_bytes', help: 'Bytes the uploads in progress hold of the staging budget', registers, collect () { this.set(read().bytes) } })
    void new Gauge({ name: 'pixelport_upload_staging_max_bytes', help: 'The staging budget', registers, collect () { this.set(read().maxBytes) } })
    const aborted = new Counter({ name: 'pixelport_uploads_aborted_total', help: 'Uploads aborted by a timeout or by shutdown', labelNames: ['code'], registers })
    return (code) => aborted.inc({ code })
  }

  get contentType (): string {
    return this.registry.contentType
  }

  /**
   * Store figures, read once per scrape: every gauge's collect runs in the same turn, so the cache lives
   * until the next microtask.
   */
  private figures (): Figures {
    if (this.cached === null) {
      const { store, snapshots } = this.sources
      this.cached = { store: store.stats(), snapshots: snapshots.stats(), leases: sumLeases(store) }
      queueMicrotask(() => { this.cached = null })
    }
    return this.cached
  }
}

/** Every slot's LEASES word: handles held by workers, attached processes and the server itself. */
function sumLeases (store: ImageStore): number {
  const words = store.table.words
  const slots = Atomics.load(words, HEADER.HIGH_WATER)
  let sum = 0
  for (let slot = 0; slot < slots; slot++) sum += store.table.leases(slot)
  return sum
}
