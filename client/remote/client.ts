/**
 * RemoteClient: the Pixelport store over one WebSocket (docs/protocol.md), for Node.js and browsers.
 *
 * Remote clients cannot map the server's shared memory, so they get copies: `get` streams one consistent
 * generation, `put` uploads bytes (in chunks when large, respecting the socket's buffer), `subscribe`
 * delivers events (and frames) as an async iterator, `download` fetches over HTTP. Every failure is a
 * PixelportError with a `code`. `close()` drains, `destroy()` does not; with `reconnect`, a lost
 * connection is opened again and the subscriptions carry on (reconnect.ts).
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { TypedArray } from '../../protocol/dtypes.js'
import { pxpError, type PixelportError } from '../../protocol/errors.js'
import type { ClientMessage, ImagesMessage, ListMessage, Region, Scope, ServerLimits, SubscribeMessage } from '../../protocol/messages.js'
import type { CreateRequest } from '../../protocol/spec.js'
import { encodeUploadChunk } from './codec.js'
import type { RemoteFrame } from './frames.js'
import { HttpClient, type Download, type DownloadOptions } from './http.js'
import { Reconnector, type ReconnectOptions } from './reconnect.js'
import { Session } from './session.js'
import type { SocketOptions } from './socket.js'
import { RemoteSubscription, type SubscribeOptions } from './subscription.js'
import { httpUrlOf, socketUrlOf } from './url.js'

export interface ConnectOptions extends SocketOptions {
  /** Name sent in `hello` (shows up in server logs). */
  clientName?: string
  /**
   * Bearer token for a server that requires one. Sent in `hello`, so it works from browsers too (which
   * cannot set an Authorization header on a WebSocket); `download` sends it as `Authorization: Bearer`.
   */
  token?: string
  /**
   * Default scope of `list()` and `subscribe()`: 'cluster' lists (and follows) the images of every node of
   * the cluster the server belongs to. Default 'local'. Each call may override it.
   */
  scope?: Scope
  /**
   * When the connection is lost (the server restarts), connect again with backoff, resubscribe every
   * subscription and deliver the current generation of each image it watched. Calls made while the
   * connection is down fail with PXP_ERR_CLOSED. Default false: a lost connection ends the client.
   */
  reconnect?: boolean | ReconnectOptions
  /**
   * `download` asks a cluster node that does not own the image for a redirect to its owner and follows
   * one 307 to an http(s) URL. The token goes along only to the server's own origin or to one of
   * `trustedOrigins`; any other target gets the request without it.
   */
  redirect?: boolean
  /** Origins (`http://node-b:8080`) trusted with the token after a redirect: scheme, host and port must match. */
  trustedOrigins?: string[]
}

export interface GetOptions {
  /** Only this rectangle: `{ x, y, width, height }` in pixels. */
  region?: Region
  /** A generation still held by the server (else PXP_ERR_GENERATION_GONE). Default: the current one. */
  generation?: number
  /**
   * Receive into this buffer (at least the frame's byteLength) instead of a new one: for a loop of gets
   * (a live feed), reusing one buffer saves allocating and faulting in fresh memory every frame.
   */
  into?: Uint8Array
  signal?: AbortSignal
}

export interface PutOptions {
  signal?: AbortSignal
}

/** Bytes of a put sent inline in one message, at most (larger ones are chunked). */
const INLINE_SLACK = 4096

/** What resubscribing a subscription after a reconnect needs. */
interface Subscribed {
  message: Omit<SubscribeMessage, 'req'>
  data: boolean
}

export class RemoteClient {
  private session!: Session
  private readonly http: HttpClient
  /** Every live subscription, across connections. */
  private readonly subscriptions = new Map<RemoteSubscription, Subscribed>()
  private state: 'open' | 'closing' | 'closed' = 'open'
  /** While the connection is down and being reopened: why. */
  private down: PixelportError | null = null
  private reconnector: Reconnector | null = null
  /** Public calls in progress: close() waits for them. */
  private active = 0
  private idle: (() => void) | null = null
  private closing: Promise<void> | null = null
  private resolveClosed!: () => void
  private readonly closed = new Promise<void>((resolve) => { this.resolveClosed = resolve })

