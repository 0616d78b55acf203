/**
 * ClusterNode: this server's membership in a cluster of Pixelport nodes coordinated through Redis.
 *
 * Pixels never leave their owner. Redis holds what every node needs to know about the others: who is
 * live (heartbeats, membership.ts), which images each one owns (catalog hashes, publisher.ts) and what
 * changed (one event stream, events.ts). This class ties those together: it runs the heartbeat and the
 * membership sweep, feeds the event stream into the peer catalog (peer-catalog.ts: live peers, a mirror of
 * their catalogs, and the questions asked about them) and to cluster-scope subscribers, publishes this
 * node's changes, and implements the ClusterDirectory contract for replicas and cross-node reads.
 */
import { EventEmitter } from 'node:events'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { EventType } from '../../protocol/messages.js'
import type { ImageStore } from '../store/image-store.js'
import type { ClusterDirectory, ClusterDirectoryEvents, RemoteEntry } from './directory.js'
import { parseDescriptor } from './catalog-entry.js'
import { EventReader, type StreamEvent } from './events.js'
import { Membership, type ClusterLogger, type NodeInfo } from './membership.js'
import { PeerCatalog, type ClusterDescriptor, type ClusterListing, type ClusterNodeStatus } from './peer-catalog.js'
import { PeerPools } from './peer-pools.js'
import { CatalogPublisher } from './publisher.js'
import { RedisLink } from './redis-link.js'

export interface ClusterConfig {
  /** redis://[user:password@]host:port[/db] */
  redis: string
  /** This node's base URL as the other nodes reach it; null: the URL the server listens on. */
  advertise: string | null
  nodeId: string
  /** Bearer token this node sends to its peers, and key of the signed registrations (registration.ts); null: none. */
  token: string | null
  heartbeatMs: number
  ttlMs: number
  /** Updates of one image written to Redis at most once per this many ms (latest wins). */
  coalesceMs: number
  /**
   * This node's token-configuration digest (registration.ts authDigest), advertised in its registration:
   * clients are redirected only between nodes whose digests are equal. Null or absent: never redirect.
   */
  auth?: string | null
}

export type { ClusterDescriptor, ClusterListing, ClusterNodeStatus } from './peer-catalog.js'

export interface RemoteImageEvents {
  /** A remote image event for cluster-scope subscribers, in stream order (per image order kept). */
  event: [EventType, ClusterDescriptor]
}

export { FORWARDED_HEADER } from './keys.js'
export { authDigest } from './registration.js'

export class ClusterNode extends EventEmitter<ClusterDirectoryEvents> implements ClusterDirectory {
  readonly nodeId: string
  /**
   * Other nodes' image events as WebSocket subscribers want them (created/updated/deleted with the owner's
   * descriptor, `node` and `url`); apart from the directory events, which replicas listen to.
   */
  readonly remoteEvents = new EventEmitter<RemoteImageEvents>()
  private readonly link: RedisLink
  private publisher: CatalogPublisher | null = null
  private membership: Membership | null = null
  private reader: EventReader | null = null
  private advertised = ''
  /** The live peers and a mirror of their catalogs (peer-catalog.ts). */
  private readonly catalog: PeerCatalog
  private ticker: NodeJS.Timeout | null = null
  private ticking: Promise<void> | null = null
  private joined = false
  private joinWaiters: Array<() => void> = []
  /** When the connection to Redis last became ready (ms, this process's clock). */
  private readyAt = 0
  private closing: Promise<void> | null = null
  /** Keep-alive connections to peers, for forwarded requests and replica pulls (peer-pools.ts). */
  readonly pools = new PeerPools()
  /** Where warnings go (forged registrations); the server's logger once `useLogger` is called. */
  private log: ClusterLogger = { warn: () => {} }
  private stopWatchingStore: (() => void) | null = null

  constructor (private readonly store: ImageStore, readonly config: ClusterConfig) {
    super()
    this.nodeId = config.nodeId
    this.link = new RedisLink(config.redis, config.nodeId)
    const node = this
    this.catalog = new PeerCatalog(this.link, {
      id: config.nodeId,
      get url () { return node.advertised },
      token: config.token,
      auth: config.auth ?? null,
      localImages: () => store.list().filter((d) => d.owner === undefined),
      imageCount: () => store.size,
    })
  }

