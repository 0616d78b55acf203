/**
 * Who is in the cluster: each node's heartbeat key (expiring after ttlMs, refreshed every heartbeatMs)
 * and the set of node ids that have joined.
 *
 * A node is live exactly while its heartbeat key exists; a killed node is gone from every listing at most
 * ttlMs after its last beat, without anybody having to notice it died.
 */
import { CATALOG_TTL_FACTOR, catalogKey, EVENTS_KEY, EVENTS_MAXLEN, nodeKey, NODES_KEY } from './keys.js'
import type { RedisLink } from './redis-link.js'

export interface NodeInfo {
  id: string
  /** Advertised base URL. */
  url: string
  /** When the node process started its membership (ms since the epoch). */
  startedAt: number
  /** Its last heartbeat (ms since the epoch). */
  lastSeen: number
}

function parseNode (text: string | null): NodeInfo | null {
  if (text === null) return null
  try {
    const v = JSON.parse(text) as NodeInfo
    return typeof v.id === 'string' && typeof v.url === 'string' ? v : null
  } catch {
    return null
  }
}

export class Membership {
  private readonly startedAt = Date.now()

  constructor (private readonly link: RedisLink, readonly self: { id: string, url: string }, private readonly ttlMs: number) {}

  /**
   * Refresh this node's heartbeat and catalog expiry. Resolves to true when the heartbeat was not there
   * before (first join, Redis restarted empty, or this node lapsed): the caller republishes its catalog.
   */
  async beat (): Promise<boolean> {
    const info: NodeInfo = { ...this.self, startedAt: this.startedAt, lastSeen: Date.now() }
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
      const node = parseNode(v)
      if (node === null) lapsed.push(ids[i])
      else nodes.push(node)
    })
    // A node that rejoins right after being pruned adds itself again on its next beat.
    if (lapsed.length > 0) await this.link.commands.srem(NODES_KEY, ...lapsed).catch(() => {})
    return nodes.sort((a, b) => a.id.localeCompare(b.id))
  }

  /** One node's heartbeat, if it is live. */
  async info (nodeId: string): Promise<NodeInfo | null> {
    return parseNode(await this.link.commands.get(nodeKey(nodeId)))
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