  private constructor (readonly url: string, private readonly options: ConnectOptions) {
    const headers = options.headers
    this.http = new HttpClient(httpUrlOf(url), { token: options.token, headers, redirect: options.redirect, trustedOrigins: options.trustedOrigins })
  }

  /**
   * Connect and say hello. `url` is the server's URL as everything else takes it (`http://host:8080`,
   * `https://host`: the socket is `ws(s)://…/ws` under it) or the WebSocket endpoint itself
   * (`ws://host:8080/ws`). A token goes in `options.token`.
   */
  static async connect (url: string | URL, options: ConnectOptions = {}): Promise<RemoteClient> {
    const client = new RemoteClient(socketUrlOf(url), options)
    client.session = await client.openSession()
    if (options.reconnect !== undefined && options.reconnect !== false) {
      client.reconnector = new Reconnector(options.reconnect === true ? {} : options.reconnect, async () => await client.openSession(), (session) => client.resume(session))
    }
    return client
  }

  /** What the server announced in `welcome`. */
  get limits (): ServerLimits {
    return this.session.limits
  }

  get protocol (): number {
    return this.session.protocol
  }

  /** True while the client is open and its connection up. */
  get connected (): boolean {
    return this.state === 'open' && this.down === null && this.session.open
  }

  /** Every image (and view) the server lists: follows the pages' cursors to the end. */
  async list (options: { scope?: Scope } = {}): Promise<ImageDescriptor[]> {
    return await this.op(async () => {
      const all: ImageDescriptor[] = []
      let cursor: string | undefined
      for (;;) {
        const page = await this.page({ ...options, cursor })
        all.push(...page.images)
        // A server from before paging sends no `next`: its one reply is everything.
        if (page.next == null) return all
        cursor = page.next
      }
    })
  }

  /** One page of the listing: at most `limit` descriptors after `cursor` (a previous page's `next`). */
  async listPage (options: { scope?: Scope, limit?: number, cursor?: string } = {}): Promise<ImagesMessage> {
    return await this.op(async () => await this.page(options))
  }

  async describe (id: string): Promise<ImageDescriptor> {
    return await this.op(async () => (await this.session.request({ op: 'describe', req: this.session.newReq(), id }, 'descriptor')).descriptor)
  }

  /**
   * Create a zero-filled image: `{ width, height, mode }` or `{ shape, typestr }` (+ layout, readonly,
   * frames); `options` may name the id and make it read-only.
   */
  async create (spec: CreateRequest, options: { id?: string, readonly?: boolean } = {}): Promise<ImageDescriptor> {
    const fields = defined({ ...spec, ...options })
    return await this.op(async () => (await this.session.request({ op: 'create', req: this.session.newReq(), ...fields } as ClientMessage, 'descriptor')).descriptor)
  }

  async delete (id: string): Promise<void> {
    await this.op(async () => await this.session.request({ op: 'delete', req: this.session.newReq(), id }, 'deleted'))
  }

  /**
   * One consistent generation of an image (or of a region of it): `{ descriptor, data, bytes, shape }`,
   * `data` a TypedArray of the image's dtype.
   */
  async get (id: string, options: GetOptions = {}): Promise<RemoteFrame> {
    return await this.op(async () => {
      const session = this.session
      const req = session.newReq()
      const message: ClientMessage = { op: 'get', req, id }
      if (options.generation !== undefined) message.generation = options.generation
      if (options.region !== undefined) message.region = { x: options.region.x, y: options.region.y, width: options.region.width, height: options.region.height }
      if (options.into !== undefined) session.targets.set(req, options.into)
      try {
        return (await session.request(message, 'end', options.signal)).frame
      } finally {
        session.targets.delete(req)
      }
    })
  }

