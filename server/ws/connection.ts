/**
 * One WebSocket connection: decode and validate each message, run its op, answer with `req`.
 *
 * Nothing a client sends can crash the server or leak: content errors are answered with `error`,
 * framing errors close the connection with the registry's close code, and whatever the connection holds
 * (streams and their snapshots, subscriptions, uploads) is given back when it closes, however it closes.
 */
import type { WebSocket } from 'ws'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { ERRORS, isPixelportError, pxpError, type PixelportError } from '../../protocol/errors.js'
import {
  CHUNK_HEAD_BYTES, PROTOCOL_VERSION, type ClientMessage, type CreateMessage, type EventType, type GetMessage, type PutMessage,
  type RequestId, type ServerLimits, type ServerMessage, type SubscribeMessage, type UploadChunkMessage,
} from '../../protocol/messages.js'
import { assertImageAccess, evictableBy } from '../auth/image-access.js'
import { Principal } from '../auth/tokens.js'
import type { TokenConnections } from './token-connections.js'
import { describeRemote, notOwner } from '../cluster/remote-ops.js'
import type { ServerContext } from '../context.js'
import { clusterPage, localPage } from '../listing/pages.js'
import type { UploadRegistry } from '../uploads/registry.js'
import { openFrame } from './frames.js'
import { Outbound } from './outbound.js'
import { errorReply } from './replies.js'
import { sendFrame, StreamLane } from './streams.js'
import { Subscription, type SubscriptionHost } from './subscription.js'
import { startUpload, type Upload } from './uploads.js'
import type { MessageValidator } from './validate.js'

/** What every connection of one endpoint shares. */
export interface EndpointShared {
  readonly ctx: ServerContext
  readonly limits: ServerLimits
  readonly validator: MessageValidator
  /** The server's uploads in progress: the staging budget and clocks every transport shares. */
  readonly uploads: UploadRegistry
  /** Log unexpected failures (they are answered with PXP_ERR_INTERNAL). */
  readonly log: (err: unknown, what: string) => void
  /** Connections per token (maxConnectionsPerToken); a `hello` with a token claims a place. */
  readonly tokenConnections?: TokenConnections
}

/** How long a connection we are closing may take to answer the closing handshake before it is dropped. */
const CLOSE_GRACE_MS = 2000
/** Room left in a `list` reply for everything but its descriptors (req, next, cluster fields). */
const LIST_ENVELOPE_BYTES = 4096
/** Failed uploads whose late chunks are still recognised (older ones get PXP_ERR_BAD_REQUEST replies). */
const FAILED_UPLOADS_REMEMBERED = 64

export class Connection implements SubscriptionHost {
  readonly out: Outbound
  readonly lane = new StreamLane()
  private readonly subscriptions = new Map<number, Subscription>()
  private readonly uploads = new Map<RequestId, Upload>()
  /** Uploads that failed before their `end`: their remaining chunks are dropped quietly (bounded, FIFO). */
  private readonly failedUploads = new Set<RequestId>()
  /** Requests answered asynchronously (cluster list/describe, a put after its last byte) not yet answered. */
  private readonly pending = new Set<RequestId>()
  /** Messages `ws` had already read when reading paused: handled, in order, once it resumes. */
  private held: Array<[Buffer, boolean]> = []
  private nextSub = 1
  private closed = false
  private killTimer: NodeJS.Timeout | null = null
  /** Set while a client that presented no token at the upgrade has yet to send `hello { token }`. */
  private authTimer: NodeJS.Timeout | null = null

