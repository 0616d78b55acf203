/**
 * The connection to Redis: two ioredis clients (one for commands, one that blocks on XREAD), reconnecting
 * with capped exponential backoff for ever, and with the offline queue OFF.
 *
 * Why no offline queue: a command issued while Redis is away would wait for it, and so would the request
 * that issued it. With the queue off it fails at once, and the caller falls back (local listing, the last
 * known owner) or retries on the next heartbeat. Nothing on a request path ever waits for Redis to return.
 */
import { EventEmitter } from 'node:events'
import { Redis, type RedisOptions } from 'ioredis'

export interface RedisLinkEvents {
  /** The command connection is (again) ready. */
  ready: []
  /** The command connection was lost. */
  down: []
  /** close() was called: waiters give up. */
  closing: []
}

/** Backoff between reconnection attempts: 50 ms doubling up to 1 s, so a restarted Redis is found within ~1 s. */
export function reconnectDelay (attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 10), 1000)
}

function clientOptions (name: string): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    // Commands in flight when the connection drops fail instead of being replayed later, out of order.
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    retryStrategy: reconnectDelay,
    connectionName: name,
  }
}

export class RedisLink extends EventEmitter<RedisLinkEvents> {
  readonly commands: Redis
  /** Dedicated to XREAD BLOCK: a blocking read would stall every other command on a shared connection. */
  readonly reader: Redis
  /** The last connection error, for `GET /cluster` (null once connected again). */
  lastError: string | null = null
  private closed = false

  constructor (readonly url: string, nodeId: string) {
    super()
    this.commands = new Redis(url, clientOptions(`pixelport:${nodeId}`))
    this.reader = new Redis(url, clientOptions(`pixelport:${nodeId}:events`))
    for (const client of [this.commands, this.reader]) {
      // ioredis reports every failed attempt as an 'error' event; an unhandled one would crash the process.
      client.on('error', (err: Error) => { this.lastError = err.message })
    }
    this.commands.on('ready', () => {
      this.lastError = null
      this.emit('ready')
    })
    this.commands.on('close', () => { if (!this.closed) this.emit('down') })
  }

  /** Start connecting; never rejects (a Redis that is not there yet is retried in the background). */
  connect (): void {
    this.commands.connect().catch(() => {})
    this.reader.connect().catch(() => {})
  }

  get ready (): boolean {
    return this.commands.status === 'ready'
  }

  /** ioredis' status of the command connection: ready, connecting, reconnecting, end… */
  get status (): string {
    return this.commands.status
  }

  /** The URL without a password, for status pages. */
  get safeUrl (): string {
    try {
      const u = new URL(this.url)
      if (u.password !== '') u.password = '***'
      // Redis clients also take credentials as query parameters (?password=…); never show those either.
      for (const key of [...u.searchParams.keys()]) if (/pass|secret|token|auth|key/i.test(key)) u.searchParams.set(key, '***')
      return u.toString()
    } catch {
      return 'redis://?'
    }
  }

  /** Resolves when `client` is ready, or with false once the link is closed. */
  async whenReady (client: Redis = this.commands): Promise<boolean> {
    while (!this.closed && client.status !== 'ready') {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          client.off('ready', done)
          this.off('closing', done)
          resolve()
        }
        client.once('ready', done)
        this.once('closing', done)
      })
    }
    return !this.closed
  }

  get isClosed (): boolean {
    return this.closed
  }

  /** Drop both connections at once: a blocked XREAD is rejected, pending commands fail. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.emit('closing')
    this.commands.disconnect()
    this.reader.disconnect()
  }
}
