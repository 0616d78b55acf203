/**
 * ClusterNode: this server's membership in a cluster of Pixelport nodes coordinated through Redis.
 *
 * Pixels never leave their owner. Redis holds what every node needs to know about the others: who is
 * live (heartbeats, membership.ts), which images each one owns (catalog hashes, publisher.ts) and what
 * changed (one event stream, events.ts). This class ties those together, keeps a mirror of the other
 * nodes' catalogs (to answer `locate` while Redis is away, and to say which images a dead node took with
 * it), and implements the ClusterDirectory contract for replicas and cross-node reads.
 */
import { EventEmitter } from 'node:events'
import http from 'node:http'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError, type ErrorBody } from '../../protocol/errors.js'
import type { EventType } from '../../protocol/messages.js'
import type { ImageStore } from '../store/image-store.js'
import type { ClusterDirectory, ClusterDirectoryEvents, RemoteEntry } from './directory.js'
import { entryOf, parseDescriptor } from './catalog-entry.js'
import { EventReader, type StreamEvent } from './events.js'
import { catalogKey } from './keys.js'
import { Membership, type ClusterLogger, type NodeInfo } from './membership.js'
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
}

/** A descriptor in a cluster listing or a cluster-scope event: which node owns it and where it is. */
export type ClusterDescriptor = ImageDescriptor & { node: string, url: string }

export interface ClusterListing {
  images: ClusterDescriptor[]
  /** True when only this node's images could be listed (Redis unreachable); `error` says why. */
  partial: boolean
  error?: ErrorBody
}

export interface ClusterNodeStatus {
  enabled: true
  node: string
  url: string
  redis: { url: string, status: string, error: string | null }
  /** Live nodes (only this one, with `partial: true`, while Redis is unreachable). */
  nodes: Array<{ id: string, url: string, startedAt: number, lastSeen: number, images: number, self: boolean }>
  partial: boolean
}

export interface RemoteImageEvents {
  /** A remote image event for cluster-scope subscribers, in stream order (per image order kept). */
  event: [EventType, ClusterDescriptor]
}

