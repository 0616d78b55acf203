/**
 * RemoteClient: the Pixelport store over one WebSocket (docs/protocol.md), for Node.js and browsers.
 *
 * Remote clients cannot map the server's shared memory, so they get copies: `get` streams one consistent
 * generation, `put` uploads bytes (in chunks when large, respecting the socket's buffer), `subscribe`
 * delivers events (and frames) as an async iterator. Every failure is a PixelportError with a `code`.
 */
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import type { TypedArray } from '../../protocol/dtypes.js'
import { errorFromBody, pxpError, type PixelportError } from '../../protocol/errors.js'
import {
  CHUNK_HEAD_BYTES, PROTOCOL_VERSION, readChunkHead, type ClientMessage, type ErrorMessage, type EventMessage, type FrameMessage, type Region, type RequestId,
  type ServerLimits, type ServerMessage, type ImagesMessage, type ListMessage, type Scope,
} from '../../protocol/messages.js'
import type { CreateRequest } from '../../protocol/spec.js'
import { decode, encode, encodeUploadChunk } from './codec.js'
import { FrameAssembler, type RemoteFrame } from './frames.js'
import { WireSocket, type SocketOptions } from './socket.js'
import { RemoteSubscription, type SubscribeOptions } from './subscription.js'
import { socketUrlOf } from './url.js'

export interface ConnectOptions extends SocketOptions {
  /** Name sent in `hello` (shows up in server logs). */
  clientName?: string
  /**
   * Bearer token for a server that requires one. Sent in `hello`, so it works from browsers too (which
   * cannot set an Authorization header on a WebSocket).
   */
  token?: string
  /**
   * Default scope of `list()` and `subscribe()`: 'cluster' lists (and follows) the images of every node of
   * the cluster the server belongs to. Default 'local'. Each call may override it.
   */
  scope?: Scope
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

interface Pending {
  resolve (message: ServerMessage): void
  reject (err: PixelportError): void
}

/**
 * WebSocket frame size to ask for when `ws` hands over frames uncopied. Most such frames then lie within
 * one 64 KiB socket read and arrive as views of it; larger ones would straddle reads and be copied.
 */
const FRAGMENT_SIZE = 16 * 1024

/** Bytes of a put sent inline in one message, at most (larger ones are chunked). */
const INLINE_SLACK = 4096

export class RemoteClient {
  private readonly pending = new Map<RequestId, Pending>()
  /** Gets that asked for their bytes in a given buffer. */
  private readonly targets = new Map<RequestId, Uint8Array>()
  /** Streams in progress, by stream number: the get or subscription they belong to. */
  private readonly streams = new Map<number, { frame: FrameAssembler, req?: RequestId, sub?: number }>()
  private readonly subscriptions = new Map<number, RemoteSubscription>()
  /** Subscriptions with data: the event waiting for its frame. */
  private readonly awaitingFrame = new Map<number, EventMessage>()
  /** Subscribe requests waiting for their `subscribed` reply. */
  private readonly subscribing = new Map<RequestId, SubscribeOptions>()
  /** Subscriptions whose created/updated events are followed by a frame. */
  private readonly dataSubs = new Set<number>()
  private nextReq = 1
  private socket!: WireSocket
  private closedWith: PixelportError | null = null
  private lastError: PixelportError | null = null
  private closing: Promise<void> | null = null
  private resolveClosed!: () => void
  private readonly closed = new Promise<void>((resolve) => { this.resolveClosed = resolve })
  /** What the server announced in `welcome`. */
  limits!: ServerLimits
  protocol = PROTOCOL_VERSION

  private constructor (readonly url: string, private readonly scope: Scope | undefined) {}

  /**
   * Connect and say hello. `url` is the server's URL as everything else takes it (`http://host:8080`,
   * `https://host`: the socket is `ws(s)://…/ws` under it) or the WebSocket endpoint itself
   * (`ws://host:8080/ws`). A token goes in `options.token`.
   */
  static async connect (url: string | URL, options: ConnectOptions = {}): Promise<RemoteClient> {
    const client = new RemoteClient(socketUrlOf(url), options.scope)
    client.socket = await WireSocket.open(client.url, {
      message: (data) => client.onMessage(data),
      close: (code, reason) => client.onClose(code, reason),
    }, options)
    try {
      const hello: ClientMessage = { op: 'hello', req: client.newReq(), protocol: PROTOCOL_VERSION, client: options.clientName ?? 'pixelport-remote' }
      if (client.socket.fragments) hello.fragmentSize = FRAGMENT_SIZE
      if (options.token !== undefined) hello.token = options.token
      const welcome = await client.request(hello, 'welcome')
      client.limits = welcome.limits
      client.protocol = welcome.protocol
    } catch (err) {
      client.socket.close()
      throw err
    }
    return client
  }