  /**
   * The same over HTTP (`GET /images/:id/data`): `{ descriptor, generation, bytes, data }`. With the
   * `redirect` option, follows a cluster node's redirect to the image's owner.
   */
  async download (id: string, options: DownloadOptions = {}): Promise<Download> {
    return await this.op(async () => await this.http.download(id, options))
  }

  /**
   * Write an image from C-order bytes: `put(id, bytes)` overwrites an existing image (a new generation);
   * `put({ width, height, mode, id? } | { shape, typestr, id? }, bytes)` creates one (or overwrites the
   * image with that id, if it exists and has that shape). Large images go in chunks, never faster than
   * the socket drains.
   */
  async put (idOrSpec: string | CreateRequest, bytes: ArrayBufferView | ArrayBuffer, options: PutOptions = {}): Promise<ImageDescriptor> {
    const payload = bytes instanceof ArrayBuffer
      ? new Uint8Array(bytes)
      : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const fields = defined(typeof idOrSpec === 'string' ? { id: idOrSpec } : { ...idOrSpec })
    return await this.op(async () => {
      const session = this.session
      const req = session.newReq()
      const { chunkSize, maxMessageBytes, highWaterMark } = session.limits
      if (payload.byteLength + INLINE_SLACK <= Math.min(chunkSize, maxMessageBytes)) {
        return (await session.request({ op: 'put', req, ...fields, data: payload } as ClientMessage, 'descriptor', options.signal)).descriptor
      }
      const reply = session.request({ op: 'put', req, ...fields, byteLength: payload.byteLength } as ClientMessage, 'descriptor', options.signal)
      // Stop sending as soon as the request settles early (refused, cancelled, connection lost).
      let settled = false
      reply.then(() => { settled = true }, () => { settled = true })
      const step = Math.min(chunkSize, maxMessageBytes - INLINE_SLACK)
      try {
        for (let offset = 0; offset < payload.byteLength && !settled; offset += step) {
          await session.below(highWaterMark)
          if (settled || !session.open) break
          session.sendRaw(encodeUploadChunk(req, offset, payload.subarray(offset, offset + step)))
        }
        if (session.open) session.send({ op: 'end', req })
      } catch {
        // The reply carries the reason (the connection closed).
      }
      return (await reply).descriptor
    })
  }

  /**
   * Subscribe to store events; resolves once the server confirmed (events from then on are delivered).
   * Iterate with `for await`; `break` or `return()` unsubscribes.
   */
  async subscribe (options: SubscribeOptions = {}): Promise<RemoteSubscription> {
    const message: Omit<SubscribeMessage, 'req'> = { op: 'subscribe' }
    if (options.ids !== undefined) message.ids = options.ids
    if (options.policy !== undefined) message.policy = options.policy
    if (options.data !== undefined) message.data = options.data
    if (options.queue !== undefined) message.queue = options.queue
    const scope = options.scope ?? this.options.scope
    if (scope !== undefined) message.scope = scope
    return await this.op(async () => {
      const subscription: RemoteSubscription = new RemoteSubscription(0, options.policy ?? 'latest', options.queue ?? this.session.limits.defaultQueue, async () => {
        this.subscriptions.delete(subscription)
        const session = this.session
        session.drop(subscription.sub)
        if (session.open) await session.request({ op: 'unsubscribe', req: session.newReq(), sub: subscription.sub }, 'unsubscribed').catch(() => {})
      })
      const entry = { message, data: options.data === true }
      await this.session.subscribe({ ...message, req: this.session.newReq() }, subscription, entry.data)
      this.subscriptions.set(subscription, entry)
      return subscription
    })
  }