  /** A change in the store: this node's own images go to the catalog (replicas, `owner` set, never do). */
  private onStoreChange (type: 'created' | 'updated' | 'deleted', d: ImageDescriptor): void {
    if (d.owner !== undefined) return
    this.publisher?.offer(type === 'deleted' ? { type, id: d.id } : { type, id: d.id, descriptor: d, coalesced: 0 })
  }

  /** Send warnings to `logger` (the server's). */
  useLogger (logger: ClusterLogger): void {
    this.log = logger
  }

  /** This node's advertised URL (set by start). */
  get url (): string {
    return this.advertised
  }

  /** Whether Redis is reachable right now. */
  get redisReady (): boolean {
    return this.link.ready
  }

  /** Whether this node has registered at least once. */
  get hasJoined (): boolean {
    return this.joined
  }

  /**
   * Join: connect to Redis (in the background, for ever), publish the catalog, follow the others.
   * Resolves once joined, or after `waitMs` with Redis still unreachable (the node serves its own images
   * meanwhile and joins when Redis answers).
   */
  async start (listenUrl: string, waitMs = 2000): Promise<void> {
    if (this.membership !== null) return
    this.advertised = (this.config.advertise ?? listenUrl).replace(/\/+$/, '')
    const self = { id: this.nodeId, url: this.advertised, ...(this.config.auth == null ? {} : { auth: this.config.auth }) }
    this.membership = new Membership(this.link, self, this.config.ttlMs, this.config.token, { warn: (d, m) => this.log.warn(d, m) })
    this.publisher = new CatalogPublisher(this.link, this.nodeId, this.advertised, this.config.coalesceMs, this.config.ttlMs)
    this.reader = new EventReader(this.link, (events) => this.onEvents(events))
    this.stopWatchingStore = this.store.onChange((type, d) => this.onStoreChange(type, d))
    this.link.on('ready', () => { this.readyAt = Date.now(); void this.tick() })
    this.link.connect()
    this.ticker = setInterval(() => { void this.tick() }, this.config.heartbeatMs)
    this.ticker.unref()
    this.reader.start()
    await this.waitJoined(waitMs)
  }