  /**
   * `principal`: who the upgrade request authenticated as (Principal.none without a token when tokens are
   * required; such a connection must send `hello { token }` first, within authTimeoutMs).
   */
  constructor (readonly socket: WebSocket, private readonly shared: EndpointShared, private principal: Principal = Principal.unrestricted) {
    const { limits } = shared
    if (principal === Principal.none) {
      const ms = shared.ctx.options.authTimeoutMs
      this.authTimer = setTimeout(() => this.fail(pxpError('PXP_ERR_UNAUTHORIZED')), ms).unref()
    }
    // Streams stop at highWaterMark; replies may go past it, reads stop well before memory is at risk.
    this.out = new Outbound(socket, limits.highWaterMark, 2 * limits.highWaterMark + limits.chunkSize)
    socket.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary))
    socket.once('close', () => this.cleanup())
    this.out.onResume(() => this.handleHeld())
  }

  get ctx (): ServerContext { return this.shared.ctx }
  get chunkSize (): number { return this.shared.limits.chunkSize }

  /** Number of subscriptions (for tests and stats). */
  get subscriptionCount (): number { return this.subscriptions.size }

  /** Deliver a store event to this connection's subscriptions. */
  offer (type: EventType, descriptor: ImageDescriptor): void {
    if (!this.principal.maySee(descriptor)) return
    for (const s of this.subscriptions.values()) s.offer(type, descriptor)
  }

  /** Deliver another node's image event to this connection's cluster-scope subscriptions. */
  offerRemote (type: EventType, descriptor: ImageDescriptor): void {
    if (!this.principal.maySee(descriptor)) return
    for (const s of this.subscriptions.values()) s.offer(type, descriptor, true)
  }

  /** End the connection because of `err`: tell the client why, close with its code, drop it if it won't answer. */
  fail (err: PixelportError, sub?: number, req: RequestId | null = null): void {
    if (this.closed) return
    this.out.send(errorReply(req, err, sub !== undefined ? { sub } : {}))
    this.shutdown(ERRORS[err.code].closeCode, err.code)
  }

  /**
   * The server is shutting down: every get and upload still in flight is answered with PXP_ERR_CLOSED
   * (a get already streaming with its stream number, §6.1), then the connection closes with 1001.
   */
  goingAway (): void {
    if (this.closed) return
    const err = pxpError('PXP_ERR_CLOSED', 'server')
    for (const { req, stream } of this.lane.inFlight()) this.send(errorReply(req, err, stream !== null ? { stream } : {}))
    for (const req of this.uploads.keys()) this.send(errorReply(req, err))
    this.shutdown(ERRORS.PXP_ERR_CLOSED.closeCode, 'PXP_ERR_CLOSED')
  }

  /** Close with `code` (reason: an error code or empty), terminating after a grace period. */
  shutdown (code: number, reason = ''): void {
    this.closed = true
    this.stopWork()
    this.out.close(code, reason)
    this.killTimer ??= setTimeout(() => this.out.terminate(), CLOSE_GRACE_MS).unref()
  }

  private onMessage (data: Buffer, isBinary: boolean): void {
    if (this.closed) return
    // Pausing stops reads from the socket, not the messages already read: hold those back too, or one
    // read full of small requests could still pile up their replies.
    if (this.out.readsPaused || this.held.length > 0) {
      this.held.push([data, isBinary])
      return
    }
    this.handle(data, isBinary)
  }

  private handleHeld (): void {
    while (this.held.length > 0 && !this.out.readsPaused && !this.closed) {
      const [data, isBinary] = this.held.shift()!
      this.handle(data, isBinary)
    }
  }

  private handle (data: Buffer, isBinary: boolean): void {
    const parsed = this.shared.validator.parse(data, isBinary)
    if (!parsed.ok) {
      // Before a valid hello with its token, nothing but that is accepted, and nothing else is explained:
      // any other first message (garbage, unknown op, malformed hello) ends the connection at once.
      if (this.authTimer !== null) this.fail(pxpError('PXP_ERR_UNAUTHORIZED'), undefined, parsed.req)
      else if (parsed.fatal) this.fail(parsed.error, undefined, parsed.req)
      else this.send(errorReply(parsed.req, parsed.error))
      return
    }
    const msg = parsed.message
    try {
      this.dispatch(msg)
    } catch (err) {
      this.replyError(msg.req, err)
    }
  }

  private dispatch (msg: ClientMessage): void {
    const { store } = this.ctx
    const principal = this.principal
    if (this.authTimer !== null && msg.op !== 'hello') {
      this.fail(pxpError('PXP_ERR_UNAUTHORIZED'), undefined, msg.req)
      return
    }
    // A new request may not take the id of one still in flight (its replies could not be told apart);
    // chunk, end and cancel name the request they belong to on purpose.
    if (msg.op !== 'chunk' && msg.op !== 'end' && msg.op !== 'cancel' && this.inFlight(msg.req)) {
      throw pxpError('PXP_ERR_BAD_REQUEST', `req ${JSON.stringify(msg.req)} is already in flight`)
    }
    switch (msg.op) {
      case 'hello':
        if (!this.authenticate(msg.token)) {
          this.fail(pxpError('PXP_ERR_UNAUTHORIZED'), undefined, msg.req)
          return
        }
        if (msg.protocol !== PROTOCOL_VERSION) {
          this.fail(pxpError('PXP_ERR_PROTOCOL', `protocol version ${msg.protocol} is not supported; this server speaks ${PROTOCOL_VERSION}`), undefined, msg.req)
          return
        }
        if (msg.fragmentSize !== undefined) this.out.fragmentSize = Math.min(msg.fragmentSize, this.chunkSize + CHUNK_HEAD_BYTES)
        this.send({ op: 'welcome', req: msg.req, protocol: PROTOCOL_VERSION, server: 'pixelport', limits: this.shared.limits, fragmentSize: this.out.fragmentSize })
        return
      case 'list': {
        principal.assert('read')
        const page = { limit: msg.limit, cursor: msg.cursor }
        // A page stays within about one chunk's size, so no reply is larger than the largest chunk message.
        const budget = Math.max(0, this.chunkSize - LIST_ENVELOPE_BYTES)
        if (msg.scope === 'cluster' && this.ctx.cluster != null) {
          this.track(msg.req, this.ctx.cluster.list().then((l) => this.send({ op: 'images', req: msg.req, ...l, ...clusterPage(l.images, principal, page, budget) })))
          return
        }
        this.send({ op: 'images', req: msg.req, ...localPage(store, principal, page, budget) })
        return
      }
      case 'describe':
        assertImageAccess(principal, 'read', msg.id, store)
        if (this.ctx.cluster != null && !store.has(msg.id)) {
          // Another node's view: the scope on its base is checked from the owner's descriptor.
          this.track(msg.req, describeRemote(this.ctx.cluster, msg.id).then((d) => {
            if (!principal.maySee(d)) throw pxpError('PXP_ERR_FORBIDDEN', `${msg.id} is a view of an image outside this token's ids`)
            this.send({ op: 'descriptor', req: msg.req, descriptor: d })
          }))
          return
        }
        this.send({ op: 'descriptor', req: msg.req, descriptor: store.describe(msg.id) })
        return
      case 'create':
        principal.assertMayCreate(msg.id)
        this.send({ op: 'descriptor', req: msg.req, descriptor: store.create(createRequest(msg), undefined, evictableBy(principal)) })
        return
      case 'delete':
        principal.assert('write', msg.id)
        store.delete(msg.id)
        this.send({ op: 'deleted', req: msg.req, id: msg.id })
        return
      case 'get':
        assertImageAccess(principal, 'read', msg.id, store)
        throwIf(notOwner(this.ctx.cluster, (id) => store.has(id), msg.id, 'WebSocket get streams local images only; GET /images/{id}/data on any node streams it from the owner'))
        this.get(msg)
        return
      case 'put':
        principal.assertMayCreate(msg.id)
        // Overwriting a view writes its base's pixels.
        if (msg.id !== undefined) assertImageAccess(principal, 'write', msg.id, store)
        {
          const refused = notOwner(this.ctx.cluster, (id) => store.has(id), msg.id, 'write to the owner, or PUT /images/{id}/data on any node (forwarded)')
          if (refused !== null) {
            // Refused like any other put header: the chunks that follow are dropped quietly.
            if (msg.data === undefined) this.rememberFailed(msg.req)
            throw refused
          }
        }
        this.put(msg)
        return
      case 'chunk':
        this.chunk(msg)
        return
      case 'end':
        this.end(msg.req)
        return
      case 'subscribe':
        principal.assert('read')
        for (const id of msg.ids ?? []) assertImageAccess(principal, 'read', id, store)
        this.subscribe(msg)
        return
      case 'unsubscribe': {
        const s = this.subscriptions.get(msg.sub)
        if (s === undefined) throw pxpError('PXP_ERR_BAD_REQUEST', `no subscription ${msg.sub} on this connection`)
        s.close()
        this.subscriptions.delete(msg.sub)
        this.ctx.metrics?.addSubscriptions(-1)
        this.send({ op: 'unsubscribed', req: msg.req, sub: msg.sub })
        return
      }
      case 'cancel':
        this.cancel(msg.req)
    }
  }

  /**
   * Apply a `hello`'s token. True when the connection may go on: the token is valid, or none was needed.
   * A token that fails is never ignored, even where none was required.
   */
  private authenticate (token: string | undefined): boolean {
    const registry = this.ctx.options.tokens
    if (token !== undefined && registry.enabled) {
      const principal = registry.authenticate(token)
      if (principal === null) return false
      const full = this.shared.tokenConnections?.claim(this, principal) ?? null
      if (full !== null) {
        // Closed with 4429 and this error; the caller's own refusal then finds the connection closed.
        this.fail(full)
        return false
      }
      this.principal = principal
    } else if (this.authTimer !== null) {
      return false
    }
    if (this.authTimer !== null) clearTimeout(this.authTimer)
    this.authTimer = null
    return true
  }

  // ---- get ----------------------------------------------------------------------------------------

  private get (msg: GetMessage): void {
    const { limits } = this.shared
    if (this.lane.has(msg.req) || this.uploads.has(msg.req)) throw pxpError('PXP_ERR_BAD_REQUEST', `req ${JSON.stringify(msg.req)} is already in flight`)
    if (this.lane.gets >= limits.maxStreams) throw pxpError('PXP_ERR_TOO_MANY_STREAMS', limits.maxStreams)
    // Fail fast on an unknown image rather than after the gets queued before it.
    this.ctx.store.describe(msg.id)
    this.lane.enqueue(msg.req, async (stream, abort) => {
      const source = await openFrame(this.ctx, msg.id, msg.generation, msg.region)
      if (abort.reason !== null || !this.out.open) {
        source.release()
        throw abort.reason ?? pxpError('PXP_ERR_CLOSED', 'connection')
      }
      // sendFrame reports its own failures (with the stream number) and releases the source.
      await sendFrame(this.out, stream, { req: msg.req }, source, this.chunkSize, abort, this.ctx.metrics)
    }).catch((err: unknown) => this.replyError(msg.req, err))
  }

  private cancel (req: RequestId): void {
    const reason = pxpError('PXP_ERR_ABORTED', `request ${JSON.stringify(req)} was cancelled`)
    if (this.lane.cancel(req, reason)) return
    const upload = this.uploads.get(req)
    if (upload !== undefined) {
      this.failUpload(req, upload)
      this.send(errorReply(req, reason))
    }
    // Nothing in flight under this id: it finished before the cancel arrived. Nothing to say.
  }

  // ---- put ----------------------------------------------------------------------------------------

  private put (msg: PutMessage): void {
    const { limits } = this.shared
    if (this.uploads.has(msg.req) || this.lane.has(msg.req)) throw pxpError('PXP_ERR_BAD_REQUEST', `req ${JSON.stringify(msg.req)} is already in flight`)
    const chunked = msg.data === undefined
    let upload: Upload
    try {
      if (chunked && this.uploads.size >= limits.maxUploads) throw pxpError('PXP_ERR_TOO_MANY_UPLOADS', limits.maxUploads)
      upload = startUpload(this.ctx, msg, this.shared.uploads, this.clientAddress, evictableBy(this.principal))
    } catch (err) {
      // The chunks that follow a refused header are dropped quietly instead of each being answered.
      if (chunked) this.rememberFailed(msg.req)
      throw err
    }
    if (chunked) {
      this.uploads.set(msg.req, upload)
      // Chunks stopped coming (idle timeout, deadline) or the server is shutting down: the client hears
      // why once, the upload gives back what it held, and its late chunks are dropped.
      upload.signal?.addEventListener('abort', () => {
        if (this.uploads.get(msg.req) !== upload) return
        this.failUpload(msg.req, upload)
        this.send(errorReply(msg.req, upload.signal!.reason))
      }, { once: true })
      return
    }
    try {
      if (upload.received < upload.byteLength) upload.write(0, msg.data!)
    } catch (err) {
      upload.abort()
      throw err
    }
    this.finishUpload(msg.req, upload)
  }

  private chunk (msg: UploadChunkMessage): void {
    const upload = this.uploads.get(msg.req)
    if (upload === undefined) {
      // An upload that already failed: its error was sent, its remaining chunks are dropped.
      if (this.failedUploads.has(msg.req)) return
      throw pxpError('PXP_ERR_BAD_REQUEST', `chunk for ${JSON.stringify(msg.req)}, which is no upload in progress`)
    }
    try {
      upload.write(msg.offset, msg.data)
    } catch (err) {
      this.failUpload(msg.req, upload)
      throw err
    }
  }

  private end (req: RequestId): void {
    const upload = this.uploads.get(req)
    if (upload === undefined) {
      if (this.failedUploads.delete(req)) return
      throw pxpError('PXP_ERR_BAD_REQUEST', `end for ${JSON.stringify(req)}, which is no upload in progress`)
    }
    this.uploads.delete(req)
    this.finishUpload(req, upload)
  }

  private failUpload (req: RequestId, upload: Upload): void {
    upload.abort()
    this.uploads.delete(req)
    this.rememberFailed(req)
  }

  private rememberFailed (req: RequestId): void {
    this.failedUploads.add(req)
    if (this.failedUploads.size > FAILED_UPLOADS_REMEMBERED) {
      this.failedUploads.delete(this.failedUploads.values().next().value as RequestId)
    }
  }

  private finishUpload (req: RequestId, upload: Upload): void {
    this.pending.add(req)
    upload.finish().then(
      (descriptor) => {
        this.pending.delete(req)
        this.ctx.metrics?.addBytesReceived('ws', upload.byteLength)
        this.send({ op: 'descriptor', req, descriptor })
      },
      (err: unknown) => {
        this.pending.delete(req)
        upload.abort()
        this.replyError(req, err)
      },
    )
  }

  /** The client's address, for the log lines about its uploads. */
  private get clientAddress (): string {
    return (this.socket as unknown as { _socket?: { remoteAddress?: string } })._socket?.remoteAddress ?? 'unknown'
  }

  // ---- subscriptions ------------------------------------------------------------------------------

  private subscribe (msg: SubscribeMessage): void {
    const { limits } = this.shared
    const queue = msg.queue ?? limits.defaultQueue
    if (queue > limits.maxQueue) throw pxpError('PXP_ERR_VALIDATION', `subscribe: queue ${queue} exceeds this server's maxQueue of ${limits.maxQueue}`)
    if (this.subscriptions.size >= limits.maxSubscriptions) throw pxpError('PXP_ERR_TOO_MANY_SUBSCRIPTIONS', limits.maxSubscriptions)
    const sub = this.nextSub++
    this.subscriptions.set(sub, new Subscription(sub, this, {
      ids: msg.ids === undefined ? null : new Set(msg.ids),
      policy: msg.policy ?? 'latest',
      data: msg.data ?? false,
      queue,
      scope: msg.scope ?? 'local',
    }))
    this.ctx.metrics?.addSubscriptions(1)
    this.send({ op: 'subscribed', req: msg.req, sub })
  }

  // ---- plumbing -----------------------------------------------------------------------------------

  private send (message: ServerMessage): void {
    this.out.send(message)
  }

  /** True while a request with this id is unanswered: a get, an upload, or an asynchronous reply. */
  private inFlight (req: RequestId): boolean {
    return this.pending.has(req) || this.uploads.has(req) || this.lane.has(req)
  }

  /** Keep `req` in flight until `work` settles; a failure is answered as that request's error. */
  private track (req: RequestId, work: Promise<void>): void {
    this.pending.add(req)
    work.catch((err: unknown) => this.replyError(req, err)).finally(() => this.pending.delete(req))
  }

  private replyError (req: RequestId | null, err: unknown): void {
    if (!isPixelportError(err)) this.shared.log(err, 'WebSocket request failed')
    this.send(errorReply(req, err))
  }

  /** Stop everything that could still send or hold memory. */
  private stopWork (): void {
    this.lane.close()
    for (const s of this.subscriptions.values()) s.close()
    if (this.subscriptions.size > 0) this.ctx.metrics?.addSubscriptions(-this.subscriptions.size)
    this.subscriptions.clear()
    for (const u of this.uploads.values()) u.abort()
    this.uploads.clear()
    this.failedUploads.clear()
    this.held = []
  }

  private cleanup (): void {
    this.closed = true
    if (this.killTimer !== null) clearTimeout(this.killTimer)
    if (this.authTimer !== null) clearTimeout(this.authTimer)
    this.stopWork()
  }
}

function throwIf (err: PixelportError | null): void {
  if (err !== null) throw err
}

function createRequest (msg: CreateMessage): import('../../protocol/spec.js').CreateRequest {
  const { op: _op, req: _req, ...fields } = msg
  return fields
}
