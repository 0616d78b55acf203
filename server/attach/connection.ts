/**
 * One process attached over the attach socket, seen from the server: answers its requests, takes leases,
 * locks and loans on its behalf when it asks (clients without atomics), relays store events when it
 * watches, and when the socket closes — exit, crash, kill -9: the kernel closes it either way — gives back
 * everything recorded in its claims.
 */
import type { Socket } from 'node:net'
import {
  ATTACH_PROTOCOL_VERSION, type AttachOpened, type AttachRequest, type AttachToServer, type AttachWelcome, encodeLine,
  LineDecoder, type ServerToAttach,
} from '../../protocol/attach-messages.js'
import type { ImageDescriptor } from '../../protocol/descriptor.js'
import { isPixelportError, pxpError, type ErrorBody } from '../../protocol/errors.js'
import { CLAIM, CLAIM_WORDS, claimBase, HEADER, LAYOUT_VERSION, MAX_FRAMES, SLOT, SLOT_FLAG, slotBase } from '../../protocol/layout.js'
import { controlSlotOf } from '../../protocol/slot-reader.js'
import {
  beginWrite, cancelLoan, endWrite, generationOf, loanFrame, lockAsync, lockHolder, publishFrame, unlock,
} from '../../protocol/sync.js'
import type { BlockMemory } from '../memory/block-provider.js'
import type { ShmBlockProvider } from '../memory/shm-provider.js'
import type { ImageStore } from '../store/image-store.js'
import { recoverClaims } from '../store/recovery.js'

/** Bytes a connection may have queued unread before it is dropped as too slow (events are the only bulk). */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024

export class AttachConnection {
  /** Requests answered so far. */
  requests = 0
  private claims: Int32Array | null = null
  private claimsMemory: BlockMemory | null = null
  private readonly decoder: LineDecoder
  /** Stops relaying the store's changes; null while not watching. */
  private stopWatching: (() => void) | null = null
  private closed = false

