/**
 * Keep-alive connections to the other nodes: one undici Pool per peer origin, shared by forwarded
 * requests and replica pulls.
 *
 * Why undici and a pool per peer: a cross-node read is one more hop than a direct download, and the hop
 * must cost no more than a plain reverse proxy's. A new TCP connection per request (slow start included)
 * and Node's http client (an IncomingMessage per response, a copy per chunk into its buffer list) were
 * what made forwarding slower than the hop itself. undici hands the socket's chunks to a Readable without
 * re-buffering and pauses the socket when that Readable is full, so backpressure runs from the client of
 * this node back to the owner's socket.
 */
import { Pool } from 'undici'

/** Connections kept per peer: enough for concurrent forwarded downloads, bounded. */
const CONNECTIONS_PER_PEER = 64
/** Waiting for the owner to start answering; a stalled body is the client's business after that. */
const HEADERS_TIMEOUT_MS = 10_000
const CONNECT_TIMEOUT_MS = 10_000
/** An idle connection to a peer is closed after this long (the owner's own keep-alive is 72 s in fastify). */
const KEEP_ALIVE_MS = 30_000

export class PeerPools {
  private readonly pools = new Map<string, Pool>()
  private closed = false

  /** The pool for `url`'s origin (created on first use); throws once destroyed. */
  for (url: string): Pool {
    const origin = new URL(url).origin
    if (this.closed) throw new Error('this node is leaving the cluster')
    let pool = this.pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: CONNECTIONS_PER_PEER,
        pipelining: 1,
        keepAliveTimeout: KEEP_ALIVE_MS,
        keepAliveMaxTimeout: KEEP_ALIVE_MS,
        headersTimeout: HEADERS_TIMEOUT_MS,
        // A download may legitimately pause as long as its client does (backpressure).
        bodyTimeout: 0,
        connect: { timeout: CONNECT_TIMEOUT_MS },
      })
      this.pools.set(origin, pool)
    }
    return pool
  }

  /** Close the connections to a peer that left or went down (requests in flight fail). */
  drop (url: string): void {
    let origin: string
    try {
      origin = new URL(url).origin
    } catch {
      return
    }
    const pool = this.pools.get(origin)
    this.pools.delete(origin)
    void pool?.destroy().catch(() => {})
  }

  /** Close every connection; later requests fail (`for` throws). */
  async destroy (): Promise<void> {
    this.closed = true
    const pools = [...this.pools.values()]
    this.pools.clear()
    await Promise.all(pools.map(async (p) => await p.destroy().catch(() => {})))
  }
}
