/**
 * One client that shares the server's memory, seen from the server, whatever carries its messages: answers
 * its requests through one op table (./ops.ts), relays store events to it while it watches, and when it
 * goes away (exit, crash, kill -9, closed port or socket) gives back every lease, pin, loan and lock
 * recorded in its claims.
 *
 * A transport (server/workers/connection.ts, server/attach/connection.ts) subclasses it with what is
 * really its own: how a message is sent, what a welcome carries, how strictly input is checked, and where
 * the claims live.
 */
import type { ChangeType, ImageDescriptor } from '../../protocol/descriptor.js'
import { isPixelportError, pxpError, type ErrorBody } from '../../protocol/errors.js'
import { LAYOUT_VERSION } from '../../protocol/layout.js'
import {
  SESSION_PROTOCOL_VERSION, type HelloRequest, type ServerToSession, type SessionOp, type SessionRequest, type SessionToServer,
} from '../../protocol/session-messages.js'
import type { ImageStore } from '../store/image-store.js'
import { recoverClaims } from '../store/recovery.js'
import type { ChangeWatcher, SessionHub } from './hub.js'
import { runOp } from './ops.js'

/** The `{ code, message }` a client gets for `err`: our own errors as they are, anything else as PXP_ERR_INTERNAL. */
export function errorBody (err: unknown): ErrorBody {
  return isPixelportError(err)
    ? { code: err.code, message: err.message }
    : { code: 'PXP_ERR_INTERNAL', message: String((err as Error)?.message ?? err) }
}

export abstract class Session implements ChangeWatcher {
  /** Requests answered so far (opening an image whose memory is mapped must not add to it). */
  requests = 0
  /** What this client holds (CLAIM_WORDS per slot); null until the transport has it (attach: at hello). */
  claims: Int32Array | null = null
  readonly store: ImageStore
  private greeted = false
  private closed = false
  private readonly served: ReadonlySet<string>

  constructor (
    readonly hub: SessionHub,
    /** This connection's write-lock token. */
    readonly token: number,
    /** The ops this transport serves; any other is PXP_ERR_UNKNOWN_OP. */
    ops: readonly SessionOp[],
  ) {
    this.store = hub.store
    this.served = new Set(ops)
  }

  get isClosed (): boolean { return this.closed }

  /** Forget the client and give back everything it held. Idempotent. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.hub.watch(this, false)
    this.disconnect()
    if (this.claims !== null) recoverClaims(this.store, this.claims, this.token)
    this.afterClose()
  }

  /** Relay the store's changes to this client from now on (`false`: stop). */
  watch (on: boolean): void {
    if (!this.closed) this.hub.watch(this, on)
  }

  event (type: ChangeType, descriptor: ImageDescriptor): void {
    this.send({ op: 'event', type, descriptor })
  }

  /** Describe `id`; an image this store lacks is first offered to the resolver (a cluster replica). */
  describe (id: string): ImageDescriptor | Promise<ImageDescriptor> {
    return this.whenLocal(id, () => this.store.describe(id))
  }

  /** `answer()` now, or once the resolver has tried to make `id` local. */
  whenLocal<T> (id: string, answer: () => T): T | Promise<T> {
    const pending = this.hub.whenLocal(id)
    return pending === null ? answer() : pending.then(answer)
  }

  /** The 'hello' op: versions first (the same for every transport), then the transport's welcome. */
  hello (msg: HelloRequest): unknown {
    if (this.greeted) throw pxpError('PXP_ERR_PROTOCOL', 'hello was already received')
    if (msg.protocol !== SESSION_PROTOCOL_VERSION || msg.layoutVersion !== LAYOUT_VERSION) {
      throw pxpError('PXP_ERR_PROTOCOL', `client speaks protocol ${msg.protocol}/layout ${msg.layoutVersion}, server ${SESSION_PROTOCOL_VERSION}/${LAYOUT_VERSION}`)
    }
    const welcome = this.welcome(msg)
    this.greeted = true
    return welcome
  }

  /** Whether 'hello' was answered. */
  protected get isGreeted (): boolean { return this.greeted }

  /** Post one message to the client (nothing once closed). */
  protected abstract send (msg: ServerToSession): void
  /** The transport's reply to a hello whose versions match (it may refuse with a PXP error). */
  protected abstract welcome (msg: HelloRequest): unknown
  /** Cut the transport; the client can send nothing more. */
  protected abstract disconnect (): void
  /** Last step of close(), after the claims were given back: release their memory, tell the owner. */
  protected abstract afterClose (): void

  /**
   * One message from the client, already checked by the transport. Replies go out in completion order,
   * each carrying its req; one that needs no waiting is answered before this returns.
   */
  protected receive (msg: SessionToServer): void {
    if (this.closed) return
    if (msg.op === 'released') {
      if (this.claims !== null && Number.isInteger(msg.slot)) this.store.reclaimSlot(msg.slot)
      return
    }
    const req = msg.req
    this.requests++
    let result: unknown
    try {
      if (!this.served.has(msg.op)) throw pxpError('PXP_ERR_UNKNOWN_OP', String((msg as { op?: unknown }).op))
      result = runOp(this, msg as SessionRequest)
    } catch (err) {
      this.send({ op: 'reply', req, error: errorBody(err) })
      return
    }
    if (result instanceof Promise) {
      result.then(
        (r: unknown) => this.send({ op: 'reply', req, result: r ?? null }),
        (err: unknown) => this.send({ op: 'reply', req, error: errorBody(err) }),
      )
    } else {
      this.send({ op: 'reply', req, result: result ?? null })
    }
  }
}
