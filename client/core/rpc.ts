/**
 * Request/reply with the server over one transport: a worker thread's MessagePort (client/worker/
 * port-transport.ts) or an attached process's Unix socket (client/attach/socket-transport.ts).
 *
 * Requests carry a number (`req`) the reply repeats; `event` messages (store changes) go to `onEvent`. The
 * connection keeps its thread or process alive only while something waits on it (a request in flight, a
 * change listener, a waiter: hold()/letGo()), so a client that is done can exit. When the connection ends,
 * for whatever reason, every pending request fails with the reason, the holds are dropped (nothing is left
 * keeping the thread alive for a connection that is gone) and `onClose` runs once.
 */
import type { ServerToAttach } from '../../protocol/attach-messages.js'
import type { ChangeType, ImageDescriptor } from '../../protocol/descriptor.js'
import { errorFromBody, pxpError } from '../../protocol/errors.js'
import type { ServerToWorker } from '../../protocol/worker-messages.js'

/** How messages reach the server and come back. */
export interface Transport {
  /** Send one message. */
  send (message: unknown): void
  /** Let the connection keep this thread or process alive (ref), or not (unref). */
  ref (): void
  unref (): void
  /** End the connection from this side. */
  end (): void
  /**
   * Start delivering: `onMessage` for each message from the server; `onEnd` once, with the reason, when the
   * connection is gone (closed by either side, or unreadable).
   */
  start (onMessage: (message: unknown) => void, onEnd: (reason: Error) => void): void
}

/** What the server sends a client: replies by `req`, and events. */
export type ServerMessage = ServerToWorker | ServerToAttach

type Pending = { resolve: (v: unknown) => void, reject: (e: Error) => void }
/** A request as the caller writes it: without `req`, which the Rpc assigns. */
export type RequestBody<Request> = Request extends unknown ? Omit<Request, 'req'> : never

const closedError = (): Error => pxpError('PXP_ERR_CLOSED', 'connection to the server')

export class Rpc<Request extends { req: number }, Notice> {
  private nextReq = 1
  private readonly pending = new Map<number, Pending>()
  private holds = 0
  private closed = false
  /** Called for every 'event' message. */
  onEvent: (type: ChangeType, descriptor: ImageDescriptor) => void = () => {}
  /** Called once when the connection ends: `byUs` when close() ended it, else the server or the socket did. */
  onClose: (byUs: boolean) => void = () => {}
  private closing = false

  constructor (private readonly transport: Transport) {
    transport.unref()
    transport.start((message) => this.onMessage(message as ServerMessage), (reason) => this.fail(reason))
  }

  get isClosed (): boolean { return this.closed }

  /** Send a request; resolves to the reply's result, or rejects with its error (PXP_ERR_CLOSED when the connection ends first). */
  request<T> (msg: RequestBody<Request>): Promise<T> {
    if (this.closed) return Promise.reject(closedError())
    const req = this.nextReq++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(req, { resolve: resolve as (v: unknown) => void, reject })
      this.hold()
      this.transport.send({ ...msg, req })
    })
  }

  /** Send a message that has no reply. */
  notify (msg: Notice): void {
    if (!this.closed) this.transport.send(msg)
  }

  /** Keep the thread or process alive (something waits on the server or on shared memory). Pair with letGo(). */
  hold (): void {
    if (this.closed) return
    if (this.holds++ === 0) this.transport.ref()
  }

  letGo (): void {
    if (this.closed) return
    if (--this.holds === 0) this.transport.unref()
  }

  /** End the connection: pending requests fail with PXP_ERR_CLOSED. Idempotent. */
  close (): void {
    if (this.closed) return
    this.closing = true
    this.fail(closedError())
    this.transport.end()
  }

  private onMessage (msg: ServerMessage): void {
    if (msg.op === 'event') {
      this.onEvent(msg.type, msg.descriptor)
      return
    }
    // Unknown numbers (req 0: the server is dropping us for a protocol error) fail with the close that follows.
    const p = this.pending.get(msg.req)
    if (p === undefined) return
    this.pending.delete(msg.req)
    this.letGo()
    if ('error' in msg) p.reject(errorFromBody(msg.error))
    else p.resolve(msg.result)
  }

  private fail (reason: Error): void {
    if (this.closed) return
    this.closed = true
    for (const p of this.pending.values()) p.reject(reason)
    this.pending.clear()
    if (this.holds > 0) {
      this.holds = 0
      this.transport.unref()
    }
    this.onClose(this.closing)
  }
}
