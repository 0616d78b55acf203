/**
 * The other nodes as this node knows them: the live peers (as of the last membership sweep), a mirror of
 * each one's catalog, and the questions the rest of the server asks about them: who owns an image, may a
 * request (and the cluster token) go to that peer, may a client be redirected there, and the cluster-wide
 * listings read from Redis.
 *
 * The mirror answers `ownerOf` without a Redis round trip (a chunked upload's order depends on that) and
 * `locate` while Redis is away, and it remembers which images a node took with it when it goes down.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { pxpError, type ErrorBody } from '../../protocol/errors.js'
import { entryOf, parseDescriptor } from './catalog-entry.js'
import type { RemoteEntry } from './directory.js'
import { catalogKey } from './keys.js'
import type { Membership, NodeInfo } from './membership.js'
import type { RedisLink } from './redis-link.js'

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

/** What the catalog needs to know about this node. */
export interface SelfInfo {
  readonly id: string
  /** The advertised URL (known once the node started). */
  readonly url: string
  /** The cluster token, sent to live peers only; null: none. */
  readonly token: string | null
  /** This node's token-configuration digest (registration.ts); null: it never redirects. */
  readonly auth: string | null
  /** This node's own images (replicas excluded), and how many images it holds in all. */
  localImages: () => ImageDescriptor[]
  imageCount: () => number
}

export class PeerCatalog {
  /** Live peers as of the last sweep (this node excluded). */
  private readonly peers = new Map<string, NodeInfo>()
  /** What this node knows of each peer's catalog. */
  private readonly mirror = new Map<string, Map<string, RemoteEntry>>()

  constructor (private readonly link: RedisLink, private readonly self: SelfInfo) {}

  get size (): number {
    return this.peers.size
  }

  peer (nodeId: string): NodeInfo | undefined {
    return this.peers.get(nodeId)
  }

  ids (): string[] {
    return [...this.peers.keys()]
  }

  /**
   * Record `node` as live; its catalog is (re)loaded from Redis when it is new or restarted since (a new
   * `startedAt`). Resolves to true when it was loaded.
   */
  async admit (node: NodeInfo): Promise<boolean> {
    const known = this.peers.get(node.id)
    this.peers.set(node.id, node)
    if (known !== undefined && known.startedAt === node.startedAt) return false
    const values = await this.link.commands.hvals(catalogKey(node.id))
    const entries = new Map<string, RemoteEntry>()
    for (const text of values) {
      const descriptor = parseDescriptor(text)
      if (descriptor !== null) entries.set(descriptor.id, entryOf(node, descriptor))
    }
    this.mirror.set(node.id, entries)
    return true
  }

  /** Forget a peer that went down or left; returns what it was known to own. */
  drop (nodeId: string): { node: NodeInfo | undefined, entries: RemoteEntry[] } {
    const node = this.peers.get(nodeId)
    const entries = [...this.mirror.get(nodeId)?.values() ?? []]
    this.peers.delete(nodeId)
    this.mirror.delete(nodeId)
    return { node, entries }
  }

  /** An image of `node` was created or updated: the entry the mirror now holds. */
  put (node: NodeInfo, descriptor: ImageDescriptor): RemoteEntry {
    const entry = entryOf(node, descriptor)
    this.entriesOf(node.id).set(descriptor.id, entry)
    return entry
  }

  /** An image of `node` was deleted: the entry it had, if the mirror knew it. */
  remove (node: NodeInfo, id: string): RemoteEntry | undefined {
    const entries = this.entriesOf(node.id)
    const known = entries.get(id)
    entries.delete(id)
    return known
  }

  private entriesOf (nodeId: string): Map<string, RemoteEntry> {
    let entries = this.mirror.get(nodeId)
    if (entries === undefined) this.mirror.set(nodeId, entries = new Map())
    return entries
  }

  // ---- where an image lives ---------------------------------------------------------------------------

  /** Where `id` lives according to Redis now (the mirror while Redis is away); null when no peer owns it. */
  async locate (id: string): Promise<RemoteEntry | null> {
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

  /** The owner of `id` as the mirror knows it (no Redis round trip); null if none. */
  ownerOf (id: string): RemoteEntry | null {
    for (const entries of this.mirror.values()) {
      const entry = entries.get(id)
      if (entry !== undefined) return entry
    }
    return null
  }

  // ---- what may go to a peer --------------------------------------------------------------------------

  /** True when `peer` is a live node (as of the last sweep) that advertised exactly this URL. */
  isLivePeer (peer: { node: string, url: string }): boolean {
    return this.peers.get(peer.node)?.url === peer.url
  }

  /** The cluster token for a request to `peer`: only for a live node at the URL its signed registration advertised. */
  peerHeaders (peer: { node: string, url: string }): Record<string, string> {
    return this.self.token === null || !this.isLivePeer(peer) ? {} : { authorization: `Bearer ${this.self.token}` }
  }

  /**
   * True when a client of this node may be sent to `peer` with its own token: a live peer at its advertised
   * URL whose (signed) registration names the same token configuration as this node's.
   */
  mayRedirectTo (peer: { node: string, url: string }): boolean {
    const node = this.peers.get(peer.node)
    return this.self.auth !== null && node !== undefined && node.url === peer.url && node.auth === this.self.auth
  }

  // ---- listings -----------------------------------------------------------------------------------------

  /** This node's own images as cluster descriptors. */
  localImages (): ClusterDescriptor[] {
    return this.self.localImages().map((d) => ({ ...d, node: this.self.id, url: this.self.url }))
  }

  /**
   * Every live node's images, read from Redis now (so a node whose heartbeat lapsed is not in it). While
   * Redis is unreachable: this node's images only, `partial: true` and the error.
   */
  async list (membership: Membership | null): Promise<ClusterListing> {
    const images = this.localImages()
    try {
      if (!this.link.ready || membership === null) throw new Error(this.link.lastError ?? `Redis connection is ${this.link.status}`)
      const live = (await membership.live()).filter((n) => n.id !== this.self.id)
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
  async status (membership: Membership | null): Promise<ClusterNodeStatus> {
    const { id, url } = this.self
    const redis = { url: this.link.safeUrl, status: this.link.status, error: this.link.lastError }
    const selfOnly = { id, url, startedAt: 0, lastSeen: Date.now(), images: this.self.imageCount(), self: true }
    try {
      if (!this.link.ready || membership === null) throw new Error('not connected')
      const live = await membership.live()
      const pipeline = this.link.commands.pipeline()
      for (const node of live) pipeline.hlen(catalogKey(node.id))
      const counts = live.length === 0 ? [] : await pipeline.exec() ?? []
      const nodes = live.map((n, i) => ({
        id: n.id,
        url: n.url,
        startedAt: n.startedAt,
        lastSeen: n.lastSeen,
        images: n.id === id ? this.self.imageCount() : Number(counts[i]?.[1] ?? 0),
        self: n.id === id,
      }))
      if (!nodes.some((n) => n.self)) nodes.push(selfOnly)
      return { enabled: true, node: id, url, redis, nodes, partial: false }
    } catch {
      return { enabled: true, node: id, url, redis, nodes: [selfOnly], partial: true }
    }
  }
}

function unavailable (err: unknown): ReturnType<typeof pxpError> {
  return pxpError('PXP_ERR_CLUSTER_UNAVAILABLE', err instanceof Error ? err.message : String(err))
}