  /**
   * Close gracefully: calls in flight finish (a download, a get, a put), then the connections close and
   * subscriptions end. Calls made after close() fail with PXP_ERR_CLOSED. Idempotent.
   */
  async close (): Promise<void> {
    this.closing ??= (async () => {
      if (this.state === 'open') this.state = 'closing'
      if (this.active > 0) await new Promise<void>((resolve) => { this.idle = resolve })
      this.shutDown(pxpError('PXP_ERR_CLOSED', 'client (closed)'), false)
      await this.http.close()
      await this.closed
    })()
    return await this.closing
  }

  /**
   * Close now: calls in flight fail with PXP_ERR_CLOSED, the connections close, subscriptions end. Calls
   * made afterwards fail with PXP_ERR_CLOSED. Idempotent.
   */
  async destroy (): Promise<void> {
    this.shutDown(pxpError('PXP_ERR_CLOSED', 'client (destroyed)'), true)
    await this.http.destroy()
    await this.closed
  }

  // ---- internals ----------------------------------------------------------------------------------

  private shutDown (err: PixelportError, now: boolean): void {
    this.state = 'closed'
    this.reconnector?.stop()
    const wasDown = this.down !== null
    if (now || wasDown) this.session.terminate(err)
    else this.session.close(1000)
    // No connection left to report the end (it was down already): end the subscriptions here.
    if (wasDown) this.ended(err, [])
  }

  /** A public call: refused unless the client is open and connected; close() waits for it. */
  private async op<T> (fn: () => Promise<T>): Promise<T> {
    if (this.state !== 'open') throw pxpError('PXP_ERR_CLOSED', 'client')
    if (this.down !== null) throw pxpError('PXP_ERR_CLOSED', `connection (lost: ${this.down.message}; reconnecting)`)
    this.active++
    try {
      return await fn()
    } finally {
      if (--this.active === 0) this.idle?.()
    }
  }

  private async page (options: { scope?: Scope, limit?: number, cursor?: string }): Promise<ImagesMessage> {
    const message: ListMessage = { op: 'list', req: this.session.newReq() }
    const scope = options.scope ?? this.options.scope
    if (scope !== undefined) message.scope = scope
    if (options.limit !== undefined) message.limit = options.limit
    if (options.cursor !== undefined) message.cursor = options.cursor
    return await this.session.request(message, 'images')
  }

  private async openSession (): Promise<Session> {
    return await Session.open(this.url, this.options, (err, subscriptions) => this.onLost(err, subscriptions))
  }

  /** The connection ended: for good, or (with reconnect, while open) until the reconnector reopens it. */
  private onLost (err: PixelportError, subscriptions: RemoteSubscription[]): void {
    if (this.state === 'open' && this.reconnector !== null) {
      this.down = err
      this.reconnector.start()
      return
    }
    this.ended(err, subscriptions)
  }

  private ended (err: PixelportError, subscriptions: RemoteSubscription[]): void {
    for (const s of new Set([...subscriptions, ...this.subscriptions.keys()])) s.fail(err)
    this.subscriptions.clear()
    this.state = 'closed'
    this.resolveClosed()
  }

  /** A new connection is up: move every subscription to it, then catch up on what happened meanwhile. */
  private async resume (session: Session): Promise<void> {
    if (this.state !== 'open') {
      session.close()
      return
    }
    this.session = session
    this.down = null
    for (const [subscription, entry] of this.subscriptions) {
      try {
        await session.subscribe({ ...entry.message, req: session.newReq() }, subscription, entry.data)
        await this.reconnector!.catchUp(session, subscription, entry.message, entry.data)
      } catch (err) {
        // The connection went down again (the reconnector starts over), or this subscription is refused now.
        if (session.open) {
          this.subscriptions.delete(subscription)
          subscription.fail(err as PixelportError)
        }
      }
    }
  }
}

function defined (fields: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(fields)) if (fields[key] === undefined) delete fields[key]
  return fields
}

export type { RemoteFrame, TypedArray }