  /** Resolves true once joined, false after `ms` without. */
  async waitJoined (ms: number): Promise<boolean> {
    if (this.joined) return true
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms)
      this.joinWaiters.push(() => { clearTimeout(timer); resolve(true) })
    })
  }

  // ---- the heartbeat: register, republish after a loss, sweep the membership -----------------------

  private async tick (): Promise<void> {
    if (this.ticking !== null || this.closing !== null || !this.link.ready) return
    this.ticking = this.beatAndSweep().catch(() => {}).finally(() => { this.ticking = null })
    await this.ticking
  }

  private async beatAndSweep (): Promise<void> {
    const membership = this.membership!
    const publisher = this.publisher!
    // The stream position first: nothing that happens after the catalogs are read can be missed.
    await this.reader!.markEnd()
    const rejoined = await membership.beat()
    if (rejoined || publisher.takeOverflow()) await publisher.republish(this.store.list().filter((d) => d.owner === undefined))
    else publisher.schedule()
    if (!this.joined) {
      this.joined = true
      for (const wake of this.joinWaiters.splice(0)) wake()
    }
    await this.sweep(await membership.live())
  }

  /** Compare the live set with the peers known: load catalogs of new ones, drop the lapsed ones. */
  private async sweep (live: NodeInfo[]): Promise<void> {
    const seen = new Set<string>()
    for (const node of live) {
      if (node.id === this.nodeId) continue
      seen.add(node.id)
      await this.catalog.admit(node)
    }
    // A peer missing right after Redis came back may only be a Redis that restarted empty: every live node
    // registers again within a heartbeat. Give them one TTL, as a lapsed heartbeat would have had, before
    // telling subscribers their images are gone. (A node that left says so on the stream, at once.)
    if (Date.now() - this.readyAt < this.config.ttlMs) return
    for (const id of this.catalog.ids()) if (!seen.has(id)) this.nodeDown(id)
  }

  private nodeDown (nodeId: string): void {
    const { node, entries } = this.catalog.drop(nodeId)
    if (node !== undefined) this.pools.drop(node.url)
    // Cluster subscribers hear that the node's images are gone, as if each had been deleted.
    for (const entry of entries) {
      this.remoteEvents.emit('event', 'deleted', { ...entry.descriptor, node: nodeId, url: node?.url ?? entry.url })
    }
    this.emit('node-down', { node: nodeId })
  }

  // ---- the event stream -----------------------------------------------------------------------------

  private async onEvents (events: StreamEvent[]): Promise<void> {
    for (const event of events) {
      if (event.node === this.nodeId) continue
      if (event.type === 'left') {
        if (this.catalog.peer(event.node) !== undefined) this.nodeDown(event.node)
        continue
      }
      // The URL an entry carries is not trusted (anyone who can write to Redis can add entries): a node
      // not known yet is looked up by its signed registration.
      const node = this.catalog.peer(event.node) ?? await this.discover(event.node)
      if (node === null || event.id === undefined) continue
      if (event.type === 'deleted') {
        const known = this.catalog.remove(node, event.id)
        this.emit('deleted', { id: event.id, node: node.id })
        if (known !== undefined) this.remoteEvents.emit('event', 'deleted', { ...known.descriptor, node: node.id, url: node.url })
        continue
      }
      const descriptor = event.descriptor === undefined ? null : parseDescriptor(event.descriptor)
      if (descriptor === null) continue
      this.emit('updated', this.catalog.put(node, descriptor))
      this.remoteEvents.emit('event', event.type, { ...descriptor, node: node.id, url: node.url })
    }
  }

  /**
   * A node heard of (by its events) before the sweep saw it: look its registration up now (in stream order,
   * so nothing reorders); null when it has none that verifies.
   */
  private async discover (nodeId: string): Promise<NodeInfo | null> {
    try {
      const node = await this.membership!.info(nodeId)
      if (node === null) return null
      await this.catalog.admit(node)
      return node
    } catch {
      return null
    }
  }

  // ---- ClusterDirectory and the questions about peers (peer-catalog.ts) -----------------------------

  async locate (id: string): Promise<RemoteEntry | null> {
    return this.store.has(id) ? null : await this.catalog.locate(id)
  }

  /** The owner of `id` as this node's mirror of the catalog knows it (no Redis round trip); null if none. */
  ownerOf (id: string): RemoteEntry | null {
    return this.catalog.ownerOf(id)
  }

  /** True when `peer` is a live node (as of the last sweep) that advertised exactly this URL. */
  isLivePeer (peer: { node: string, url: string }): boolean {
    return this.catalog.isLivePeer(peer)
  }

  /** The cluster token for a request to `peer`: only for a live node at the URL its signed registration advertised. */
  peerHeaders (peer: { node: string, url: string }): Record<string, string> {
    return this.catalog.peerHeaders(peer)
  }

  /** True when this node's clients may be redirected to `peer` with their own tokens (same token configuration). */
  mayRedirectTo (peer: { node: string, url: string }): boolean {
    return this.catalog.mayRedirectTo(peer)
  }

  /** This node's own images as cluster descriptors. */
  localImages (): ClusterDescriptor[] {
    return this.catalog.localImages()
  }

  /** A local descriptor with this node's name and URL. */
  own (descriptor: ImageDescriptor): ClusterDescriptor {
    return { ...descriptor, node: this.nodeId, url: this.advertised }
  }

  /** Every live node's images (read from Redis now); this node's only, `partial: true`, while Redis is away. */
  async list (): Promise<ClusterListing> {
    return await this.catalog.list(this.membership)
  }

  /** Nodes, their image counts and the state of the Redis link (`GET /cluster`). */
  async status (): Promise<ClusterNodeStatus> {
    return await this.catalog.status(this.membership)
  }

  // ---- lifecycle --------------------------------------------------------------------------------------

  /**
   * Leave the cluster: last changes flushed, heartbeat and catalog deleted and a `left` entry added so the
   * others drop this node at once; then disconnect. Idempotent; never waits long for a Redis that is away.
   */
  async close (): Promise<void> {
    this.closing ??= (async () => {
      if (this.ticker !== null) clearInterval(this.ticker)
      this.stopWatchingStore?.()
      for (const wake of this.joinWaiters.splice(0)) wake()
      if (this.link.ready && this.membership !== null) {
        await withTimeout((async () => {
          await this.ticking
          await this.publisher?.flush()
          await this.membership!.leave()
        })(), 1000).catch(() => {})
      }
      this.publisher?.stop()
      this.link.close()
      await this.reader?.stopped()
      await this.pools.destroy()
      this.removeAllListeners()
      this.remoteEvents.removeAllListeners()
    })()
    return await this.closing
  }
}

async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<T>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('timeout')), ms) })])
  } finally {
    clearTimeout(timer)
  }
}