  constructor (
    private readonly store: ImageStore,
    private readonly provider: ShmBlockProvider,
    private readonly socket: Socket,
    /** Attachment number: names the claims segment. */
    readonly index: number,
    readonly token: number,
    private readonly onClose: (conn: AttachConnection) => void,
  ) {
    this.decoder = new LineDecoder((msg) => this.onMessage(msg as AttachToServer))
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      try {
        this.decoder.push(chunk)
      } catch (err) {
        this.fail(`unreadable message: ${(err as Error).message}`)
      }
    })
    // 'close' follows an end, an error or a reset alike: the process is gone or has let go.
    socket.on('close', () => this.close())
    socket.on('error', () => {})
  }

  get isClosed (): boolean { return this.closed }

  /** Forget the process and give back everything it held. Idempotent. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.watch(false)
    this.socket.destroy()
    if (this.claims !== null) recoverClaims(this.store, this.claims, this.token)
    if (this.claimsMemory !== null) this.provider.release(this.claimsMemory)
    this.onClose(this)
  }

  private send (msg: ServerToAttach): void {
    if (this.closed) return
    // A client that does not read its socket must not make the server buffer without bound.
    if (this.socket.writableLength > MAX_QUEUED_BYTES) {
      this.fail('the client does not read its socket')
      return
    }
    this.socket.write(encodeLine(msg))
  }

  /** A protocol violation: say why (best effort) and drop the connection. */
  private fail (why: string): void {
    if (this.closed) return
    this.socket.end(encodeLine({ op: 'reply', req: 0, error: { code: 'PXP_ERR_PROTOCOL', message: pxpError('PXP_ERR_PROTOCOL', why).message } }))
    this.close()
  }

  private onMessage (msg: AttachToServer): void {
    if (this.closed) return
    if (typeof msg !== 'object' || msg === null || typeof msg.op !== 'string') {
      this.fail('every message is a JSON object with an "op"')
      return
    }
    if (msg.op === 'released') {
      if (this.claims !== null && Number.isInteger(msg.slot)) this.store.reclaimSlot(msg.slot)
      return
    }
    const req = msg.req
    if (!Number.isSafeInteger(req)) {
      this.fail('every request carries an integer "req"')
      return
    }
    if (this.claims === null && msg.op !== 'hello') {
      this.fail('the first message must be "hello"')
      return
    }
    this.requests++
    // Replies go out in completion order; each carries its req.
    this.handle(msg).then(
      (result) => this.send({ op: 'reply', req, result: result ?? null }),
      (err: unknown) => {
        const error: ErrorBody = isPixelportError(err)
          ? { code: err.code, message: err.message }
          : { code: 'PXP_ERR_INTERNAL', message: String((err as Error)?.message ?? err) }
        this.send({ op: 'reply', req, error })
      },
    )
  }

  private async handle (msg: AttachRequest): Promise<unknown> {
    const store = this.store
    switch (msg.op) {
      case 'hello':
        return this.hello(msg)
      case 'describe':
        return store.describe(msg.id)
      case 'list':
        return store.list()
      case 'create':
        return store.create(msg.request)
      case 'view':
        return store.createView(msg.id, msg.view)
      case 'delete':
        store.delete(msg.id)
        return null
      case 'watch':
        this.watch(msg.on === true)
        return null
      case 'open':
        return this.open(msg.id)
      case 'close':
        this.closeHandle(this.leased(msg.slot))
        return null
      case 'begin':
        return await this.begin(this.leased(msg.slot), msg.timeoutMs)
      case 'commit':
        return this.commit(this.leased(msg.slot))
      case 'loan':
        return await this.loan(this.leased(msg.slot), msg.timeoutMs)
      case 'publish':
        return await this.publish(this.leased(msg.slot), msg.frame, msg.timeoutMs)
      case 'cancel':
        this.cancel(this.leased(msg.slot), msg.frame)
        return null
      default:
        throw pxpError('PXP_ERR_UNKNOWN_OP', String((msg as { op?: unknown }).op))
    }
  }

  private hello (msg: Extract<AttachRequest, { op: 'hello' }>): AttachWelcome {
    if (this.claims !== null) throw pxpError('PXP_ERR_PROTOCOL', 'hello was already received')
    if (msg.protocol !== ATTACH_PROTOCOL_VERSION || msg.layoutVersion !== LAYOUT_VERSION) {
      throw pxpError('PXP_ERR_PROTOCOL', `client speaks protocol ${msg.protocol}/layout ${msg.layoutVersion}, server ${ATTACH_PROTOCOL_VERSION}/${LAYOUT_VERSION}`)
    }
    const words = this.store.table.words
    const key = Array.isArray(msg.key) ? msg.key : []
    // The key is in the table, whose file mode decides who may map it: knowing it is the permission check.
    if (key.length !== 2 || (key[0] | 0) !== words[HEADER.ATTACH_KEY] || (key[1] | 0) !== words[HEADER.ATTACH_KEY + 1]) {
      throw pxpError('PXP_ERR_FORBIDDEN', 'the attach key does not match this store\'s table')
    }
    const bytes = this.store.table.maxSlots * CLAIM_WORDS * Int32Array.BYTES_PER_ELEMENT
    if (msg.claims === true) {
      this.claimsMemory = this.provider.allocateClaims(this.index, bytes)
      this.claims = new Int32Array(this.claimsMemory.buffer, 0, bytes / Int32Array.BYTES_PER_ELEMENT)
    } else {
      this.claims = new Int32Array(bytes / Int32Array.BYTES_PER_ELEMENT)
    }
    return {
      protocol: ATTACH_PROTOCOL_VERSION,
      layoutVersion: LAYOUT_VERSION,
      token: this.token,
      table: this.store.table.segment as string,
      claims: this.claimsMemory?.name ?? null,
      maxSlots: this.store.table.maxSlots,
      lockTimeoutMs: this.store.lockTimeoutMs,
      pid: process.pid,
    }
  }

  private watch (on: boolean): void {
    if (on === (this.stopWatching !== null)) return
    if (on) {
      this.stopWatching = this.store.onChange((type, descriptor) => this.send({ op: 'event', type, descriptor }))
    } else {
      this.stopWatching!()
      this.stopWatching = null
    }
  }

  // ---- on the client's behalf ---------------------------------------------------------------------

  private open (id: string): AttachOpened {
    const slot = this.store.slotOf(id)
    this.store.table.addLeases(slot, 1)
    Atomics.add(this.claims!, claimBase(slot) + CLAIM.LEASES, 1)
    return { slot, epoch: this.store.table.word(slot, SLOT.EPOCH), descriptor: this.store.describe(id) }
  }

  /** `slot` if this connection holds a lease on it, else PXP_ERR_VALIDATION. */
  private leased (slot: unknown): number {
    if (typeof slot !== 'number' || !Number.isInteger(slot) || slot < 0 || slot >= this.store.table.maxSlots ||
      Atomics.load(this.claims!, claimBase(slot) + CLAIM.LEASES) <= 0) {
      throw pxpError('PXP_ERR_VALIDATION', `slot ${String(slot)} is not open on this connection`)
    }
    return slot
  }

  private closeHandle (slot: number): void {
    Atomics.sub(this.claims!, claimBase(slot) + CLAIM.LEASES, 1)
    if (this.store.table.addLeases(slot, -1) === 0) this.store.reclaimSlot(slot)
  }

  /** The control slot of a writable image (views write through their root's words). */
  private writable (slot: number): number {
    const words = this.store.table.words
    const live = this.store.describeSlot(slot)
    if (live === undefined) throw pxpError('PXP_ERR_NOT_FOUND', `slot ${slot}`)
    if ((words[slotBase(slot) + SLOT.FLAGS] & SLOT_FLAG.READONLY) !== 0) throw pxpError('PXP_ERR_READONLY', live.id)
    return controlSlotOf(words, slot)
  }

  private timeout (timeoutMs: unknown): number {
    if (timeoutMs === undefined) return this.store.lockTimeoutMs
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) throw pxpError('PXP_ERR_VALIDATION', 'timeoutMs must be a number >= 0')
    return timeoutMs
  }

  private async begin (slot: number, timeoutMs: unknown): Promise<{ generation: number }> {
    const words = this.store.table.words
    const control = this.writable(slot)
    if (words[slotBase(control) + SLOT.FRAMES] > 1) throw pxpError('PXP_ERR_VALIDATION', 'a frame-buffered image is written with loan and publish')
    if (lockHolder(words, control) === this.token) throw pxpError('PXP_ERR_VALIDATION', 'a write is already begun on this image')
    const timeout = this.timeout(timeoutMs)
    if (!await lockAsync(words, control, this.token, timeout)) throw pxpError('PXP_ERR_LOCK_TIMEOUT', timeout, this.store.describeSlot(slot)?.id ?? `slot ${slot}`)
    // The client may have gone while we waited: recovery has run, so give the lock straight back.
    if (this.closed) {
      unlock(words, control, this.token)
      throw pxpError('PXP_ERR_CLOSED', 'attach connection')
    }
    beginWrite(words, control)
    return { generation: generationOf(words, control) }
  }

  private commit (slot: number): { generation: number } {
    const words = this.store.table.words
    const control = controlSlotOf(words, slot)
    if (lockHolder(words, control) !== this.token) throw pxpError('PXP_ERR_VALIDATION', 'no write was begun on this image')
    const generation = endWrite(words, control)
    unlock(words, control, this.token)
    this.store.table.notifyCommit(control)
    return { generation }
  }

  private async loan (slot: number, timeoutMs: unknown): Promise<{ frame: number }> {
    const words = this.store.table.words
    const control = this.writable(slot)
    if (words[slotBase(control) + SLOT.FRAMES] <= 1) throw pxpError('PXP_ERR_VALIDATION', 'only frame-buffered images (frames >= 2) loan frame buffers')
    const timeout = this.timeout(timeoutMs)
    const deadline = performance.now() + timeout
    let frame = loanFrame(words, control)
    // Every other buffer is pinned or loaned: look again until one frees up.
    while (frame < 0) {
      if (performance.now() >= deadline) throw pxpError('PXP_ERR_LOCK_TIMEOUT', timeout, this.store.describeSlot(slot)?.id ?? `slot ${slot}`)
      await new Promise((resolve) => setTimeout(resolve, 1))
      if (this.closed) throw pxpError('PXP_ERR_CLOSED', 'attach connection')
      frame = loanFrame(words, control)
    }
    if (this.closed) {
      cancelLoan(words, control, frame)
      throw pxpError('PXP_ERR_CLOSED', 'attach connection')
    }
    Atomics.store(this.claims!, claimBase(control) + CLAIM.PINS + frame, -1)
    return { frame }
  }

  private loaned (slot: number, frame: unknown): { control: number, frame: number } {
    const control = controlSlotOf(this.store.table.words, slot)
    if (typeof frame !== 'number' || !Number.isInteger(frame) || frame < 0 || frame >= MAX_FRAMES ||
      Atomics.load(this.claims!, claimBase(control) + CLAIM.PINS + frame) !== -1) {
      throw pxpError('PXP_ERR_VALIDATION', `frame ${String(frame)} is not on loan to this connection`)
    }
    return { control, frame }
  }

  private async publish (slot: number, frameArg: unknown, timeoutMs: unknown): Promise<{ generation: number }> {
    const words = this.store.table.words
    const { control, frame } = this.loaned(slot, frameArg)
    const timeout = this.timeout(timeoutMs)
    if (!await lockAsync(words, control, this.token, timeout)) throw pxpError('PXP_ERR_LOCK_TIMEOUT', timeout, this.store.describeSlot(slot)?.id ?? `slot ${slot}`)
    if (this.closed) {
      unlock(words, control, this.token)
      throw pxpError('PXP_ERR_CLOSED', 'attach connection')
    }
    let generation: number
    try {
      generation = publishFrame(words, control, frame)
      Atomics.store(this.claims!, claimBase(control) + CLAIM.PINS + frame, 0)
    } finally {
      unlock(words, control, this.token)
    }
    this.store.table.notifyCommit(control)
    return { generation }
  }

  private cancel (slot: number, frameArg: unknown): void {
    const { control, frame } = this.loaned(slot, frameArg)
    Atomics.store(this.claims!, claimBase(control) + CLAIM.PINS + frame, 0)
    cancelLoan(this.store.table.words, control, frame)
  }
}