  /** True until the connection closes. */
  get connected (): boolean {
    return this.closedWith === null && this.socket.open
  }

  /** Every image (and view) the server lists: follows the pages' cursors to the end. */
  async list (options: { scope?: Scope } = {}): Promise<ImageDescriptor[]> {
    const all: ImageDescriptor[] = []
    let cursor: string | undefined
    for (;;) {
      const page = await this.listPage({ ...options, cursor })
      all.push(...page.images)
      // A server from before paging sends no `next`: its one reply is everything.
      if (page.next == null) return all
      cursor = page.next
    }
  }

  /** One page of the listing: at most `limit` descriptors after `cursor` (a previous page's `next`). */
  async listPage (options: { scope?: Scope, limit?: number, cursor?: string } = {}): Promise<ImagesMessage> {
    const message: ListMessage = { op: 'list', req: this.newReq() }
    const scope = options.scope ?? this.scope
    if (scope !== undefined) message.scope = scope
    if (options.limit !== undefined) message.limit = options.limit
    if (options.cursor !== undefined) message.cursor = options.cursor
    return await this.request(message, 'images')
  }

  async describe (id: string): Promise<ImageDescriptor> {
    return (await this.request({ op: 'describe', req: this.newReq(), id }, 'descriptor')).descriptor
  }

  /**
   * Create a zero-filled image: `{ width, height, mode }` or `{ shape, typestr }` (+ layout, readonly,
   * frames); `options` may name the id and make it read-only.
   */
  async create (spec: CreateRequest, options: { id?: string, readonly?: boolean } = {}): Promise<ImageDescriptor> {
    const fields: Record<string, unknown> = { ...spec, ...options }
    for (const key of Object.keys(fields)) if (fields[key] === undefined) delete fields[key]
    return (await this.request({ op: 'create', req: this.newReq(), ...fields } as ClientMessage, 'descriptor')).descriptor
  }

  async delete (id: string): Promise<void> {
    await this.request({ op: 'delete', req: this.newReq(), id }, 'deleted')
  }

  /**
   * One consistent generation of an image (or of a region of it): `{ descriptor, data, bytes, shape }`,
   * `data` a TypedArray of the image's dtype.
   */
  async get (id: string, options: GetOptions = {}): Promise<RemoteFrame> {
    const req = this.newReq()
    const message: ClientMessage = { op: 'get', req, id }
    if (options.generation !== undefined) message.generation = options.generation
    if (options.region !== undefined) message.region = { x: options.region.x, y: options.region.y, width: options.region.width, height: options.region.height }
    if (options.into !== undefined) this.targets.set(req, options.into)
    try {
      const reply = await this.request(message, 'end', options.signal)
      return reply.frame
    } finally {
      this.targets.delete(req)
    }
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
    const fields: Record<string, unknown> = typeof idOrSpec === 'string' ? { id: idOrSpec } : { ...idOrSpec }
    for (const key of Object.keys(fields)) if (fields[key] === undefined) delete fields[key]
    const req = this.newReq()
    const { chunkSize, maxMessageBytes, highWaterMark } = this.limits
    if (payload.byteLength + INLINE_SLACK <= Math.min(chunkSize, maxMessageBytes)) {
      return (await this.request({ op: 'put', req, ...fields, data: payload } as ClientMessage, 'descriptor', options.signal)).descriptor
    }
    const reply = this.request({ op: 'put', req, ...fields, byteLength: payload.byteLength } as ClientMessage, 'descriptor', options.signal)
    // Stop sending as soon as the request settles early (refused, cancelled, connection lost).
    let settled = false
    reply.then(() => { settled = true }, () => { settled = true })
    const step = Math.min(chunkSize, maxMessageBytes - INLINE_SLACK)
    try {
      for (let offset = 0; offset < payload.byteLength && !settled; offset += step) {
        await this.socket.below(highWaterMark)
        if (settled || !this.socket.open) break
        this.socket.send(encodeUploadChunk(req, offset, payload.subarray(offset, offset + step)))
      }
      if (this.socket.open) this.send({ op: 'end', req })
    } catch {
      // The reply carries the reason (the connection closed).
    }
    return (await reply).descriptor
  }

