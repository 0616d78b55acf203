/**
 * Who is in the cluster: each node's heartbeat key (expiring after ttlMs, refreshed every heartbeatMs)
 * and the set of node ids that have joined.
 *
 * A node is live exactly while its heartbeat key exists; a killed node is gone from every listing at most
 * ttlMs after its last beat, without anybody having to notice it died.
 *
 * With a cluster token every heartbeat is signed with it (registration.ts), and an entry that does not
 * verify (a node registered by whoever else can write to Redis) is not a node: it is in no listing, and no
 * request or token is ever sent to it.
 */
import { CATALOG_TTL_FACTOR, catalogKey, EVENTS_KEY, EVENTS_MAXLEN, nodeKey, NODES_KEY } from './keys.js'
import type { RedisLink } from './redis-link.js'
import { signRegistration, verifyRegistration } from './registration.js'

export interface NodeInfo {
  id: string
  /** Advertised base URL. */
  url: string
  /** When the node process started its membership (ms since the epoch). */
  startedAt: number
  /** Its last heartbeat (ms since the epoch). */
  lastSeen: number
  /** Its token-configuration digest (registration.ts authDigest); absent: never redirect a client there. */
  auth?: string
}

/** The part of a pino/fastify logger the cluster uses. */
export interface ClusterLogger {
  warn: (details: object, message: string) => void
}

/** What a heartbeat value holds: the node, and its signature when the cluster has a token. */
type Stored = NodeInfo & { sig?: string }

/** Forged entries remembered to be logged once each (bounded: a flood of them cannot grow it). */
const MAX_REMEMBERED_FORGERIES = 1024

export class Membership {
  private readonly startedAt = Date.now()
  private readonly forgeries = new Set<string>()

  /**
   * @param key the cluster token: heartbeats are signed with it and others' are verified; null: neither.
   * @param log told once about each distinct entry that does not verify.
   */
  constructor (
    private readonly link: RedisLink,
    readonly self: { id: string, url: string, auth?: string },
    private readonly ttlMs: number,
    private readonly key: string | null = null,
    private readonly log: ClusterLogger = { warn: () => {} },
  ) {}

  /**
   * The node a heartbeat value stored under `id` describes; null when there is none (lapsed) or it is not
   * a node this one may talk to: malformed, stored under another id, or not signed with the cluster token.
   */
  private parseNode (id: string, text: string | null): NodeInfo | null {
    if (text === null) return null
    let v: Stored | null = null
    try {
      v = JSON.parse(text) as Stored
    } catch {}
    if (typeof v !== 'object' || v === null || v.id !== id || typeof v.url !== 'string' || !Number.isSafeInteger(v.startedAt) ||
        (v.auth !== undefined && typeof v.auth !== 'string') || (this.key !== null && !verifyRegistration(this.key, v, v.sig))) {
      this.forged(id, v ?? text)
      return null
    }
    const node: NodeInfo = { id: v.id, url: v.url, startedAt: v.startedAt, lastSeen: Number(v.lastSeen) || 0 }
    if (v.auth !== undefined) node.auth = v.auth
    return node
  }

  private forged (id: string, v: unknown): void {
    const entry = typeof v === 'object' ? v as Partial<Stored> | null : null
    // Keyed without lastSeen, so an entry rewritten every second is still logged once.
    const seen = `${id}\0${String(entry?.url).slice(0, 256)}\0${String(entry?.startedAt)}`
    if (this.forgeries.has(seen)) return
    if (this.forgeries.size >= MAX_REMEMBERED_FORGERIES) this.forgeries.clear()
    this.forgeries.add(seen)
    this.log.warn({ redisKey: nodeKey(id), id: entry?.id, url: entry?.url }, 'cluster: ignoring a node registration in Redis that is not signed with the cluster token')
  }

  /**
   * Refresh this node's heartbeat and catalog expiry. Resolves to true when the heartbeat was not there
   * before (first join, Redis restarted empty, or this node lapsed): the caller republishes its catalog.
   */
  async beat (): Promise<boolean> {
    const info: Stored = { id: this.self.id, url: this.self.url, startedAt: this.startedAt, lastSeen: Date.now() }
    if (this.self.auth !== undefined) info.auth = this.self.auth
    if (this.key !== null) info.sig = signRegistration(this.key, info)
    const results = await this.link.commands.multi()
      .set(nodeKey(this.self.id), JSON.stringify(info), 'PX', this.ttlMs, 'GET')
      .sadd(NODES_KEY, this.self.id)
      .pexpire(catalogKey(this.self.id), CATALOG_TTL_FACTOR * this.ttlMs)
      .exec()
    if (results === null) throw new Error('MULTI aborted')
    const [err, previous] = results[0]
    if (err !== null) throw err
    return previous === null
  }

  /** Every node whose heartbeat is current (this one included); prunes lapsed ids from the set. */
  async live (): Promise<NodeInfo[]> {
    const ids = await this.link.commands.smembers(NODES_KEY)
    if (ids.length === 0) return []
    const values = await this.link.commands.mget(ids.map(nodeKey))
    const nodes: NodeInfo[] = []
    const lapsed: string[] = []
    values.forEach((v, i) => {
      const node = this.parseNode(ids[i], v)
      // A forged entry is pruned from the set too: it is no member, whatever its key says.
      if (node === null) lapsed.push(ids[i])
      else nodes.push(node)
    })
    // A node that rejoins right after being pruned adds itself again on its next beat.
    if (lapsed.length > 0) await this.link.commands.srem(NODES_KEY, ...lapsed).catch(() => {})
    return nodes.sort((a, b) => a.id.localeCompare(b.id))
  }

  /** One node's heartbeat, if it is live. */
  async info (nodeId: string): Promise<NodeInfo | null> {
    return this.parseNode(nodeId, await this.link.commands.get(nodeKey(nodeId)))
  }

  /** Leave at once: heartbeat and catalog deleted, and a `left` entry so readers drop this node now. */
  async leave (): Promise<void> {
    await this.link.commands.multi()
      .del(nodeKey(this.self.id), catalogKey(this.self.id))
      .srem(NODES_KEY, this.self.id)
      .xadd(EVENTS_KEY, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 't', 'left', 'n', this.self.id)
      .exec()
  }
}
