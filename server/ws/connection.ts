/**
 * One WebSocket connection: read each message (pausing reads while the client is slow to read replies),
 * validate it, hand it to its op (ops.ts), and answer with `req`.
 *
 * Nothing a client sends can crash the server or leak: content errors are answered with `error`,
 * framing errors close the connection with the registry's close code, and whatever the connection holds
 * (streams and their snapshots, subscriptions, uploads) is given back when it closes, however it closes.
 * Who the client is lives in session.ts; its uploads in upload-requests.ts.
 */
import type { WebSocket } from 'ws'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { ERRORS, isPixelportError, pxpError, type PixelportError } from '../../protocol/errors.js'
import type { ClientMessage, EventType } from '../../protocol/wire/client-messages.js'
import type { RequestId } from '../../protocol/wire/fields.js'
import type { ServerLimits, ServerMessage } from '../../protocol/wire/server-messages.js'
import { Principal } from '../auth/tokens.js'
import type { ServerContext } from '../context.js'
import type { UploadRegistry } from '../uploads/registry.js'
import { runOp } from './ops.js'
import { Outbound } from './outbound.js'
import { errorReply } from './replies.js'
import { Session } from './session.js'
import { StreamLane } from './streams.js'
import type { Subscription, SubscriptionHost } from './subscription.js'
import type { TokenConnections } from './token-connections.js'
import { UploadRequests } from './upload-requests.js'
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

export class Connection implements SubscriptionHost {
  readonly out: Outbound
  readonly lane = new StreamLane()
  readonly session: Session
  readonly uploads: UploadRequests
  readonly subscriptions = new Map<number, Subscription>()
  /** Requests answered asynchronously (cluster list/describe, a put after its last byte) not yet answered. */
  private readonly pending = new Set<RequestId>()
  /** Messages `ws` had already read when reading paused: handled, in order, once it resumes. */
  private held: Array<[Buffer, boolean]> = []
  private nextSub = 1
  private closed = false
  private killTimer: NodeJS.Timeout | null = null

  /**
   * `principal`: who the upgrade request authenticated as (Principal.none without a token when tokens are
   * required; such a connection must send `hello { token }` first, within authTimeoutMs).
   */
  constructor (readonly socket: WebSocket, private readonly shared: EndpointShared, principal: Principal = Principal.unrestricted) {
    const { limits } = shared
    this.session = new Session(principal, shared.ctx.options.authTimeoutMs, () => this.fail(pxpError('PXP_ERR_UNAUTHORIZED')))
    this.uploads = new UploadRequests(this)
    // Streams stop at highWaterMark; replies may go past it, reads stop well before memory is at risk.
    this.out = new Outbound(socket, limits.highWaterMark, 2 * limits.highWaterMark + limits.chunkSize)
    socket.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary))
    socket.once('close', () => this.cleanup())
    this.out.onResume(() => this.handleHeld())
  }

  get ctx (): ServerContext { return this.shared.ctx }
  get limits (): ServerLimits { return this.shared.limits }
  get chunkSize (): number { return this.shared.limits.chunkSize }
  get principal (): Principal { return this.session.principal }
  get registry (): UploadRegistry { return this.shared.uploads }
  get tokenConnections (): TokenConnections | undefined { return this.shared.tokenConnections }

  /** The client's address, for the log lines about its uploads. */
  get clientAddress (): string {
    return (this.socket as unknown as { _socket?: { remoteAddress?: string } })._socket?.remoteAddress ?? 'unknown'
  }

  /** Number of subscriptions (for tests and stats). */
  get subscriptionCount (): number { return this.subscriptions.size }

  /** The number of this connection's next subscription. */
  nextSubscription (): number { return this.nextSub++ }

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
    for (const req of this.uploads.requests()) this.send(errorReply(req, err))
    this.shutdown(ERRORS.PXP_ERR_CLOSED.closeCode, 'PXP_ERR_CLOSED')
  }

  /** Close with `code` (reason: an error code or empty), terminating after a grace period. */
  shutdown (code: number, reason = ''): void {
    this.closed = true
    this.stopWork()
    this.out.close(code, reason)
    this.killTimer ??= setTimeout(() => this.out.terminate(), CLOSE_GRACE_MS).unref()
  }

  send (message: ServerMessage): void {
    this.out.send(message)
  }

  /** Keep `req` in flight until `work` settles; a failure is answered as that request's error. */
  track (req: RequestId, work: Promise<void>): void {
    this.pending.add(req)
    work.catch((err: unknown) => this.replyError(req, err)).finally(() => this.pending.delete(req))
  }

  replyError (req: RequestId | null, err: unknown): void {
    if (!isPixelportError(err)) this.shared.log(err, 'WebSocket request failed')
    this.send(errorReply(req, err))
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
      if (!this.session.authenticated) this.fail(pxpError('PXP_ERR_UNAUTHORIZED'), undefined, parsed.req)
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
    if (!this.session.authenticated && msg.op !== 'hello') {
      this.fail(pxpError('PXP_ERR_UNAUTHORIZED'), undefined, msg.req)
      return
    }
    // A new request may not take the id of one still in flight (its replies could not be told apart);
    // chunk, end and cancel name the request they belong to on purpose.
    if (msg.op !== 'chunk' && msg.op !== 'end' && msg.op !== 'cancel' && this.inFlight(msg.req)) {
      throw pxpError('PXP_ERR_BAD_REQUEST', `req ${JSON.stringify(msg.req)} is already in flight`)
    }
    runOp(this, msg)
  }

  /** True while a request with this id is unanswered: a get, an upload, or an asynchronous reply. */
  private inFlight (req: RequestId): boolean {
    return this.pending.has(req) || this.uploads.has(req) || this.lane.has(req)
  }

  /** Stop everything that could still send or hold memory. */
  private stopWork (): void {
    this.lane.close()
    for (const s of this.subscriptions.values()) s.close()
    if (this.subscriptions.size > 0) this.ctx.metrics?.addSubscriptions(-this.subscriptions.size)
    this.subscriptions.clear()
    this.uploads.abortAll()
    this.held = []
  }

  private cleanup (): void {
    this.closed = true
    if (this.killTimer !== null) clearTimeout(this.killTimer)
    this.session.dispose()
    this.stopWork()
  }
}