  /**
   * Subscribe to store events; resolves once the server confirmed (events from then on are delivered).
   * Iterate with `for await`; `break` or `return()` unsubscribes.
   */
  async subscribe (options: SubscribeOptions = {}): Promise<RemoteSubscription> {
    const req = this.newReq()
    const message: ClientMessage = { op: 'subscribe', req }
    if (options.ids !== undefined) message.ids = options.ids
    if (options.policy !== undefined) message.policy = options.policy
    if (options.data !== undefined) message.data = options.data
    if (options.queue !== undefined) message.queue = options.queue
    const scope = options.scope ?? this.scope
    if (scope !== undefined) message.scope = scope
    // Registered when the reply is dispatched, before any event that follows it in the same read.
    this.subscribing.set(req, options)
    try {
      const { sub } = await this.request(message, 'subscribed')
      return this.subscriptions.get(sub) ?? new RemoteSubscription(sub, options.policy ?? 'latest', 1, async () => {})
    } finally {
      this.subscribing.delete(req)
    }
  }

  private register (sub: number, options: SubscribeOptions): void {
    const subscription = new RemoteSubscription(sub, options.policy ?? 'latest', options.queue ?? this.limits.defaultQueue, async () => {
      this.subscriptions.delete(sub)
      this.awaitingFrame.delete(sub)
      this.dataSubs.delete(sub)
      if (this.connected) await this.request({ op: 'unsubscribe', req: this.newReq(), sub }, 'unsubscribed').catch(() => {})
    })
    this.subscriptions.set(sub, subscription)
    if (options.data === true) this.dataSubs.add(sub)
  }

  /** Close the connection (graceful; idempotent). Pending requests fail with PXP_ERR_CLOSED. */
  async close (): Promise<void> {
    this.closing ??= (async () => {
      if (this.closedWith === null) this.socket.close(1000)
      await this.closed
    })()
    return await this.closing
  }

  // ---- requests -----------------------------------------------------------------------------------

  private newReq (): number {
    const req = this.nextReq
    this.nextReq = req >= Number.MAX_SAFE_INTEGER ? 1 : req + 1
    return req
  }

  private send (message: ClientMessage): void {
    this.socket.send(encode(message))
  }