export { FORWARDED_HEADER } from './keys.js'

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
  /** Live peers as of the last sweep (this node excluded). */
  private readonly peers = new Map<string, NodeInfo>()
  /** What this node knows of each peer's catalog: fallback for `locate`, and the images a dead node took. */
  private readonly mirror = new Map<string, Map<string, RemoteEntry>>()
  private ticker: NodeJS.Timeout | null = null
  private ticking: Promise<void> | null = null
  private joined = false
  private joinWaiters: Array<() => void> = []
  /** When the connection to Redis last became ready (ms, this process's clock). */
  private readyAt = 0
  private closing: Promise<void> | null = null
  /** Keep-alive connections to peers for forwarded requests. */
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
  /** Where warnings go (forged registrations); the server's logger once `useLogger` is called. */
  private log: ClusterLogger = { warn: () => {} }
  private readonly storeListeners: { created: (d: ImageDescriptor) => void, updated: (d: ImageDescriptor) => void, deleted: (d: ImageDescriptor) => void }

  constructor (private readonly store: ImageStore, readonly config: ClusterConfig) {
    super()
    this.nodeId = config.nodeId
    this.link = new RedisLink(config.redis, config.nodeId)
    this.storeListeners = {
      // Replicas of other nodes' images (descriptor.owner set) are never published as this node's.
      created: (d) => { if (d.owner === undefined) this.publisher?.offer({ type: 'created', id: d.id, descriptor: d, coalesced: 0 }) },
      updated: (d) => { if (d.owner === undefined) this.publisher?.offer({ type: 'updated', id: d.id, descriptor: d, coalesced: 0 }) },
      deleted: (d) => { if (d.owner === undefined) this.publisher?.offer({ type: 'deleted', id: d.id }) },
    }
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
    this.membership = new Membership(this.link, { id: this.nodeId, url: this.advertised }, this.config.ttlMs, this.config.token, { warn: (d, m) => this.log.warn(d, m) })
    this.publisher = new CatalogPublisher(this.link, this.nodeId, this.advertised, this.config.coalesceMs, this.config.ttlMs)
    this.reader = new EventReader(this.link, (events) => this.onEvents(events))
    this.store.on('created', this.storeListeners.created)
    this.store.on('updated', this.storeListeners.updated)
    this.store.on('deleted', this.storeListeners.deleted)
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
      const known = this.peers.get(node.id)
      this.peers.set(node.id, node)
      if (known === undefined || known.startedAt !== node.startedAt) await this.loadCatalog(node)
    }
    // A peer missing right after Redis came back may only be a Redis that restarted empty: every live node
    // registers again within a heartbeat. Give them one TTL, as a lapsed heartbeat would have had, before
    // telling subscribers their images are gone. (A node that left says so on the stream, at once.)
    if (Date.now() - this.readyAt < this.config.ttlMs) return
    for (const id of [...this.peers.keys()]) if (!seen.has(id)) this.nodeDown(id)
  }

  private async loadCatalog (node: NodeInfo): Promise<void> {
    const values = await this.link.commands.hvals(catalogKey(node.id))
    const entries = new Map<string, RemoteEntry>()
    for (const text of values) {
      const descriptor = parseDescriptor(text)
      if (descriptor !== null) entries.set(descriptor.id, entryOf(node, descriptor))
    }
    this.mirror.set(node.id, entries)
  }

  private nodeDown (nodeId: string): void {
    const entries = this.mirror.get(nodeId)
    const node = this.peers.get(nodeId)
    this.peers.delete(nodeId)
    this.mirror.delete(nodeId)
    // Cluster subscribers hear that the node's images are gone, as if each had been deleted.
    for (const entry of entries?.values() ?? []) {
      this.remoteEvents.emit('event', 'deleted', { ...entry.descriptor, node: nodeId, url: node?.url ?? entry.url })
    }
    this.emit('node-down', { node: nodeId })
  }

  // ---- the event stream -----------------------------------------------------------------------------

  private async onEvents (events: StreamEvent[]): Promise<void> {
    for (const event of events) {
      if (event.node === this.nodeId) continue
      if (event.type === 'left') {
        if (this.peers.has(event.node)) this.nodeDown(event.node)
        continue
      }
      // The URL an entry carries is not trusted (anyone who can write to Redis can add entries): a node
      // not known yet is looked up by its signed registration.
      const node = this.peers.get(event.node) ?? await this.discover(event.node)
      if (node === null || event.id === undefined) continue
      const entries = this.mirror.get(node.id) ?? new Map<string, RemoteEntry>()
      this.mirror.set(node.id, entries)
      if (event.type === 'deleted') {
        const known = entries.get(event.id)
        entries.delete(event.id)
        this.emit('deleted', { id: event.id, node: node.id })
        if (known !== undefined) this.remoteEvents.emit('event', 'deleted', { ...known.descriptor, node: node.id, url: node.url })
        continue
      }
      const descriptor = event.descriptor === undefined ? null : parseDescriptor(event.descriptor)
      if (descriptor === null) continue
      const entry = entryOf(node, descriptor)
      entries.set(event.id, entry)
      this.emit('updated', entry)
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
      this.peers.set(node.id, node)
      await this.loadCatalog(node)
      return node
    } catch {
      return null
    }
  }

  // ---- ClusterDirectory -----------------------------------------------------------------------------

  async locate (id: string): Promise<RemoteEntry | null> {
    if (this.store.has(id)) return null
    if (this.link.ready && this.peers.size > 0) {
      try {
        const peers = [...this.peers.values()]
        const pipeline = this.link.commands.pipeline()
        for (const p of peers) pipeline.hget(catalogKey(p.id), id)
        const results = await pipeline.exec() ?? []
        for (let i = 0; i < peers.length; i++) {
          const [err, text] = results[i] ?? [null, null]
          const descriptor = err === null && typeof text === 'string' ? parseDescriptor(text) : null
          if (descriptor !== null) return entryOf(peers[i], descriptor)
        }
        return null
      } catch {
        // Redis went away mid-question: the mirror is the best we know.
      }
    }
    return this.ownerOf(id)
  }

  /** The owner of `id` as this node's mirror of the catalog knows it (no Redis round trip); null if none. */
  ownerOf (id: string): RemoteEntry | null {
    for (const entries of this.mirror.values()) {
      const entry = entries.get(id)
      if (entry !== undefined) return entry
    }
    return null
  }

  /** True when `peer` is a live node (as of the last sweep) that advertised exactly this URL. */
  isLivePeer (peer: { node: string, url: string }): boolean {
    return this.peers.get(peer.node)?.url === peer.url
  }

  /** The cluster token for a request to `peer`: only for a live node at the URL its signed registration advertised. */
  peerHeaders (peer: { node: string, url: string }): Record<string, string> {
    return this.config.token === null || !this.isLivePeer(peer) ? {} : { authorization: `Bearer ${this.config.token}` }
  }

  // ---- listings ---------------------------------------------------------------------------------------

  /** This node's own images as cluster descriptors. */
  localImages (): ClusterDescriptor[] {
    return this.store.list().filter((d) => d.owner === undefined).map((d) => ({ ...d, node: this.nodeId, url: this.advertised }))
  }

  /** A local descriptor with this node's name and URL. */
  own (descriptor: ImageDescriptor): ClusterDescriptor {
    return { ...descriptor, node: this.nodeId, url: this.advertised }
  }

  /**
   * Every live node's images, read from Redis now (so a node whose heartbeat lapsed is not in it). While
   * Redis is unreachable: this node's images only, `partial: true` and the error.
   */
  async list (): Promise<ClusterListing> {
    const images = this.localImages()
    try {
      if (!this.link.ready) throw new Error(this.link.lastError ?? `Redis connection is ${this.link.status}`)
      const live = (await this.membership!.live()).filter((n) => n.id !== this.nodeId)
      const pipeline = this.link.commands.pipeline()
      for (const node of live) pipeline.hvals(catalogKey(node.id))
      const results = live.length === 0 ? [] : await pipeline.exec() ?? []
      live.forEach((node, i) => {
        const [err, values] = results[i] ?? [new Error('no reply'), null]
        if (err !== null) throw err
        for (const text of values as string[]) {
          const d = parseDescriptor(text)
          if (d !== null) images.push({ ...d, node: node.id, url: node.url })
        }
      })
      return { images, partial: false }
    } catch (err) {
      return { images: this.localImages(), partial: true, error: unavailable(err).toJSON() }
    }
  }

  /** Nodes, their image counts and the state of the Redis link (`GET /cluster`). */
  async status (): Promise<ClusterNodeStatus> {
    const redis = { url: this.link.safeUrl, status: this.link.status, error: this.link.lastError }
    const selfOnly = (): ClusterNodeStatus['nodes'] => [{ id: this.nodeId, url: this.advertised, startedAt: 0, lastSeen: Date.now(), images: this.store.size, self: true }]
    try {
      if (!this.link.ready) throw new Error('not connected')
      const live = await this.membership!.live()
      const pipeline = this.link.commands.pipeline()
      for (const node of live) pipeline.hlen(catalogKey(node.id))
      const counts = live.length === 0 ? [] : await pipeline.exec() ?? []
      const nodes = live.map((n, i) => ({
        id: n.id,
        url: n.url,
        startedAt: n.startedAt,
        lastSeen: n.lastSeen,
        images: n.id === this.nodeId ? this.store.size : Number(counts[i]?.[1] ?? 0),
        self: n.id === this.nodeId,
      }))
      if (!nodes.some((n) => n.self)) nodes.push(selfOnly()[0])
      return { enabled: true, node: this.nodeId, url: this.advertised, redis, nodes, partial: false }
    } catch {
      return { enabled: true, node: this.nodeId, url: this.advertised, redis, nodes: selfOnly(), partial: true }
    }
  }

  // ---- lifecycle --------------------------------------------------------------------------------------

  /**
   * Leave the cluster: last changes flushed, heartbeat and catalog deleted and a `left` entry added so the
   * others drop this node at once; then disconnect. Idempotent; never waits long for a Redis that is away.
   */
  async close (): Promise<void> {
    this.closing ??= (async () => {
      if (this.ticker !== null) clearInterval(this.ticker)
      this.store.off('created', this.storeListeners.created)
      this.store.off('updated', this.storeListeners.updated)
      this.store.off('deleted', this.storeListeners.deleted)
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
      this.agent.destroy()
      this.removeAllListeners()
      this.remoteEvents.removeAllListeners()
    })()
    return await this.closing
  }
}

function unavailable (err: unknown): ReturnType<typeof pxpError> {
  return pxpError('PXP_ERR_CLUSTER_UNAVAILABLE', err instanceof Error ? err.message : String(err))
}

async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<T>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('timeout')), ms) })])
  } finally {
    clearTimeout(timer)
  }
}
