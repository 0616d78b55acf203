/**
 * One worker-thread client, seen from the server: answers its requests, relays store events to it, and
 * when it goes away (exit, crash, closed port) gives back every lease, pin, loan and lock it held.
 */
import type { MessagePort } from 'node:worker_threads'
import { isPixelportError, pxpError, type ErrorBody } from '../../protocol/errors.js'
import { CLAIM_WORDS, LAYOUT_VERSION } from '../../protocol/layout.js'
import {
  WORKER_PROTOCOL_VERSION, type ServerToWorker, type Welcome, type WorkerRequest, type WorkerToServer,
} from '../../protocol/worker-messages.js'
import type { ChangeType, ImageDescriptor } from '../../protocol/descriptor.js'
import type { ImageStore } from '../store/image-store.js'
import { recoverClaims } from '../store/recovery.js'

/**
 * Make `id` local if it can be (e.g. pull a replica of another node's image); resolves to whether it now
 * is. Consulted when a worker asks for an image this store does not hold.
 */
export type MissingImageResolver = (id: string) => Promise<boolean>

export class WorkerConnection {
  readonly claims: Int32Array
  /** Requests answered so far (opening an image whose block is mapped must not add to it). */
  requests = 0
  private closed = false

  constructor (
    private readonly store: ImageStore,
    private readonly port: MessagePort,
    readonly token: number,
    private readonly onClose: (conn: WorkerConnection) => void,
    private readonly resolveMissing: () => MissingImageResolver | null = () => null,
  ) {
    const maxSlots = store.table.maxSlots
    this.claims = new Int32Array(new SharedArrayBuffer(maxSlots * CLAIM_WORDS * 4))
    port.on('message', (msg: WorkerToServer) => this.onMessage(msg))
    // 'close' fires when the other side closes its port or its thread exits, cleanly or not.
    port.on('close', () => this.close())
    port.start()
  }

  get isClosed (): boolean { return this.closed }

  send (msg: ServerToWorker): void {
    if (!this.closed) this.port.postMessage(msg)
  }

  event (type: ChangeType, descriptor: ImageDescriptor): void {
    this.send({ op: 'event', type, descriptor })
  }

  /** Forget the worker and give back everything it held. Idempotent. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.port.removeAllListeners()
    this.port.close()
    this.recover()
    this.onClose(this)
  }

  private onMessage (msg: WorkerToServer): void {
    if (this.closed || typeof msg !== 'object' || msg === null) return
    if (msg.op === 'released') {
      this.store.reclaimSlot(msg.slot)
      return
    }
    const req = (msg as WorkerRequest).req
    this.requests++
    try {
      const result = this.handle(msg)
      // Only a describe of an image that must be fetched first is answered later.
      if (result instanceof Promise) result.then((r) => this.send({ op: 'reply', req, result: r }), (err) => this.replyError(req, err))
      else this.send({ op: 'reply', req, result })
    } catch (err) {
      this.replyError(req, err)
    }
  }

  private replyError (req: number, err: unknown): void {
    const error: ErrorBody = isPixelportError(err)
      ? { code: err.code, message: err.message }
      : { code: 'PXP_ERR_INTERNAL', message: String((err as Error)?.message ?? err) }
    this.send({ op: 'reply', req, error })
  }

  /** Describe `id`; an image this store lacks is first offered to the resolver (a cluster replica). */
  private describe (id: string): ImageDescriptor | Promise<ImageDescriptor> {
    const resolve = this.resolveMissing()
    if (resolve === null || this.store.has(id)) return this.store.describe(id)
    return resolve(id).then(() => this.store.describe(id))
  }

  private handle (msg: WorkerRequest): unknown {
    const store = this.store
    switch (msg.op) {
      case 'hello': {
        if (msg.protocol !== WORKER_PROTOCOL_VERSION || msg.layoutVersion !== LAYOUT_VERSION) {
          throw pxpError('PXP_ERR_PROTOCOL', `worker speaks protocol ${msg.protocol}/layout ${msg.layoutVersion}, server ${WORKER_PROTOCOL_VERSION}/${LAYOUT_VERSION}`)
        }
        const welcome: Welcome = {
          protocol: WORKER_PROTOCOL_VERSION,
          layoutVersion: LAYOUT_VERSION,
          token: this.token,
          table: store.table.buffer,
          claims: this.claims.buffer as SharedArrayBuffer,
          maxSlots: store.table.maxSlots,
          lockTimeoutMs: store.lockTimeoutMs,
        }
        return welcome
      }
      case 'block': {
        const buffer = store.blockBuffer(msg.block)
        if (buffer === undefined) throw pxpError('PXP_ERR_NOT_FOUND', `block ${msg.block}`)
        return buffer
      }
      case 'describe':
        return this.describe(msg.id)
      case 'list':
        return store.list()
      case 'create':
        return store.create(msg.request)
      case 'view':
        return store.createView(msg.id, msg.view)
      case 'delete':
        store.delete(msg.id)
        return null
      default:
        throw pxpError('PXP_ERR_UNKNOWN_OP', String((msg as { op?: unknown }).op))
    }
  }

  /** Give back the leases, pins, loans and write locks this worker held when it went away. */
  private recover (): void {
    recoverClaims(this.store, this.claims, this.token)
  }
}