  /** Send `message` and resolve with the reply of type `op` (rejecting on an `error` for its req). */
  private async request<Op extends ServerMessage['op']> (message: ClientMessage, op: Op, signal?: AbortSignal): Promise<Reply<Op>> {
    if (this.closedWith !== null) throw this.closedWith
    if (signal?.aborted === true) throw pxpError('PXP_ERR_ABORTED', `${message.op} was aborted before it was sent`)
    const { req } = message
    return await new Promise<Reply<Op>>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.pending.has(req)) return
        // The server answers a cancel with PXP_ERR_ABORTED for this req; reject now, ignore that later.
        this.pending.delete(req)
        for (const [stream, s] of this.streams) if (s.req === req) this.streams.delete(stream)
        if (this.connected) this.send({ op: 'cancel', req })
        reject(pxpError('PXP_ERR_ABORTED', `${message.op} was aborted`))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.pending.set(req, {
        resolve: (reply) => {
          signal?.removeEventListener('abort', onAbort)
          if (reply.op !== op) {
            reject(pxpError('PXP_ERR_PROTOCOL', `expected ${op} in reply to ${message.op}, got ${reply.op}`))
            return
          }
          resolve(reply as Reply<Op>)
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort)
          reject(err)
        },
      })
      try {
        this.send(message)
      } catch (err) {
        this.pending.delete(req)
        signal?.removeEventListener('abort', onAbort)
        reject(err)
      }
    })
  }

  // ---- incoming -----------------------------------------------------------------------------------

  private onMessage (received: Uint8Array | readonly Uint8Array[]): void {
    let data: Uint8Array
    if (Array.isArray(received)) {
      if (received.length === 1) {
        data = received[0]
      } else {
        // A fragmented chunk: copy its payload pieces straight into the frame, never joining them first.
        const head = readChunkHead(received[0])
        if (head !== null) {
          this.onChunkParts(head, received)
          return
        }
        data = concat(received)
      }
    } else {
      data = received as Uint8Array
    }
    let message: ServerMessage
    try {
      message = decode(data)
    } catch (err) {
      this.lastError = err as PixelportError
      this.socket.close(1002, 'PXP_ERR_PROTOCOL')
      return
    }
    try {
      this.dispatch(message)
    } catch (err) {
      this.lastError = err as PixelportError
      this.socket.close(1002, 'PXP_ERR_PROTOCOL')
    }
  }

  private dispatch (message: ServerMessage): void {
    switch (message.op) {
      case 'chunk': {
        this.streams.get(message.stream)?.frame.add(message)
        return
      }
      case 'frame':
        this.onFrame(message)
        return
      case 'end': {
        const stream = this.streams.get(message.stream)
        if (stream === undefined) return
        this.streams.delete(message.stream)
        const frame = stream.frame.finish()
        if (stream.req !== undefined) this.settle(stream.req, { op: 'end', req: stream.req, frame } as unknown as ServerMessage)
        else if (stream.sub !== undefined) {
          const event = this.awaitingFrame.get(stream.sub)
          this.awaitingFrame.delete(stream.sub)
          if (event !== undefined) this.subscriptions.get(stream.sub)?.push(event, frame)
        }
        return
      }
      case 'event': {
        const subscription = this.subscriptions.get(message.sub)
        if (subscription === undefined) return
        // With data, created/updated events are followed by their frame: deliver them together.
        if (message.type !== 'deleted' && this.dataSubs.has(message.sub)) this.awaitingFrame.set(message.sub, message)
        else subscription.push(message)
        return
      }
      case 'error':
        this.onError(message)
        return
      case 'subscribed': {
        const options = this.subscribing.get(message.req)
        if (options !== undefined) this.register(message.sub, options)
        this.settle(message.req, message)
        return
      }
      default:
        this.settle(message.req, message)
    }
  }

  private onChunkParts (head: { stream: number, offset: number, length: number }, fragments: readonly Uint8Array[]): void {
    const stream = this.streams.get(head.stream)
    if (stream === undefined) return
    const parts = [fragments[0].subarray(CHUNK_HEAD_BYTES), ...fragments.slice(1)]
    try {
      stream.frame.addParts(head.offset, parts, head.length)
    } catch (err) {
      this.lastError = err as PixelportError
      this.socket.close(1002, 'PXP_ERR_PROTOCOL')
    }
  }

  private onFrame (message: FrameMessage): void {
    if (message.req !== undefined) {
      const pending = this.pending.get(message.req)
      if (pending === undefined) return
      let frame: FrameAssembler
      try {
        frame = new FrameAssembler(message, this.targets.get(message.req))
      } catch (err) {
        // The buffer given is too small: fail the get and stop its stream.
        this.pending.delete(message.req)
        pending.reject(err as PixelportError)
        this.send({ op: 'cancel', req: message.req })
        return
      }
      this.streams.set(message.stream, { frame, req: message.req })
    } else if (message.sub !== undefined) {
      if (!this.subscriptions.has(message.sub)) return
      this.streams.set(message.stream, { frame: new FrameAssembler(message), sub: message.sub })
    }
  }

  private onError (message: ErrorMessage): void {
    const err = errorFromBody(message)
    if (message.stream !== undefined) this.streams.delete(message.stream)
    if (message.req !== null && message.req !== undefined) {
      const pending = this.pending.get(message.req)
      if (pending !== undefined) {
        this.pending.delete(message.req)
        pending.reject(err)
      }
      return
    }
    if (message.sub !== undefined) {
      this.awaitingFrame.delete(message.sub)
      // A frame the server could not serve (snapshot budget, policy 'latest'): that event is skipped.
      // Anything else for a subscription ends the connection right after, and reaches it through onClose.
      return
    }
    this.lastError = err
  }

  private settle (req: RequestId, message: ServerMessage): void {
    const pending = this.pending.get(req)
    if (pending === undefined) return
    this.pending.delete(req)
    pending.resolve(message)
  }

  private onClose (code: number, reason: string): void {
    const known = /^PXP_ERR_[A-Z_]+$/.test(reason)
    const err = this.lastError ?? (known
      ? errorFromBody({ code: reason, message: `The server closed the connection (${code} ${reason})` })
      : pxpError('PXP_ERR_CLOSED', `connection (code ${code}${reason !== '' ? ' ' + reason : ''})`))
    this.closedWith = err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
    this.streams.clear()
    for (const s of this.subscriptions.values()) s.fail(err)
    this.subscriptions.clear()
    this.resolveClosed()
  }
}

function concat (parts: readonly Uint8Array[]): Uint8Array {
  let length = 0
  for (const p of parts) length += p.byteLength
  const out = new Uint8Array(length)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

/** The reply message for op `Op`; a get resolves with its assembled frame. */
type Reply<Op extends ServerMessage['op']> = Op extends 'end' ? { frame: RemoteFrame } : Extract<ServerMessage, { op: Op }>

export type { RemoteFrame, TypedArray }
